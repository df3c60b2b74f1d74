//! `PUT /internal/snapshots/{environment}`: the origin's publisher delivers a snapshot here
//! (contract: `/work/team-contracts.md`, "Edge publish endpoint").
//!
//! Order of checks: size, signature (over the raw bytes, before anything parses them), snapshot
//! shape and validation, environment, then the version against the stored one. Workers KV has no
//! compare-and-swap, so "never overwrite newer" is a read-then-write: the publisher delivers one
//! environment's versions in order from one claimant, so two publishes of one environment do not
//! race in normal operation, and a stale write loses to the next delivery anyway.

use evaluator_core::model::Snapshot;
use evaluator_core::CompiledSnapshot;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// Largest snapshot accepted: Workers KV's value limit.
pub(crate) const MAX_SNAPSHOT_BYTES: usize = 25 * 1024 * 1024;
/// A signature older or newer than this many seconds is refused (limits replays).
pub(crate) const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;
/// Reported validation problems are capped so the answer stays small.
const MAX_REPORTED_ERRORS: usize = 100;

/// Checks `X-Edgeflags-Timestamp` and `X-Edgeflags-Signature` (`v1=<hex HMAC-SHA256(secret,
/// "<timestamp>.<body>")>`) at `now_seconds`. The comparison is constant-time.
pub(crate) fn verify_signature(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_seconds: i64,
) -> Result<()> {
    let timestamp = timestamp.map(str::trim).ok_or(Error::InvalidSignature {
        reason: "missing X-Edgeflags-Timestamp header",
    })?;
    let signed_at: i64 = timestamp.parse().map_err(|_| Error::InvalidSignature {
        reason: "X-Edgeflags-Timestamp is not an integer number of Unix seconds",
    })?;
    if now_seconds.abs_diff(signed_at) > TIMESTAMP_TOLERANCE_SECONDS.unsigned_abs() {
        return Err(Error::InvalidSignature {
            reason: "X-Edgeflags-Timestamp is more than 300 seconds away from the edge's clock",
        });
    }
    let signature = signature.map(str::trim).ok_or(Error::InvalidSignature {
        reason: "missing X-Edgeflags-Signature header",
    })?;
    let expected =
        signature
            .strip_prefix("v1=")
            .and_then(decode_hex)
            .ok_or(Error::InvalidSignature {
                reason: "X-Edgeflags-Signature must be v1=<64 lowercase hex characters>",
            })?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Error::PublishNotConfigured)?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Error::InvalidSignature {
            reason: "signature does not match the body and timestamp",
        })
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    hex.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Parses, validates and compiles the body as a snapshot of `environment` (the path's).
///
/// Validation is compilation (`validate_snapshot` compiles and keeps only the warnings), so the
/// snapshot is compiled once here: any warning refuses it, and the compiled form is what the
/// receiving isolate installs.
pub(crate) fn check_snapshot(environment: &str, body: &[u8]) -> Result<CompiledSnapshot> {
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
    Ok(compiled)
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

    const SECRET: &[u8] = b"test-secret";
    const NOW: i64 = 1_790_000_000;

    // Reference computed outside Rust:
    // printf '%s' '1790000000.{"a":1}' | openssl dgst -sha256 -hmac test-secret
    const REFERENCE_SIGNATURE: &str =
        "v1=e3e163d823c523325543883cf24137c2d1c65f9f82a34c639ea861da63349074";

    fn sign(timestamp: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("v1={hex}")
    }

    #[test]
    fn hmac_matches_openssl_reference() {
        assert_eq!(sign("1790000000", br#"{"a":1}"#), REFERENCE_SIGNATURE);
    }

    #[test]
    fn valid_signature_within_the_window_is_accepted() {
        let body = br#"{"a":1}"#;
        assert!(verify_signature(
            SECRET,
            Some("1790000000"),
            Some(REFERENCE_SIGNATURE),
            body,
            NOW + 299
        )
        .is_ok());
        assert!(verify_signature(
            SECRET,
            Some("1790000000"),
            Some(REFERENCE_SIGNATURE),
            body,
            NOW - 300
        )
        .is_ok());
    }

    #[test]
    fn timestamp_more_than_300_seconds_away_is_rejected() {
        let body = br#"{"a":1}"#;
        let err = verify_signature(
            SECRET,
            Some("1790000000"),
            Some(REFERENCE_SIGNATURE),
            body,
            NOW + 301,
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_SIGNATURE");
        assert!(err.to_string().contains("300 seconds"));
    }

    #[test]
    fn tampered_body_or_timestamp_is_rejected() {
        let err = verify_signature(
            SECRET,
            Some("1790000000"),
            Some(REFERENCE_SIGNATURE),
            br#"{"a":2}"#,
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature rejected: signature does not match the body and timestamp"
        );
        let err = verify_signature(
            SECRET,
            Some("1790000001"),
            Some(REFERENCE_SIGNATURE),
            br#"{"a":1}"#,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_SIGNATURE");
    }

    #[test]
    fn missing_or_malformed_headers_are_rejected_with_a_reason() {
        let cases = [
            (
                None,
                Some(REFERENCE_SIGNATURE),
                "missing X-Edgeflags-Timestamp header",
            ),
            (
                Some("soon"),
                Some(REFERENCE_SIGNATURE),
                "X-Edgeflags-Timestamp is not an integer number of Unix seconds",
            ),
            (
                Some("1790000000"),
                None,
                "missing X-Edgeflags-Signature header",
            ),
            (
                Some("1790000000"),
                Some("sha256=abc"),
                "X-Edgeflags-Signature must be v1=<64 lowercase hex characters>",
            ),
        ];
        for (timestamp, signature, reason) in cases {
            let err = verify_signature(SECRET, timestamp, signature, b"{}", NOW).unwrap_err();
            assert_eq!(err.to_string(), format!("signature rejected: {reason}"));
        }
        let upper = REFERENCE_SIGNATURE.to_uppercase().replace("V1=", "v1=");
        assert!(
            verify_signature(SECRET, Some("1790000000"), Some(&upper), br#"{"a":1}"#, NOW).is_err()
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
        let snapshot = check_snapshot("production", body).unwrap();
        assert_eq!(snapshot.version(), 3);
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
