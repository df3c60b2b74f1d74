//! Bulk changes of flags (`POST /admin/flag-bulk`): one action on many flags of one environment,
//! or a copy of many flags into another, all or nothing in one mutation of the target
//! environment: one snapshot version for the lot, one history version and audit row per flag
//! that changed. Each flag goes through [`flags::save`], so it is validated, versioned, and
//! refused in a protected environment without confirmation exactly as a single change is.

use std::collections::{HashMap, HashSet};

use evaluator_core::model::Flag;

use super::flags::{self, Action};
use super::mutation::Mutation;
use super::{Writer, Written};
use crate::error::{Error, FieldError, Resource, Result};
use crate::store::{environment, flag};

/// Most flags one bulk action may name.
pub const MAX_FLAGS: usize = 500;

/// What to do to every flag named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    /// Turn on (`enabled: true`).
    Enable,
    /// Turn off (the kill switch).
    Disable,
    /// Add these tags (those a flag has already stay once, in place).
    AddTags(Vec<String>),
    /// Remove these tags.
    RemoveTags(Vec<String>),
    /// Copy the flags into this environment, as `POST /admin/flags/{key}/copy` does one.
    CopyTo(String),
}

impl BulkAction {
    fn history_action(&self) -> Action {
        match self {
            Self::Enable => Action::Bulk("bulk.enable"),
            Self::Disable => Action::Bulk("bulk.disable"),
            Self::AddTags(_) => Action::Bulk("bulk.addTags"),
            Self::RemoveTags(_) => Action::Bulk("bulk.removeTags"),
            Self::CopyTo(_) => Action::Copy,
        }
    }

    /// `flag` as the action leaves it (for everything but a copy).
    fn applied(&self, mut flag: Flag) -> Flag {
        match self {
            Self::Enable => flag.enabled = true,
            Self::Disable => flag.enabled = false,
            Self::AddTags(tags) => {
                for tag in tags {
                    if !flag.tags.contains(tag) {
                        flag.tags.push(tag.clone());
                    }
                }
            }
            Self::RemoveTags(tags) => flag.tags.retain(|t| !tags.contains(t)),
            Self::CopyTo(_) => {}
        }
        flag
    }
}

/// What a bulk action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOutcome {
    /// The environment changed (the copy's target for `copyTo`).
    pub environment: String,
    /// The flags that changed, in the order they were written.
    pub changed: Vec<String>,
    /// The flags the action left as they were (already on, already tagged...).
    pub unchanged: Vec<String>,
    /// The snapshot version the change produced; `None` when nothing changed (no version).
    pub snapshot_version: Option<u64>,
}

/// Applies `action` to the flags `keys` of `environment`, all or nothing. An unknown key is a
/// 422 naming it (`flagKeys[3]`); a flag the action leaves invalid is a 422 naming the flag
/// (`flags[checkout].tags`); nothing is written then.
pub async fn apply(
    w: &Writer<'_>,
    environment: &str,
    keys: &[String],
    action: &BulkAction,
) -> Result<BulkOutcome> {
    check_keys(keys)?;
    match action {
        BulkAction::CopyTo(to) => copy(w, environment, to, keys).await,
        _ => change(w, environment, keys, action).await,
    }
}

fn check_keys(keys: &[String]) -> Result<()> {
    if keys.is_empty() || keys.len() > MAX_FLAGS {
        return Err(Error::invalid(
            "flagKeys",
            format!("1-{MAX_FLAGS} flag keys, got {}", keys.len()),
        ));
    }
    let mut seen = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        if !seen.insert(key.as_str()) {
            return Err(Error::invalid(
                format!("flagKeys[{i}]"),
                format!("{key:?} appears twice"),
            ));
        }
    }
    Ok(())
}

/// The flags `keys` of the environment `environment_id`, each or a 422 naming the missing one.
async fn find_all(
    m: &mut Mutation,
    environment_id: i64,
    environment: &str,
    keys: &[String],
) -> Result<Vec<flag::Stored>> {
    let mut found = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        match flag::find(m.conn(), environment_id, key).await? {
            Some(stored) => found.push(stored),
            None => {
                return Err(Error::invalid(
                    format!("flagKeys[{i}]"),
                    format!("environment {environment:?} has no flag {key:?}"),
                ))
            }
        }
    }
    Ok(found)
}

