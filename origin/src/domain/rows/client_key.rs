//! `client_key` row writes (`docs/architecture.md`, "Client keys"): only the key's SHA-256 is
//! stored.

use evaluator_core::model::KeyKind;
use sqlx::PgConnection;

use crate::error::Result;
use crate::store::client_key::{kind_name, Row, COLUMNS};

/// Stores a key's hash; `None` if the name is taken in this environment (by a key of either
/// kind: names are one name space, as the snapshot lists both kinds together).
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    environment_id: i64,
    name: &str,
    kind: KeyKind,
    sha256: &str,
    actor: &str,
) -> Result<Option<Row>> {
    let sql = format!(
        "insert into client_key (environment_id, name, kind, sha256, created_by)
         values ($1, $2, $3, $4, $5)
         on conflict (environment_id, name) do nothing returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(name)
        .bind(kind_name(kind))
        .bind(sha256)
        .bind(actor)
        .fetch_optional(conn)
        .await?)
}

/// Deletes (revokes) the key of `kind` named `name`; the deleted row, if there was one.
pub(in crate::domain) async fn delete(
    conn: &mut PgConnection,
    environment_id: i64,
    name: &str,
    kind: KeyKind,
) -> Result<Option<Row>> {
    let sql = format!(
        "delete from client_key where environment_id = $1 and name = $2 and kind = $3
         returning {COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(name)
        .bind(kind_name(kind))
        .fetch_optional(conn)
        .await?)
}
