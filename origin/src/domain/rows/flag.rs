//! `feature_flag`, `flag_override` and `flag_version` row writes.

use evaluator_core::model::{Flag, Override};
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::error::{Error, Result};
use crate::store::flag::parse_expiry;
use crate::store::version_i64;

/// The definition column's content: the flag without its overrides.
fn definition(flag: &Flag) -> Flag {
    Flag {
        overrides: Vec::new(),
        ..flag.clone()
    }
}

/// Inserts a new flag (overrides are written by [`replace_overrides`]).
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    environment_id: i64,
    flag: &Flag,
    actor: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into feature_flag
             (environment_id, flag_key, enabled, version, definition, created_by, updated_by)
         values ($1, $2, $3, $4, $5, $6, $6)
         returning feature_flag_id",
    )
    .bind(environment_id)
    .bind(&flag.flag_key)
    .bind(flag.enabled)
    .bind(version_i64(flag.version))
    .bind(Json(definition(flag)))
    .bind(actor)
    .fetch_one(conn)
    .await?)
}

/// Replaces a flag's definition.
pub(in crate::domain) async fn update(
    conn: &mut PgConnection,
    id: i64,
    flag: &Flag,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "update feature_flag set enabled = $2, version = $3, definition = $4, updated_by = $5
         where feature_flag_id = $1",
    )
    .bind(id)
    .bind(flag.enabled)
    .bind(version_i64(flag.version))
    .bind(Json(definition(flag)))
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a flag and, by cascade, its overrides (its history stays).
pub(in crate::domain) async fn delete(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("delete from feature_flag where feature_flag_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes the flag's stored overrides exactly `overrides`.
pub(in crate::domain) async fn replace_overrides(
    conn: &mut PgConnection,
    id: i64,
    overrides: &[Override],
) -> Result<()> {
    sqlx::query("delete from flag_override where feature_flag_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if overrides.is_empty() {
        return Ok(());
    }
    let mut users = Vec::with_capacity(overrides.len());
    let mut variations = Vec::with_capacity(overrides.len());
    let mut enabled = Vec::with_capacity(overrides.len());
    let mut expiries = Vec::with_capacity(overrides.len());
    for (i, o) in overrides.iter().enumerate() {
        users.push(o.user_id.clone());
        variations.push(o.variation.clone());
        enabled.push(o.enabled);
        let expiry = match &o.expires_at {
            Some(s) => Some(
                parse_expiry(s, format!("overrides[{i}].expiresAt"))
                    .map_err(|e| Error::Validation(vec![e]))?,
            ),
            None => None,
        };
        expiries.push(expiry);
    }
    sqlx::query(
        "insert into flag_override (feature_flag_id, user_id, variation, enabled, expires_at)
         select $1, * from unnest($2::text[], $3::text[], $4::boolean[], $5::timestamptz[])",
    )
    .bind(id)
    .bind(users)
    .bind(variations)
    .bind(enabled)
    .bind(expiries)
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of a flag's history to append.
#[derive(Debug, Clone, Copy)]
pub(in crate::domain) struct Version<'a> {
    /// The flag's key.
    pub(in crate::domain) key: &'a str,
    /// The flag version.
    pub(in crate::domain) version: u64,
    /// What produced it (`create`, `update`, `delete`, `rollback`, `copy`, `override.set`...).
    pub(in crate::domain) action: &'a str,
    /// Who.
    pub(in crate::domain) actor: &'a str,
    /// The full definition; `None` for a deletion.
    pub(in crate::domain) definition: Option<&'a Flag>,
    /// For a rollback, the version it restored.
    pub(in crate::domain) rollback_of: Option<u64>,
    /// The author's comment on the change.
    pub(in crate::domain) comment: Option<&'a str>,
}

/// Appends a version to the flag's history.
pub(in crate::domain) async fn record_version(
    conn: &mut PgConnection,
    environment_id: i64,
    entry: Version<'_>,
) -> Result<()> {
    sqlx::query(
        "insert into flag_version
             (environment_id, flag_key, version, action, actor, definition, rollback_of, comment)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(environment_id)
    .bind(entry.key)
    .bind(version_i64(entry.version))
    .bind(entry.action)
    .bind(entry.actor)
    .bind(entry.definition.map(Json))
    .bind(entry.rollback_of.map(version_i64))
    .bind(entry.comment)
    .execute(conn)
    .await?;
    Ok(())
}
