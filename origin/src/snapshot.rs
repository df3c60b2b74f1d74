//! Building snapshots and reading the outbox (contract "Snapshot storage at the origin").
//!
//! The `snapshot` table is the outbox: every mutation appends its environment's next snapshot as
//! exact JSON text in the mutation's own transaction and notifies `edgeflags_snapshot`; publishers
//! and replicas read it from there.

use chrono::{DateTime, Utc};
use evaluator_core::model::Snapshot;
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Resource, Result};
use crate::store::{environment, rfc3339, version_i64, version_u64, view::View};

/// The channel every appended snapshot is announced on; the payload is the environment key.
pub const CHANNEL: &str = "edgeflags_snapshot";

/// The snapshot of `environment_key` as `conn` (usually a transaction) sees it now, labelled
/// `version`.
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

/// The newest snapshot of every environment that exists: `(environment, version, text)`.
pub async fn latest_all(pool: &PgPool) -> Result<Vec<(String, u64, String)>> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "select s.environment_key, s.version, s.body
         from environment e
         join snapshot s on s.environment_key = e.environment_key
                        and s.version = e.snapshot_version",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(env, v, body)| (env, version_u64(v), body))
        .collect())
}

/// Appends `snapshot` to the outbox and announces it (delivered when the transaction commits).
/// Returns the stored text.
pub async fn append(conn: &mut PgConnection, snapshot: &Snapshot) -> Result<String> {
    let body = serde_json::to_string(snapshot)?;
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
