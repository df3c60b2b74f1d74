//! Shared parts of edgeflags' fuzz targets (`fuzz_targets/*.rs`): the fixture snapshots and
//! contexts taken from the repository's conformance files, the invariants every evaluation must
//! satisfy, and the text form of HTTP requests the `evaluate` target decodes.
//!
//! A target that finds an invariant broken panics; libFuzzer saves the input in `artifacts/`.
//! `docs/reliability.md`, section "Fuzzing", says what each target feeds and checks.

pub mod check;
pub mod fixtures;
pub mod request;
