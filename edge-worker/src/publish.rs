//! `PUT /internal/snapshots/{environment}`: the origin's publisher delivers a snapshot here. The
//! protocol (headers, signed string, tolerance, answers, KV keys) is `publish_protocol`'s;
//! `docs/architecture.md`, "Publish protocol", describes it.
//!
//! Order of checks: size (declared, before reading), the secret, size (read), signature (over
//! the raw bytes, before anything parses them), snapshot shape and validation, environment, then
//! the version against the stored one. Workers KV has no compare-and-swap, so "never overwrite
//! newer" is a read-then-write: the publisher delivers one environment's versions in order from
//! one claimant, so two publishes of one environment do not race in normal operation, and a
//! stale write loses to the next delivery anyway.
//!
//! A snapshot stored is announced to the environment's event streams (`stream::announce`), after
//! the write and before the answer, which stays the same whether the announcement arrived or not.

use evaluation_api::stream::ConfigVersion;
use evaluator_core::model::Snapshot;
use evaluator_core::CompiledSnapshot;
use publish_protocol::{
    SignedHeaders, SnapshotMetadata, StoredAnswer, MAX_SNAPSHOT_BYTES, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};
use worker::{Env, Request, Response};

use crate::error::{Error, Result};
use crate::timing::{self, Runtime};
use crate::{cache, http, index, kv, settings, stream};

/// Reported validation problems are capped so the answer stays small.
const MAX_REPORTED_ERRORS: usize = 100;

/// Handles a publish of `environment` (the path's last segment, as sent).
pub(crate) async fn handle(mut req: Request, env: &Env, environment: &str) -> Result<Response> {
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let timestamp = header(TIMESTAMP_HEADER);
    let signature = header(SIGNATURE_HEADER);
    let declared_length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
    let limit = MAX_SNAPSHOT_BYTES;
    if let Some(length) = declared_length.filter(|l| *l > limit) {
        return Err(Error::PayloadTooLarge { length, limit });
    }
    // A missing or too short secret is a deployment mistake; say so instead of rejecting every
    // signature.
    let secret = settings::publish_secret(env)?;
    // Headers first: a request that cannot be a valid publish (no or malformed signature, a
    // stale timestamp) is refused before a byte of its body is read.
    let now_ms = timing::now_ms();
    let now_seconds = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let signed = SignedHeaders::parse(timestamp.as_deref(), signature.as_deref(), now_seconds)?;
    // A body without Content-Length is read only up to the limit.
    let Some(body) = http::body_within(&mut req, declared_length, limit).await? else {
        return Err(Error::PayloadTooLarge {
            length: limit + 1,
            limit,
        });
    };
    signed.verify(&secret, &body)?;
    let Checked {
        compiled,
        metadata,
        key_hashes,
    } = check_snapshot(environment, &body)?;
    let version = compiled.version();
    let namespace = kv::namespace(env).map_err(|e| Error::Storage {
        message: e.to_string(),
    })?;
    let stored = kv::stored_version(&namespace, environment).await?;
    let written = match decide(version, stored)? {
        Decision::AlreadyStored => false,
        Decision::Store => {
            // The JSON inside is exactly what the origin signed; `check_snapshot` compiled it.
            let packed =
                evaluator_core::packed::pack_valid(&body).map_err(|e| Error::InvalidSnapshot {
                    errors: vec![format!("body: {e}")],
                })?;
            // The directory adds a few percent: a body just under the KV limit may not fit.
            if packed.len() > limit {
                return Err(Error::PayloadTooLarge {
                    length: packed.len(),
                    limit,
                });
            }
            kv::write(env, &namespace, environment, &packed, &metadata).await?;
            let config = ConfigVersion::of(&compiled);
            index::isolate().record(environment, metadata);
            cache::isolate().install(&Runtime, packed, compiled, now_ms);
            if settings::stream_key(env).is_some() {
                stream::announce(env, environment, config, key_hashes).await;
            }
            true
        }
    };
    http::json(
        200,
        &StoredAnswer {
            environment: environment.to_owned(),
            stored: written,
            version,
        },
    )
}

/// A valid snapshot, compiled, with what is stored and announced beside it.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) compiled: CompiledSnapshot,
    /// The index metadata stored with it in KV.
    pub(crate) metadata: SnapshotMetadata,
    /// The SHA-256 (lowercase hex) of every client key it holds, for the event streams: a
    /// stream whose key is not among them is closed. (Validation refuses a snapshot listing
    /// anything but 64 hex characters, so each is one line of `stream::Known`.)
    pub(crate) key_hashes: Vec<String>,
}

/// Parses, validates and compiles the body as a snapshot of `environment` (the path's), with the
/// index metadata to store beside it.
///
/// Validation is compilation (`validate_snapshot` compiles and keeps only the warnings), so the
/// snapshot is compiled once here: any warning refuses it, and the compiled form is what the
/// receiving isolate installs.
pub(crate) fn check_snapshot(environment: &str, body: &[u8]) -> Result<Checked> {
    if evaluator_core::validate_flag_key(environment).is_err() {
        return Err(Error::InvalidEnvironment {
            environment: environment.to_owned(),
        });
    }
    let snapshot: Snapshot = serde_json::from_slice(body).map_err(|e| Error::InvalidSnapshot {
        errors: vec![format!("body: {e}")],
    })?;
    if snapshot.environment != environment {
        return Err(Error::EnvironmentMismatch {
            path: environment.to_owned(),
            body: snapshot.environment,
        });
    }
    let metadata = SnapshotMetadata::new(
        snapshot.version,
        snapshot.client_keys.iter().map(|key| key.sha256.as_str()),
    );
    let key_hashes = snapshot
        .client_keys
        .iter()
        .map(|key| key.sha256.to_ascii_lowercase())
        .collect();
    let (compiled, problems) = CompiledSnapshot::compile(snapshot);
    if !problems.is_empty() {
        let total = problems.len();
        let mut errors: Vec<String> = problems
            .iter()
            .take(MAX_REPORTED_ERRORS)
            .map(ToString::to_string)
            .collect();
        if total > MAX_REPORTED_ERRORS {
            errors.push(format!("... and {} more", total - MAX_REPORTED_ERRORS));
        }
        return Err(Error::InvalidSnapshot { errors });
    }
    Ok(Checked {
        compiled,
        metadata,
        key_hashes,
    })
}

