//! Compiling one flag: scope of references, variations and defaults; targeting is in
//! [`super::targeting`].

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde_json::Value;

use super::{Body, CompiledFlag, CompiledPrerequisite, CompiledVariation};
use crate::attribute::AttrTable;
use crate::bucketing::SaltState;
use crate::json::{json_eq, Kind};
use crate::model::Flag;
use crate::operators::{regex_operands, ClauseCompiler, KeyIndex};
use crate::path::{Diagnostics, Path};
use crate::sets::StrList;
use crate::snapshot::Entry;
use crate::validate::{check_key, index_u32, limits};

/// A flag's user lists, moved out of an owned snapshot so compiling need not copy them.
#[derive(Default)]
pub(crate) struct FlagLists {
    pub(crate) user_ids: StrList,
    pub(crate) excluded_user_ids: StrList,
    pub(crate) countries: StrList,
}

impl FlagLists {
    pub(crate) fn take(flag: &mut Flag) -> Self {
        match &mut flag.targeting_rules {
            None => Self::default(),
            Some(t) => Self {
                user_ids: StrList::of(core::mem::take(&mut t.user_ids)),
                excluded_user_ids: StrList::of(core::mem::take(&mut t.excluded_user_ids)),
                countries: StrList::of(core::mem::take(&mut t.countries)),
            },
        }
    }

    fn copy(flag: &Flag) -> Self {
        match &flag.targeting_rules {
            None => Self::default(),
            Some(t) => Self {
                user_ids: StrList::of(t.user_ids.clone()),
                excluded_user_ids: StrList::of(t.excluded_user_ids.clone()),
                countries: StrList::of(t.countries.clone()),
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
    pub(super) fn prerequisite(
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
    let rules = flag
        .targeting_rules
        .as_ref()
        .map_or(&[][..], |t| t.rules.as_slice());
    let targeting_path = path.field("targetingRules");
    diag.within_limit(
        &targeting_path.field("rules"),
        regex_operands(rules.iter().flat_map(|r| &r.clauses)),
        limits::REGEXES_PER_FLAG,
        "regular expressions",
    );

    let body = match targeting {
        Some(targeting) if diag.len() == before => Body::Valid(Box::new(targeting)),
        _ => {
            // The served message names the field from the flag, not from the snapshot root:
            // the flag's position in the snapshot means nothing to a client, and a flag must be
            // served the same message wherever it sits (edge isolates compile subsets).
            let flag_path = path.render();
            let message = diag.errors.get(before).map_or_else(
                || String::from("invalid flag"),
                |e| {
                    let field = e
                        .path
                        .strip_prefix(flag_path.as_str())
                        .map_or(e.path.as_str(), |rest| rest.trim_start_matches('.'));
                    if field.is_empty() {
                        format!("invalid flag configuration: {}", e.message)
                    } else {
                        format!("invalid flag configuration: {field}: {}", e.message)
                    }
                },
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
    let context_free = match &body {
        Body::Valid(t) => !flag.enabled || t.context_free,
        Body::Broken { .. } => false,
    };
    CompiledFlag {
        key: flag.flag_key.clone(),
        version: flag.version,
        enabled: flag.enabled,
        context_free,
        salt: SaltState::new(flag.salt.as_deref().unwrap_or(&flag.flag_key).as_bytes()),
        variations,
        body,
    }
}

pub(super) struct FlagCompiler<'f, 'd, 'p, 'c, 's> {
    pub(super) flag: &'f Flag,
    pub(super) diag: &'d mut Diagnostics,
    pub(super) path: &'p Path<'p>,
    pub(super) clauses: &'c mut ClauseCompiler<'s>,
    pub(super) lists: FlagLists,
    /// Cache slots of the attributes the flag's clauses read.
    pub(super) attrs: AttrTable,
    pub(super) variations: Vec<CompiledVariation>,
    /// All values are booleans (or there are no explicit variations): implicit `on`/`off`.
    pub(super) boolean: bool,
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

    pub(super) fn lookup(&mut self, key: &str, path: &Path<'_>) -> Option<u32> {
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
}

/// `defaultValue`; JSON `null` is the same as absent (serde reads both as `None`).
fn default_value(flag: &Flag) -> Option<&Value> {
    flag.default_value.as_ref().filter(|v| !v.is_null())
}
