//! `audit_log` rows, one per recorded change, written when the mutation commits.

use sqlx::types::Json;
use sqlx::PgConnection;

use crate::domain::mutation::Change;
use crate::error::Result;
use crate::store::version_i64;

/// Writes one audit row per change, in order, all labelled with the actor (token subject and id),
/// the author's comment and the snapshot version the mutation publishes.
pub(in crate::domain) async fn insert(
    conn: &mut PgConnection,
    environment_key: &str,
    actor: &str,
    token_id: Option<&str>,
    comment: Option<&str>,
    snapshot_version: u64,
    changes: &[Change],
) -> Result<()> {
    let mut entity_types = Vec::with_capacity(changes.len());
    let mut keys = Vec::with_capacity(changes.len());
    let mut actions = Vec::with_capacity(changes.len());
    let mut old_values = Vec::with_capacity(changes.len());
    let mut new_values = Vec::with_capacity(changes.len());
    let mut versions = Vec::with_capacity(changes.len());
    for change in changes {
        entity_types.push(change.entity.as_str());
        keys.push(change.key.as_str());
        actions.push(change.action);
        old_values.push(change.old.as_ref().map(Json));
        new_values.push(change.new.as_ref().map(Json));
        versions.push(change.entity_version.map(version_i64));
    }
    // one statement for any number of changes; `ordinality` keeps the ids in recording order
    sqlx::query(
        "insert into audit_log (environment_key, entity_type, entity_key, action, actor, token_id,
                                old_value, new_value, entity_version, snapshot_version, comment)
         select $1, c.entity_type, c.entity_key, c.action, $2, $10, c.old_value, c.new_value,
                c.entity_version, $3, $11
         from unnest($4::text[], $5::text[], $6::text[], $7::jsonb[], $8::jsonb[], $9::bigint[])
              with ordinality
              as c(entity_type, entity_key, action, old_value, new_value, entity_version, n)
         order by c.n",
    )
    .bind(environment_key)
    .bind(actor)
    .bind(version_i64(snapshot_version))
    .bind(entity_types)
    .bind(keys)
    .bind(actions)
    .bind(old_values)
    .bind(new_values)
    .bind(versions)
    .bind(token_id)
    .bind(comment)
    .execute(conn)
    .await?;
    Ok(())
}
