//! `client_key` row writes (`docs/architecture.md`, "Client keys"): only the key's SHA-256 is
//! stored.

use sqlx::PgConnection;

use crate::error::Result;
use crate::store::client_key::{Row, COLUMNS};

/// Stores a key's hash; `None` if the name is taken in this environment.
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    environment_id: i64,
    name: &str,
    sha256: &str,
    actor: &str,
) -> Result<Option<Row>> {
    let sql = format!(
        "insert into client_key (environment_id, name, sha256, created_by) values ($1, $2, $3, $4)
         on conflict (environment_id, name) do nothing returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(name)
        .bind(sha256)
        .bind(actor)
        .fetch_optional(conn)
        .await?)
}

/// Deletes (revokes) a key; the deleted row, if there was one.
pub(in crate::domain) async fn delete(
    conn: &mut PgConnection,
    environment_id: i64,
    name: &str,
) -> Result<Option<Row>> {
    let sql = format!(
        "delete from client_key where environment_id = $1 and name = $2 returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(name)
        .fetch_optional(conn)
        .await?)
}
