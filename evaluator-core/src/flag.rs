//! Flags: compiled from the wire model into everything evaluation needs, resolved by index.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hashbrown::HashMap;
use serde_json::Value;

use crate::attribute::{Attr, AttrTable};
use crate::bucketing::{percent_to_units, SaltState};
use crate::json::{json_eq, Kind};
use crate::model::{Flag, Override, Rollout, Rule, TargetingRules};
use crate::operators::{ClauseCompiler, CompiledClause, KeyIndex};
use crate::path::{Diagnostics, Path};
use crate::sets::StrSet;
use crate::snapshot::Entry;
use crate::time::parse_rfc3339_millis;
use crate::validate::{check_key, index_u32, limits};

/// A flag ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFlag {
    pub(crate) key: String,
    pub(crate) version: u64,
    pub(crate) enabled: bool,
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
    /// Seed `percentage` in units of 0.001 %.
    pub(crate) percentage: Option<u32>,
    pub(crate) countries: StrSet,
    pub(crate) bucket_by: Attr,
    /// No targeting at all: an enabled flag serves `on` with reason `STATIC`.
    pub(crate) is_static: bool,
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
            self.body = Body::Broken {
                message,
                variation,
                value: Value::Null,
            };
        }
    }

    /// Segments referenced by the flag's targeting (seed `segments` and `segmentMatch`).
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

/// A flag's user lists, moved out of an owned snapshot so compiling need not copy them.
#[derive(Default)]
pub(crate) struct FlagLists {
    user_ids: Vec<String>,
    excluded_user_ids: Vec<String>,
    countries: Vec<String>,
}

impl FlagLists {
    pub(crate) fn take(flag: &mut Flag) -> Self {
        match &mut flag.targeting_rules {
            None => Self::default(),
            Some(t) => Self {
                user_ids: core::mem::take(&mut t.user_ids),
                excluded_user_ids: core::mem::take(&mut t.excluded_user_ids),
                countries: core::mem::take(&mut t.countries),
            },
        }
    }

    fn copy(flag: &Flag) -> Self {
        match &flag.targeting_rules {
            None => Self::default(),
            Some(t) => Self {
                user_ids: t.user_ids.clone(),
                excluded_user_ids: t.excluded_user_ids.clone(),
                countries: t.countries.clone(),
            },
        }
    }
}

/// The flags and segments a flag may refer to.
pub(crate) struct FlagScope<'a> {
    /// Flag key → position in `entries`.
    pub(crate) index: KeyIndex<'a>,
    entries: &'a [Entry<'a, Flag>],
}

impl<'a> FlagScope<'a> {
    /// Indexes `entries` by key; the first of duplicate keys wins.
    pub(crate) fn new(entries: &'a [Entry<'a, Flag>]) -> Self {
        let mut index = KeyIndex::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if let Some(key) = entry.key() {
                index.entry(key).or_insert(index_u32(i));
            }
        }
        Self { index, entries }
    }

    /// Resolves a prerequisite: `Err` with the message when the flag or variation is unknown.
    fn prerequisite(
        &self,
        key: &str,
        variation: &str,
    ) -> Result<CompiledPrerequisite, (bool, String)> {
        let Some(&flag) = self.index.get(key) else {
            return Err((true, format!("unknown flag \"{key}\"")));
        };
        match self.entries.get(flag as usize) {
            Some(Entry::Parsed(other)) => match variation_index(other, variation) {
                Some(v) => Ok(CompiledPrerequisite {
                    flag,
                    variation: Some(v),
                }),
                None => Err((
                    false,
                    format!("flag \"{key}\" has no variation \"{variation}\""),
                )),
            },
            _ => Ok(CompiledPrerequisite {
                flag,
                variation: None,
            }),
        }
    }
}

/// Position of variation `key` in `flag`, with the implicit `on`/`off` of a flag without
/// variations.
fn variation_index(flag: &Flag, key: &str) -> Option<u32> {
    match &flag.variations {
        None => match key {
            "on" => Some(0),
            "off" => Some(1),
            _ => None,
        },
        Some(variations) => variations.iter().position(|v| v.key == key).map(index_u32),
    }
}

