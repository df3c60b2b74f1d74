//! `environment` rows (reads; the writes are [`crate::domain`]'s).

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
    /// Whether changing a flag's `enabled` here needs a confirmation naming the environment.
    pub protected: bool,
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
            "protected": self.protected,
            "createdAt": rfc3339(self.created_at),
            "updatedAt": rfc3339(self.updated_at),
        })
    }
}

/// The columns of a [`Row`], in its order.
pub(crate) const COLUMNS: &str =
    "environment_id, environment_key, name, snapshot_version, protected, created_at, updated_at";

/// The environment `key`, if it exists.
pub async fn find(conn: &mut PgConnection, key: &str) -> Result<Option<Row>> {
    let sql = format!("select {COLUMNS} from environment where environment_key = $1");
    Ok(sqlx::query_as(&sql).bind(key).fetch_optional(conn).await?)
}

/// All environments, by key.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Row>> {
    let sql = format!("select {COLUMNS} from environment order by environment_key");
    Ok(sqlx::query_as(&sql).fetch_all(conn).await?)
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
