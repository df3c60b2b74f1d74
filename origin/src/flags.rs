//! Writing flag versions: the steps every flag change shares (create, update, rollback, copy,
//! override changes), inside a [`Mutation`].

use evaluator_core::model::Flag;
use serde_json::Value;

use crate::error::Result;
use crate::mutation::Mutation;
use crate::store::audit::EntityType;
use crate::store::flag::{self, Stored};
use crate::validation;

/// Why a flag version was written; recorded in its history and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
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
        }
    }
}

fn to_json(flag: &Flag) -> Result<Value> {
    Ok(serde_json::to_value(flag)?)
}

/// Validates `flag` against the environment and stores it as the next version of its key,
/// replacing `previous` (if any). Server-managed fields (`version`, `environment`, `createdAt`,
/// `updatedAt`) are set here, whatever the client sent. Returns the stored flag.
pub async fn save(
    m: &mut Mutation,
    previous: Option<&Stored>,
    mut flag: Flag,
    action: Action,
) -> Result<Flag> {
    let environment_id = m.env.environment_id;
    let version = flag::next_version(m.conn(), environment_id, &flag.flag_key).await?;
    flag.version = version;
    flag.environment = Some(m.environment_key().to_owned());
    flag.created_at = previous
        .and_then(|p| p.flag.created_at.clone())
        .or_else(|| Some(m.now_text()));
    flag.updated_at = Some(m.now_text());
    validation::flag(&flag, &m.view)?;

    let actor = m.actor.clone();
    let id = match previous {
        Some(p) => {
            flag::update(m.conn(), p.feature_flag_id, &flag, &actor).await?;
            p.feature_flag_id
        }
        None => flag::insert(m.conn(), environment_id, &flag, &actor).await?,
    };
    if previous.is_none_or(|p| p.flag.overrides != flag.overrides) {
        flag::replace_overrides(m.conn(), id, &flag.overrides).await?;
    }
    let rollback_of = match action {
        Action::Rollback(of) => Some(of),
        _ => None,
    };
    flag::record_version(
        m.conn(),
        environment_id,
        &flag.flag_key,
        version,
        action.as_str(),
        &actor,
        Some(&flag),
        rollback_of,
    )
    .await?;
    let old = previous.map(|p| to_json(&p.flag)).transpose()?;
    let new = to_json(&flag)?;
    m.audit(
        EntityType::Flag,
        &flag.flag_key,
        action.as_str(),
        old,
        Some(new),
        Some(version),
    )
    .await?;
    m.view.put_flag(flag.clone());
    Ok(flag)
}

/// Deletes `stored`, refusing if other flags still name it as a prerequisite. The deletion is
/// a version of its own (without definition) so the history shows it. Returns that version.
pub async fn delete(m: &mut Mutation, stored: &Stored) -> Result<u64> {
    let key = stored.flag.flag_key.clone();
    m.view.remove_flag(&key);
    validation::remaining(&m.view)?;
    let environment_id = m.env.environment_id;
    let version = flag::next_version(m.conn(), environment_id, &key).await?;
    let actor = m.actor.clone();
    flag::delete(m.conn(), stored.feature_flag_id).await?;
    flag::record_version(
        m.conn(),
        environment_id,
        &key,
        version,
        "delete",
        &actor,
        None,
        None,
    )
    .await?;
    let old = to_json(&stored.flag)?;
    m.audit(
        EntityType::Flag,
        &key,
        "delete",
        Some(old),
        None,
        Some(version),
    )
    .await?;
    Ok(version)
}
