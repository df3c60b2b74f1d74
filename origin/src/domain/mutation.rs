//! The one-transaction shape of every write (`docs/architecture.md`, "Write path"): lock the
//! environment row, validate and apply each change, record it, then bump `snapshot_version`, write
//! the audit rows, append the new snapshot to the outbox ("Outbox"), notify, commit.
//!
//! The environment's configuration ([`View`]) is loaded once under the lock; changes are applied
//! to it as well as to the tables, and it becomes the new snapshot. It can only be changed through
//! the `stage_*` methods, which validate the result before the caller writes any row.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use evaluator_core::model::{ClientKey, Flag, Segment, Snapshot};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{rows, Actor};
use crate::error::{Error, Resource, Result};
use crate::live::LiveSnapshots;
use crate::outbox;
use crate::store::audit::EntityType;
use crate::store::{environment, rfc3339, version_u64, view::View};
use crate::validation;

/// One change of a mutation, as its audit row records it.
#[derive(Debug, Clone)]
pub(super) struct Change {
    /// Kind of entity changed.
    pub(super) entity: EntityType,
    /// Its key.
    pub(super) key: String,
    /// What happened (`create`, `update`, `delete`, `rollback`, `copy`, `override.set`...).
    pub(super) action: &'static str,
    /// The entity before; `None` when created.
    pub(super) old: Option<Value>,
    /// The entity after; `None` when deleted.
    pub(super) new: Option<Value>,
    /// The entity's version after the change, where it has versions.
    pub(super) entity_version: Option<u64>,
}

impl Change {
    fn of(
        entity: EntityType,
        key: String,
        action: &'static str,
        (old, new): (Option<Value>, Option<Value>),
        entity_version: Option<u64>,
    ) -> Self {
        Self {
            entity,
            key,
            action,
            old,
            new,
            entity_version,
        }
    }

    /// `entity` `key` created as `new` (at `version`, where it has versions).
    pub(super) fn created(
        entity: EntityType,
        key: impl Into<String>,
        new: Value,
        version: Option<u64>,
    ) -> Self {
        Self::of(entity, key.into(), "create", (None, Some(new)), version)
    }

    /// `entity` `key`, which was `old`, deleted (by the change at `version`, where it has
    /// versions).
    pub(super) fn deleted(
        entity: EntityType,
        key: impl Into<String>,
        old: Value,
        version: Option<u64>,
    ) -> Self {
        Self::of(entity, key.into(), "delete", (Some(old), None), version)
    }
}

/// An open mutation of one environment, holding its row lock.
#[derive(Debug)]
pub(super) struct Mutation {
    tx: Transaction<'static, Postgres>,
    /// The locked environment as it was before this mutation.
    env: environment::Row,
    view: View,
    /// Transaction time: every timestamp the mutation writes.
    now: DateTime<Utc>,
    /// JWT subject of the caller.
    actor: String,
    /// `jti` of the caller's token, if it has one.
    token_id: Option<String>,
    /// The author's comment, recorded with every change.
    comment: Option<String>,
    /// The environment the caller confirmed changes of `enabled` in (`X-Edgeflags-Confirm`).
    confirm: Option<String>,
    changes: Vec<Change>,
    delete_environment: bool,
}

