//! Per-user overrides of a flag (`flag_override` rows): adding, changing or removing one writes
//! the flag's next version, like any other flag change.

use evaluator_core::model::Override;

use super::flags::{self, Action};
use super::{Target, Writer, Written};
use crate::error::{Error, Resource, Result};

/// An override written by [`put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    /// The flag version the change produced.
    pub version: u64,
    /// `true` when the user had no override before.
    pub created: bool,
}

/// Adds or replaces the override of `new.user_id` on flag `key`. Validation problems of the
/// override name its fields as the body has them (`variation`, `expiresAt`).
pub async fn put(w: &Writer<'_>, target: Target<'_>, new: Override) -> Result<Written<Put>> {
    let mut m = w.begin(target.environment).await?;
    let stored = flags::for_change(&mut m, target).await?;
    let mut changed = stored.flag.clone();
    let user_id = new.user_id.clone();
    let created = match changed.overrides.iter_mut().find(|o| o.user_id == user_id) {
        Some(existing) => {
            *existing = new;
            false
        }
        None => {
            changed.overrides.push(new);
            changed.overrides.sort_by(|a, b| a.user_id.cmp(&b.user_id));
            true
        }
    };
    let index = saved_index(&stored.flag.overrides, &user_id, created);
    let saved = flags::save(&mut m, Some(&stored), changed, Action::OverrideSet)
        .await
        .map_err(|e| relative_to_override(e, index))?;
    w.commit(
        m,
        Put {
            version: saved.version,
            created,
        },
    )
    .await
}

/// Removes the override of `user_id` from flag `key`; 404 when the user has none. Returns the
/// flag version the removal produced.
pub async fn delete(w: &Writer<'_>, target: Target<'_>, user_id: &str) -> Result<Written<u64>> {
    let Target {
        environment, key, ..
    } = target;
    let mut m = w.begin(environment).await?;
    let stored = flags::for_change(&mut m, target).await?;
    let mut changed = stored.flag.clone();
    let before = changed.overrides.len();
    changed.overrides.retain(|o| o.user_id != user_id);
    if changed.overrides.len() == before {
        return Err(Error::not_found(
            Resource::Override,
            format!("{environment}/{key}/{user_id}"),
        ));
    }
    let saved = flags::save(&mut m, Some(&stored), changed, Action::OverrideDelete).await?;
    w.commit(m, saved.version).await
}

/// Where the override for `user_id` sits in the flag's (sorted) override list after the change.
fn saved_index(before: &[Override], user_id: &str, created: bool) -> usize {
    let mut ids: Vec<&str> = before.iter().map(|o| o.user_id.as_str()).collect();
    if created {
        ids.push(user_id);
        ids.sort_unstable();
    }
    ids.iter().position(|id| *id == user_id).unwrap_or(0)
}

/// The body of `PUT .../overrides/{userId}` is one override: report its fields as the client
/// wrote them (`variation`), not as the flag stores them (`overrides[3].variation`). Problems
/// elsewhere in the flag keep their flag paths.
fn relative_to_override(error: Error, index: usize) -> Error {
    let prefix = format!("overrides[{index}]");
    match error {
        Error::Validation(details) => Error::Validation(
            details
                .into_iter()
                .map(|mut d| {
                    match d.field.strip_prefix(&prefix) {
                        // the override as a whole (e.g. both variation and enabled given)
                        Some("") => d.field = "variation".to_owned(),
                        Some(rest) if rest.starts_with('.') => d.field = rest[1..].to_owned(),
                        _ => {}
                    }
                    d
                })
                .collect(),
        ),
        other => other,
    }
}
