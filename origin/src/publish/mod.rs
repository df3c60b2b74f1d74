//! Durable snapshot publishing.
//!
//! The `snapshot` table is the outbox: an admin change commits its snapshot row in the same
//! transaction as the change, so a committed change always has a snapshot to deliver. This module
//! delivers those rows to every configured [`SnapshotSink`] (the edge worker, an S3 archive) and
//! records per (sink, environment) progress in `publish_cursor`.
//!
//! Guarantees, with any number of origin replicas on one database:
//! - **Nothing lost.** A cursor only moves past a version after the sink acknowledged it, and the
//!   move commits in the transaction that holds the cursor's row lock. Failures are recorded and
//!   retried with capped exponential backoff, forever (rejections slowly).
//! - **Nothing applied twice, nothing out of order.** A cursor is claimed with
//!   `for update skip locked`, so one worker at a time delivers a (sink, environment), versions in
//!   ascending order. A crash between a sink's acknowledgement and the commit redelivers that same
//!   version, which sinks absorb: the edge answers `200 stored:false`, S3 rewrites identical bytes.
//! - **Prompt.** The replica's outbox listener ([`crate::outbox::spawn_listener`], `LISTEN
//!   edgeflags_snapshot` plus a version-only poll) wakes the workers; their own poll every few
//!   seconds keeps them delivering while the listener is down.

mod config;
mod cursor;
mod edge;
mod metrics;
mod s3;
mod sink;
mod worker;

pub use config::{PublishConfig, PublisherSettings};
pub use edge::EdgeSink;
pub use metrics::PublishMetrics;
pub use s3::{S3Sink, S3SinkConfig};
pub use sink::{Delivery, DeliveryMode, Outgoing, SinkError, SnapshotSink};
pub use worker::spawn_with_sinks;
