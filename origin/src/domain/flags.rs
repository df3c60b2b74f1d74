//! Flag changes: create, update (a partial update merged into the stored definition), delete,
//! rollback to an earlier version and copy from another environment. Each one writes the flag's
//! next version: the `feature_flag` row, its overrides, its `flag_version` history row and its
//! audit row, in one mutation. Override changes ([`super::overrides`]) are flag versions too.

use evaluator_core::model::Flag;
use serde_json::{Map, Value};

use super::mutation::{Change, Mutation};
use super::rows::flag as rows;
use super::{Precondition, Target, Writer, Written};
use crate::document;
use crate::error::{Error, Resource, Result};
use crate::store::audit::EntityType;
use crate::store::{environment, flag};

/// Why a flag version was written; recorded in its history and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `POST /admin/flags`.
    Create,
    /// `PUT /admin/flags/{key}`.
    Update,
    /// `POST /admin/flags/{key}/rollback`, restoring the given version.
    Rollback(u64),
    /// `POST /admin/flags/{key}/copy` into this environment.
    Copy,
    /// An override was added or changed.
    OverrideSet,
    /// An override was removed.
    OverrideDelete,
    /// `POST /admin/flag-bulk` (`bulk.enable`, `bulk.addTags`...).
    Bulk(&'static str),
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Rollback(_) => "rollback",
            Self::Copy => "copy",
            Self::OverrideSet => "override.set",
            Self::OverrideDelete => "override.delete",
            Self::Bulk(action) => action,
        }
    }
}

/// 404 for flag `key` of `environment`.
pub fn not_found(environment: &str, key: &str) -> Error {
    Error::not_found(Resource::Flag, format!("{environment}/{key}"))
}

/// A flag copied into another environment, and whether the copy created it there.
#[derive(Debug, Clone, PartialEq)]
pub struct Copied {
    /// The flag as stored in the target environment.
    pub flag: Flag,
    /// `true` when the target environment did not have the flag before.
    pub created: bool,
}

/// Creates flag `new` in `environment` at its next version (1, or one past a deleted
/// namesake's history).
pub async fn create(w: &Writer<'_>, environment: &str, new: Flag) -> Result<Written<Flag>> {
    let mut m = w.begin(environment).await?;
    let environment_id = m.environment_id();
    if flag::find(m.conn(), environment_id, &new.flag_key)
        .await?
        .is_some()
    {
        let key = format!("{environment}/{}", new.flag_key);
        return Err(Error::already_exists(Resource::Flag, key));
    }
    let saved = save(&mut m, None, new, Action::Create).await?;
    w.commit(m, saved).await
}

/// Applies a partial update to flag `key`: every top-level member of `patch` replaces the stored
/// one (see [`document::merge_top_level`]); the body may repeat the key but not rename it.
pub async fn update(
    w: &Writer<'_>,
    target: Target<'_>,
    patch: Map<String, Value>,
) -> Result<Written<Flag>> {
    document::reject_rename(&patch, "flagKey", target.key, "flag")?;
    let mut m = w.begin(target.environment).await?;
    let stored = for_change(&mut m, target).await?;
    let merged = document::patched(serde_json::to_value(&stored.flag)?, patch, "flag")?;
    let changed: Flag = document::from_value(Value::Object(merged))?;
    let saved = save(&mut m, Some(&stored), changed, Action::Update).await?;
    w.commit(m, saved).await
}

/// Deletes flag `key`, refusing while other flags name it as a prerequisite. Returns the version
/// of the deletion.
pub async fn delete(w: &Writer<'_>, target: Target<'_>) -> Result<Written<u64>> {
    let mut m = w.begin(target.environment).await?;
    let stored = for_change(&mut m, target).await?;
    let version = remove(&mut m, &stored).await?;
    w.commit(m, version).await
}

