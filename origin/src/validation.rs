//! Validation of definitions against the environment they are to be stored in, by
//! evaluator-core's rules (the edge runs the same ones), before anything is written.

use std::collections::HashSet;

use evaluator_core::model::{Flag, Segment, Snapshot};
use evaluator_core::{
    validate_flag, validate_flag_key, validate_segment, validate_snapshot, ValidationError,
};

use crate::error::{Error, FieldError, Result};
use crate::store::flag::parse_expiry;
use crate::store::view::View;

fn field_errors(errors: Vec<ValidationError>, prefix: &str) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|e| FieldError::new(format!("{prefix}{}", e.path), e.message))
        .collect()
}

fn into_result(details: Vec<FieldError>) -> Result<()> {
    if details.is_empty() {
        Ok(())
    } else {
        Err(Error::Validation(details))
    }
}

/// A key (environment, client key name) of the flag-key syntax; `field` names it.
pub fn key(value: &str, field: &str) -> Result<()> {
    validate_flag_key(value).map_err(|e| Error::invalid(field, e.message))
}

/// `flag` in the context of the environment's segments and other flags. Paths are relative to
/// the flag (`targetingRules.rules[2].clauses[0].operator`).
pub fn flag(flag: &Flag, view: &View) -> Result<()> {
    let mut details = field_errors(validate_flag(flag, view.segments(), view.flags()), "");
    tag_problems(&flag.tags, "", &mut details);
    storage_problems(flag, "", &mut details);
    if details.is_empty() && uses_regexes(flag.targeting_rules.as_ref().map(|t| &t.rules[..])) {
        let flags = replaced(view.flags(), flag, |f| f.flag_key == flag.flag_key);
        details.extend(regex_budget(
            flags,
            view.segments().to_vec(),
            "targetingRules",
        ));
    }
    into_result(details)
}

/// `items` with the one `is_old` picks (if any) replaced by `new`, last.
fn replaced<T: Clone>(items: &[T], new: &T, is_old: impl Fn(&T) -> bool) -> Vec<T> {
    items
        .iter()
        .filter(|item| !is_old(item))
        .chain(std::iter::once(new))
        .cloned()
        .collect()
}

/// Whether any clause of `rules` matches a regular expression.
fn uses_regexes<'r, R: 'r + HasClauses>(rules: Option<&'r [R]>) -> bool {
    rules
        .into_iter()
        .flatten()
        .flat_map(HasClauses::clauses)
        .any(|clause| clause.operator == "matches")
}

/// Rules made of clauses (a flag's and a segment's).
trait HasClauses {
    fn clauses(&self) -> &[evaluator_core::model::Clause];
}

impl HasClauses for evaluator_core::model::Rule {
    fn clauses(&self) -> &[evaluator_core::model::Clause] {
        &self.clauses
    }
}

impl HasClauses for evaluator_core::model::SegmentRule {
    fn clauses(&self) -> &[evaluator_core::model::Clause] {
        &self.clauses
    }
}

/// The snapshot-wide regular-expression budgets (distinct patterns, automaton states), which a
/// definition checked alone cannot see: the environment as it would be after the change,
/// validated whole, its budget problem reported at `field` of the change. Only for changes
/// that use regular expressions, since it compiles every pattern of the environment (found by
/// the `admin_decode` fuzz target's audit: a change within its own budget could take the
/// environment over, and every edge would then refuse its snapshots).
fn regex_budget(flags: Vec<Flag>, segments: Vec<Segment>, field: &str) -> Vec<FieldError> {
    let snapshot = Snapshot {
        flags,
        segments,
        ..Snapshot::default()
    };
    validate_snapshot(&snapshot)
        .into_iter()
        .filter(|e| e.message.starts_with("the snapshot's"))
        .take(1)
        .map(|e| FieldError::new(field, e.message))
        .collect()
}

/// What the database needs of a flag beyond the model: one override row per user, a timestamp it
/// can store (evaluator-core checks the rest, e.g. exactly one of variation and enabled). Paths
/// start with `prefix`.
fn storage_problems(flag: &Flag, prefix: &str, details: &mut Vec<FieldError>) {
    let mut users = HashSet::new();
    for (i, o) in flag.overrides.iter().enumerate() {
        if let Some(problem) = user_id_problem(&o.user_id) {
            details.push(FieldError::new(
                format!("{prefix}overrides[{i}].userId"),
                problem,
            ));
        } else if !users.insert(o.user_id.as_str()) {
            details.push(FieldError::new(
                format!("{prefix}overrides[{i}].userId"),
                format!("duplicate override for user {:?}", o.user_id),
            ));
        }
        if let Some(expiry) = &o.expires_at {
            let field = format!("{prefix}overrides[{i}].expiresAt");
            if let Err(e) = parse_expiry(expiry, field.clone()) {
                if !details.iter().any(|d| d.field == field) {
                    details.push(e);
                }
            }
        }
    }
}

