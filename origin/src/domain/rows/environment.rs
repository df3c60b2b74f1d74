//! `environment` row writes, including the row lock that serialises an environment's mutations.

use sqlx::PgConnection;

use crate::error::Result;
use crate::store::environment::{Row, COLUMNS};
use crate::store::version_i64;

/// The environment `key`, locked until the end of the transaction: the lock that serialises
/// every mutation of one environment (and so keeps its snapshot versions gapless).
pub(in crate::domain) async fn lock(conn: &mut PgConnection, key: &str) -> Result<Option<Row>> {
    let sql = format!("select {COLUMNS} from environment where environment_key = $1 for update");
    Ok(sqlx::query_as(&sql).bind(key).fetch_optional(conn).await?)
}

/// Whether a new environment is protected unless its creator says otherwise: `production` is.
pub(in crate::domain) fn protected_by_default(key: &str) -> bool {
    key == "production"
}

/// Creates an environment (protected as `protected` says, by default as
/// [`protected_by_default`]); `None` if the key is taken. Its snapshot versions continue after any
/// snapshots a deleted namesake left in the outbox, so that edges and publish cursors, which
/// refuse to go backwards, accept the new environment's snapshots.
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    key: &str,
    name: &str,
    protected: Option<bool>,
) -> Result<Option<Row>> {
    let sql = format!(
        "insert into environment (environment_key, name, snapshot_version, protected)
         values ($1, $2, coalesce((select max(version) from snapshot where environment_key = $1), 0),
                 $3)
         on conflict (environment_key) do nothing
         returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(key)
        .bind(name)
        .bind(protected.unwrap_or_else(|| protected_by_default(key)))
        .fetch_optional(conn)
        .await?)
}

/// Records the environment's new snapshot version.
pub(in crate::domain) async fn set_snapshot_version(
    conn: &mut PgConnection,
    id: i64,
    version: u64,
) -> Result<()> {
    sqlx::query("update environment set snapshot_version = $2 where environment_id = $1")
        .bind(id)
        .bind(version_i64(version))
        .execute(conn)
        .await?;
    Ok(())
}

/// Renames an environment (its key never changes) and/or sets whether it is protected; `None`
/// keeps the stored value.
pub(in crate::domain) async fn change(
    conn: &mut PgConnection,
    id: i64,
    name: Option<&str>,
    protected: Option<bool>,
) -> Result<Row> {
    let sql = format!(
        "update environment set name = coalesce($2, name), protected = coalesce($3, protected)
         where environment_id = $1 returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(name)
        .bind(protected)
        .fetch_one(conn)
        .await?)
}

/// Deletes an environment and, by cascade, its client keys and flag history.
pub(in crate::domain) async fn delete(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("delete from environment where environment_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