/// Compiles one flag. Problems are reported under `path`, and make the flag error-serving.
/// `lists` are the flag's user lists when they were moved out of it ([`FlagLists::take`]).
pub(crate) fn compile_flag(
    flag: &Flag,
    lists: Option<FlagLists>,
    scope: &FlagScope<'_>,
    clauses: &mut ClauseCompiler<'_>,
    diag: &mut Diagnostics,
    path: &Path<'_>,
) -> CompiledFlag {
    let before = diag.len();
    if let Err(message) = check_key(&flag.flag_key) {
        diag.report(&path.field("flagKey"), message);
    }
    let lists = lists.unwrap_or_else(|| FlagLists::copy(flag));
    let mut c = FlagCompiler {
        flag,
        diag,
        path,
        clauses,
        lists,
        attrs: AttrTable::default(),
        variations: Vec::new(),
        boolean: true,
    };
    c.variations();
    let default = c.default_variation();
    let off = match &flag.off_variation {
        Some(key) => c.lookup(key, &path.field("offVariation")),
        None => default,
    };
    let targeting = c.targeting(default, off, scope);
    let FlagCompiler {
        variations, diag, ..
    } = c;

    let body = match targeting {
        Some(targeting) if diag.len() == before => Body::Valid(Box::new(targeting)),
        _ => {
            let message = diag.errors.get(before).map_or_else(
                || String::from("invalid flag"),
                |e| format!("invalid flag configuration: {e}"),
            );
            let variation = if flag.enabled {
                default.or(off)
            } else {
                off.or(default)
            };
            let value = match default_value(flag) {
                Some(v) => v.clone(),
                None if flag.variations.is_none() => Value::Bool(false),
                None => Value::Null,
            };
            Body::Broken {
                message,
                variation,
                value,
            }
        }
    };
    CompiledFlag {
        key: flag.flag_key.clone(),
        version: flag.version,
        enabled: flag.enabled,
        salt: SaltState::new(flag.salt.as_deref().unwrap_or(&flag.flag_key).as_bytes()),
        variations,
        body,
    }
}

struct FlagCompiler<'f, 'd, 'p, 'c, 's> {
    flag: &'f Flag,
    diag: &'d mut Diagnostics,
    path: &'p Path<'p>,
    clauses: &'c mut ClauseCompiler<'s>,
    lists: FlagLists,
    /// Cache slots of the attributes the flag's clauses read.
    attrs: AttrTable,
    variations: Vec<CompiledVariation>,
    /// All values are booleans (or there are no explicit variations): implicit `on`/`off`.
    boolean: bool,
}