/// Most tags a flag may carry: enough to label owner, area and lifecycle, few enough that the
/// flag list stays readable and the tag index small.
pub const MAX_TAGS: usize = 20;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// Whether `c` may appear in a tag: letters, digits and `_ . : -` (so `team:checkout` and
/// `v2.1` work, and a tag never needs escaping in a URL or a UI).
fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// Why `tag` is not a valid tag, if it is not.
pub fn tag_problem(tag: &str) -> Option<String> {
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS {
        Some(format!(
            "must be 1-{MAX_TAG_CHARS} characters, got {}",
            tag.chars().count()
        ))
    } else if !tag.chars().all(tag_char) {
        Some("may contain only letters, digits, '_', '.', ':' and '-'".to_owned())
    } else {
        None
    }
}

/// The flag's `tags` (the origin's rule; evaluation never reads them): at most [`MAX_TAGS`],
/// each valid and unique. Paths start with `prefix` (`tags[3]`).
fn tag_problems(tags: &[String], prefix: &str, details: &mut Vec<FieldError>) {
    if tags.len() > MAX_TAGS {
        details.push(FieldError::new(
            format!("{prefix}tags"),
            format!("at most {MAX_TAGS} tags, got {}", tags.len()),
        ));
    }
    let mut seen = HashSet::new();
    for (i, tag) in tags.iter().enumerate() {
        let field = format!("{prefix}tags[{i}]");
        if let Some(problem) = tag_problem(tag) {
            details.push(FieldError::new(field, problem));
        } else if !seen.insert(tag.as_str()) {
            details.push(FieldError::new(field, format!("duplicate tag {tag:?}")));
        }
    }
}

/// Longest override user id, in characters (the `flag_override.user_id` check).
pub const USER_ID_CHARS: usize = 1024;
/// Longest override user id, in bytes: `(flag, user id)` is a btree key, and PostgreSQL refuses
/// index entries over about 2,700 bytes (a user id of 1,024 four-byte characters would be one).
pub const USER_ID_BYTES: usize = 2048;

/// Why the override table cannot hold `user_id`, if it cannot.
fn user_id_problem(user_id: &str) -> Option<String> {
    if user_id.is_empty() {
        Some("must not be empty".to_owned())
    } else if user_id.chars().count() > USER_ID_CHARS || user_id.len() > USER_ID_BYTES {
        Some(format!(
            "must be at most {USER_ID_CHARS} characters and {USER_ID_BYTES} bytes, got {} characters ({} bytes)",
            user_id.chars().count(),
            user_id.len()
        ))
    } else {
        None
    }
}

/// `segment` in the context of the environment's other segments.
pub fn segment(segment: &Segment, view: &View) -> Result<()> {
    let mut details = field_errors(validate_segment(segment, view.segments()), "");
    if details.is_empty() && uses_regexes(Some(&segment.rules[..])) {
        let segments = replaced(view.segments(), segment, |s| {
            s.segment_key == segment.segment_key
        });
        details.extend(regex_budget(view.flags().to_vec(), segments, "rules"));
    }
    into_result(details)
}

/// The whole environment after something was removed from it: every remaining flag and segment
/// must still be valid (a deleted segment or prerequisite flag may still be referenced). Paths
/// name the referencing entity by key: `flags[checkout].targetingRules.segments[0]`.
pub fn remaining(view: &View) -> Result<()> {
    into_result(environment_problems(view))
}

/// A whole environment written at once (a new environment with contents): what [`remaining`]
/// checks, and what the database needs of every flag (see [`flag`]), paths keyed the same way.
pub fn environment(view: &View) -> Result<()> {
    let mut details = environment_problems(view);
    for flag in view.flags() {
        let prefix = format!("flags[{}].", flag.flag_key);
        tag_problems(&flag.tags, &prefix, &mut details);
        storage_problems(flag, &prefix, &mut details);
    }
    into_result(details)
}

fn environment_problems(view: &View) -> Vec<FieldError> {
    // one pass over the environment: validating flag by flag would be quadratic
    let snapshot = Snapshot {
        flags: view.flags().to_vec(),
        segments: view.segments().to_vec(),
        ..Snapshot::default()
    };
    validate_snapshot(&snapshot)
        .into_iter()
        // only the definitions are under test here, not this ad-hoc snapshot's header
        .filter(|e| e.path.starts_with("flags[") || e.path.starts_with("segments["))
        .map(|e| FieldError::new(keyed_path(&e.path, view), e.message))
        .collect()
}

/// `flags[3].x` -> `flags[<key of flag 3>].x` (and the same for segments): indexes mean nothing
/// to a client that never saw the snapshot.
fn keyed_path(path: &str, view: &View) -> String {
    for (prefix, keys) in [
        (
            "flags[",
            view.flags()
                .iter()
                .map(|f| f.flag_key.as_str())
                .collect::<Vec<_>>(),
        ),
        (
            "segments[",
            view.segments()
                .iter()
                .map(|s| s.segment_key.as_str())
                .collect(),
        ),
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if let Some((index, tail)) = rest.split_once(']') {
                if let Some(key) = index.parse::<usize>().ok().and_then(|i| keys.get(i)) {
                    return format!("{prefix}{key}]{tail}");
                }
            }
        }
    }
    path.to_owned()
}
