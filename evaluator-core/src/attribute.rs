//! Reading context attributes: names resolved at compile time, values cached per evaluation.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;
use hashbrown::HashMap;
use serde_json::Value;

use crate::context::EvaluationContext;
use crate::json::parse_number;
use crate::sets::Interner;
use crate::time::parse_rfc3339_millis;
use crate::version::SemVer;

/// Attributes per flag (or segment) that the per-evaluation cache remembers. Rules tend to
/// test the same few attributes over and over, and the context's attribute map is a B-tree of
/// strings where each lookup costs several string comparisons.
pub(crate) const CACHE_SLOTS: usize = 16;
const NO_SLOT: u8 = u8::MAX;
/// Interned-id cells: not yet looked up / looked up and not interned.
pub(crate) const ID_UNKNOWN: u32 = u32::MAX;
const ID_NONE: u32 = u32::MAX - 1;

/// Where a clause's (or rollout's) attribute comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attr {
    /// `userId`, `key` or `targetingKey`: the context's targeting key.
    TargetingKey,
    /// Any other name: a context attribute, remembered in `slot` of the evaluation's
    /// [`AttrCache`] (`NO_SLOT`: looked up every time), and number `global` of the snapshot's
    /// [`AttrNames`] (`NO_GLOBAL`: not among them), under which a batch of evaluations looks
    /// it up once for all flags.
    Named { name: String, slot: u8, global: u32 },
}

/// `Attr::Named::global` of an attribute not in the snapshot's [`AttrNames`].
const NO_GLOBAL: u32 = u32::MAX;

/// Numbers of the attributes by which a context declares its segments itself (`userSegment`,
/// `segments`): every segment evaluation reads both, so a batch looks them up once too.
pub(crate) const USER_SEGMENT: usize = 0;
/// See [`USER_SEGMENT`].
pub(crate) const SEGMENTS: usize = 1;
/// Number of `country`, which `targetingRules.countries` reads.
pub(crate) const COUNTRY: usize = 2;

/// The attribute names the clauses of a snapshot read, each with its number; `userSegment`,
/// `segments` and `country` are always there, as [`USER_SEGMENT`], [`SEGMENTS`], [`COUNTRY`].
#[derive(Debug, Clone)]
pub(crate) struct AttrNames {
    names: HashMap<String, u32>,
    /// Numbers of the attributes `semver*` clauses read: a batch parses their values once.
    versions: Vec<u32>,
}

/// What a batch of evaluations read from the context for one attribute number.
pub(crate) struct Known<'c> {
    /// The value; `None` when missing or null.
    pub(crate) value: Option<&'c Value>,
    /// For an attribute `semver*` clauses read whose value is one string: the string parsed
    /// (`Some(None)`: not a version). `None`: not parsed here (read the value instead).
    pub(crate) version: Option<Option<SemVer>>,
}

impl Default for AttrNames {
    fn default() -> Self {
        let mut names = Self {
            names: HashMap::new(),
            versions: Vec::new(),
        };
        names.number("userSegment");
        names.number("segments");
        names.number("country");
        names
    }
}

impl AttrNames {
    fn number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.names.get(name) {
            return n;
        }
        let n = u32::try_from(self.names.len()).unwrap_or(NO_GLOBAL);
        self.names.insert(name.to_string(), n);
        n
    }

    /// Marks attribute `global` as read by a `semver*` clause.
    pub(crate) fn read_as_version(&mut self, attr: &Attr) {
        if let Attr::Named { global, .. } = attr {
            if *global != NO_GLOBAL && !self.versions.contains(global) {
                self.versions.push(*global);
            }
        }
    }

    /// The context's value of each name, by number: looked up (and, for `semver*`
    /// attributes, parsed) once for a batch of evaluations. Walks the context's attributes,
    /// usually fewer than the names.
    pub(crate) fn values<'c>(&self, ctx: &'c EvaluationContext) -> Vec<Known<'c>> {
        let mut values: Vec<Known<'c>> = (0..self.names.len())
            .map(|_| Known {
                value: None,
                version: None,
            })
            .collect();
        for (name, value) in &ctx.attributes {
            let Some(&n) = self.names.get(name.as_str()) else {
                continue;
            };
            if let Some(known) = values.get_mut(n as usize) {
                known.value = present(Some(value));
                if let Value::String(s) = value {
                    if self.versions.contains(&n) {
                        known.version = Some(SemVer::parse(s));
                    }
                }
            }
        }
        values
    }
}

fn is_targeting_key(name: &str) -> bool {
    matches!(name, "userId" | "key" | "targetingKey")
}

impl Attr {
    /// An attribute read outside clauses (bucketing): not cached.
    pub(crate) fn new(name: &str) -> Self {
        if is_targeting_key(name) {
            Self::TargetingKey
        } else {
            Self::Named {
                name: name.to_string(),
                slot: NO_SLOT,
                global: NO_GLOBAL,
            }
        }
    }

