//! The snapshot publish protocol: the contract between the origin's edge sink
//! (`origin/src/publish/edge.rs`, the publisher) and the edge worker's publish endpoint
//! (`edge-worker/src/publish.rs`, the receiver). Both ends use this crate, so the names, the
//! signed bytes and the meaning of each answer exist once. `docs/architecture.md`, sections
//! "Publish protocol" and "KV layout", describes the same in prose.
//!
//! # The request
//! `PUT {edge}`[`PUBLISH_PATH_PREFIX`]`{environment}` (the environment as one escaped path
//! segment), `Content-Type: application/json`, the snapshot JSON as the body (at most
//! [`MAX_SNAPSHOT_BYTES`]), and two headers:
//! - [`TIMESTAMP_HEADER`] `X-Edgeflags-Timestamp`: Unix seconds at signing, in decimal;
//! - [`SIGNATURE_HEADER`] `X-Edgeflags-Signature`: `v1=` followed by the 64 lowercase hex digits
//!   of HMAC-SHA256(secret, `"<timestamp>.<body>"`), where `<timestamp>` is the header's value
//!   exactly as sent and `<body>` the body's raw bytes ([`sign`]).
//!
//! The receiver checks, in this order: the timestamp is within [`TIMESTAMP_TOLERANCE_SECONDS`]
//! of its clock either way (limits replays), then the signature, in constant time ([`verify`]),
//! all before anything parses the body. The shared secret is at least [`MIN_SECRET_BYTES`] bytes
//! ([`Secret::new`]); both ends refuse a shorter one.
//!
//! # The answer
//! JSON with `Content-Type: application/json`: [`StoredAnswer`] for a 200, [`ErrorAnswer`]
//! otherwise, its `code` one of [`ErrorCode`] (each documents its status and what it means to
//! the publisher). [`outcome`] reads an answer as the publisher acts on it.
//!
//! # Workers KV
//! The receiver keeps one snapshot per environment under [`snapshot_key`] and its version under
//! [`version_key`], written in that order (see [`kv`]).
#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod answer;
pub mod kv;
mod signature;

pub use answer::{outcome, ErrorAnswer, ErrorCode, Outcome, StoredAnswer};
pub use kv::{snapshot_key, version_key, SnapshotMetadata};
pub use signature::{sign, verify, Secret, SecretTooShort, SignatureError, SignedHeaders};

/// Path prefix of the publish endpoint; the environment follows as the last segment.
pub const PUBLISH_PATH_PREFIX: &str = "/internal/snapshots/";

/// Header carrying the Unix time (seconds, decimal) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Edgeflags-Timestamp";

/// Header carrying [`SIGNATURE_PREFIX`] + lowercase hex HMAC-SHA256(secret, `"<timestamp>.<body>"`).
pub const SIGNATURE_HEADER: &str = "X-Edgeflags-Signature";

/// Version tag of the signature scheme, the start of every [`SIGNATURE_HEADER`] value.
pub const SIGNATURE_PREFIX: &str = "v1=";

/// A timestamp further than this from the receiver's clock, in either direction, is refused
/// (`401 INVALID_SIGNATURE`): a captured request cannot be replayed later than this.
pub const TIMESTAMP_TOLERANCE_SECONDS: u64 = 300;

/// Shortest shared secret either end accepts: HMAC-SHA256's full strength needs a key of at
/// least its output size (32 bytes), e.g. `openssl rand -hex 32` (64 characters).
pub const MIN_SECRET_BYTES: usize = 32;

/// Largest body the receiver accepts (Workers KV's value limit); larger is
/// `413 PAYLOAD_TOO_LARGE`, refused from `Content-Length` before it is read.
pub const MAX_SNAPSHOT_BYTES: usize = 25 * 1024 * 1024;
