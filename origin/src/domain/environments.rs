//! Environment changes: create (empty, or with initial flags and segments), rename and delete.
//! An environment's first snapshot is written with its creation; its last (empty) one with its
//! deletion, so edges stop serving it.

use evaluator_core::model::{Flag, Segment};

use super::mutation::{Change, Mutation};
use super::rows::environment as rows;
use super::{flags, segments, Writer, Written};
use crate::error::{Error, Result};
use crate::store::audit::EntityType;
use crate::store::{environment, version_i64};
use crate::validation;

/// Flags and segments a new environment starts with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    /// Its flags; each is stored at version 1 (server-managed fields are set on the way in).
    pub flags: Vec<Flag>,
    /// Its segments, each at version 1.
    pub segments: Vec<Segment>,
}

/// An environment's display name: 1-255 characters, not blank.
fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(Error::invalid(
            "name",
            "must be 1-255 characters and not blank",
        ));
    }
    Ok(())
}

/// The environment row as it will be once `m` commits (the version it publishes).
fn as_committed(m: &Mutation, mut row: environment::Row) -> environment::Row {
    row.snapshot_version = version_i64(m.snapshot_version());
    row
}

/// Creates the empty environment `key`, named `name` (default: the key). Returns the row as
/// committed.
pub async fn create(
    w: &Writer<'_>,
    key: &str,
    name: Option<&str>,
    protected: Option<bool>,
) -> Result<Written<environment::Row>> {
    create_inner(w, key, name, protected, Contents::default()).await
}

/// Creates environment `key` holding `contents`, in one mutation: the whole environment is
/// validated at once (problems name the entity by key, `flags[checkout].prerequisites[0]`),
/// and every flag and segment gets its own history and audit row. Returns the row as committed.
pub async fn create_with_contents(
    w: &Writer<'_>,
    key: &str,
    name: Option<&str>,
    contents: Contents,
) -> Result<Written<environment::Row>> {
    create_inner(w, key, name, None, contents).await
}

/// [`create_with_contents`], protected as `protected` says (default: `production` is).
async fn create_inner(
    w: &Writer<'_>,
    key: &str,
    name: Option<&str>,
    protected: Option<bool>,
    contents: Contents,
) -> Result<Written<environment::Row>> {
    validation::key(key, "key")?;
    let name = name.unwrap_or(key);
    check_name(name)?;
    let mut m = Mutation::create_environment(w.pool, key, name, protected, w.actor).await?;
    let created = as_committed(&m, m.env().clone());
    let recorded = created.to_json();
    m.record(Change::created(
        EntityType::Environment,
        key,
        recorded,
        None,
    ));
    if !contents.flags.is_empty() || !contents.segments.is_empty() {
        populate(&mut m, contents).await?;
    }
    w.commit(m, created).await
}

/// Writes the contents of a new environment, after validating them together.
async fn populate(m: &mut Mutation, contents: Contents) -> Result<()> {
    let Contents {
        mut flags,
        segments,
    } = contents;
    let (environment, now) = (m.environment_key().to_owned(), m.now_text());
    for flag in &mut flags {
        // a new environment has no flag history: every flag starts at version 1
        flag.version = 1;
        flag.environment = Some(environment.clone());
        flag.created_at = Some(now.clone());
        flag.updated_at = Some(now.clone());
    }
    m.stage_contents(&flags, &segments)?;
    segments::insert_all(m, &segments).await?;
    flags::insert_all(m, flags).await
}

/// Renames environment `key` (its key never changes) and/or sets whether it is protected; at
/// least one of them must be given. Returns the row as committed.
pub async fn update(
    w: &Writer<'_>,
    key: &str,
    name: Option<&str>,
    protected: Option<bool>,
) -> Result<Written<environment::Row>> {
    if let Some(name) = name {
        check_name(name)?;
    } else if protected.is_none() {
        return Err(Error::invalid("name", "give `name`, `protected` or both"));
    }
    let mut m = w.begin(key).await?;
    let old = m.env().to_json();
    let id = m.environment_id();
    let renamed = rows::change(m.conn(), id, name, protected).await?;
    let renamed = as_committed(&m, renamed);
    m.record(Change {
        entity: EntityType::Environment,
        key: key.to_owned(),
        action: "update",
        old: Some(old),
        new: Some(renamed.to_json()),
        entity_version: None,
    });
    w.commit(m, renamed).await
}

/// Deletes environment `key`, which must hold no flags and no segments; its client keys go with
/// it.
pub async fn delete(w: &Writer<'_>, key: &str) -> Result<Written<()>> {
    let mut m = w.begin(key).await?;
    let id = m.environment_id();
    let (flags, segments) = environment::contents(m.conn(), id).await?;
    if flags > 0 || segments > 0 {
        return Err(Error::EnvironmentNotEmpty {
            key: key.to_owned(),
            flags,
            segments,
        });
    }
    m.record(Change::deleted(
        EntityType::Environment,
        key,
        m.env().to_json(),
        None,
    ));
    m.stage_environment_deletion();
    w.commit(m, ()).await
}
