//! Client and server keys (`docs/architecture.md`, "Client keys"; `docs/sdk.md`): the
//! credentials of an environment. The plaintext key exists only in the answer to its creation;
//! the database and the snapshot hold its SHA-256.

use evaluator_core::model::{ClientKey, KeyKind};

use super::mutation::Change;
use super::rows::client_key as rows;
use super::{Writer, Written};
use crate::error::{Error, Resource, Result};
use crate::store::audit::EntityType;
use crate::store::client_key;
use crate::validation;

/// A key created by [`create`].
#[derive(Debug, Clone)]
pub struct Created {
    /// The stored row (the key's hash, never the key).
    pub row: client_key::Row,
    /// The plaintext key, `efk.<environment>.<32 hex>` (or `efs.` for a server key); shown once.
    pub key: String,
}

/// The resource and audit entity of each kind.
fn names(kind: KeyKind) -> (Resource, EntityType) {
    match kind {
        KeyKind::Client => (Resource::ClientKey, EntityType::ClientKey),
        KeyKind::Server => (Resource::ServerKey, EntityType::ServerKey),
    }
}

/// Creates key `name` of `kind` in `environment`; 409 when a key of either kind has that name
/// there.
pub async fn create(
    w: &Writer<'_>,
    environment: &str,
    name: &str,
    kind: KeyKind,
) -> Result<Written<Created>> {
    validation::key(name, "name")?;
    let (resource, entity) = names(kind);
    let mut m = w.begin(environment).await?;
    let key = client_key::generate(environment, kind).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a key");
        Error::Unavailable("no randomness available")
    })?;
    let sha256 = client_key::hash(&key);
    m.stage_client_key(ClientKey {
        name: name.to_owned(),
        sha256: sha256.clone(),
        kind,
    });
    let (environment_id, actor) = (m.environment_id(), m.actor().to_owned());
    let row = rows::insert(m.conn(), environment_id, name, kind, &sha256, &actor)
        .await?
        .ok_or_else(|| Error::already_exists(resource, format!("{environment}/{name}")))?;
    let recorded = row.to_json(environment);
    m.record(Change::created(entity, name, recorded, None));
    w.commit(m, Created { row, key }).await
}

/// Revokes (deletes) key `name` of `kind` in `environment`; edges refuse it once they have the
/// snapshot this publishes. A key of the other kind with that name is not found.
pub async fn revoke(
    w: &Writer<'_>,
    environment: &str,
    name: &str,
    kind: KeyKind,
) -> Result<Written<()>> {
    let (resource, entity) = names(kind);
    let mut m = w.begin(environment).await?;
    m.stage_client_key_removal(name);
    let environment_id = m.environment_id();
    let row = rows::delete(m.conn(), environment_id, name, kind)
        .await?
        .ok_or_else(|| Error::not_found(resource, format!("{environment}/{name}")))?;
    let recorded = row.to_json(environment);
    m.record(Change::deleted(entity, name, recorded, None));
    w.commit(m, ()).await
}
