//! The shared secret, and signing and verifying a publish request with it.

use alloc::string::{String, ToString};
use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{MIN_SECRET_BYTES, SIGNATURE_PREFIX, TIMESTAMP_TOLERANCE_SECONDS};

/// The publish secret shared by the origin (`EDGEFLAGS_EDGE_PUBLISH_SECRET`) and the worker
/// (`PUBLISH_SECRET`), checked to be at least [`MIN_SECRET_BYTES`] long. `Debug` hides it.
#[derive(Clone)]
pub struct Secret {
    /// The keyed HMAC state, cloned per message (keying hashes the secret once, not per request).
    key: Hmac<Sha256>,
}

impl Secret {
    /// The secret `bytes`, refused when shorter than [`MIN_SECRET_BYTES`].
    pub fn new(bytes: &[u8]) -> Result<Self, SecretTooShort> {
        let too_short = SecretTooShort {
            length: bytes.len(),
        };
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(too_short);
        }
        // HMAC takes keys of any length, so this cannot fail; no panic path either way.
        let key = Hmac::<Sha256>::new_from_slice(bytes).map_err(|_| too_short)?;
        Ok(Self { key })
    }

    /// HMAC-SHA256 over the signed string `"<timestamp>.<body>"`, fed in parts so a 25 MiB body
    /// is not copied.
    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A publish secret shorter than [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretTooShort {
    /// Its length in bytes.
    pub length: usize,
}

impl fmt::Display for SecretTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the publish secret is {} bytes; it must be at least {MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)",
            self.length
        )
    }
}

impl core::error::Error for SecretTooShort {}

/// The [`SIGNATURE_HEADER`](crate::SIGNATURE_HEADER) value for `body` signed at `timestamp`
/// (Unix seconds, sent in decimal as [`TIMESTAMP_HEADER`](crate::TIMESTAMP_HEADER)):
/// `v1=` + lowercase hex HMAC-SHA256(secret, `"<timestamp>.<body>"`).
#[must_use]
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    let digest = secret
        .mac(&timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    let mut signature = String::with_capacity(SIGNATURE_PREFIX.len() + 2 * digest.len());
    signature.push_str(SIGNATURE_PREFIX);
    for byte in digest {
        for nibble in [byte >> 4, byte & 0x0f] {
            signature.push(char::from(HEX_DIGITS[usize::from(nibble)]));
        }
    }
    signature
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Checks a publish request's headers (`None`: the header is absent) against its raw `body` at
/// `now_seconds` on the receiver's clock: the timestamp is an integer within
/// [`TIMESTAMP_TOLERANCE_SECONDS`] either way, and the signature is `v1=` + 64 lowercase hex
/// digits equal to HMAC-SHA256(secret, `"<timestamp as sent>.<body>"`), compared in constant time.
/// Surrounding whitespace of either header is ignored. The same as [`SignedHeaders::parse`]
/// followed by [`SignedHeaders::verify`].
pub fn verify(
    secret: &Secret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_seconds: i64,
) -> Result<(), SignatureError> {
    SignedHeaders::parse(timestamp, signature, now_seconds)?.verify(secret, body)
}

/// A publish request's signature headers, checked for everything that does not need the body:
/// a receiver parses them first and refuses a request without usable headers before reading a
/// byte of its body.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    /// The timestamp as sent (trimmed): it is part of the signed string.
    timestamp: &'a str,
    /// The HMAC the signature header names.
    expected: [u8; 32],
}

impl<'a> SignedHeaders<'a> {
    /// Both headers present and well-formed, and the timestamp within the tolerance of
    /// `now_seconds`.
    pub fn parse(
        timestamp: Option<&'a str>,
        signature: Option<&str>,
        now_seconds: i64,
    ) -> Result<Self, SignatureError> {
        let timestamp = timestamp
            .map(str::trim)
            .ok_or(SignatureError::MissingTimestamp)?;
        let signed_at: i64 = timestamp
            .parse()
            .map_err(|_| SignatureError::MalformedTimestamp)?;
        if now_seconds.abs_diff(signed_at) > TIMESTAMP_TOLERANCE_SECONDS {
            return Err(SignatureError::OutsideTolerance);
        }
        let expected = signature
            .map(str::trim)
            .ok_or(SignatureError::MissingSignature)?
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(decode_hex)
            .ok_or(SignatureError::MalformedSignature)?;
        Ok(Self {
            timestamp,
            expected,
        })
    }

