//! What the worker and an environment's Durable Object say to each other (bodies of internal
//! requests to the object's stub; the object is not reachable from outside), and the record the
//! object stores so that a restarted object still knows the current version.
//!
//! Plain lines rather than JSON: every `serde` type deserialised from JSON costs the wasm its
//! own copy of the parser's state machine (several KB each, measured), and these are a few
//! numbers and hex hashes. Nothing here comes from outside the deployment: the worker writes
//! what the object reads.

use evaluation_api::stream::ConfigVersion;

/// Path of the request that opens a stream (body: [`Open`]; answer: the stream, or a refusal).
pub(crate) const OPEN_PATH: &str = "/open";
/// Path of the request that announces a stored snapshot (body: a [`Known`] with both parts;
/// answer: 204).
pub(crate) const CHANGE_PATH: &str = "/change";
/// The key of the object's [`Known`] in its storage.
pub(crate) const RECORD_KEY: &str = "config";

/// Written for an absent value.
const NONE: &str = "-";
/// Line 2 of a [`Known`] whose keys follow, or are unknown.
const KEYS_FOLLOW: &str = "keys";
const KEYS_UNKNOWN: &str = "no keys";

/// Open a stream: the worker has verified the token and checked its key against the snapshot it
/// holds (`seen`, if it holds one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Open {
    /// The hash of the client key the token was issued for (`None`: issued without one).
    pub(crate) key_sha256: Option<String>,
    /// The client's `Last-Event-ID`, when it is a version.
    pub(crate) last_event_id: Option<u64>,
    /// The version of the snapshot the worker holds, when it holds one.
    pub(crate) seen: Option<ConfigVersion>,
}

impl Open {
    /// Three lines: the key hash, the last event id, the version seen (`-` for none).
    pub(crate) fn encode(&self) -> String {
        let last_event_id = self
            .last_event_id
            .map_or_else(|| NONE.to_owned(), |id| id.to_string());
        format!(
            "{}\n{last_event_id}\n{}",
            self.key_sha256.as_deref().unwrap_or(NONE),
            version_text(self.seen)
        )
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut lines = text.split('\n');
        let (Some(key), Some(last_event_id), Some(seen), None) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return None;
        };
        Some(Self {
            key_sha256: (key != NONE).then(|| key.to_owned()),
            last_event_id: match last_event_id {
                NONE => None,
                id => Some(id.parse().ok()?),
            },
            seen: parse_version(seen)?,
        })
    }
}

/// What is known of an environment's configuration: the version its streams were last told of,
/// and the hashes (lowercase hex SHA-256) of that snapshot's client keys when a publish told
/// them (one per line: snapshot validation allows nothing but 64 hex characters). A publish
/// announces one with both; the object stores its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Known {
    pub(crate) config: Option<ConfigVersion>,
    pub(crate) keys: Option<Vec<String>>,
}

impl Known {
    /// The version (`-` for none), then `keys` and one hash per line, or `no keys`.
    pub(crate) fn encode(&self) -> String {
        let mut text = version_text(self.config);
        text.push('\n');
        match &self.keys {
            Some(keys) => {
                text.push_str(KEYS_FOLLOW);
                for key in keys {
                    text.push('\n');
                    text.push_str(key);
                }
            }
            None => text.push_str(KEYS_UNKNOWN),
        }
        text
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut lines = text.split('\n');
        let config = parse_version(lines.next()?)?;
        let keys = match lines.next()? {
            KEYS_FOLLOW => Some(lines.map(str::to_owned).collect()),
            KEYS_UNKNOWN if lines.next().is_none() => None,
            _ => return None,
        };
        Some(Self { config, keys })
    }
}

/// `42`, `42 1771622898` (with `lastModified`), or `-`.
fn version_text(config: Option<ConfigVersion>) -> String {
    match config {
        None => NONE.to_owned(),
        Some(ConfigVersion {
            version,
            last_modified: None,
        }) => version.to_string(),
        Some(ConfigVersion {
            version,
            last_modified: Some(at),
        }) => format!("{version} {at}"),
    }
}

/// The version of a line [`version_text`] wrote; `None` when it is not one.
fn parse_version(line: &str) -> Option<Option<ConfigVersion>> {
    if line == NONE {
        return Some(None);
    }
    let (version, last_modified) = match line.split_once(' ') {
        Some((version, at)) => (version, Some(at.parse().ok()?)),
        None => (line, None),
    };
    Some(Some(ConfigVersion {
        version: version.parse().ok()?,
        last_modified,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";

    fn config(version: u64, last_modified: Option<i64>) -> Option<ConfigVersion> {
        Some(ConfigVersion {
            version,
            last_modified,
        })
    }

    #[test]
    fn open_requests_read_back_as_written() {
        for open in [
            Open {
                key_sha256: Some(KEY.to_owned()),
                last_event_id: Some(41),
                seen: config(42, Some(1_771_622_898)),
            },
            Open {
                key_sha256: None,
                last_event_id: None,
                seen: None,
            },
        ] {
            assert_eq!(Open::decode(&open.encode()), Some(open));
        }
        assert_eq!(
            Open {
                key_sha256: Some(KEY.to_owned()),
                last_event_id: None,
                seen: config(7, None),
            }
            .encode(),
            format!("{KEY}\n-\n7")
        );
        for broken in [
            "",
            "-\n-",
            "-\n-\n-\nmore",
            "-\nx\n-",
            "-\n-\n7 x",
            "-\n-\nx",
        ] {
            assert_eq!(Open::decode(broken), None, "{broken:?}");
        }
    }

    #[test]
    fn known_configurations_read_back_as_written() {
        for known in [
            Known {
                config: config(3, Some(-1)),
                keys: Some(vec![KEY.to_owned(), "0".repeat(64)]),
            },
            Known {
                config: config(3, None),
                keys: Some(Vec::new()),
            },
            Known {
                config: config(9, None),
                keys: None,
            },
            Known::default(),
        ] {
            assert_eq!(Known::decode(&known.encode()), Some(known));
        }
        assert_eq!(
            Known {
                config: config(5, Some(1_771_622_898)),
                keys: Some(vec![KEY.to_owned()]),
            }
            .encode(),
            format!("5 1771622898\nkeys\n{KEY}")
        );
        for broken in ["", "5", "5\nmaybe", "x\nkeys", "5\nno keys\nextra"] {
            assert_eq!(Known::decode(broken), None, "{broken:?}");
        }
    }
}
