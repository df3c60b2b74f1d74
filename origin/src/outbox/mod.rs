//! The snapshot outbox (docs/architecture.md, section "Outbox").
//!
//! The `snapshot` table is the outbox: every mutation appends its environment's next snapshot as
//! exact JSON text in the mutation's own transaction ([`append`], the only code that writes the
//! table) and notifies [`CHANNEL`] with the environment key as payload; PostgreSQL delivers the
//! notification when that transaction commits. Two consumers read it back:
//! - the evaluation cache ([`crate::live`]), which holds each environment's newest snapshot;
//! - the publisher ([`crate::publish`]), which delivers every version to the edge and the archive.
//!
//! Both learn about new versions from one listener per replica ([`spawn_listener`]), which
//! announces "environment E is at version V" (never a body); each consumer reads a body only for a
//! version it needs. Rows every sink has passed are pruned beyond a retention
//! ([`spawn_pruner`], see [`retention`]).

mod listener;
pub mod retention;

use chrono::{DateTime, Utc};
use evaluator_core::model::Snapshot;
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Resource, Result};
use crate::store::{environment, rfc3339, version_i64, version_u64, view::View};

pub use listener::{spawn_listener, Announcement, Subscription};
pub use retention::{prune, spawn_pruner, Retention, RetentionConfig};

/// The channel every appended snapshot is announced on; the payload is the environment key.
pub const CHANNEL: &str = "edgeflags_snapshot";

/// Appends `snapshot` to the outbox and announces it on [`CHANNEL`] (PostgreSQL delivers the
/// notification when the transaction `conn` belongs to commits, and drops it on rollback).
/// Returns the stored text.
///
/// Callers hold the environment row lock (see [`crate::domain`]) and pass the version after the
/// environment's `snapshot_version`: that keeps each environment's versions gapless and committed
/// in order, which the publisher's cursors rely on.
pub async fn append(conn: &mut PgConnection, snapshot: &Snapshot) -> Result<String> {
    let body = serde_json::to_string(snapshot)?;
    refuse_unpublishable(&body)?;
    sqlx::query("insert into snapshot (environment_key, version, body) values ($1, $2, $3)")
        .bind(&snapshot.environment)
        .bind(version_i64(snapshot.version))
        .bind(&body)
        .execute(&mut *conn)
        .await?;
    sqlx::query("select pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(&snapshot.environment)
        .execute(conn)
        .await?;
    Ok(body)
}

/// Refuses a snapshot the edge could not store (one Workers KV value, packed), so the change that
/// would produce it fails with a 422 instead of being committed and then refused by every edge.
///
/// Packing costs about a parse of the snapshot, so it runs only where the limit is in reach: the
/// packed value is the JSON plus a directory of fixed-size entries, key bytes and dependency
/// words, each smaller than the JSON text it points at, so text under half the limit always fits.
fn refuse_unpublishable(body: &str) -> Result<()> {
    if body.len() <= evaluator_core::validate::limits::SNAPSHOT_BYTES / 2 - 4096 {
        return Ok(());
    }
    match evaluator_core::validate_snapshot_bytes(body.as_bytes())
        .into_iter()
        .next()
    {
        None => Ok(()),
        Some(problem) => Err(Error::invalid(problem.path, problem.message)),
    }
}

/// The snapshot of `environment_key` as `conn` (usually a transaction) sees it now, labelled
/// `version`: what a mutation would append after changing nothing.
pub async fn build(
    conn: &mut PgConnection,
    environment_key: &str,
    version: u64,
) -> Result<Snapshot> {
    let env = environment::find(conn, environment_key)
        .await?
        .ok_or_else(|| Error::not_found(Resource::Environment, environment_key))?;
    let now: DateTime<Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&mut *conn)
        .await?;
    let view = View::load(conn, env.environment_id).await?;
    Ok(view.into_snapshot(environment_key, version, rfc3339(now)))
}

/// The newest version of every environment that has snapshots, by environment key; no bodies.
///
/// Read from the outbox itself rather than from `environment.snapshot_version`, so that the last
/// (empty) snapshot of a deleted environment is announced too: edges must receive it to stop
/// serving the environment. The recursive query walks the distinct keys through the primary key
/// (one index probe per environment, plus one for its newest version) instead of scanning every
/// version ever appended.
pub async fn latest_versions(pool: &PgPool) -> Result<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "with recursive env(key) as (
             (select environment_key from snapshot order by environment_key limit 1)
             union all
             select (select s.environment_key from snapshot s
                     where s.environment_key > env.key
                     order by s.environment_key limit 1)
             from env where env.key is not null
         )
         select env.key::text,
                (select max(s.version) from snapshot s where s.environment_key = env.key)
         from env where env.key is not null",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(environment, version)| (environment, version_u64(version)))
        .collect())
}

/// The newest version of one environment (the payload of a notification); no body.
pub async fn latest_version(pool: &PgPool, environment_key: &str) -> Result<Option<u64>> {
    let version: Option<i64> =
        sqlx::query_scalar("select max(version) from snapshot where environment_key = $1")
            .bind(environment_key)
            .fetch_one(pool)
            .await?;
    Ok(version.map(version_u64))
}

/// The exact text of one version of one environment, if the outbox holds it.
pub async fn body(pool: &PgPool, environment_key: &str, version: u64) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("select body from snapshot where environment_key = $1 and version = $2")
            .bind(environment_key)
            .bind(version_i64(version))
            .fetch_optional(pool)
            .await?,
    )
}

/// The newest snapshot of `environment_key` in the outbox: its version and exact text.
pub async fn latest(pool: &PgPool, environment_key: &str) -> Result<Option<(u64, String)>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "select version, body from snapshot where environment_key = $1
         order by version desc limit 1",
    )
    .bind(environment_key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(v, body)| (version_u64(v), body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_budget_is_what_the_edge_accepts() {
        assert_eq!(
            evaluator_core::validate::limits::SNAPSHOT_BYTES,
            publish_protocol::MAX_SNAPSHOT_BYTES
        );
    }

    #[test]
    fn a_snapshot_the_edge_could_not_store_is_refused_naming_the_limit() {
        let small = r#"{"environment":"dev","version":1,"generatedAt":"2026-12-01T00:00:00Z","flags":[],"segments":[]}"#;
        assert!(refuse_unpublishable(small).is_ok());
        let description = "x".repeat(evaluator_core::validate::limits::SNAPSHOT_BYTES);
        let big = format!(
            r#"{{"environment":"dev","version":1,"generatedAt":"2026-12-01T00:00:00Z","flags":[{{"flagKey":"f","description":"{description}"}}],"segments":[]}}"#
        );
        match refuse_unpublishable(&big) {
            Err(Error::Validation(problems)) => {
                assert_eq!(problems[0].field, "snapshot");
                assert!(problems[0].message.contains("26214400"), "{problems:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}
