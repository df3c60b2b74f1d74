//! Serde wire types of a snapshot: what the origin publishes, KV stores and the evaluator parses.
//!
//! Field names are camelCase, as on the wire. See `docs/flag-model.md` for the meaning of
//! every field; these types only describe shape, [`crate::validate`] checks the rest.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One environment's complete flag configuration, as published to the edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Environment key, e.g. `production`.
    pub environment: String,
    /// Increases by one on every change to the environment.
    pub version: u64,
    /// RFC 3339 time the snapshot was built.
    #[serde(default)]
    pub generated_at: String,
    /// Flags of the environment; keys are unique.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Reusable segments; keys are unique.
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// SHA-256 (lowercase hex) of the keys allowed to evaluate this environment: client keys
    /// and server keys (`kind: "server"`, which may also download the snapshot; `docs/sdk.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_keys: Vec<ClientKey>,
}

/// An environment key, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClientKey {
    /// Human name of the key (e.g. `web`).
    #[serde(default)]
    pub name: String,
    /// SHA-256 of the key, lowercase hex.
    pub sha256: String,
    /// What the key may do; absent means [`KeyKind::Client`] (every snapshot before server keys).
    #[serde(default, skip_serializing_if = "KeyKind::is_client")]
    pub kind: KeyKind,
}

/// The two kinds of environment keys (`docs/sdk.md`, "Keys").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    /// Public (`efk.`): evaluation answers only; may ship in a browser app.
    #[default]
    Client,
    /// Secret (`efs.`): evaluation, and the environment's snapshot for in-process SDKs.
    Server,
}

impl KeyKind {
    /// Whether this is [`KeyKind::Client`] (serialised by omission).
    #[must_use]
    pub fn is_client(&self) -> bool {
        *self == KeyKind::Client
    }

    /// The key string's prefix: `efk` or `efs`.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Client => "efk",
            KeyKind::Server => "efs",
        }
    }
}

/// A feature flag: key, kill switch, basic targeting, and optionally variations, rules, overrides
/// and prerequisites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    /// 1-255 characters of letters, digits, `-` and `_`.
    pub flag_key: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Labels for finding and grouping flags (`team:checkout`); evaluation never reads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `false` is the kill switch.
    #[serde(default)]
    pub enabled: bool,
    /// Environment the flag belongs to (informational inside a snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Value served when nothing targets the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    /// Version of this flag's configuration.
    #[serde(default)]
    pub version: u64,
    /// When the flag was created (RFC 3339; informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the flag last changed (RFC 3339; informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Who is targeted: the basic targeting fields and ordered rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting_rules: Option<TargetingRules>,
    /// Values the flag can serve; absent means boolean `on`/`off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variations: Option<Vec<Variation>>,
    /// Variation served by the basic targeting fields (`userIds`, `segments`, `countries`,
    /// `percentage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_variation: Option<String>,
    /// Variation served when nothing matches (alternative to `defaultValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_variation: Option<String>,
    /// Variation served when the flag is disabled or a prerequisite fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_variation: Option<String>,
    /// Flags that must serve a given variation before this one is targeted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisites: Vec<Prerequisite>,
    /// Per-user overrides, optionally expiring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
    /// Bucketing salt; defaults to `flagKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
}

/// `targetingRules`: the basic targeting fields, which serve `onVariation`, plus ordered rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TargetingRules {
    /// Percentage of users (0-100, up to 3 decimals) served the on variation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// Users in any of these segments are served the on variation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// These users are served the on variation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_ids: Vec<String>,
    /// Restricts the percentage rollout to these countries (context attribute `country`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// These users are never targeted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_user_ids: Vec<String>,
    /// Ordered rules; the first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Attribute `percentage` buckets by; defaults to the targeting key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
}

/// One value a flag can serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Variation {
    /// Unique key, reported as the OpenFeature `variant`.
    pub key: String,
    /// The served value: boolean, string, number or JSON.
    pub value: Value,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A targeting rule: all clauses must match; serves a variation or a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Optional identifier, for people and audit diffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Conditions, all of which must hold.
    #[serde(default)]
    pub clauses: Vec<Clause>,
    /// Variation served on a match (exclusive with `rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<String>,
    /// Weighted split served on a match (exclusive with `variation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// One condition on a context attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Clause {
    /// Context attribute; `userId`, `key` and `targetingKey` mean the targeting key.
    #[serde(default)]
    pub attribute: String,
    /// Operator name, e.g. `in`, `matches`, `semverGt`; see `docs/flag-model.md`.
    pub operator: String,
    /// Operands; the clause matches if any matches.
    #[serde(default)]
    pub values: Vec<Value>,
    /// Inverts the result (not applied when the attribute is missing).
    #[serde(default)]
    pub negate: bool,
}

/// A weighted split across variations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Attribute to bucket by; defaults to the targeting key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// Weights in percent (up to 3 decimals), summing to 100.
    pub weights: Vec<WeightedVariation>,
}

/// One share of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WeightedVariation {
    /// Variation key.
    pub variation: String,
    /// Percentage, 0-100 with up to 3 decimals.
    pub weight: f64,
}

/// A per-user override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// The targeting key it applies to.
    pub user_id: String,
    /// Variation served (or use `enabled` for boolean flags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<String>,
    /// Instead of `variation`: the `on` (`true`) or `off` (`false`) variation of a boolean flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// RFC 3339; the override is ignored from this instant on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A flag that must serve `variation` for this flag to be targeted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Prerequisite {
    /// The prerequisite flag.
    pub flag_key: String,
    /// The variation it must serve.
    pub variation: String,
}

/// A reusable set of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// 1-255 characters of letters, digits, `-` and `_`.
    pub segment_key: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Always in the segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
    /// Never in the segment; wins over everything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// In the segment if any rule matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SegmentRule>,
}

/// A segment rule: all clauses must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SegmentRule {
    /// Conditions, all of which must hold.
    #[serde(default)]
    pub clauses: Vec<Clause>,
}
