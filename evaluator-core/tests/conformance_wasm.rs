//! wasm32 runner of the conformance suite: the same files and checks as the native runner, with
//! the files embedded at compile time (no filesystem on wasm32-unknown-unknown). Run with
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test -p evaluator-core
//! --target wasm32-unknown-unknown --no-default-features --test conformance_wasm`.
#![cfg(target_arch = "wasm32")]

mod conformance_common;

use conformance_common::check_file;
use conformance_common::files::for_each_conformance_file;
use wasm_bindgen_test::wasm_bindgen_test;

macro_rules! wasm_tests {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[wasm_bindgen_test]
            fn $test() {
                check_file(
                    $file,
                    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/", $file)),
                );
            }
        )*
    };
}

for_each_conformance_file!(wasm_tests);
