//! SQL reads: one module per table family. All statements are parameterised (`query` + `bind`).
//! The statements that write are private to [`crate::domain`], so that every write is a mutation.
//!
//! Flags are stored as their JSON definition (JSONB) without `overrides`, which live in
//! `flag_override`, one row per user; [`flag::Stored`] and the environment view join
//! them back into the flag of `docs/flag-model.md`.

pub mod audit;
pub mod client_key;
pub mod delivery;
pub mod environment;
pub mod flag;
pub mod flag_index;
pub mod segment;
pub mod view;

use chrono::{DateTime, SecondsFormat, Utc};

/// Which rows of an environment a page read wants: those whose keys sort after `after`, by key,
/// at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct KeyPage<'a> {
    /// The environment's id.
    pub environment_id: i64,
    /// The last key of the previous page.
    pub after: Option<&'a str>,
    /// How many rows at most.
    pub limit: i64,
}

/// RFC 3339 in UTC with a `Z`, fractions only when present (`2026-12-01T00:00:00Z`).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Converts a stored `bigint` version to the wire's unsigned form (versions are checked `> 0`).
pub fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Converts a wire version to a `bigint` bind, saturating (no stored version gets that large).
pub fn version_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
