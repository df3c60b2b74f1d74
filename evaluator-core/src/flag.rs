//! Flags: compiled from the wire model into everything evaluation needs, resolved by index.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use hashbrown::HashMap;
use serde_json::Value;

use crate::attribute::Attr;
use crate::bucketing::SaltState;
use crate::operators::CompiledClause;
use crate::sets::StrSet;

mod compile;
mod targeting;

pub(crate) use compile::{compile_flag, FlagLists, FlagScope};

/// A flag ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFlag {
    pub(crate) key: String,
    pub(crate) version: u64,
    pub(crate) enabled: bool,
    /// Valid, and disabled or without any targeting ([`Targeting::context_free`]): the answer
    /// does not depend on the context. Beside `enabled` so the check costs one load.
    pub(crate) context_free: bool,
    /// Hash state of the bucketing salt (`salt`, defaulting to the key).
    pub(crate) salt: SaltState,
    pub(crate) variations: Vec<CompiledVariation>,
    pub(crate) body: Body,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledVariation {
    pub(crate) key: String,
    pub(crate) value: Value,
}

#[derive(Debug, Clone)]
pub(crate) enum Body {
    Valid(Box<Targeting>),
    /// The configuration is invalid: every evaluation is an `ERROR`/`PARSE_ERROR` serving the
    /// best value we can tell (off or default variation, else `defaultValue`, else null).
    Broken {
        message: String,
        variation: Option<u32>,
        value: Value,
    },
}

/// Everything the evaluation order needs, with variations as indexes into `variations`.
#[derive(Debug, Clone)]
pub(crate) struct Targeting {
    pub(crate) off: u32,
    pub(crate) default: u32,
    pub(crate) on: Option<u32>,
    pub(crate) prerequisites: Vec<CompiledPrerequisite>,
    pub(crate) overrides: HashMap<String, Vec<CompiledOverride>>,
    pub(crate) excluded: StrSet,
    pub(crate) user_ids: StrSet,
    pub(crate) segments: Vec<u32>,
    pub(crate) rules: Vec<CompiledRule>,
    /// `targetingRules.percentage` in units of 0.001 %.
    pub(crate) percentage: Option<u32>,
    pub(crate) countries: StrSet,
    pub(crate) bucket_by: Attr,
    /// No targeting at all: an enabled flag serves `on` with reason `STATIC`.
    pub(crate) is_static: bool,
    /// `is_static` and nothing else reads the context either (no prerequisites, overrides or
    /// excluded users): an enabled flag skips straight to step 8, the most common flag's path.
    pub(crate) context_free: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPrerequisite {
    /// Index of the prerequisite flag in the snapshot.
    pub(crate) flag: u32,
    /// The variation it must serve (`None`: the flag could not be parsed, so it never does).
    pub(crate) variation: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledOverride {
    pub(crate) variation: u32,
    pub(crate) expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub(crate) clauses: Vec<CompiledClause>,
    pub(crate) serve: Serve,
}

#[derive(Debug, Clone)]
pub(crate) enum Serve {
    Variation(u32),
    Rollout(CompiledRollout),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRollout {
    pub(crate) bucket_by: Attr,
    /// `(cumulative units, variation)`: the first entry whose sum exceeds the bucket wins.
    pub(crate) thresholds: Vec<(u32, u32)>,
}

impl CompiledFlag {
    /// Turns a flag that compiled into an error-serving one (a dependency turned out invalid).
    pub(crate) fn break_with(&mut self, message: String) {
        if let Body::Valid(targeting) = &self.body {
            let variation = Some(if self.enabled {
                targeting.default
            } else {
                targeting.off
            });
            self.context_free = false;
            self.body = Body::Broken {
                message,
                variation,
                value: Value::Null,
            };
        }
    }

    /// Segments referenced by the flag's targeting (`targetingRules.segments` and `segmentMatch`).
    pub(crate) fn segment_refs(&self) -> impl Iterator<Item = u32> + '_ {
        let targeting = match &self.body {
            Body::Valid(t) => Some(t.as_ref()),
            Body::Broken { .. } => None,
        };
        targeting.into_iter().flat_map(|t| {
            t.segments
                .iter()
                .copied()
                .chain(t.rules.iter().flat_map(|r| {
                    r.clauses
                        .iter()
                        .flat_map(|c| c.segment_refs().iter().copied())
                }))
        })
    }
}
