//! What the worker and an environment's Durable Object say to each other (JSON bodies of
//! internal requests to the object's stub; the object is not reachable from outside), and the
//! record the object stores so that a restarted object still knows the current version.

use evaluation_api::stream::ConfigVersion;
use serde::{Deserialize, Serialize};

/// Path of the request that opens a stream (body: [`Open`]; answer: the stream, or a refusal).
pub(crate) const OPEN_PATH: &str = "/open";
/// Path of the request that announces a stored snapshot (body: [`Change`]; answer: 204).
pub(crate) const CHANGE_PATH: &str = "/change";
/// The key of the object's [`Record`] in its storage.
pub(crate) const RECORD_KEY: &str = "config";

/// A snapshot version as streams announce it ([`ConfigVersion`], which is not `serde`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Version {
    pub(crate) version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_modified: Option<i64>,
}

impl From<ConfigVersion> for Version {
    fn from(config: ConfigVersion) -> Self {
        Self {
            version: config.version,
            last_modified: config.last_modified,
        }
    }
}

impl From<Version> for ConfigVersion {
    fn from(version: Version) -> Self {
        Self {
            version: version.version,
            last_modified: version.last_modified,
        }
    }
}

/// Open a stream: the worker has verified the token and checked its key against the snapshot it
/// holds (`seen`, if it holds one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Open {
    /// The hash of the client key the token was issued for (`None`: issued without one).
    pub(crate) key_sha256: Option<String>,
    /// The client's `Last-Event-ID`, when it is a version.
    pub(crate) last_event_id: Option<u64>,
    /// The version of the snapshot the worker holds, when it holds one.
    pub(crate) seen: Option<Version>,
}

/// A snapshot was stored: its version and the hashes of the client keys it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Change {
    pub(crate) config: Version,
    pub(crate) keys: Vec<String>,
}

/// What the object stores: the version its streams were last told of, and that version's
/// client keys when a publish told them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    pub(crate) config: Option<Version>,
    pub(crate) keys: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_small_camel_case_json() {
        let open = Open {
            key_sha256: Some("ab".repeat(32)),
            last_event_id: Some(41),
            seen: Some(Version {
                version: 42,
                last_modified: None,
            }),
        };
        let json = serde_json::to_string(&open).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"keySha256":"{}","lastEventId":41,"seen":{{"version":42}}}}"#,
                "ab".repeat(32)
            )
        );
        assert_eq!(serde_json::from_str::<Open>(&json).unwrap(), open);
        let record: Record = serde_json::from_str("{}").unwrap();
        assert_eq!(record, Record::default());
        let config = ConfigVersion {
            version: 7,
            last_modified: Some(1_771_622_898),
        };
        assert_eq!(ConfigVersion::from(Version::from(config)), config);
    }
}