impl Mutation {
    /// Starts a mutation of the existing environment `environment_key`.
    pub(super) async fn begin(
        pool: &PgPool,
        environment_key: &str,
        actor: Actor<'_>,
    ) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let env = rows::environment::lock(&mut tx, environment_key)
            .await?
            .ok_or_else(|| Error::not_found(Resource::Environment, environment_key))?;
        Self::start(tx, env, actor).await
    }

    /// Starts a mutation that creates environment `key`; the caller records the creation.
    pub(super) async fn create_environment(
        pool: &PgPool,
        key: &str,
        name: &str,
        protected: Option<bool>,
        actor: Actor<'_>,
    ) -> Result<Self> {
        let mut tx = pool.begin().await?;
        // the new row is invisible to others and locked by this transaction until it commits
        let env = rows::environment::insert(&mut tx, key, name, protected)
            .await?
            .ok_or_else(|| Error::already_exists(Resource::Environment, key))?;
        Self::start(tx, env, actor).await
    }

    async fn start(
        mut tx: Transaction<'static, Postgres>,
        env: environment::Row,
        actor: Actor<'_>,
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
            actor: actor.subject.to_owned(),
            token_id: actor.token_id.map(str::to_owned),
            comment: actor.comment.map(str::to_owned),
            confirm: actor.confirm.map(str::to_owned),
            changes: Vec::new(),
            delete_environment: false,
        })
    }

    /// The transaction, for the change's own statements.
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The locked environment as it was before this mutation.
    pub(super) fn env(&self) -> &environment::Row {
        &self.env
    }

    /// The environment's surrogate key.
    pub(super) fn environment_id(&self) -> i64 {
        self.env.environment_id
    }

    /// The environment key.
    pub(super) fn environment_key(&self) -> &str {
        &self.env.environment_key
    }

    /// The caller.
    pub(super) fn actor(&self) -> &str {
        &self.actor
    }

    /// Refuses a change of a flag's `enabled` from `was` to `is` in a protected environment
    /// unless the caller confirmed it by naming the environment (`X-Edgeflags-Confirm`): 428,
    /// and the whole mutation rolls back.
    pub(super) fn check_enabled_change(&self, was: bool, is: bool) -> Result<()> {
        if was == is
            || !self.env.protected
            || self.confirm.as_deref() == Some(self.environment_key())
        {
            return Ok(());
        }
        Err(Error::ConfirmationRequired {
            environment: self.env.environment_key.clone(),
        })
    }

    /// The author's comment on this change, if any.
    pub(super) fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The snapshot version this mutation will publish.
    pub(super) fn snapshot_version(&self) -> u64 {
        version_u64(self.env.snapshot_version) + 1
    }

    /// The transaction time as RFC 3339.
    pub(super) fn now_text(&self) -> String {
        rfc3339(self.now)
    }

    /// Puts `flag` into the environment if it is valid there (paths relative to the flag:
    /// `targetingRules.rules[2].clauses[0].operator`).
    pub(super) fn stage_flag(&mut self, flag: &Flag) -> Result<()> {
        validation::flag(flag, &self.view)?;
        self.view.put_flag(flag.clone());
        Ok(())
    }

    /// Removes flag `key`, refusing if the rest of the environment still needs it (a
    /// prerequisite of another flag).
    pub(super) fn stage_flag_removal(&mut self, key: &str) -> Result<()> {
        self.view.remove_flag(key);
        validation::remaining(&self.view)
    }

    /// Puts `segment` into the environment if it is valid there.
    pub(super) fn stage_segment(&mut self, segment: &Segment) -> Result<()> {
        validation::segment(segment, &self.view)?;
        self.view.put_segment(segment.clone());
        Ok(())
    }

    /// Removes segment `key`, refusing while a flag or another segment references it.
    pub(super) fn stage_segment_removal(&mut self, key: &str) -> Result<()> {
        self.view.remove_segment(key);
        validation::remaining(&self.view)
    }

    /// Puts the contents of a new (empty) environment into it at once, validating the result in
    /// one pass (paths name the entity by key: `flags[checkout].prerequisites[0].flagKey`).
    pub(super) fn stage_contents(&mut self, flags: &[Flag], segments: &[Segment]) -> Result<()> {
        debug_assert!(self.view.flags().is_empty() && self.view.segments().is_empty());
        for segment in segments {
            self.view.put_segment(segment.clone());
        }
        for flag in flags {
            self.view.put_flag(flag.clone());
        }
        // the view replaces a key it already holds: fewer entries than given means a key twice
        if self.view.segments().len() != segments.len() {
            return Err(Error::invalid("segments", "a segment key appears twice"));
        }
        if self.view.flags().len() != flags.len() {
            return Err(Error::invalid("flags", "a flag key appears twice"));
        }
        validation::environment(&self.view)
    }

    /// Adds (or replaces) a client key; names are checked before the mutation starts.
    pub(super) fn stage_client_key(&mut self, key: ClientKey) {
        self.view.put_client_key(key);
    }

    /// Removes a client key.
    pub(super) fn stage_client_key_removal(&mut self, name: &str) {
        self.view.remove_client_key(name);
    }

    /// Deletes the environment row when the mutation commits, after its last (empty) snapshot
    /// is in the outbox, so edges stop serving it.
    pub(super) fn stage_environment_deletion(&mut self) {
        self.view.clear();
        self.delete_environment = true;
    }

    /// Records a change; commit writes its audit row.
    pub(super) fn record(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Bumps the snapshot version, writes the recorded changes' audit rows, publishes the new
    /// snapshot and commits; returns the snapshot version.
    pub(super) async fn commit(mut self, live: &Arc<LiveSnapshots>) -> Result<u64> {
        // every operation records what it wrote; a mutation without a change would publish a
        // snapshot nobody can account for
        debug_assert!(!self.changes.is_empty(), "a mutation committed no change");
        let version = self.snapshot_version();
        rows::environment::set_snapshot_version(&mut self.tx, self.env.environment_id, version)
            .await?;
        rows::audit::insert(
            &mut self.tx,
            &self.env.environment_key,
            &self.actor,
            self.token_id.as_deref(),
            self.comment.as_deref(),
            version,
            &self.changes,
        )
        .await?;
        let snapshot =
            self.view
                .into_snapshot(&self.env.environment_key, version, rfc3339(self.now));
        let deleted = self.delete_environment.then_some(self.env.environment_id);
        publish(self.tx, live, snapshot, deleted).await?;
        Ok(version)
    }
}

/// The outbox step of every commit: appends `snapshot` to the outbox (announced when the
/// transaction commits), deletes the environment row when the mutation deletes the environment,
/// commits, and installs the snapshot in this replica's evaluation cache.
async fn publish(
    mut tx: Transaction<'static, Postgres>,
    live: &Arc<LiveSnapshots>,
    snapshot: Snapshot,
    delete_environment: Option<i64>,
) -> Result<()> {
    let body = outbox::append(&mut tx, &snapshot).await?;
    if let Some(id) = delete_environment {
        rows::environment::delete(&mut tx, id).await?;
    }
    // Taken before COMMIT: the listener may announce this version before this task resumes.
    let _installing = live.installing(&snapshot);
    tx.commit().await?;
    live.install_snapshot(snapshot, body).await;
    Ok(())
}
