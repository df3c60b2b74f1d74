//! Semantic versions as the `semver*` operators read them: a leading `v` is allowed and missing
//! minor/patch numbers are zero (`v1.2` is `1.2.0`). Precedence follows semver 2.0: build
//! metadata is ignored and a pre-release sorts before its release.

use core::cmp::Ordering;
use semver::{BuildMetadata, Prerelease};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Prerelease,
}

impl SemVer {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        if let Some(build) = build {
            BuildMetadata::new(build).ok().filter(|b| !b.is_empty())?;
        }
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Prerelease::new(pre).ok().filter(|p| !p.is_empty())?),
            None => (rest, Prerelease::EMPTY),
        };
        let mut parts = core.split('.');
        let major = number(parts.next()?)?;
        let minor = parts.next().map_or(Some(0), number)?;
        let patch = parts.next().map_or(Some(0), number)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
            pre,
        })
    }
}

/// A numeric identifier: digits without leading zeros (semver 2.0, item 2).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| self.pre.cmp(&other.pre))
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::SemVer;

    fn v(s: &str) -> SemVer {
        SemVer::parse(s).unwrap()
    }

    #[test]
    fn short_and_v_prefixed_versions_are_padded() {
        assert_eq!(v("1.2"), v("1.2.0"));
        assert_eq!(v("v1.2.3"), v("1.2.3"));
        assert_eq!(v("2"), v("2.0.0"));
        assert_eq!(v("1.2-beta"), v("1.2.0-beta"));
    }

    #[test]
    fn precedence_follows_semver() {
        assert!(v("1.2.3") < v("1.10.0"));
        assert!(v("1.0.0-alpha") < v("1.0.0"));
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-2") < v("1.0.0-10"));
        assert_eq!(
            v("1.0.0+build.1").cmp(&v("1.0.0+build.2")),
            core::cmp::Ordering::Equal
        );
    }

    #[test]
    fn malformed_versions_are_rejected() {
        for bad in [
            "", "v", "1.2.3.4", "01.2.3", "1.x", "1.2.3-", "1.2.3+", "1..2", " 1.2.3", "V1.2.3",
        ] {
            assert_eq!(SemVer::parse(bad), None, "{bad:?}");
        }
    }
}
