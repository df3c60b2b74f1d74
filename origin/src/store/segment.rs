//! `segment` rows (reads; the writes are [`crate::domain::segments`]'s).

use chrono::{DateTime, Utc};
use evaluator_core::model::Segment;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgConnection;

use super::{rfc3339, version_u64, KeyPage};
use crate::error::Result;

/// A stored segment and its metadata.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    /// Surrogate key.
    pub segment_id: i64,
    /// Version of this segment's definition.
    pub version: i64,
    /// The segment as `docs/flag-model.md` describes it.
    pub definition: Json<Segment>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Names of the metadata members the API adds to a segment; accepted back (and ignored) in
/// bodies so that a fetched segment can be edited and sent again.
pub const METADATA: [&str; 4] = ["environment", "version", "createdAt", "updatedAt"];

impl Stored {
    /// The API's JSON: the segment plus its environment, version and timestamps.
    pub fn to_json(&self, environment: &str) -> Value {
        let mut value = serde_json::to_value(&self.definition.0).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("environment".into(), environment.into());
            map.insert("version".into(), version_u64(self.version).into());
            map.insert("createdAt".into(), rfc3339(self.created_at).into());
            map.insert("updatedAt".into(), rfc3339(self.updated_at).into());
        }
        value
    }
}

/// The columns of a [`Stored`], in its order.
pub(crate) const COLUMNS: &str = "segment_id, version, definition, created_at, updated_at";

/// The segment `key` of the environment.
pub async fn find(
    conn: &mut PgConnection,
    environment_id: i64,
    key: &str,
) -> Result<Option<Stored>> {
    let sql =
        format!("select {COLUMNS} from segment where environment_id = $1 and segment_key = $2");
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(key)
        .fetch_optional(conn)
        .await?)
}

/// One [`KeyPage`] of the environment's segments.
pub async fn page(conn: &mut PgConnection, page: KeyPage<'_>) -> Result<Vec<Stored>> {
    let sql = format!(
        "select {COLUMNS} from segment
         where environment_id = $1 and ($2::text is null or segment_key > $2)
         order by segment_key limit $3"
    );
    Ok(sqlx::query_as(&sql)
        .bind(page.environment_id)
        .bind(page.after)
        .bind(page.limit)
        .fetch_all(conn)
        .await?)
}

/// Every segment of the environment, by key.
pub async fn all(conn: &mut PgConnection, environment_id: i64) -> Result<Vec<Segment>> {
    let rows: Vec<Json<Segment>> = sqlx::query_scalar(
        "select definition from segment where environment_id = $1 order by segment_key",
    )
    .bind(environment_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|j| j.0).collect())
}
