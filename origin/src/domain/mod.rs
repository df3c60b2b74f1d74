//! The write side of the origin: every change to an environment (its flags and their overrides,
//! segments, client keys, the environment itself) goes through this module
//! (`docs/architecture.md`, "Write path").
//!
//! An operation such as [`flags::update`] opens a mutation of one environment (it locks the
//! environment row), reads what it changes inside that transaction, refuses with 404/409 before
//! anything is written, and then applies its change through the mutation, which
//! 1. validates the environment as the change leaves it, with evaluator-core's rules (the ones the
//!    edge runs), before any row is written;
//! 2. writes the rows, including the entity's next version (and, for flags, its history row);
//! 3. records the change (`entity`, `key`, `action`, old and new value), which becomes its audit
//!    row;
//!
//! and whose commit bumps the environment's `snapshot_version`, writes the audit rows, appends the
//! new snapshot to the outbox and commits, all in the one transaction. Anything failing before the
//! commit rolls all of it back: no change, no version, no audit row, no snapshot.
//!
//! The SQL that writes is private to this module, and a mutation can only be opened and committed
//! here, so an HTTP handler cannot write past any of these steps: it parses the request,
//! authorises the caller, calls one operation and renders the [`Written`] answer. Neither is
//! reachable from outside:
//!
//! ```compile_fail,E0603
//! use origin::domain::rows::flag::insert; // the statements that write: private
//! ```
//!
//! ```compile_fail,E0603
//! use origin::domain::mutation::Mutation; // opening a mutation: private
//! ```

pub mod bulk;
pub mod client_keys;
pub mod environments;
pub mod flags;
mod mutation;
pub mod overrides;
mod rows;
pub mod segments;

use std::sync::Arc;

use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::live::LiveSnapshots;
use mutation::Mutation;

/// What every write needs: the database, this replica's evaluation cache (updated on commit, so
/// the replica serves its own writes at once) and the caller to record as the actor.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pool: &'a PgPool,
    live: &'a Arc<LiveSnapshots>,
    actor: Actor<'a>,
}

/// Who a write is recorded as: the token's subject and, when it has one, its id (`jti`), so the
/// audit log can tell one of a subject's tokens from another (a leaked one, say).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Actor<'a> {
    pub(crate) subject: &'a str,
    pub(crate) token_id: Option<&'a str>,
    /// The author's comment on the change (`X-Edgeflags-Comment`), kept with its audit rows.
    pub(crate) comment: Option<&'a str>,
    /// The environment the caller confirmed changes of flags' `enabled` in
    /// (`X-Edgeflags-Confirm`); protected environments need it.
    pub(crate) confirm: Option<&'a str>,
}

impl<'a> Writer<'a> {
    /// A writer acting as `actor` (the JWT subject of the caller), with no token id.
    pub fn new(pool: &'a PgPool, live: &'a Arc<LiveSnapshots>, actor: &'a str) -> Self {
        Self {
            pool,
            live,
            actor: Actor {
                subject: actor,
                token_id: None,
                comment: None,
                confirm: None,
            },
        }
    }

    /// The same writer, recording `token_id` (the caller's `jti`) in the audit log.
    #[must_use]
    pub fn with_token_id(mut self, token_id: Option<&'a str>) -> Self {
        self.actor.token_id = token_id;
        self
    }

    /// The same writer, recording `comment` with every change it makes (checked by
    /// [`crate::http`]: at most 500 characters, no control characters).
    #[must_use]
    pub fn with_comment(mut self, comment: Option<&'a str>) -> Self {
        self.actor.comment = comment;
        self
    }

    /// The same writer, confirming changes of flags' `enabled` in the environment `confirm`
    /// names (a protected environment refuses them otherwise).
    #[must_use]
    pub fn with_confirmation(mut self, confirm: Option<&'a str>) -> Self {
        self.actor.confirm = confirm;
        self
    }

    /// Opens a mutation of the existing environment `environment`.
    async fn begin(&self, environment: &str) -> Result<Mutation> {
        Mutation::begin(self.pool, environment, self.actor).await
    }

    /// Commits `m` and pairs `value` with the snapshot version it produced.
    async fn commit<T>(&self, m: Mutation, value: T) -> Result<Written<T>> {
        let snapshot_version = m.commit(self.live).await?;
        Ok(Written {
            value,
            snapshot_version,
        })
    }
}

/// The result of a committed write and the environment's snapshot version it produced (the
/// `x-edgeflags-snapshot-version` header).
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// What was written, as the API answers with it.
    pub value: T,
    /// The snapshot version this write published.
    pub snapshot_version: u64,
}

/// The entity a change addresses: the environment it lives in, its key, and the version the
/// change is based on.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Environment key.
    pub environment: &'a str,
    /// Flag or segment key.
    pub key: &'a str,
    /// What its current version must be.
    pub precondition: Precondition,
}

/// Optimistic concurrency precondition of a change (the HTTP `If-Match` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// None given: last write wins.
    Absent,
    /// The entity must exist (`If-Match: *`).
    Any,
    /// The entity must be at this version.
    Version(u64),
}

impl Precondition {
    /// Checks the precondition against the entity's current version; a mismatch is a 409 that
    /// names the current version.
    pub fn check(self, current: u64) -> Result<()> {
        match self {
            Self::Version(expected) if expected != current => {
                Err(Error::VersionConflict { expected, current })
            }
            _ => Ok(()),
        }
    }
}