/// Restores version `version` of flag `key` from its history as the flag's next version; works
/// for a deleted flag too (then only with `If-Match` naming the deletion's version, or none).
pub async fn rollback(w: &Writer<'_>, target: Target<'_>, version: u64) -> Result<Written<Flag>> {
    let Target {
        environment,
        key,
        precondition,
    } = target;
    let mut m = w.begin(environment).await?;
    let environment_id = m.environment_id();
    let old = flag::version(m.conn(), environment_id, key, version)
        .await?
        .ok_or_else(|| {
            Error::not_found(
                Resource::FlagVersion,
                format!("{environment}/{key}@{version}"),
            )
        })?;
    let Some(definition) = old.definition else {
        return Err(Error::invalid(
            "version",
            format!(
                "version {version} is the flag's deletion; roll back to a version with a definition"
            ),
        ));
    };
    let stored = flag::find(m.conn(), environment_id, key).await?;
    if stored.is_none() && precondition == Precondition::Any {
        return Err(not_found(environment, key));
    }
    precondition.check(current_version(&mut m, key, stored.as_ref()).await?)?;
    let saved = save(
        &mut m,
        stored.as_ref(),
        definition.0,
        Action::Rollback(version),
    )
    .await?;
    w.commit(m, saved).await
}

/// Copies flag `key` from environment `from` into `to` (creating or replacing it there); the
/// target keeps its own overrides. The precondition applies to the target's flag.
pub async fn copy(
    w: &Writer<'_>,
    key: &str,
    from: &str,
    to: &str,
    precondition: Precondition,
) -> Result<Written<Copied>> {
    let mut m = w.begin(to).await?;
    let source_env = environment::find(m.conn(), from)
        .await?
        .ok_or_else(|| Error::not_found(Resource::Environment, from))?;
    let source = flag::find(m.conn(), source_env.environment_id, key)
        .await?
        .ok_or_else(|| not_found(from, key))?;
    let environment_id = m.environment_id();
    let target = flag::find(m.conn(), environment_id, key).await?;
    if target.is_none() && precondition == Precondition::Any {
        return Err(not_found(to, key));
    }
    precondition.check(current_version(&mut m, key, target.as_ref()).await?)?;
    // overrides are per-user exceptions of one environment: the target keeps its own
    let copied = Flag {
        overrides: target
            .as_ref()
            .map(|t| t.flag.overrides.clone())
            .unwrap_or_default(),
        ..source.flag
    };
    let saved = save(&mut m, target.as_ref(), copied, Action::Copy).await?;
    let created = target.is_none();
    w.commit(
        m,
        Copied {
            flag: saved,
            created,
        },
    )
    .await
}

/// The flag a mutation changes, read inside its transaction (the environment row is locked):
/// 404 when absent, 409 when the precondition names another version.
pub(super) async fn for_change(m: &mut Mutation, target: Target<'_>) -> Result<flag::Stored> {
    let environment_id = m.environment_id();
    let stored = flag::find(m.conn(), environment_id, target.key)
        .await?
        .ok_or_else(|| not_found(target.environment, target.key))?;
    target.precondition.check(stored.flag.version)?;
    Ok(stored)
}

/// The version a change to flag `key` must match: the stored flag's, or for a deleted flag the
/// version of its deletion.
async fn current_version(
    m: &mut Mutation,
    key: &str,
    stored: Option<&flag::Stored>,
) -> Result<u64> {
    match stored {
        Some(s) => Ok(s.flag.version),
        None => {
            let environment_id = m.environment_id();
            Ok(flag::next_version(m.conn(), environment_id, key).await? - 1)
        }
    }
}

fn to_json(flag: &Flag) -> Result<Value> {
    Ok(serde_json::to_value(flag)?)
}

