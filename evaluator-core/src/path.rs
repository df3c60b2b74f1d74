//! Field paths for validation messages (`flags[3].targetingRules.rules[2].clauses[0].operator`).
//!
//! A path is a chain of stack frames that is rendered into a string only when a problem is
//! reported, so compiling a valid snapshot spends nothing on paths.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::validate::ValidationError;

#[derive(Clone, Copy)]
enum Segment<'a> {
    Field(&'a str),
    Index(usize),
}

/// A position in the document being compiled; `Path::ROOT` is the document itself.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Option<Segment<'a>>,
}

impl<'a> Path<'a> {
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        segment: None,
    };

    /// The member `name` of this object.
    pub(crate) fn field(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Some(Segment::Field(name)),
        }
    }

    /// Element `index` of this array.
    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Some(Segment::Index(index)),
        }
    }

    pub(crate) fn render(&self) -> String {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(path) = at {
            if let Some(segment) = path.segment {
                segments.push(segment);
            }
            at = path.parent;
        }
        let mut out = String::new();
        for segment in segments.iter().rev() {
            match segment {
                Segment::Field(name) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Segment::Index(i) => {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }
}

/// Collects the problems found while compiling.
#[derive(Default)]
pub(crate) struct Diagnostics {
    pub(crate) errors: Vec<ValidationError>,
}

impl Diagnostics {
    pub(crate) fn report(&mut self, path: &Path<'_>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.render(),
            message: message.into(),
        });
    }

    /// Whether `len` is within `limit`; if not, reports "{len} {what} exceed the limit of
    /// {limit}" at `path`.
    pub(crate) fn within_limit(
        &mut self,
        path: &Path<'_>,
        len: usize,
        limit: usize,
        what: &str,
    ) -> bool {
        if len > limit {
            self.report(path, format!("{len} {what} exceed the limit of {limit}"));
            return false;
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_fields_with_dots_and_indexes_in_brackets() {
        let root = Path::ROOT;
        let flags = root.field("flags");
        let flag = flags.index(3);
        let rules = flag.field("targetingRules");
        let rules = rules.field("rules");
        let rule = rules.index(2);
        assert_eq!(rule.render(), "flags[3].targetingRules.rules[2]");
        assert_eq!(root.field("flagKey").render(), "flagKey");
    }
}
