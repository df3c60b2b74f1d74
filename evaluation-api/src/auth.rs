//! Environment keys: client keys `efk.<environment>.<32 lowercase hex>` and server keys
//! `efs.<…>` (`docs/sdk.md`), checked against the SHA-256 hashes a snapshot publishes (see
//! `docs/architecture.md`, section "Client keys").

use alloc::string::String;
use evaluator_core::model::KeyKind;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::RequestHeaders;

/// A well-formed client key presented by a request; whether it is known is decided against the
/// snapshot in [`crate::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientKey {
    environment: String,
    /// Lowercase hex SHA-256 of the whole key string, as snapshots store it.
    sha256_hex: String,
    /// What its prefix says it is; a snapshot must list it as that kind.
    kind: KeyKind,
}

impl ClientKey {
    pub(crate) fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Whether `snapshot` lists this key, as the kind its prefix names.
    pub(crate) fn held_by(&self, snapshot: &evaluator_core::CompiledSnapshot) -> bool {
        snapshot.key_kind(&self.sha256_hex) == Some(self.kind)
    }

    pub(crate) fn environment(&self) -> &str {
        &self.environment
    }

    pub(crate) fn sha256_hex(&self) -> &str {
        &self.sha256_hex
    }
}

/// The key a request presents: `Authorization: Bearer`, else `X-Client-Key`, else OFREP's
/// `X-API-Key`. `Ok(None)` when there is none.
pub(crate) fn presented_key(headers: &RequestHeaders<'_>) -> Result<Option<ClientKey>, Error> {
    let raw = if let Some(authorization) = headers.authorization {
        let (scheme, token) = authorization
            .trim()
            .split_once(' ')
            .unwrap_or((authorization, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::InvalidClientKey {
                reason: "the Authorization header must use the Bearer scheme",
            });
        }
        token.trim()
    } else if let Some(key) = headers.client_key.or(headers.api_key) {
        key.trim()
    } else {
        return Ok(None);
    };
    parse_key(raw).map(Some)
}

fn parse_key(raw: &str) -> Result<ClientKey, Error> {
    const MALFORMED: Error = Error::InvalidClientKey {
        reason: "malformed key; expected efk.<environment>.<32 lowercase hex characters> \
                 (or efs. for a server key)",
    };
    let (kind, rest) = if let Some(rest) = raw.strip_prefix("efk.") {
        (KeyKind::Client, rest)
    } else if let Some(rest) = raw.strip_prefix("efs.") {
        (KeyKind::Server, rest)
    } else {
        return Err(MALFORMED);
    };
    let (environment, secret) = rest.rsplit_once('.').ok_or(MALFORMED)?;
    let secret_ok = secret.len() == 32
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !secret_ok || evaluator_core::validate_flag_key(environment).is_err() {
        return Err(MALFORMED);
    }
    Ok(ClientKey {
        environment: String::from(environment),
        sha256_hex: sha256_hex(raw.as_bytes()),
        kind,
    })
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "efk.production.0123456789abcdef0123456789abcdef";

    fn headers(
        authorization: Option<&'static str>,
        client_key: Option<&'static str>,
    ) -> RequestHeaders<'static> {
        RequestHeaders {
            authorization,
            client_key,
            ..RequestHeaders::default()
        }
    }

    #[test]
    fn bearer_key_yields_its_environment_and_sha256() {
        let key = presented_key(&headers(
            Some("Bearer efk.production.0123456789abcdef0123456789abcdef"),
            None,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(key.environment(), "production");
        // `printf %s efk.production.0123456789abcdef0123456789abcdef | sha256sum`
        assert_eq!(
            key.sha256_hex(),
            "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba"
        );
    }

    #[test]
    fn sha256_matches_the_reference_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn x_client_key_is_accepted_when_no_authorization_header() {
        let key = presented_key(&headers(None, Some(KEY))).unwrap().unwrap();
        assert_eq!(key.environment(), "production");
    }

    #[test]
    fn no_credentials_is_not_an_error_here() {
        assert_eq!(presented_key(&headers(None, None)).unwrap(), None);
    }

    #[test]
    fn basic_scheme_is_rejected() {
        let err = presented_key(&headers(Some("Basic dXNlcjpwYXNz"), None)).unwrap_err();
        assert_eq!(err.code(), "INVALID_CLIENT_KEY");
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "efk.production.0123456789ABCDEF0123456789abcdef",
            "efk.production.0123",
            "efk..0123456789abcdef0123456789abcdef",
            "efk.prod uction.0123456789abcdef0123456789abcdef",
            "xyz.production.0123456789abcdef0123456789abcdef",
            "efk.production",
        ] {
            assert!(parse_key(bad).is_err(), "{bad} accepted");
        }
    }
}
