//! `segment` row writes.

use evaluator_core::model::Segment;
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::error::Result;
use crate::store::segment::{Stored, COLUMNS};
use crate::store::version_i64;

/// Inserts a segment at version 1.
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    environment_id: i64,
    segment: &Segment,
    actor: &str,
) -> Result<Stored> {
    let sql = format!(
        "insert into segment (environment_id, segment_key, version, definition, created_by, updated_by)
         values ($1, $2, 1, $3, $4, $4) returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(&segment.segment_key)
        .bind(Json(segment))
        .bind(actor)
        .fetch_one(conn)
        .await?)
}

/// Replaces a segment's definition at `version`.
pub(in crate::domain) async fn update(
    conn: &mut PgConnection,
    id: i64,
    segment: &Segment,
    version: u64,
    actor: &str,
) -> Result<Stored> {
    let sql = format!(
        "update segment set definition = $2, version = $3, updated_by = $4
         where segment_id = $1 returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(Json(segment))
        .bind(version_i64(version))
        .bind(actor)
        .fetch_one(conn)
        .await?)
}

/// Deletes a segment.
pub(in crate::domain) async fn delete(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("delete from segment where segment_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
