//! The one-transaction shape of every admin mutation (contract "Snapshot storage at the
//! origin"): lock the environment row, change, audit, bump `snapshot_version`, append the new
//! snapshot to the outbox, notify, commit. Anything failing before the commit rolls all of it
//! back: no change, no version, no audit row, no snapshot.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::{Error, Resource, Result};
use crate::live::LiveSnapshots;
use crate::outbox;
use crate::store::audit::{self, EntityType};
use crate::store::{environment, rfc3339, version_i64, version_u64, view::View};

/// An open mutation of one environment, holding its row lock.
#[derive(Debug)]
pub struct Mutation {
    /// The open transaction (a field, so that it can be borrowed beside `env`).
    pub tx: Transaction<'static, Postgres>,
    /// The locked environment as it was before this mutation.
    pub env: environment::Row,
    /// The environment's configuration; changes are applied here as well as to the tables.
    pub view: View,
    /// Transaction time: every timestamp the mutation writes.
    pub now: DateTime<Utc>,
    /// JWT subject of the caller.
    pub actor: String,
    delete_environment: bool,
}

impl Mutation {
    /// Starts a mutation of the existing environment `environment_key`.
    pub async fn begin(pool: &PgPool, environment_key: &str, actor: &str) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let env = environment::lock(&mut tx, environment_key)
            .await?
            .ok_or_else(|| Error::not_found(Resource::Environment, environment_key))?;
        Self::start(tx, env, actor).await
    }

    /// Starts a mutation that creates environment `key`.
    pub async fn create_environment(
        pool: &PgPool,
        key: &str,
        name: &str,
        actor: &str,
    ) -> Result<Self> {
        let mut tx = pool.begin().await?;
        // the new row is invisible to others and locked by this transaction until it commits
        let env = environment::insert(&mut tx, key, name)
            .await?
            .ok_or_else(|| Error::AlreadyExists {
                resource: Resource::Environment,
                key: key.into(),
            })?;
        Self::start(tx, env, actor).await
    }

    async fn start(
        mut tx: Transaction<'static, Postgres>,
        env: environment::Row,
        actor: &str,
    ) -> Result<Self> {
        let now: DateTime<Utc> = sqlx::query_scalar("select now()")
            .fetch_one(&mut *tx)
            .await?;
        let view = View::load(&mut tx, env.environment_id).await?;
        Ok(Self {
            tx,
            env,
            view,
            now,
            actor: actor.to_owned(),
            delete_environment: false,
        })
    }

    /// The transaction, for the change's own statements.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The environment key.
    pub fn environment_key(&self) -> &str {
        &self.env.environment_key
    }

    /// The snapshot version this mutation will publish.
    pub fn snapshot_version(&self) -> u64 {
        version_u64(self.env.snapshot_version) + 1
    }

    /// The transaction time as RFC 3339.
    pub fn now_text(&self) -> String {
        rfc3339(self.now)
    }

    /// Records the change in the audit log (same transaction).
    pub async fn audit(
        &mut self,
        entity_type: EntityType,
        entity_key: &str,
        action: &'static str,
        old_value: Option<Value>,
        new_value: Option<Value>,
        entity_version: Option<u64>,
    ) -> Result<()> {
        let entry = audit::Entry {
            environment_key: self.env.environment_key.clone(),
            entity_type,
            entity_key: entity_key.to_owned(),
            action,
            actor: self.actor.clone(),
            old_value,
            new_value,
            entity_version,
            snapshot_version: self.snapshot_version(),
        };
        audit::insert(&mut self.tx, &entry).await
    }

    /// Deletes the environment row when the mutation commits, after its last (empty) snapshot
    /// is in the outbox.
    pub fn delete_environment_on_commit(&mut self) {
        self.view.clear();
        self.delete_environment = true;
    }

    /// Publishes the new snapshot and commits; returns the snapshot version. The evaluation
    /// cache is updated before returning, so this replica serves its own writes at once.
    pub async fn commit(mut self, live: &Arc<LiveSnapshots>) -> Result<u64> {
        let version = self.snapshot_version();
        environment::set_snapshot_version(
            &mut self.tx,
            self.env.environment_id,
            version_i64(version),
        )
        .await?;
        let snapshot =
            self.view
                .into_snapshot(&self.env.environment_key, version, rfc3339(self.now));
        outbox::append(&mut self.tx, &snapshot).await?;
        if self.delete_environment {
            environment::delete(&mut self.tx, self.env.environment_id).await?;
        }
        let _installing = live.installing(&snapshot);
        self.tx.commit().await?;
        live.install_snapshot(snapshot).await;
        Ok(version)
    }
}