    /// Whether `body` is what was signed with `secret` (constant-time comparison).
    pub fn verify(&self, secret: &Secret, body: &[u8]) -> Result<(), SignatureError> {
        // `verify_slice` compares in constant time.
        secret
            .mac(self.timestamp, body)
            .verify_slice(&self.expected)
            .map_err(|_| SignatureError::Mismatch)
    }
}

/// 64 lowercase hex digits as the 32 bytes they spell; anything else is `None`.
fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut bytes = [0_u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (digit(*hi)? << 4) | digit(*lo)?;
    }
    Some(bytes)
}

/// Why [`verify`] refused a request (answered `401 INVALID_SIGNATURE` with [`Self::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No timestamp header.
    MissingTimestamp,
    /// The timestamp is not an integer.
    MalformedTimestamp,
    /// The timestamp is more than [`TIMESTAMP_TOLERANCE_SECONDS`] in the past or the future.
    OutsideTolerance,
    /// No signature header.
    MissingSignature,
    /// The signature is not `v1=` + 64 lowercase hex digits.
    MalformedSignature,
    /// A well-formed signature of something else (other body, timestamp or secret).
    Mismatch,
}

impl SignatureError {
    /// The reason the receiver sends (never the expected signature).
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::MissingTimestamp => "missing X-Edgeflags-Timestamp header",
            Self::MalformedTimestamp => {
                "X-Edgeflags-Timestamp is not an integer number of Unix seconds"
            }
            Self::OutsideTolerance => {
                "X-Edgeflags-Timestamp is more than 300 seconds away from the edge's clock"
            }
            Self::MissingSignature => "missing X-Edgeflags-Signature header",
            Self::MalformedSignature => {
                "X-Edgeflags-Signature must be v1=<64 lowercase hex characters>"
            }
            Self::Mismatch => "signature does not match the body and timestamp",
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for SignatureError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
    use std::format;
    use std::string::ToString;

