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
        put_sorted(&mut self.flags, flag, |f| &f.flag_key);
    }

    /// Removes a flag.
    pub fn remove_flag(&mut self, key: &str) {
        remove_sorted(&mut self.flags, key, |f| &f.flag_key);
    }

    /// Inserts or replaces a segment.
    pub fn put_segment(&mut self, segment: Segment) {
        put_sorted(&mut self.segments, segment, |s| &s.segment_key);
    }

    /// Removes a segment.
    pub fn remove_segment(&mut self, key: &str) {
        remove_sorted(&mut self.segments, key, |s| &s.segment_key);
    }

    /// Inserts or replaces a client key (by name).
    pub fn put_client_key(&mut self, key: ClientKey) {
        put_sorted(&mut self.client_keys, key, |k| &k.name);
    }

    /// Removes a client key.
    pub fn remove_client_key(&mut self, name: &str) {
        remove_sorted(&mut self.client_keys, name, |k| &k.name);
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

/// Inserts `item` into `items` (sorted by `key`), replacing the one with the same key.
fn put_sorted<T>(items: &mut Vec<T>, item: T, key: impl Fn(&T) -> &String) {
    match items.binary_search_by(|i| key(i).cmp(key(&item))) {
        Ok(i) => items[i] = item,
        Err(i) => items.insert(i, item),
    }
}

/// Removes the item with key `k` from `items` (sorted by `key`), if there is one.
fn remove_sorted<T>(items: &mut Vec<T>, k: &str, key: impl Fn(&T) -> &String) {
    if let Ok(i) = items.binary_search_by(|i| key(i).as_str().cmp(k)) {
        items.remove(i);
    }
}