    /// The attribute's value in `ctx`; `None` when missing or null.
    #[inline]
    pub(crate) fn lookup<'c>(&self, ctx: &'c EvaluationContext) -> Option<AttrValue<'c>> {
        match self {
            Self::TargetingKey => ctx.targeting_key.as_deref().map(AttrValue::Key),
            Self::Named { name, .. } => present(ctx.attributes.get(name)).map(AttrValue::Json),
        }
    }

    /// Like [`Attr::lookup`], through the values a batch looked up (`batch`, by global
    /// number; empty for a single evaluation) or else the evaluation's cache.
    #[inline]
    pub(crate) fn lookup_cached<'c>(
        &self,
        ctx: &'c EvaluationContext,
        batch: &[Known<'c>],
        cache: &AttrCache<'c>,
    ) -> Option<AttrValue<'c>> {
        match self {
            Self::TargetingKey => ctx.targeting_key.as_deref().map(AttrValue::Key),
            Self::Named { name, slot, global } => {
                if let Some(known) = batch.get(*global as usize) {
                    return known.value.map(AttrValue::Json);
                }
                let Some(cell) = cache.values.get(usize::from(*slot)) else {
                    return present(ctx.attributes.get(name)).map(AttrValue::Json);
                };
                let bit = 1u32 << slot;
                if cache.filled.get() & bit != 0 {
                    return cell.get().map(AttrValue::Json);
                }
                let value = present(ctx.attributes.get(name));
                cell.set(value);
                cache.filled.set(cache.filled.get() | bit);
                value.map(AttrValue::Json)
            }
        }
    }

    /// The interned id of the attribute's string value `s`, through the cache.
    #[inline]
    pub(crate) fn interned_id(
        &self,
        s: &str,
        interner: &Interner,
        cache: &AttrCache<'_>,
    ) -> Option<u32> {
        let cell = match self {
            Self::TargetingKey => Some(cache.key_id),
            Self::Named { slot, .. } => cache.ids.get(usize::from(*slot)),
        };
        let Some(cell) = cell else {
            return interner.get(s);
        };
        match cell.get() {
            ID_UNKNOWN => {
                let id = interner.get(s);
                cell.set(id.unwrap_or(ID_NONE));
                id
            }
            ID_NONE => None,
            id => Some(id),
        }
    }
}

#[inline]
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// Names of the attributes one flag's (or segment's) clauses read, each with its cache slot.
#[derive(Default)]
pub(crate) struct AttrTable {
    names: Vec<String>,
}

impl AttrTable {
    pub(crate) fn attr(&mut self, name: &str, names: &mut AttrNames) -> Attr {
        if is_targeting_key(name) {
            return Attr::TargetingKey;
        }
        let slot = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None if self.names.len() < CACHE_SLOTS => {
                self.names.push(name.to_string());
                self.names.len() - 1
            }
            None => usize::from(NO_SLOT),
        };
        Attr::Named {
            name: name.to_string(),
            slot: u8::try_from(slot).unwrap_or(NO_SLOT),
            global: names.number(name),
        }
    }
}

/// What one evaluation of one flag (or segment) has already read from the context: attribute
/// values, and the interned ids of string values (for `in` / `notIn`).
pub(crate) struct AttrCache<'c> {
    filled: Cell<u32>,
    values: [Cell<Option<&'c Value>>; CACHE_SLOTS],
    ids: [Cell<u32>; CACHE_SLOTS],
    /// The targeting key's interned id, shared by every flag evaluated for the context (it
    /// lives in the context's [`crate::memo::Memo`]): `userId in [...]` hashes the key once.
    key_id: &'c Cell<u32>,
}

impl<'c> AttrCache<'c> {
    pub(crate) fn new(key_id: &'c Cell<u32>) -> Self {
        Self {
            filled: Cell::new(0),
            values: [const { Cell::new(None) }; CACHE_SLOTS],
            ids: [const { Cell::new(ID_UNKNOWN) }; CACHE_SLOTS],
            key_id,
        }
    }
}

/// A present attribute value.
#[derive(Clone, Copy)]
pub(crate) enum AttrValue<'c> {
    Key(&'c str),
    Json(&'c Value),
}

impl<'c> AttrValue<'c> {
    /// The value as one string, if it is one (not an array).
    #[inline]
    pub(crate) fn as_single_str(self) -> Option<&'c str> {
        match self {
            Self::Key(s) => Some(s),
            Self::Json(Value::String(s)) => Some(s),
            Self::Json(_) => None,
        }
    }
}

/// One element of an attribute (arrays are tested element by element).
#[derive(Clone, Copy)]
pub(crate) enum Elem<'c> {
    Str(&'c str),
    Num(f64),
    Bool(bool),
    Other,
}

impl<'c> Elem<'c> {
    #[inline]
    fn of(value: &'c Value) -> Self {
        match value {
            Value::String(s) => Self::Str(s),
            Value::Number(n) => n.as_f64().map_or(Self::Other, Self::Num),
            Value::Bool(b) => Self::Bool(*b),
            Value::Null | Value::Array(_) | Value::Object(_) => Self::Other,
        }
    }

    /// A number, or a numeric string parsed.
    pub(crate) fn number(self) -> Option<f64> {
        match self {
            Self::Num(n) => Some(n),
            Self::Str(s) => parse_number(s),
            Self::Bool(_) | Self::Other => None,
        }
    }

    /// Unix milliseconds, from a number or an RFC 3339 string.
    pub(crate) fn millis(self) -> Option<f64> {
        match self {
            Self::Num(n) => Some(n),
            // Milliseconds since 1970 stay far below 2^53, so the conversion is exact.
            Self::Str(s) => parse_rfc3339_millis(s).map(|ms| ms as f64),
            Self::Bool(_) | Self::Other => None,
        }
    }
}

/// True when `test` holds for the attribute, or for any element of an array attribute.
#[inline]
pub(crate) fn any_elem(value: AttrValue<'_>, mut test: impl FnMut(Elem<'_>) -> bool) -> bool {
    match value {
        AttrValue::Key(s) => test(Elem::Str(s)),
        AttrValue::Json(Value::Array(items)) => items.iter().any(|item| test(Elem::of(item))),
        AttrValue::Json(value) => test(Elem::of(value)),
    }
}