/// Stores `flag` as the next version of its key, replacing `previous` (if any), once it is valid
/// in the environment. Server-managed fields (`version`, `environment`, `createdAt`,
/// `updatedAt`) are set here, whatever the client sent. Returns the stored flag.
pub(super) async fn save(
    m: &mut Mutation,
    previous: Option<&flag::Stored>,
    mut flag: Flag,
    action: Action,
) -> Result<Flag> {
    let environment_id = m.environment_id();
    let version = flag::next_version(m.conn(), environment_id, &flag.flag_key).await?;
    flag.version = version;
    flag.environment = Some(m.environment_key().to_owned());
    flag.created_at = previous
        .and_then(|p| p.flag.created_at.clone())
        .or_else(|| Some(m.now_text()));
    flag.updated_at = Some(m.now_text());
    if let Some(p) = previous {
        // a flag that appears (create, copy, restore) is not a toggle: only an existing flag's
        // kill switch needs the confirmation
        m.check_enabled_change(p.flag.enabled, flag.enabled)?;
    }
    m.stage_flag(&flag)?;

    let actor = m.actor().to_owned();
    let comment = m.comment().map(str::to_owned);
    let id = match previous {
        Some(p) => {
            rows::update(m.conn(), p.feature_flag_id, &flag, &actor).await?;
            p.feature_flag_id
        }
        None => rows::insert(m.conn(), environment_id, &flag, &actor).await?,
    };
    if previous.is_none_or(|p| p.flag.overrides != flag.overrides) {
        rows::replace_overrides(m.conn(), id, &flag.overrides).await?;
    }
    let rollback_of = match action {
        Action::Rollback(of) => Some(of),
        _ => None,
    };
    rows::record_version(
        m.conn(),
        environment_id,
        rows::Version {
            key: &flag.flag_key,
            version,
            action: action.as_str(),
            actor: &actor,
            definition: Some(&flag),
            rollback_of,
            comment: comment.as_deref(),
        },
    )
    .await?;
    m.record(Change {
        entity: EntityType::Flag,
        key: flag.flag_key.clone(),
        action: action.as_str(),
        old: previous.map(|p| to_json(&p.flag)).transpose()?,
        new: Some(to_json(&flag)?),
        entity_version: Some(version),
    });
    Ok(flag)
}

/// Deletes `stored` once the rest of the environment no longer needs it. The deletion is a
/// version of its own (without definition) so the history shows it. Returns that version.
async fn remove(m: &mut Mutation, stored: &flag::Stored) -> Result<u64> {
    let key = stored.flag.flag_key.as_str();
    m.stage_flag_removal(key)?;
    let environment_id = m.environment_id();
    let version = flag::next_version(m.conn(), environment_id, key).await?;
    let actor = m.actor().to_owned();
    let comment = m.comment().map(str::to_owned);
    rows::delete(m.conn(), stored.feature_flag_id).await?;
    rows::record_version(
        m.conn(),
        environment_id,
        rows::Version {
            key,
            version,
            action: "delete",
            actor: &actor,
            definition: None,
            rollback_of: None,
            comment: comment.as_deref(),
        },
    )
    .await?;
    let recorded = to_json(&stored.flag)?;
    m.record(Change::deleted(
        EntityType::Flag,
        key,
        recorded,
        Some(version),
    ));
    Ok(version)
}

/// Stores `flags` of a new environment at version 1 (its history is empty), each validated with
/// the rest by [`Mutation::stage_contents`] beforehand.
pub(super) async fn insert_all(m: &mut Mutation, flags: Vec<Flag>) -> Result<()> {
    let environment_id = m.environment_id();
    let actor = m.actor().to_owned();
    let comment = m.comment().map(str::to_owned);
    for flag in flags {
        let id = rows::insert(m.conn(), environment_id, &flag, &actor).await?;
        rows::replace_overrides(m.conn(), id, &flag.overrides).await?;
        rows::record_version(
            m.conn(),
            environment_id,
            rows::Version {
                key: &flag.flag_key,
                version: flag.version,
                action: Action::Create.as_str(),
                actor: &actor,
                definition: Some(&flag),
                rollback_of: None,
                comment: comment.as_deref(),
            },
        )
        .await?;
        let new = to_json(&flag)?;
        m.record(Change::created(
            EntityType::Flag,
            &flag.flag_key,
            new,
            Some(flag.version),
        ));
    }
    Ok(())
}
