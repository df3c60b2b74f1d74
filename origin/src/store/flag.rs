//! `feature_flag`, `flag_override` and `flag_version` rows (reads; the writes are
//! [`crate::domain`]'s).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use evaluator_core::model::{Flag, Override};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::PgConnection;

use super::{rfc3339, version_i64, version_u64, KeyPage};
use crate::error::{FieldError, Result};

/// A stored flag with its overrides joined back in.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Surrogate key.
    pub feature_flag_id: i64,
    /// The flag as `docs/flag-model.md` describes it, overrides included.
    pub flag: Flag,
}

#[derive(sqlx::FromRow)]
struct FlagRow {
    feature_flag_id: i64,
    definition: Json<Flag>,
}

#[derive(sqlx::FromRow)]
struct OverrideRow {
    feature_flag_id: i64,
    user_id: String,
    variation: Option<String>,
    enabled: Option<bool>,
    expires_at: Option<DateTime<Utc>>,
}

impl From<OverrideRow> for Override {
    fn from(row: OverrideRow) -> Self {
        Override {
            user_id: row.user_id,
            variation: row.variation,
            enabled: row.enabled,
            expires_at: row.expires_at.map(rfc3339),
        }
    }
}

/// The flag `key` of environment `environment_id`.
pub async fn find(
    conn: &mut PgConnection,
    environment_id: i64,
    key: &str,
) -> Result<Option<Stored>> {
    let row: Option<FlagRow> = sqlx::query_as(
        "select feature_flag_id, definition from feature_flag
         where environment_id = $1 and flag_key = $2",
    )
    .bind(environment_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut flags = with_overrides(conn, vec![row]).await?;
    Ok(flags.pop())
}

/// One [`KeyPage`] of the environment's flags, overrides included; with `tag`, only the flags
/// carrying that tag (exactly, case-sensitive: tags are identifiers).
pub async fn page(
    conn: &mut PgConnection,
    page: KeyPage<'_>,
    tag: Option<&str>,
) -> Result<Vec<Flag>> {
    let rows: Vec<FlagRow> = sqlx::query_as(
        "select feature_flag_id, definition from feature_flag
         where environment_id = $1 and ($2::text is null or flag_key > $2)
           and ($4::text is null or definition -> 'tags' ? $4)
         order by flag_key limit $3",
    )
    .bind(page.environment_id)
    .bind(page.after)
    .bind(page.limit)
    .bind(tag)
    .fetch_all(&mut *conn)
    .await?;
    Ok(with_overrides(conn, rows)
        .await?
        .into_iter()
        .map(|s| s.flag)
        .collect())
}

/// Every flag of the environment, by key, overrides included (what a snapshot holds).
pub async fn all(conn: &mut PgConnection, environment_id: i64) -> Result<Vec<Flag>> {
    let rows: Vec<FlagRow> = sqlx::query_as(
        "select feature_flag_id, definition from feature_flag where environment_id = $1
         order by flag_key",
    )
    .bind(environment_id)
    .fetch_all(&mut *conn)
    .await?;
    let overrides: Vec<OverrideRow> = sqlx::query_as(
        "select o.feature_flag_id, o.user_id, o.variation, o.enabled, o.expires_at
         from flag_override o join feature_flag f using (feature_flag_id)
         where f.environment_id = $1
         order by o.feature_flag_id, o.user_id",
    )
    .bind(environment_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(join(rows, overrides).into_iter().map(|s| s.flag).collect())
}

async fn with_overrides(conn: &mut PgConnection, rows: Vec<FlagRow>) -> Result<Vec<Stored>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.feature_flag_id).collect();
    let overrides: Vec<OverrideRow> = sqlx::query_as(
        "select feature_flag_id, user_id, variation, enabled, expires_at from flag_override
         where feature_flag_id = any($1) order by feature_flag_id, user_id",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(join(rows, overrides))
}

fn join(rows: Vec<FlagRow>, overrides: Vec<OverrideRow>) -> Vec<Stored> {
    let mut by_flag: HashMap<i64, Vec<Override>> = HashMap::new();
    for row in overrides {
        by_flag
            .entry(row.feature_flag_id)
            .or_default()
            .push(row.into());
    }
    rows.into_iter()
        .map(|row| {
            let mut flag = row.definition.0;
            flag.overrides = by_flag.remove(&row.feature_flag_id).unwrap_or_default();
            Stored {
                feature_flag_id: row.feature_flag_id,
                flag,
            }
        })
        .collect()
}

/// Parses an override's `expiresAt`; `field` names it in the error.
pub fn parse_expiry(value: &str, field: String) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| FieldError::new(field, format!("not an RFC 3339 timestamp: {e}")))
}

/// The version a new change of flag `key` gets: one past the newest in its history, so that a
/// re-created flag continues its predecessor's numbering.
pub async fn next_version(conn: &mut PgConnection, environment_id: i64, key: &str) -> Result<u64> {
    let max: Option<i64> = sqlx::query_scalar(
        "select max(version) from flag_version where environment_id = $1 and flag_key = $2",
    )
    .bind(environment_id)
    .bind(key)
    .fetch_one(conn)
    .await?;
    Ok(version_u64(max.unwrap_or(0)) + 1)
}

/// One entry of a flag's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    /// The flag version.
    pub version: i64,
    /// What produced it (`create`, `update`, `delete`, `rollback`, `copy`, `override.set`...).
    pub action: String,
    /// Who.
    pub actor: String,
    /// The full definition; `None` for a deletion.
    pub definition: Option<Json<Flag>>,
    /// For a rollback, the version it restored.
    pub rollback_of: Option<i64>,
    /// The author's comment on the change, if any.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl VersionRow {
    /// The API's JSON for this history entry.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "version": version_u64(self.version),
            "action": self.action,
            "actor": self.actor,
            "createdAt": rfc3339(self.created_at),
            "definition": self.definition.as_ref().map(|d| &d.0),
            "comment": self.comment,
        });
        if let Some(of) = self.rollback_of {
            entry["rollbackOf"] = json!(version_u64(of));
        }
        entry
    }
}

const VERSION_COLUMNS: &str =
    "version, action, actor, definition, rollback_of, comment, created_at";

/// Up to `limit` history entries older than `before`, newest first.
pub async fn history(
    conn: &mut PgConnection,
    environment_id: i64,
    key: &str,
    before: Option<u64>,
    limit: i64,
) -> Result<Vec<VersionRow>> {
    let sql = format!(
        "select {VERSION_COLUMNS} from flag_version
         where environment_id = $1 and flag_key = $2 and ($3::bigint is null or version < $3)
         order by version desc limit $4"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(key)
        .bind(before.map(version_i64))
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

/// One history entry.
pub async fn version(
    conn: &mut PgConnection,
    environment_id: i64,
    key: &str,
    version: u64,
) -> Result<Option<VersionRow>> {
    let sql = format!(
        "select {VERSION_COLUMNS} from flag_version
         where environment_id = $1 and flag_key = $2 and version = $3"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(key)
        .bind(version_i64(version))
        .fetch_optional(conn)
        .await?)
}
