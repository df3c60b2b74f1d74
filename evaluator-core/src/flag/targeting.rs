//! Compiling a flag's targeting: prerequisites, overrides, basic targeting (`userIds`,
//! `excludedUserIds`, `segments`, `countries`, `percentage`), rules, rollouts.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hashbrown::HashMap;

use super::compile::{FlagCompiler, FlagScope};
use super::{
    CompiledOverride, CompiledPrerequisite, CompiledRollout, CompiledRule, Serve, Targeting,
};
use crate::attribute::Attr;
use crate::bucketing::percent_to_units;
use crate::model::{Override, Rollout, Rule, TargetingRules};
use crate::path::Path;
use crate::sets::StrSet;
use crate::time::parse_rfc3339_millis;
use crate::validate::{index_u32, limits};

impl FlagCompiler<'_, '_, '_, '_, '_> {
    pub(super) fn targeting(
        &mut self,
        default: Option<u32>,
        off: Option<u32>,
        scope: &FlagScope<'_>,
    ) -> Option<Targeting> {
        let flag = self.flag;
        let empty = TargetingRules::default();
        let rules_model = flag.targeting_rules.as_ref().unwrap_or(&empty);
        let uses_basic_targeting = rules_model.percentage.is_some()
            || !rules_model.segments.is_empty()
            || !self.lists.user_ids.is_empty()
            || !self.lists.countries.is_empty();
        let is_static = !uses_basic_targeting && rules_model.rules.is_empty();

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
        if on.is_none() && flag.on_variation.is_none() && (uses_basic_targeting || is_static) {
            self.diag.report(
                &on_path,
                "required when the flag uses percentage, segments, userIds or countries, or has no targeting",
            );
        }

        let prerequisites = self.prerequisites(scope);
        let overrides = self.overrides(on, off);
        let targeting = self.basic_targeting(rules_model);
        let rules = self.rules(rules_model);
        let context_free = is_static
            && prerequisites.is_empty()
            && overrides.is_empty()
            && targeting.excluded.is_empty();
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
            context_free,
        })
    }

    fn prerequisites(&mut self, scope: &FlagScope<'_>) -> Vec<CompiledPrerequisite> {
        let path = self.path.field("prerequisites");
        let count = self.flag.prerequisites.len();
        if !self
            .diag
            .within_limit(&path, count, limits::PREREQUISITES, "prerequisites")
        {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(count);
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
        if !self
            .diag
            .within_limit(&path, list.len(), limits::OVERRIDES, "overrides")
        {
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

    fn basic_targeting(&mut self, rules: &TargetingRules) -> BasicTargeting {
        let path = self.path.field("targetingRules");
        let lists = core::mem::take(&mut self.lists);
        for (name, list) in [
            ("userIds", &lists.user_ids),
            ("excludedUserIds", &lists.excluded_user_ids),
            ("countries", &lists.countries),
        ] {
            self.diag
                .within_limit(&path.field(name), list.len, limits::USER_IDS, "entries");
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
        BasicTargeting {
            excluded: lists.excluded_user_ids.set,
            user_ids: lists.user_ids.set,
            countries: lists.countries.set,
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
        if !self
            .diag
            .within_limit(&path, model.rules.len(), limits::RULES, "rules")
        {
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
        if !self.diag.within_limit(
            &clauses_path,
            rule.clauses.len(),
            limits::CLAUSES_PER_RULE,
            "clauses",
        ) {
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

/// The compiled basic targeting fields of `targetingRules` (all but `rules`).
struct BasicTargeting {
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
