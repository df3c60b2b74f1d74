//! The pure heart of edgeflags: the flag model, the snapshot format and the evaluation rules.
//!
//! The same code runs natively (origin, SDKs, benchmarks) and as wasm32 (the edge worker), so it
//! is `no_std` + `alloc`, reads no clock (callers pass `now` in Unix milliseconds), draws no
//! random numbers and does no I/O. `docs/flag-model.md` is the specification.
//!
//! The flow: parse a [`model::Snapshot`] (or raw JSON) and [`CompiledSnapshot::compile`] it once
//! per snapshot version; then [`CompiledSnapshot::evaluate`] any number of times. Compilation
//! does all parsing (regexes, versions, timestamps, weights) and indexing up front, so evaluation
//! neither parses nor, on the common path, allocates. Callers that evaluate often look a flag's
//! key up once ([`CompiledSnapshot::flag_position`], then [`CompiledSnapshot::evaluate_at`]);
//! callers that evaluate many flags for one context (bulk, SDKs) prepare it once
//! ([`CompiledSnapshot::prepare`], then [`CompiledSnapshot::evaluate_prepared`]).
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

// `openapi`: utoipa's derives call `format!` unqualified, as in a std crate.
#[cfg_attr(feature = "openapi", macro_use)]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod attribute;
pub mod bucketing;
pub mod context;
mod cycles;
pub mod error;
pub mod evaluate;
mod evaluation;
mod flag;
mod json;
mod memo;
pub mod model;
mod nesting;
pub mod operators;
/// The edge's storage form of a snapshot: compile only the flags a request needs.
pub mod packed;
mod path;
pub mod reason;
mod segment;
mod sets;
pub mod snapshot;
#[cfg(feature = "testdata")]
pub mod testdata;
mod text;
pub mod time;
pub mod validate;
mod version;

pub use bucketing::{bucket, BUCKETS};
pub use context::EvaluationContext;
pub use error::{Error, Result};
pub use evaluate::{Evaluation, PreparedContext, ValueType};
pub use reason::{ErrorCode, Reason};
pub use snapshot::{CompiledSnapshot, FlagPosition};
pub use time::parse_rfc3339_millis;
pub use validate::{
    validate_flag, validate_flag_key, validate_segment, validate_snapshot, validate_snapshot_bytes,
    ValidationError,
};