    const SECRET: &[u8] = b"edgeflags-test-secret-of-32-byte";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"environment":"production","version":1}"#;

    fn secret() -> Secret {
        Secret::new(SECRET).unwrap()
    }

    fn check(
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        verify(&secret(), Some(timestamp), Some(signature), body, now)
    }

    /// The expected value was computed outside Rust:
    /// `printf '%s' '1700000000.{"environment":"production","version":1}' |
    ///  openssl dgst -sha256 -hmac edgeflags-test-secret-of-32-byte` (Python's `hmac` agrees).
    #[test]
    fn signature_matches_the_test_vector() {
        assert_eq!(SECRET.len(), 32);
        assert_eq!(
            sign(&secret(), 1_700_000_000, BODY),
            "v1=84656061c307b6733703663b93ab4d6317ee84c6198fe53e27d09326b56491d5"
        );
    }

    #[test]
    fn a_signature_is_accepted_at_its_own_time_and_within_300_seconds_either_way() {
        let signature = sign(&secret(), 1_700_000_000, BODY);
        for now in [NOW, NOW - 300, NOW + 300, NOW + 299] {
            assert_eq!(check("1700000000", &signature, BODY, now), Ok(()), "{now}");
        }
    }

    #[test]
    fn headers_are_checked_before_the_body_and_verify_is_their_check_then_the_mac() {
        let signature = sign(&secret(), 1_700_000_000, BODY);
        let parse = |t, s| SignedHeaders::parse(t, s, NOW).map(|_| ());
        assert_eq!(
            parse(None, Some(&*signature)),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            parse(Some("soon"), Some(&*signature)),
            Err(SignatureError::MalformedTimestamp)
        );
        assert_eq!(
            parse(Some("1"), Some(&*signature)),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            parse(Some("1700000000"), None),
            Err(SignatureError::MissingSignature)
        );
        assert_eq!(
            parse(Some("1700000000"), Some("v1=zz")),
            Err(SignatureError::MalformedSignature)
        );
        let signed = SignedHeaders::parse(Some("1700000000"), Some(&signature), NOW).unwrap();
        assert_eq!(signed.verify(&secret(), BODY), Ok(()));
        assert_eq!(
            signed.verify(&secret(), b"{}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_expired_timestamp_is_refused() {
        let signature = sign(&secret(), 1_700_000_000, BODY);
        assert_eq!(
            check("1700000000", &signature, BODY, NOW + 301),
            Err(SignatureError::OutsideTolerance)
        );
    }

    #[test]
    fn a_timestamp_from_the_future_is_refused() {
        let signature = sign(&secret(), 1_700_000_000, BODY);
        assert_eq!(
            check("1700000000", &signature, BODY, NOW - 301),
            Err(SignatureError::OutsideTolerance)
        );
    }

    #[test]
    fn a_tampered_body_timestamp_or_secret_is_a_mismatch() {
        let signature = sign(&secret(), 1_700_000_000, BODY);
        let tampered = br#"{"environment":"production","version":2}"#;
        assert_eq!(
            check("1700000000", &signature, tampered, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("1700000001", &signature, BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        let other = Secret::new(b"another-secret-that-is-32-bytes!").unwrap();
        assert_eq!(
            verify(&other, Some("1700000000"), Some(&signature), BODY, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_signed_string_is_the_timestamp_as_sent_a_dot_and_the_body() {
        // A leading zero changes the signed bytes, though not the time.
        let signature = sign(&secret(), 1_700_000_000, BODY);
        assert_eq!(
            check("01700000000", &signature, BODY, NOW),
            Err(SignatureError::Mismatch)
        );
        // Surrounding whitespace is not part of the value.
        assert_eq!(
            check(" 1700000000 ", &format!(" {signature} "), BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn missing_or_malformed_headers_are_refused_with_their_reason() {
        let signature = sign(&secret(), 1_700_000_000, BODY);
        let upper = signature.to_uppercase().replace("V1=", "v1=");
        let cases = [
            (
                None,
                Some(signature.as_str()),
                SignatureError::MissingTimestamp,
            ),
            (
                Some("soon"),
                Some(signature.as_str()),
                SignatureError::MalformedTimestamp,
            ),
            (Some("1700000000"), None, SignatureError::MissingSignature),
            (
                Some("1700000000"),
                Some("sha256=abc"),
                SignatureError::MalformedSignature,
            ),
            (
                Some("1700000000"),
                Some(&signature[3..]),
                SignatureError::MalformedSignature,
            ),
            (
                Some("1700000000"),
                Some(&signature[..66]),
                SignatureError::MalformedSignature,
            ),
            (
                Some("1700000000"),
                Some(upper.as_str()),
                SignatureError::MalformedSignature,
            ),
        ];
        for (timestamp, signature, error) in cases {
            assert_eq!(
                verify(&secret(), timestamp, signature, BODY, NOW),
                Err(error),
                "{timestamp:?} {signature:?}"
            );
        }
    }

    #[test]
    fn reasons_name_the_headers_and_the_tolerance() {
        assert!(SignatureError::MissingTimestamp
            .reason()
            .contains(TIMESTAMP_HEADER));
        assert!(SignatureError::MissingSignature
            .reason()
            .contains(SIGNATURE_HEADER));
        assert!(SignatureError::MalformedSignature
            .reason()
            .contains(SIGNATURE_PREFIX));
        assert!(SignatureError::OutsideTolerance
            .reason()
            .contains(&TIMESTAMP_TOLERANCE_SECONDS.to_string()));
    }

    #[test]
    fn a_secret_shorter_than_32_bytes_is_refused_with_its_length() {
        assert_eq!(
            Secret::new(&SECRET[..31]).unwrap_err(),
            SecretTooShort { length: 31 }
        );
        assert_eq!(Secret::new(b"").unwrap_err(), SecretTooShort { length: 0 });
        assert_eq!(
            SecretTooShort { length: 19 }.to_string(),
            "the publish secret is 19 bytes; it must be at least 32 bytes (e.g. `openssl rand -hex 32`)"
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert_eq!(format!("{:?}", secret()), "Secret(..)");
    }
}
