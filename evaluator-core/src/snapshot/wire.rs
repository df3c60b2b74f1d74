//! The fast path of [`super::CompiledSnapshot::from_json`]: the wire format read into the model,
//! except that user lists go straight into their compiled sets and fields that compiling never
//! reads are checked but not kept.
//!
//! Each type here mirrors one of [`crate::model`] field for field (names, defaults, types as
//! JSON sees them), so it accepts exactly the documents the model accepts; anything it rejects
//! falls back to the per-flag path, which uses the model itself. This module's tests pin that
//! agreement: each wire type must accept exactly its model type's field names, and a fully
//! populated model snapshot must read the same through both. A snapshot of 1,000 flags
//! holds some 30,000 user ids: one `String` each was half the cost of loading it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::build::Lists;
use crate::flag::FlagLists;
use crate::model::{
    ClientKey, Flag, Override, Prerequisite, Rule, Segment, SegmentRule, Snapshot, TargetingRules,
    Variation,
};
use crate::segment::SegmentLists;
use crate::sets::StrList;

/// A JSON string whose value compiling does not need (descriptions, timestamps of the flag's
/// history): checked to be a string like the model's `String`, not copied. The fields of this
/// type are never read (hence their `allow(dead_code)`): they exist to reject what the model
/// rejects.
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Check;
        impl Visitor<'_> for Check {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        deserializer.deserialize_str(Check)
    }
}

/// [`Snapshot`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireSnapshot {
    environment: String,
    version: u64,
    #[serde(default)]
    generated_at: String,
    #[serde(default)]
    flags: Vec<WireFlag>,
    #[serde(default)]
    segments: Vec<WireSegment>,
    #[serde(default)]
    client_keys: Vec<ClientKey>,
}

/// [`Flag`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFlag {
    flag_key: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<AnyStr>,
    #[serde(default)]
    #[allow(dead_code)]
    tags: Vec<AnyStr>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    #[allow(dead_code)]
    environment: Option<AnyStr>,
    #[serde(default)]
    default_value: Option<Value>,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    #[allow(dead_code)]
    created_at: Option<AnyStr>,
    #[serde(default)]
    #[allow(dead_code)]
    updated_at: Option<AnyStr>,
    #[serde(default)]
    targeting_rules: Option<WireTargetingRules>,
    #[serde(default)]
    variations: Option<Vec<Variation>>,
    #[serde(default)]
    on_variation: Option<String>,
    #[serde(default)]
    default_variation: Option<String>,
    #[serde(default)]
    off_variation: Option<String>,
    #[serde(default)]
    prerequisites: Vec<Prerequisite>,
    #[serde(default)]
    overrides: Vec<Override>,
    #[serde(default)]
    salt: Option<String>,
}

/// [`TargetingRules`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTargetingRules {
    #[serde(default)]
    percentage: Option<f64>,
    #[serde(default)]
    segments: Vec<String>,
    #[serde(default)]
    user_ids: StrList,
    #[serde(default)]
    countries: StrList,
    #[serde(default)]
    excluded_user_ids: StrList,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    bucket_by: Option<String>,
}

/// [`Segment`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSegment {
    segment_key: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<AnyStr>,
    #[serde(default)]
    included: StrList,
    #[serde(default)]
    excluded: StrList,
    #[serde(default)]
    rules: Vec<SegmentRule>,
}

impl WireSnapshot {
    /// The model without its user lists (and without the fields compiling ignores), and the
    /// lists, by position, as [`super::CompiledSnapshot::compile`] would have moved them out.
    pub(super) fn into_model(self) -> (Snapshot, Lists) {
        let mut flag_lists = Vec::with_capacity(self.flags.len());
        let flags = self
            .flags
            .into_iter()
            .map(|flag| {
                let (flag, lists) = flag.into_model();
                flag_lists.push(lists);
                flag
            })
            .collect();
        let mut segment_lists = Vec::with_capacity(self.segments.len());
        let segments = self
            .segments
            .into_iter()
            .map(|segment| {
                segment_lists.push(SegmentLists {
                    included: segment.included,
                    excluded: segment.excluded,
                });
                Segment {
                    segment_key: segment.segment_key,
                    description: None,
                    included: Vec::new(),
                    excluded: Vec::new(),
                    rules: segment.rules,
                }
            })
            .collect();
        let snapshot = Snapshot {
            environment: self.environment,
            version: self.version,
            generated_at: self.generated_at,
            flags,
            segments,
            client_keys: self.client_keys,
        };
        let lists = Lists {
            flags: flag_lists,
            segments: segment_lists,
        };
        (snapshot, lists)
    }
}

impl WireFlag {
    fn into_model(self) -> (Flag, FlagLists) {
        let (targeting_rules, lists) = match self.targeting_rules {
            None => (None, FlagLists::default()),
            Some(t) => (
                Some(TargetingRules {
                    percentage: t.percentage,
                    segments: t.segments,
                    user_ids: Vec::new(),
                    countries: Vec::new(),
                    excluded_user_ids: Vec::new(),
                    rules: t.rules,
                    bucket_by: t.bucket_by,
                }),
                FlagLists {
                    user_ids: t.user_ids,
                    excluded_user_ids: t.excluded_user_ids,
                    countries: t.countries,
                },
            ),
        };
        let flag = Flag {
            flag_key: self.flag_key,
            description: None,
            tags: Vec::new(),
            enabled: self.enabled,
            environment: None,
            default_value: self.default_value,
            version: self.version,
            created_at: None,
            updated_at: None,
            targeting_rules,
            variations: self.variations,
            on_variation: self.on_variation,
            default_variation: self.default_variation,
            off_variation: self.off_variation,
            prerequisites: self.prerequisites,
            overrides: self.overrides,
            salt: self.salt,
        };
        (flag, lists)
    }
}

#[cfg(test)]
mod tests;
