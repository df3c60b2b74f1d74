//! Client keys (`docs/architecture.md`, "Client keys"): evaluation credentials of an environment.
//! The plaintext key exists only in the answer to its creation; the database and the snapshot
//! hold its SHA-256.

use evaluator_core::model::ClientKey;

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
    /// The plaintext key, `efk.<environment>.<32 hex>`; shown once.
    pub key: String,
}

/// Creates client key `name` of `environment`; 409 when the name is taken there.
pub async fn create(w: &Writer<'_>, environment: &str, name: &str) -> Result<Written<Created>> {
    validation::key(name, "name")?;
    let mut m = w.begin(environment).await?;
    let key = client_key::generate(environment).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a client key");
        Error::Unavailable("no randomness available")
    })?;
    let sha256 = client_key::hash(&key);
    m.stage_client_key(ClientKey {
        name: name.to_owned(),
        sha256: sha256.clone(),
    });
    let (environment_id, actor) = (m.environment_id(), m.actor().to_owned());
    let row = rows::insert(m.conn(), environment_id, name, &sha256, &actor)
        .await?
        .ok_or_else(|| {
            Error::already_exists(Resource::ClientKey, format!("{environment}/{name}"))
        })?;
    let recorded = row.to_json(environment);
    m.record(Change::created(EntityType::ClientKey, name, recorded, None));
    w.commit(m, Created { row, key }).await
}

/// Revokes (deletes) client key `name` of `environment`; edges refuse it once they have the
/// snapshot this publishes.
pub async fn revoke(w: &Writer<'_>, environment: &str, name: &str) -> Result<Written<()>> {
    let mut m = w.begin(environment).await?;
    m.stage_client_key_removal(name);
    let environment_id = m.environment_id();
    let row = rows::delete(m.conn(), environment_id, name)
        .await?
        .ok_or_else(|| Error::not_found(Resource::ClientKey, format!("{environment}/{name}")))?;
    let recorded = row.to_json(environment);
    m.record(Change::deleted(EntityType::ClientKey, name, recorded, None));
    w.commit(m, ()).await
}
