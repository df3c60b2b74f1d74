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

/// Creates an environment; `None` if the key is taken. Its snapshot versions continue after any
/// snapshots a deleted namesake left in the outbox, so that edges and publish cursors, which
/// refuse to go backwards, accept the new environment's snapshots.
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    key: &str,
    name: &str,
) -> Result<Option<Row>> {
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

/// Renames an environment (its key never changes).
pub(in crate::domain) async fn rename(conn: &mut PgConnection, id: i64, name: &str) -> Result<Row> {
    let sql =
        format!("update environment set name = $2 where environment_id = $1 returning {COLUMNS}");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .bind(name)
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
