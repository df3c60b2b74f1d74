//! Segment changes: create, update (a partial update merged into the stored definition) and
//! delete. A segment carries its own version, bumped by every update.

use evaluator_core::model::Segment;
use serde_json::{Map, Value};

use super::mutation::{Change, Mutation};
use super::rows::segment as rows;
use super::{Target, Writer, Written};
use crate::document;
use crate::error::{Error, Resource, Result};
use crate::store::audit::EntityType;
use crate::store::{segment, version_u64};

/// 404 for segment `key` of `environment`.
pub fn not_found(environment: &str, key: &str) -> Error {
    Error::not_found(Resource::Segment, format!("{environment}/{key}"))
}

/// A segment from a body, ignoring the metadata members the API adds to the segments it returns
/// (so that a fetched segment can be edited and sent again).
pub fn parse(mut body: Map<String, Value>) -> Result<Segment> {
    for name in segment::METADATA {
        body.remove(name);
    }
    document::from_value(Value::Object(body))
}

/// Creates segment `new` in `environment` at version 1.
pub async fn create(
    w: &Writer<'_>,
    environment: &str,
    new: Segment,
) -> Result<Written<segment::Stored>> {
    let mut m = w.begin(environment).await?;
    let environment_id = m.environment_id();
    if segment::find(m.conn(), environment_id, &new.segment_key)
        .await?
        .is_some()
    {
        let key = format!("{environment}/{}", new.segment_key);
        return Err(Error::already_exists(Resource::Segment, key));
    }
    let stored = insert(&mut m, &new).await?;
    w.commit(m, stored).await
}

/// Applies a partial update to segment `key` (top-level members replace the stored ones); the
/// body may repeat the key but not rename it.
pub async fn update(
    w: &Writer<'_>,
    target: Target<'_>,
    patch: Map<String, Value>,
) -> Result<Written<segment::Stored>> {
    let Target {
        environment, key, ..
    } = target;
    document::reject_rename(&patch, "segmentKey", key, "segment")?;
    let mut m = w.begin(environment).await?;
    let stored = for_change(&mut m, target).await?;
    let merged = document::patched(
        serde_json::to_value(&stored.definition.0)?,
        patch,
        "segment",
    )?;
    let changed = parse(merged)?;
    m.stage_segment(&changed)?;
    let version = version_u64(stored.version) + 1;
    let actor = m.actor().to_owned();
    let saved = rows::update(m.conn(), stored.segment_id, &changed, version, &actor).await?;
    m.record(Change {
        entity: EntityType::Segment,
        key: key.to_owned(),
        action: "update",
        old: Some(stored.to_json(environment)),
        new: Some(saved.to_json(environment)),
        entity_version: Some(version),
    });
    w.commit(m, saved).await
}

/// Deletes segment `key`, refusing while a flag or another segment still references it.
pub async fn delete(w: &Writer<'_>, target: Target<'_>) -> Result<Written<()>> {
    let Target {
        environment, key, ..
    } = target;
    let mut m = w.begin(environment).await?;
    let stored = for_change(&mut m, target).await?;
    m.stage_segment_removal(key)?;
    rows::delete(m.conn(), stored.segment_id).await?;
    let recorded = stored.to_json(environment);
    m.record(Change::deleted(EntityType::Segment, key, recorded, None));
    w.commit(m, ()).await
}

/// The segment a mutation changes, read under the environment lock: 404 when absent, 409 when
/// the precondition names another version.
async fn for_change(m: &mut Mutation, target: Target<'_>) -> Result<segment::Stored> {
    let environment_id = m.environment_id();
    let stored = segment::find(m.conn(), environment_id, target.key)
        .await?
        .ok_or_else(|| not_found(target.environment, target.key))?;
    target.precondition.check(version_u64(stored.version))?;
    Ok(stored)
}

/// Stores `new` at version 1 once it is valid in the environment.
async fn insert(m: &mut Mutation, new: &Segment) -> Result<segment::Stored> {
    m.stage_segment(new)?;
    let stored = write_new(m, new).await?;
    Ok(stored)
}

/// Stores `segments` of a new environment, validated with the rest by
/// [`Mutation::stage_contents`] beforehand.
pub(super) async fn insert_all(m: &mut Mutation, segments: &[Segment]) -> Result<()> {
    for segment in segments {
        write_new(m, segment).await?;
    }
    Ok(())
}

/// The row, and the record, of a segment already staged.
async fn write_new(m: &mut Mutation, new: &Segment) -> Result<segment::Stored> {
    let (environment_id, actor) = (m.environment_id(), m.actor().to_owned());
    let stored = rows::insert(m.conn(), environment_id, new, &actor).await?;
    let environment = m.environment_key().to_owned();
    let created = stored.to_json(&environment);
    m.record(Change::created(
        EntityType::Segment,
        &new.segment_key,
        created,
        Some(1),
    ));
    Ok(stored)
}
