//! The pure heart of edgeflags: the flag model, the snapshot format and the evaluation rules.
//!
//! The same code runs natively (origin, SDKs, benchmarks) and as wasm32 (the edge worker), so it
//! is `no_std` + `alloc`, reads no clock (callers pass `now` in Unix milliseconds), draws no
//! random numbers and does no I/O. `docs/flag-model.md` is the specification.
#![no_std]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod context;
pub mod model;
pub mod reason;

pub use context::EvaluationContext;
pub use reason::{ErrorCode, Reason};
