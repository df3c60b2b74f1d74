//! edgeflags origin: the control plane. It stores flags, segments, overrides, environments and
//! client keys in PostgreSQL, validates every change with evaluator-core, writes each change with
//! its audit row and the environment's next snapshot in one transaction (the snapshot table is
//! the publishers' outbox), and serves the admin API plus the same public evaluation API as the
//! edge.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod config;
pub mod document;
pub mod domain;
pub mod error;
pub mod http;
pub mod live;
pub mod metrics;
pub mod outbox;
pub mod publish;
pub mod ratelimit;
pub mod store;
pub mod validation;

pub use error::{Error, Result};
pub use http::{app, AppState, Settings};