/// What to do with a valid snapshot of `version` when `stored` is in KV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Newer than what is stored (or nothing is): write it.
    Store,
    /// The same version again: an idempotent retry, nothing to write.
    AlreadyStored,
}

pub(crate) fn decide(version: u64, stored: Option<u64>) -> Result<Decision> {
    match stored {
        Some(stored) if version < stored => Err(Error::StaleVersion { version, stored }),
        Some(stored) if version == stored => Ok(Decision::AlreadyStored),
        _ => Ok(Decision::Store),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use publish_protocol::{Secret, SignatureError};

    #[test]
    fn signature_errors_are_401_invalid_signature_with_their_reason() {
        let secret = Secret::new(b"edgeflags-test-secret-of-32-byte").unwrap();
        let body = br#"{"a":1}"#;
        let signature = publish_protocol::sign(&secret, 1_790_000_000, body);
        let verify = |timestamp: &str, body: &[u8], now: i64| {
            publish_protocol::verify(&secret, Some(timestamp), Some(&signature), body, now)
                .map_err(Error::from)
        };
        assert!(verify("1790000000", body, 1_790_000_000 + 300).is_ok());
        let err = verify("1790000000", body, 1_790_000_000 + 301).unwrap_err();
        assert_eq!((err.status_code(), err.code()), (401, "INVALID_SIGNATURE"));
        assert!(err.to_string().contains("300 seconds"));
        let err = verify("1790000000", br#"{"a":2}"#, 1_790_000_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature rejected: signature does not match the body and timestamp"
        );
        let body =
            serde_json::to_value(Error::from(SignatureError::MissingTimestamp).body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "code": "INVALID_SIGNATURE",
                "message": "signature rejected: missing X-Edgeflags-Timestamp header"
            })
        );
    }

    #[test]
    fn snapshot_of_another_environment_is_a_mismatch() {
        let err =
            check_snapshot("production", br#"{"environment":"staging","version":1}"#).unwrap_err();
        assert_eq!(err.code(), "ENVIRONMENT_MISMATCH");
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn unparseable_body_is_an_invalid_snapshot_naming_the_body() {
        let Error::InvalidSnapshot { errors } = check_snapshot("production", b"{nope").unwrap_err()
        else {
            panic!("wrong error");
        };
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("body: "), "{errors:?}");
    }

    #[test]
    fn validation_problems_are_listed_with_their_paths() {
        let body = br#"{"environment":"production","version":2,"flags":[{"flagKey":"bad key!","enabled":true}]}"#;
        let Error::InvalidSnapshot { errors } = check_snapshot("production", body).unwrap_err()
        else {
            panic!("wrong error");
        };
        assert!(
            errors.iter().any(|e| e.starts_with("flags[0].flagKey: ")),
            "{errors:?}"
        );
    }

    #[test]
    fn invalid_environment_in_the_path_is_rejected() {
        let err = check_snapshot(
            "prod.uction",
            br#"{"environment":"prod.uction","version":1}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_ENVIRONMENT");
    }

    #[test]
    fn valid_snapshot_is_returned() {
        let body =
            br#"{"environment":"production","version":3,"flags":[{"flagKey":"a","enabled":true}]}"#;
        let checked = check_snapshot("production", body).unwrap();
        assert_eq!(checked.compiled.version(), 3);
        assert_eq!(
            checked.metadata,
            SnapshotMetadata {
                version: 3,
                keys: Some(Vec::new())
            }
        );
        assert!(checked.key_hashes.is_empty());
    }

    #[test]
    fn the_client_keys_of_a_valid_snapshot_are_listed_in_lowercase_for_the_streams() {
        let hash = "8EA1B6FEA071E237E0FACD3020A1096C514DD7A0B71ED7DFF3319816011817BA";
        let body = format!(
            r#"{{"environment":"production","version":3,"clientKeys":[{{"name":"web","sha256":"{hash}"}}]}}"#
        );
        let checked = check_snapshot("production", body.as_bytes()).unwrap();
        assert_eq!(checked.key_hashes, [hash.to_ascii_lowercase()]);
    }

    #[test]
    fn versions_are_never_overwritten_by_older_ones() {
        assert_eq!(decide(5, None).unwrap(), Decision::Store);
        assert_eq!(decide(5, Some(4)).unwrap(), Decision::Store);
        assert_eq!(decide(5, Some(5)).unwrap(), Decision::AlreadyStored);
        let err = decide(4, Some(5)).unwrap_err();
        assert_eq!(err.status_code(), 409);
        let body = serde_json::to_value(err.body()).unwrap();
        assert_eq!(body["code"], "STALE_VERSION");
        assert_eq!(body["storedVersion"], 5);
    }
}
