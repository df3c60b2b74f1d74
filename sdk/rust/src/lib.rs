//! edgeflags in-process client: evaluates feature flags inside the application, with the same
//! `evaluator-core` the edge and the origin run, from the environment's snapshot.
//!
//! A [`Client`] downloads the snapshot with a server key (`GET /sdk/v1/snapshot`, docs/sdk.md),
//! follows the event stream the answer names and re-fetches (conditionally, with the `ETag`)
//! on every change it announces, or polls when there is no stream. Evaluation is synchronous,
//! in memory, and keeps working through network faults and bad snapshots: the last good
//! snapshot stays in service, and [`Client::health`] says how current it is.
//!
//! ```no_run
//! # async fn example() -> edgeflags_client::Result<()> {
//! use std::time::Duration;
//! use edgeflags_client::{Client, Context};
//!
//! let client = Client::builder("https://flags.example.com", "efs.production.0123456789abcdef0123456789abcdef")
//!     .build()?;
//! client.wait_ready(Duration::from_secs(5)).await?;
//! let user = Context::with_targeting_key("user-1").with_attribute("country", "US");
//! let checkout = client.evaluate("new-checkout-flow", &user)?;
//! println!("{} ({}, {})", checkout.value, checkout.reason, checkout.detail);
//! client.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`EdgeflagsProvider`] is the same client as an OpenFeature provider (the `open-feature`
//! crate).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod client;
mod convert;
mod endpoint;
mod error;
mod provider;
mod snapshot;
mod sse;
mod status;
mod sync;

pub use client::{Client, ClientBuilder};
pub use convert::context_from_open_feature;
pub use error::{Error, Result};
pub use provider::{EdgeflagsProvider, DEFAULT_INIT_TIMEOUT};
pub use snapshot::{Resolved, Snapshot};
pub use status::{Health, Status};

/// The evaluation context: targeting key and attributes (evaluator-core's).
pub use evaluator_core::EvaluationContext as Context;
/// Evaluation results and their vocabulary, from evaluator-core.
pub use evaluator_core::{ErrorCode, Evaluation, Reason};