impl FlagCompiler<'_, '_, '_, '_, '_> {
    fn variations(&mut self) {
        let Some(variations) = &self.flag.variations else {
            self.variations = Vec::from([
                CompiledVariation {
                    key: String::from("on"),
                    value: Value::Bool(true),
                },
                CompiledVariation {
                    key: String::from("off"),
                    value: Value::Bool(false),
                },
            ]);
            return;
        };
        let path = self.path.field("variations");
        if variations.is_empty() || variations.len() > limits::VARIATIONS {
            self.diag.report(
                &path,
                format!(
                    "a flag needs 1 to {} variations, got {}",
                    limits::VARIATIONS,
                    variations.len()
                ),
            );
        }
        let first_kind = variations.first().map(|v| Kind::of(&v.value));
        for (i, variation) in variations.iter().enumerate() {
            let item = path.index(i);
            if variations.iter().take(i).any(|v| v.key == variation.key) {
                self.diag.report(
                    &item.field("key"),
                    format!("duplicate variation key \"{}\"", variation.key),
                );
            }
            let kind = Kind::of(&variation.value);
            if kind == Kind::Null {
                self.diag
                    .report(&item.field("value"), "null is not a flag value");
            } else if Some(kind) != first_kind {
                self.diag.report(
                    &item.field("value"),
                    format!(
                        "expected {} like variations[0], got {}",
                        first_kind.unwrap_or(kind).name(),
                        kind.name()
                    ),
                );
            }
        }
        self.boolean = first_kind == Some(Kind::Boolean);
        self.variations = variations
            .iter()
            .map(|v| CompiledVariation {
                key: v.key.clone(),
                value: v.value.clone(),
            })
            .collect();
    }

    fn lookup(&mut self, key: &str, path: &Path<'_>) -> Option<u32> {
        let found = self
            .variations
            .iter()
            .position(|v| v.key == key)
            .map(index_u32);
        if found.is_none() {
            self.diag
                .report(path, format!("unknown variation \"{key}\""));
        }
        found
    }

    /// The variation served when nothing targets the user (see "Defaults" in the spec).
    fn default_variation(&mut self) -> Option<u32> {
        let flag = self.flag;
        let value_path = self.path.field("defaultValue");
        let by_value = match default_value(flag) {
            None => None,
            Some(value) if flag.variations.is_none() && !value.is_boolean() => {
                self.diag.report(
                    &value_path,
                    format!(
                        "a flag without variations serves booleans, got {}",
                        Kind::of(value).name()
                    ),
                );
                return None;
            }
            Some(value) => {
                let mut matching = self
                    .variations
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| json_eq(&v.value, value));
                match (matching.next(), matching.next()) {
                    (Some((i, _)), None) => Some(index_u32(i)),
                    (None, _) => {
                        self.diag
                            .report(&value_path, "equals the value of no variation");
                        return None;
                    }
                    (Some(_), Some(_)) if flag.default_variation.is_none() => {
                        self.diag.report(&value_path, "equals the value of several variations; name one with defaultVariation");
                        return None;
                    }
                    (Some(_), Some(_)) => None,
                }
            }
        };
        let variation_path = self.path.field("defaultVariation");
        match (&flag.default_variation, by_value) {
            (Some(key), _) => {
                let chosen = self.lookup(key, &variation_path)?;
                let holds_value = match (default_value(flag), self.variations.get(chosen as usize))
                {
                    (Some(value), Some(v)) => json_eq(&v.value, value),
                    _ => true,
                };
                if !holds_value {
                    self.diag.report(
                        &variation_path,
                        format!("variation \"{key}\" does not hold defaultValue"),
                    );
                }
                Some(chosen)
            }
            (None, Some(chosen)) => Some(chosen),
            (None, None) if self.boolean => {
                let found = self
                    .variations
                    .iter()
                    .position(|v| v.key == "off")
                    .map(index_u32);
                if found.is_none() {
                    self.diag.report(
                        &variation_path,
                        "required: no defaultValue, and no variation is named \"off\"",
                    );
                }
                found
            }
            (None, None) => {
                self.diag.report(
                    &variation_path,
                    "required for a flag that does not serve booleans (or give defaultValue)",
                );
                None
            }
        }
    }

    fn targeting(
        &mut self,
        default: Option<u32>,
        off: Option<u32>,
        scope: &FlagScope<'_>,
    ) -> Option<Targeting> {
        let flag = self.flag;
        let empty = TargetingRules::default();
        let rules_model = flag.targeting_rules.as_ref().unwrap_or(&empty);
        let uses_seed_targeting = rules_model.percentage.is_some()
            || !rules_model.segments.is_empty()
            || !self.lists.user_ids.is_empty()
            || !self.lists.countries.is_empty();
        let is_static = !uses_seed_targeting && rules_model.rules.is_empty();

        let on_path = self.path.field("onVariation");
        let on = match &flag.on_variation {
            Some(key) => self.lookup(key, &on_path),
            None if self.boolean => self
                .variations
                .iter()
                .position(|v| v.key == "on")
                .map(index_u32),
            None => None,
        };
        if on.is_none() && flag.on_variation.is_none() && (uses_seed_targeting || is_static) {
            self.diag.report(
                &on_path,
                "required when the flag uses percentage, segments, userIds or countries, or has no targeting",
            );
        }

        let prerequisites = self.prerequisites(scope);
        let overrides = self.overrides(on, off);
        let targeting = self.seed_targeting(rules_model);
        let rules = self.rules(rules_model);
        Some(Targeting {
            off: off?,
            default: default?,
            on,
            prerequisites,
            overrides,
            excluded: targeting.excluded,
            user_ids: targeting.user_ids,
            segments: targeting.segments,
            rules: rules?,
            percentage: targeting.percentage,
            countries: targeting.countries,
            bucket_by: targeting.bucket_by,
            is_static,
        })
    }

    fn prerequisites(&mut self, scope: &FlagScope<'_>) -> Vec<CompiledPrerequisite> {
        let path = self.path.field("prerequisites");
        let mut out = Vec::with_capacity(self.flag.prerequisites.len());
        for (i, prerequisite) in self.flag.prerequisites.iter().enumerate() {
            let item = path.index(i);
            match scope.prerequisite(&prerequisite.flag_key, &prerequisite.variation) {
                Ok(compiled) => out.push(compiled),
                Err((true, message)) => self.diag.report(&item.field("flagKey"), message),
                Err((false, message)) => self.diag.report(&item.field("variation"), message),
            }
        }
        out
    }

    fn overrides(
        &mut self,
        on: Option<u32>,
        off: Option<u32>,
    ) -> HashMap<String, Vec<CompiledOverride>> {
        let path = self.path.field("overrides");
        let list = &self.flag.overrides;
        let mut out: HashMap<String, Vec<CompiledOverride>> = HashMap::new();
        if list.len() > limits::USER_IDS {
            self.diag.report(
                &path,
                format!(
                    "{} overrides exceed the limit of {}",
                    list.len(),
                    limits::USER_IDS
                ),
            );
            return out;
        }
        for (i, item) in list.iter().enumerate() {
            let item_path = path.index(i);
            if let Some(compiled) = self.override_entry(item, on, off, &item_path) {
                out.entry(item.user_id.clone()).or_default().push(compiled);
            }
        }
        out
    }

    fn override_entry(
        &mut self,
        item: &Override,
        on: Option<u32>,
        off: Option<u32>,
        path: &Path<'_>,
    ) -> Option<CompiledOverride> {
        if item.user_id.is_empty() {
            self.diag.report(&path.field("userId"), "must not be empty");
        }
        let expires_at = match &item.expires_at {
            None => None,
            Some(text) => {
                let parsed = parse_rfc3339_millis(text);
                if parsed.is_none() {
                    self.diag.report(
                        &path.field("expiresAt"),
                        format!("not an RFC 3339 timestamp: \"{text}\""),
                    );
                }
                Some(parsed?)
            }
        };
        let variation = match (&item.variation, item.enabled) {
            (Some(key), None) => self.lookup(key, &path.field("variation"))?,
            (None, Some(enabled)) => {
                let enabled_path = path.field("enabled");
                if !self.boolean {
                    self.diag.report(
                        &enabled_path,
                        "only boolean flags take enabled overrides; use variation",
                    );
                    return None;
                }
                let chosen = if enabled { on } else { off };
                if chosen.is_none() {
                    let which = if enabled {
                        "onVariation"
                    } else {
                        "offVariation"
                    };
                    self.diag
                        .report(&enabled_path, format!("the flag has no {which} to serve"));
                }
                chosen?
            }
            (Some(_), Some(_)) => {
                self.diag
                    .report(path, "give variation or enabled, not both");
                return None;
            }
            (None, None) => {
                self.diag.report(path, "needs variation or enabled");
                return None;
            }
        };
        Some(CompiledOverride {
            variation,
            expires_at,
        })
    }

    fn seed_targeting(&mut self, rules: &TargetingRules) -> SeedTargeting {
        let path = self.path.field("targetingRules");
        let lists = core::mem::take(&mut self.lists);
        for (name, list) in [
            ("userIds", &lists.user_ids),
            ("excludedUserIds", &lists.excluded_user_ids),
            ("countries", &lists.countries),
        ] {
            if list.len() > limits::USER_IDS {
                self.diag.report(
                    &path.field(name),
                    format!(
                        "{} entries exceed the limit of {}",
                        list.len(),
                        limits::USER_IDS
                    ),
                );
            }
        }
        let percentage = rules.percentage.and_then(|p| {
            let units = percent_to_units(p);
            if units.is_none() {
                self.diag
                    .report(&path.field("percentage"), percent_message(p));
            }
            units
        });
        let segments_path = path.field("segments");
        let mut segments = Vec::with_capacity(rules.segments.len());
        for (i, key) in rules.segments.iter().enumerate() {
            match self.clauses.segments.get(key.as_str()) {
                Some(&s) => segments.push(s),
                None => self.diag.report(
                    &segments_path.index(i),
                    format!("unknown segment \"{key}\""),
                ),
            }
        }
        SeedTargeting {
            excluded: StrSet::new(lists.excluded_user_ids),
            user_ids: StrSet::new(lists.user_ids),
            countries: StrSet::new(lists.countries),
            segments,
            percentage,
            bucket_by: self.bucket_by(rules.bucket_by.as_deref(), &path.field("bucketBy")),
        }
    }

    fn bucket_by(&mut self, name: Option<&str>, path: &Path<'_>) -> Attr {
        match name {
            None => Attr::TargetingKey,
            Some("") => {
                self.diag.report(path, "must not be empty");
                Attr::TargetingKey
            }
            Some(name) => Attr::new(name),
        }
    }

    fn rules(&mut self, model: &TargetingRules) -> Option<Vec<CompiledRule>> {
        let targeting_path = self.path.field("targetingRules");
        let path = targeting_path.field("rules");
        if model.rules.len() > limits::RULES {
            self.diag.report(
                &path,
                format!(
                    "{} rules exceed the limit of {}",
                    model.rules.len(),
                    limits::RULES
                ),
            );
            return None;
        }
        let mut out = Vec::with_capacity(model.rules.len());
        let mut complete = true;
        for (i, rule) in model.rules.iter().enumerate() {
            match self.rule(rule, &path.index(i)) {
                Some(compiled) => out.push(compiled),
                None => complete = false,
            }
        }
        complete.then_some(out)
    }

    fn rule(&mut self, rule: &Rule, path: &Path<'_>) -> Option<CompiledRule> {
        let clauses_path = path.field("clauses");
        if rule.clauses.len() > limits::CLAUSES_PER_RULE {
            self.diag.report(
                &clauses_path,
                format!(
                    "{} clauses exceed the limit of {}",
                    rule.clauses.len(),
                    limits::CLAUSES_PER_RULE
                ),
            );
            return None;
        }
        let mut clauses = Vec::with_capacity(rule.clauses.len());
        let mut complete = true;
        for (i, clause) in rule.clauses.iter().enumerate() {
            match self
                .clauses
                .compile(clause, &mut self.attrs, self.diag, &clauses_path.index(i))
            {
                Some(compiled) => clauses.push(compiled),
                None => complete = false,
            }
        }
        let serve = match (&rule.variation, &rule.rollout) {
            (Some(key), None) => self
                .lookup(key, &path.field("variation"))
                .map(Serve::Variation),
            (None, Some(rollout)) => self
                .rollout(rollout, &path.field("rollout"))
                .map(Serve::Rollout),
            (Some(_), Some(_)) => {
                self.diag
                    .report(path, "give variation or rollout, not both");
                None
            }
            (None, None) => {
                self.diag.report(path, "needs variation or rollout");
                None
            }
        };
        if complete {
            Some(CompiledRule {
                clauses,
                serve: serve?,
            })
        } else {
            None
        }
    }

    fn rollout(&mut self, rollout: &Rollout, path: &Path<'_>) -> Option<CompiledRollout> {
        let weights_path = path.field("weights");
        let mut thresholds = Vec::with_capacity(rollout.weights.len());
        let mut total: u32 = 0;
        let mut complete = true;
        for (i, weight) in rollout.weights.iter().enumerate() {
            let item = weights_path.index(i);
            let variation = self.lookup(&weight.variation, &item.field("variation"));
            let units = percent_to_units(weight.weight);
            if units.is_none() {
                self.diag
                    .report(&item.field("weight"), percent_message(weight.weight));
            }
            match (variation, units) {
                (Some(variation), Some(units)) => {
                    total = total.saturating_add(units);
                    thresholds.push((total, variation));
                }
                _ => complete = false,
            }
        }
        if complete && total != crate::BUCKETS {
            self.diag.report(
                &weights_path,
                format!("weights sum to {}, not 100", units_to_text(total)),
            );
            complete = false;
        }
        let bucket_by = self.bucket_by(rollout.bucket_by.as_deref(), &path.field("bucketBy"));
        complete.then_some(CompiledRollout {
            bucket_by,
            thresholds,
        })
    }
}

/// `defaultValue`; JSON `null` is the same as absent (serde reads both as `None`).
fn default_value(flag: &Flag) -> Option<&Value> {
    flag.default_value.as_ref().filter(|v| !v.is_null())
}

struct SeedTargeting {
    excluded: StrSet,
    user_ids: StrSet,
    countries: StrSet,
    segments: Vec<u32>,
    percentage: Option<u32>,
    bucket_by: Attr,
}

fn percent_message(p: f64) -> String {
    format!("must be a percentage from 0 to 100 with at most 3 decimals, got {p}")
}

/// Units of 0.001 % as a percentage, without floating point noise (`33333` → `33.333`).
fn units_to_text(units: u32) -> String {
    let whole = units / 1000;
    let fraction = units % 1000;
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}
