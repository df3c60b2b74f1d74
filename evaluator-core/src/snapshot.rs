//! The compiled snapshot: one environment's flags, indexed and pre-parsed for evaluation.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use hashbrown::HashMap;
use serde_json::Value;

use crate::attribute::AttrNames;
use crate::error::{Error, Result};
use crate::flag::CompiledFlag;
use crate::model::{Flag, KeyKind, Segment, Snapshot};
use crate::segment::CompiledSegment;
use crate::sets::Interner;
use crate::validate::ValidationError;

mod build;
mod client_keys;
mod segments;
mod wire;

pub(crate) use build::compile_snapshot;
use build::{compile_input, compile_loose, Input, Lists, LooseSnapshot};
use client_keys::decode_sha256;
use wire::WireSnapshot;

/// A snapshot compiled for evaluation: flag key → index hash map, user id hash sets, compiled
/// regexes, parsed versions and timestamps, rollout weights in integer units of 0.001 %.
///
/// Build it once per snapshot version (it is `Send + Sync`; share it behind an `Arc`) and
/// evaluate as often as needed.
#[derive(Clone)]
pub struct CompiledSnapshot {
    environment: String,
    version: u64,
    generated_at: String,
    pub(crate) flags: Vec<CompiledFlag>,
    flag_index: HashMap<String, u32>,
    /// By position in the snapshot's `segments`; `None` for invalid ones.
    pub(crate) segments: Vec<Option<CompiledSegment>>,
    client_keys: HashMap<[u8; 32], KeyKind>,
    has_client_keys: bool,
    /// String operands of all `in` / `notIn` clauses.
    pub(crate) interner: Interner,
    /// Names of the attributes clauses read: what a batch of evaluations looks up in the
    /// context once (see [`crate::PreparedContext`]).
    pub(crate) attributes: AttrNames,
}

impl fmt::Debug for CompiledSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSnapshot")
            .field("environment", &self.environment)
            .field("version", &self.version)
            .field("flags", &self.flags.len())
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}

impl CompiledSnapshot {
    /// Compiles a parsed snapshot.
    ///
    /// Never fails: an invalid flag compiles to a flag that evaluates to `ERROR`/`PARSE_ERROR`
    /// serving its off or default value (or null), and its problems are returned as warnings
    /// (the same list [`crate::validate_snapshot`] gives). Of duplicate flag keys the first
    /// wins; flags referencing an invalid segment, and flags on a prerequisite cycle, are
    /// compiled as errors too.
    #[must_use]
    pub fn compile(mut snapshot: Snapshot) -> (CompiledSnapshot, Vec<ValidationError>) {
        // The snapshot is ours: move its user lists instead of copying them.
        let mut lists = Lists::take(&mut snapshot);
        compile_input(&Input::of(&snapshot), Some(&mut lists))
    }

    /// Parses JSON, then compiles it like [`CompiledSnapshot::compile`].
    ///
    /// A flag or segment that does not even have the right shape (a weight that is a string,
    /// a clause without operator) is compiled as an error and reported, like any invalid flag.
    ///
    /// # Errors
    /// [`Error::Parse`] only when the bytes are not a snapshot at all: not JSON, or not an
    /// object with `environment` and `version`.
    pub fn from_json(bytes: &[u8]) -> Result<(CompiledSnapshot, Vec<ValidationError>)> {
        // The fast path: a well-formed snapshot parses straight into the model, its user lists
        // straight into their compiled sets. UTF-8 is checked once for the whole document
        // (parsing a `&str` skips the check per string, tens of thousands of them).
        let wire = core::str::from_utf8(bytes)
            .ok()
            .and_then(|text| serde_json::from_str::<WireSnapshot>(text).ok());
        if let Some(wire) = wire {
            let (snapshot, mut lists) = wire.into_model();
            return Ok(compile_input(&Input::of(&snapshot), Some(&mut lists)));
        }
        let loose: LooseSnapshot = serde_json::from_slice(bytes).map_err(|e| Error::Parse {
            message: e.to_string(),
        })?;
        Ok(compile_loose(&loose))
    }

    /// The environment key, e.g. `production`.
    #[must_use]
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The snapshot version (increases by one per change of the environment).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the origin built the snapshot (RFC 3339, as published).
    #[must_use]
    pub fn generated_at(&self) -> &str {
        &self.generated_at
    }

    /// Number of flags (duplicates of a key counted once).
    #[must_use]
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// No flags at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Flag keys in snapshot order.
    pub fn flag_keys(&self) -> impl Iterator<Item = &str> {
        self.flags.iter().map(|f| f.key.as_str())
    }

    /// Whether a flag with this key exists (valid or not).
    #[must_use]
    pub fn contains_flag(&self, key: &str) -> bool {
        self.flag_index.contains_key(key)
    }

    /// Whether the environment restricts evaluation to client keys. True whenever the snapshot
    /// lists any, even if none is well-formed: a broken key list must not open the environment.
    #[must_use]
    pub fn has_client_keys(&self) -> bool {
        self.has_client_keys
    }

    /// Whether a key whose SHA-256 is `sha256_hex` may evaluate (hex in either case): a client
    /// or a server key the snapshot lists.
    #[must_use]
    pub fn client_key_hash_allowed(&self, sha256_hex: &str) -> bool {
        self.key_kind(sha256_hex).is_some()
    }

    /// The kind of the listed key whose SHA-256 is `sha256_hex`; `None` when it is not listed.
    #[must_use]
    pub fn key_kind(&self, sha256_hex: &str) -> Option<KeyKind> {
        decode_sha256(sha256_hex).and_then(|hash| self.client_keys.get(&hash).copied())
    }

    /// Where the flag `key` sits in this snapshot, for [`CompiledSnapshot::evaluate_at`]:
    /// callers that evaluate the same flag often look its key up once per snapshot version.
    #[must_use]
    pub fn flag_position(&self, key: &str) -> Option<FlagPosition> {
        self.flag_index.get(key).map(|&i| FlagPosition(i))
    }

    /// The key of the flag at `position`; `None` for a position this snapshot does not have.
    #[must_use]
    pub fn flag_key_at(&self, position: FlagPosition) -> Option<&str> {
        self.flags.get(position.index()).map(|f| f.key.as_str())
    }
}

/// A flag's place in one [`CompiledSnapshot`] (see [`CompiledSnapshot::flag_position`]),
/// which evaluates it without hashing its key. Valid for the snapshot that gave it: another
/// snapshot (even another version of the same environment) may hold another flag there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlagPosition(u32);

impl FlagPosition {
    /// The flag's index in snapshot order (the order of [`CompiledSnapshot::flag_keys`]).
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One flag or segment of the input: parsed, or kept as raw JSON because it has the wrong shape.
pub(crate) enum Entry<'s, T> {
    Parsed(&'s T),
    Unparsable {
        key: Option<&'s str>,
        message: String,
        raw: &'s Value,
    },
}

/// Things with a key.
pub(crate) trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for Flag {
    fn key(&self) -> &str {
        &self.flag_key
    }
}

impl Keyed for Segment {
    fn key(&self) -> &str {
        &self.segment_key
    }
}

impl<T: Keyed> Entry<'_, T> {
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Self::Parsed(item) => Some(item.key()),
            Self::Unparsable { key, .. } => *key,
        }
    }
}

#[cfg(test)]
mod tests;