/// A validation problem of one flag of the batch, located by its key.
fn of_flag(error: Error, key: &str) -> Error {
    match error {
        Error::Validation(details) => Error::Validation(
            details
                .into_iter()
                .map(|d| FieldError::new(format!("flags[{key}].{}", d.field), d.message))
                .collect(),
        ),
        other => other,
    }
}

async fn change(
    w: &Writer<'_>,
    environment: &str,
    keys: &[String],
    action: &BulkAction,
) -> Result<BulkOutcome> {
    let mut m = w.begin(environment).await?;
    let environment_id = m.environment_id();
    let stored = find_all(&mut m, environment_id, environment, keys).await?;
    let (mut changed, mut unchanged) = (Vec::new(), Vec::new());
    for previous in stored {
        let key = previous.flag.flag_key.clone();
        let new = action.applied(previous.flag.clone());
        if new == previous.flag {
            unchanged.push(key);
            continue;
        }
        flags::save(&mut m, Some(&previous), new, action.history_action())
            .await
            .map_err(|e| of_flag(e, &key))?;
        changed.push(key);
    }
    finish(w, m, environment, changed, unchanged).await
}

async fn copy(w: &Writer<'_>, from: &str, to: &str, keys: &[String]) -> Result<BulkOutcome> {
    if from == to {
        return Err(Error::invalid(
            "to",
            "source and target environment are the same",
        ));
    }
    let mut m = w.begin(to).await?;
    let source = environment::find(m.conn(), from)
        .await?
        .ok_or_else(|| Error::not_found(Resource::Environment, from))?;
    let sources = find_all(&mut m, source.environment_id, from, keys).await?;
    let target_id = m.environment_id();
    let mut changed = Vec::with_capacity(sources.len());
    for source in prerequisites_first(sources) {
        let key = source.flag.flag_key.clone();
        let target = flag::find(m.conn(), target_id, &key).await?;
        // overrides are per-user exceptions of one environment: the target keeps its own
        let copied = Flag {
            overrides: target
                .as_ref()
                .map(|t| t.flag.overrides.clone())
                .unwrap_or_default(),
            ..source.flag
        };
        flags::save(&mut m, target.as_ref(), copied, Action::Copy)
            .await
            .map_err(|e| of_flag(e, &key))?;
        changed.push(key);
    }
    finish(w, m, to, changed, Vec::new()).await
}

/// The flags ordered so that a flag comes after the flags of the batch it names as
/// prerequisites: each copy is validated against the target as it stands, so a prerequisite
/// copied in the same batch must be there first. (Validation refuses prerequisite cycles.)
fn prerequisites_first(flags: Vec<flag::Stored>) -> Vec<flag::Stored> {
    let position: HashMap<String, usize> = flags
        .iter()
        .enumerate()
        .map(|(i, s)| (s.flag.flag_key.clone(), i))
        .collect();
    let mut order = Vec::with_capacity(flags.len());
    let mut state = vec![0u8; flags.len()]; // 0 new, 1 visiting, 2 done
    fn visit(
        i: usize,
        flags: &[flag::Stored],
        position: &HashMap<String, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) {
        if state.get(i).copied() != Some(0) {
            return;
        }
        state[i] = 1;
        if let Some(stored) = flags.get(i) {
            for prerequisite in &stored.flag.prerequisites {
                if let Some(&j) = position.get(&prerequisite.flag_key) {
                    visit(j, flags, position, state, order);
                }
            }
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..flags.len() {
        visit(i, &flags, &position, &mut state, &mut order);
    }
    let mut slots: Vec<Option<flag::Stored>> = flags.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// Commits `m` when something changed; otherwise drops it (its transaction rolls back: no
/// version, no audit row, no snapshot).
async fn finish(
    w: &Writer<'_>,
    m: Mutation,
    environment: &str,
    changed: Vec<String>,
    unchanged: Vec<String>,
) -> Result<BulkOutcome> {
    let snapshot_version = if changed.is_empty() {
        None
    } else {
        let Written {
            snapshot_version, ..
        } = w.commit(m, ()).await?;
        Some(snapshot_version)
    };
    Ok(BulkOutcome {
        environment: environment.to_owned(),
        changed,
        unchanged,
        snapshot_version,
    })
}
