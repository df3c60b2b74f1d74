//! An environment's complete configuration as one transaction sees it.
//!
//! A mutation loads the view once under the environment lock, validates its change against it,
//! writes the change to the tables and applies it to the view, and finally turns the view into
//! the new snapshot, so the environment is read once per mutation. [`crate::outbox::build`]
//! produces the same snapshot by loading a fresh view; a test pins that the two agree.

use evaluator_core::model::{ClientKey, Flag, Segment, Snapshot};
use sqlx::PgConnection;

use super::{client_key, flag, segment};
use crate::error::Result;

/// Flags, segments and client keys of one environment, each sorted by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    flags: Vec<Flag>,
    segments: Vec<Segment>,
    client_keys: Vec<ClientKey>,
}

impl View {
    /// Loads environment `environment_id`.
    pub async fn load(conn: &mut PgConnection, environment_id: i64) -> Result<Self> {
        Ok(Self {
            flags: flag::all(conn, environment_id).await?,
            segments: segment::all(conn, environment_id).await?,
            client_keys: client_key::for_snapshot(conn, environment_id).await?,
        })
    }

    /// The flags, by key.
    pub fn flags(&self) -> &[Flag] {
        &self.flags
    }

    /// The segments, by key.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The flag `key`.
    pub fn flag(&self, key: &str) -> Option<&Flag> {
        self.flags
            .binary_search_by(|f| f.flag_key.as_str().cmp(key))
            .ok()
            .and_then(|i| self.flags.get(i))
    }

    /// Inserts or replaces a flag.
    pub fn put_flag(&mut self, flag: Flag) {
        match self
            .flags
            .binary_search_by(|f| f.flag_key.cmp(&flag.flag_key))
        {
            Ok(i) => self.flags[i] = flag,
            Err(i) => self.flags.insert(i, flag),
        }
    }

    /// Removes a flag.
    pub fn remove_flag(&mut self, key: &str) {
        if let Ok(i) = self
            .flags
            .binary_search_by(|f| f.flag_key.as_str().cmp(key))
        {
            self.flags.remove(i);
        }
    }

    /// Inserts or replaces a segment.
    pub fn put_segment(&mut self, segment: Segment) {
        match self
            .segments
            .binary_search_by(|s| s.segment_key.cmp(&segment.segment_key))
        {
            Ok(i) => self.segments[i] = segment,
            Err(i) => self.segments.insert(i, segment),
        }
    }

    /// Removes a segment.
    pub fn remove_segment(&mut self, key: &str) {
        if let Ok(i) = self
            .segments
            .binary_search_by(|s| s.segment_key.as_str().cmp(key))
        {
            self.segments.remove(i);
        }
    }

    /// Inserts or replaces a client key (by name).
    pub fn put_client_key(&mut self, key: ClientKey) {
        match self.client_keys.binary_search_by(|k| k.name.cmp(&key.name)) {
            Ok(i) => self.client_keys[i] = key,
            Err(i) => self.client_keys.insert(i, key),
        }
    }

    /// Removes a client key.
    pub fn remove_client_key(&mut self, name: &str) {
        if let Ok(i) = self
            .client_keys
            .binary_search_by(|k| k.name.as_str().cmp(name))
        {
            self.client_keys.remove(i);
        }
    }

    /// Empties the view (the environment is being deleted).
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The snapshot of this view.
    pub fn into_snapshot(self, environment: &str, version: u64, generated_at: String) -> Snapshot {
        Snapshot {
            environment: environment.to_owned(),
            version,
            generated_at,
            flags: self.flags,
            segments: self.segments,
            client_keys: self.client_keys,
        }
    }
}
