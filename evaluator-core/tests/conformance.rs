//! Native runner of the language-neutral conformance suite in `tests/conformance/*.json`: one
//! test per file, reading the file at run time. The wasm32 twin is `conformance_wasm.rs`; both
//! judge cases with `conformance_common`.
#![cfg(not(target_arch = "wasm32"))]

mod conformance_common;

use conformance_common::check_file;
use conformance_common::files::for_each_conformance_file;
use std::path::PathBuf;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

fn check_file_on_disk(file: &str) {
    let path = conformance_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let checks = check_file(file, &text);
    println!("{file}: {checks} checks passed");
}

macro_rules! native_tests {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_file_on_disk($file);
            }
        )*

        const LISTED: &[&str] = &[$($file),*];
    };
}

for_each_conformance_file!(native_tests);

#[test]
fn every_json_file_in_tests_conformance_is_listed_for_both_runners() {
    let mut on_disk: Vec<String> = std::fs::read_dir(conformance_dir())
        .expect("tests/conformance exists")
        .map(|entry| {
            entry
                .expect("readable directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/conformance/*.json and the list in evaluator-core/tests/conformance_common/files.rs differ: \
         add new files there (the wasm32 runner only sees listed files)"
    );
}
