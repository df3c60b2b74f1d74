//! `environment` rows.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{rfc3339, version_u64};
use crate::error::Result;

/// One environment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Surrogate key.
    pub environment_id: i64,
    /// Public key (`production`).
    pub environment_key: String,
    /// Display name.
    pub name: String,
    /// Version of the newest snapshot.
    pub snapshot_version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change of the row itself.
    pub updated_at: DateTime<Utc>,
}

impl Row {
    /// The API's JSON for this environment.
    pub fn to_json(&self) -> Value {
        json!({
            "key": self.environment_key,
            "name": self.name,
            "snapshotVersion": version_u64(self.snapshot_version),
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.updated_at),
        })
    }
}

const COLUMNS: &str =
    "environment_id, environment_key, name, snapshot_version, created_at, updated_at";

/// The environment `key`, if it exists.
pub async fn find(conn: &mut PgConnection, key: &str) -> Result<Option<Row>> {
    let sql = format!("select {COLUMNS} from environment where environment_key = $1");
    Ok(sqlx::query_as(&sql).bind(key).fetch_optional(conn).await?)
}

/// The environment `key`, locked until the end of the transaction: the lock that serialises
/// every mutation of one environment (and so keeps its snapshot versions gapless).
pub async fn lock(conn: &mut PgConnection, key: &str) -> Result<Option<Row>> {
    let sql = format!("select {COLUMNS} from environment where environment_key = $1 for update");
    Ok(sqlx::query_as(&sql).bind(key).fetch_optional(conn).await?)
}

/// All environments, by key.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Row>> {
    let sql = format!("select {COLUMNS} from environment order by environment_key");
    Ok(sqlx::query_as(&sql).fetch_all(conn).await?)
}

/// Creates an environment; `None` if the key is taken. Its snapshot versions continue after any
/// snapshots a deleted namesake left in the outbox, so that edges and publish cursors, which
/// refuse to go backwards, accept the new environment's snapshots.
pub async fn insert(conn: &mut PgConnection, key: &str, name: &str) -> Result<Option<Row>> {
    let sql = format!(
        "insert into environment (environment_key, name, snapshot_version)
         values ($1, $2, coalesce((select max(version) from snapshot where environment_key = $1), 0))
         on conflict (environment_key) do nothing
         returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(key)
        .bind(name)
        .fetch_optional(conn)
        .await?)
}

/// Records the environment's new snapshot version.
pub async fn set_snapshot_version(conn: &mut PgConnection, id: i64, version: i64) -> Result<()> {
    sqlx::query("update environment set snapshot_version = $2 where environment_id = $1")
        .bind(id)
        .bind(version)
        .execute(conn)
        .await?;
    Ok(())
}

/// Renames an environment (its key never changes).
pub async fn rename(conn: &mut PgConnection, id: i64, name: &str) -> Result<Row> {
    let sql =
        format!("update environment set name = $2 where environment_id = $1 returning {COLUMNS}");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(name)
        .fetch_one(conn)
        .await?)
}

/// Deletes an environment and, by cascade, its client keys and flag history.
pub async fn delete(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("delete from environment where environment_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many flags and segments the environment holds.
pub async fn contents(conn: &mut PgConnection, id: i64) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "select (select count(*) from feature_flag where environment_id = $1),
                (select count(*) from segment where environment_id = $1)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}
