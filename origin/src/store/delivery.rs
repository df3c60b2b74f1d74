//! `publish_cursor` reads: how far each sink has delivered an environment's snapshots (the
//! publisher in `crate::publish` writes these rows).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::{rfc3339, version_u64};
use crate::error::Result;

/// One sink's cursor of one environment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// The sink's name (`edge`, `s3`).
    pub sink: String,
    /// Highest version the sink acknowledged; 0 = none yet.
    pub delivered_version: i64,
    /// Consecutive failed deliveries since the last success.
    pub attempts: i32,
    /// The last failure, while it is not yet followed by a success.
    pub last_error: Option<String>,
    /// When the sink is tried again (its backoff).
    pub next_attempt_at: DateTime<Utc>,
    /// When the cursor last changed.
    pub updated_at: DateTime<Utc>,
}

impl Row {
    /// The API form, with how many versions the sink is behind `snapshot_version`.
    pub fn to_json(&self, snapshot_version: u64) -> Value {
        let delivered = version_u64(self.delivered_version);
        json!({
            "sink": self.sink,
            "deliveredVersion": delivered,
            "behind": snapshot_version.saturating_sub(delivered),
            "attempts": self.attempts,
            "lastError": self.last_error,
            "nextAttemptAt": rfc3339(self.next_attempt_at),
            "updatedAt": rfc3339(self.updated_at),
        })
    }
}

/// Every sink's cursor of `environment_key`, by sink name.
pub async fn for_environment(conn: &mut PgConnection, environment_key: &str) -> Result<Vec<Row>> {
    Ok(sqlx::query_as(
        "select sink, delivered_version, attempts, last_error, next_attempt_at, updated_at
         from publish_cursor where environment_key = $1 order by sink",
    )
    .bind(environment_key)
    .fetch_all(conn)
    .await?)
}
