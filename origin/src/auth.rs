//! Admin authentication and authorisation (contract "Admin auth").
//!
//! Tokens are HS256 JWTs with `iss` = `edgeflags`, `aud` = `edgeflags-admin`, a checked `exp`,
//! the subject that audit rows name as the actor, a role, and optionally the environments the
//! token is limited to (for reads and writes alike). A token is also refused while its `nbf` lies
//! in the future, and when it lives longer than the configured maximum (`exp - iat`, or
//! `exp - now` without `iat`): a leaked long-lived token is the one nobody remembers to rotate.
//! Its optional `jti` is recorded in the audit log next to the subject, so a leaked token's
//! changes can be told apart from its owner's other tokens.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, MISSING_CREDENTIALS};

/// `iss` of every admin token.
pub const ISSUER: &str = "edgeflags";
/// `aud` of every admin token.
pub const AUDIENCE: &str = "edgeflags-admin";
/// Longest token lifetime accepted unless configured otherwise: 30 days.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a token may do. Ordered: every role can do what the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads flags, segments, overrides, history and audit.
    Viewer,
    /// Also writes flags, segments and overrides.
    Editor,
    /// Also manages environments and client keys.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        })
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "editor" => Ok(Self::Editor),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown role {other:?} (expected viewer, editor or admin)"
            )),
        }
    }
}

/// The claims of an admin token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer, always [`ISSUER`].
    pub iss: String,
    /// Audience, always [`AUDIENCE`].
    pub aud: String,
    /// Who acts; recorded as the audit actor.
    pub sub: String,
    /// What they may do.
    pub role: Role,
    /// Environments the token is limited to; `None` = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds; bounds the lifetime check when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, Unix seconds: the token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Token id; audit rows record it next to the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Signs and verifies admin tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    max_lifetime_secs: u64,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys for `secret`, accepting tokens that live up to [`DEFAULT_MAX_TOKEN_LIFETIME`].
    pub fn new(secret: &[u8]) -> Self {
        // HS256 only: `Validation` refuses every other `alg` of a well-formed header
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // a token that expired a second ago is expired, one valid in a second is not valid yet:
        // no grace period either way
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            max_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME.as_secs(),
        }
    }

    /// The same keys, refusing tokens that live longer than `max` (`exp - iat`, or `exp - now`
    /// without `iat`).
    #[must_use]
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime_secs = max.as_secs();
        self
    }

    /// The longest token lifetime accepted.
    pub fn max_lifetime(&self) -> Duration {
        Duration::from_secs(self.max_lifetime_secs)
    }

    /// A token for `sub` with `role`, valid for `ttl_secs` from `now_secs`, with a fresh random
    /// `jti`.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        environments: Option<Vec<String>>,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<String> {
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: sub.to_owned(),
            role,
            environments,
            exp: now_secs.saturating_add(ttl_secs),
            iat: Some(now_secs),
            nbf: None,
            jti: Some(token_id()?),
        };
        self.sign(&claims)
    }

    /// Signs `claims` as they are (tests and tools that need unusual claims).
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// The caller behind an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller> {
        let Some(value) = authorization else {
            return Err(Error::Unauthorized(MISSING_CREDENTIALS));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthorized(
                "expected: Authorization: Bearer <token>",
            ))?;
        // A header whose `alg` names no algorithm this library knows (`none` among them) fails
        // to parse at all; say why instead of calling it malformed.
        if let Err(e) = jsonwebtoken::decode_header(token) {
            if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_)) {
                return Err(Error::Unauthorized(HS256_ONLY));
            }
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                Error::Unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token is not valid yet (nbf is in the future)",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidIssuer => "wrong token issuer",
                    ErrorKind::InvalidAudience => "wrong token audience",
                    ErrorKind::InvalidAlgorithm => HS256_ONLY,
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "malformed token",
                })
            })?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(Error::Unauthorized("token subject is empty"));
        }
        // `sub` and `jti` become the audit actor and token id (indexed text columns): refuse what
        // the database could not store rather than fail the first write with a database error
        if !storable_claim(&claims.sub) {
            return Err(Error::Unauthorized(
                "token subject is unusable (NUL, or over 255 bytes)",
            ));
        }
        if claims
            .jti
            .as_deref()
            .is_some_and(|jti| !storable_claim(jti))
        {
            return Err(Error::Unauthorized(
                "token id (jti) is unusable (NUL, or over 255 bytes)",
            ));
        }
        if lifetime(&claims, jsonwebtoken::get_current_timestamp()) > self.max_lifetime_secs {
            return Err(Error::Unauthorized(
                "token lifetime exceeds the longest accepted (EDGEFLAGS_MAX_TOKEN_LIFETIME_SECONDS)",
            ));
        }
        Ok(Caller {
            sub: claims.sub,
            role: claims.role,
            environments: claims.environments,
            token_id: claims.jti.filter(|id| !id.is_empty()),
        })
    }
}

/// Reason given for a token signed with anything but HS256, `alg: none` included.
const HS256_ONLY: &str = "token must be signed with HS256";

/// How long a token lives: from `iat` (or `now` without one, and never from later than `now`:
/// a future `iat` must not make a token look shorter-lived than it is) to `exp`.
fn lifetime(claims: &Claims, now: u64) -> u64 {
    let start = claims.iat.map_or(now, |iat| iat.min(now));
    claims.exp.saturating_sub(start)
}

/// A random token id: 128 bits in lowercase hex.
fn token_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness for a token id");
        Error::Unavailable("no randomness available")
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An authenticated admin API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token subject; the audit actor.
    pub sub: String,
    /// Granted role.
    pub role: Role,
    /// Environment restriction; `None` = all.
    pub environments: Option<Vec<String>>,
    /// The token's `jti`, when it has one; recorded in the audit log.
    pub token_id: Option<String>,
}

impl Caller {
    /// Whether the token's environment restriction admits `environment`.
    pub fn can_access(&self, environment: &str) -> bool {
        self.environments
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e == environment))
    }

    /// Requires `role` (or a stronger one) on `environment`.
    pub fn require(&self, role: Role, environment: &str) -> Result<()> {
        self.require_role(role)?;
        if !self.can_access(environment) {
            return Err(Error::Forbidden(format!(
                "token of {:?} is not valid for environment {environment:?}",
                self.sub
            )));
        }
        Ok(())
    }

    /// Requires `role` (or a stronger one), whatever the environment.
    pub fn require_role(&self, role: Role) -> Result<()> {
        if self.role < role {
            return Err(Error::Forbidden(format!(
                "role {} of {:?} may not do this; it needs role {role}",
                self.role, self.sub
            )));
        }
        Ok(())
    }

    /// Requires `role` on every environment: operations that are not scoped to one environment
    /// (e.g. creating one) are closed to environment-restricted tokens.
    pub fn require_unrestricted(&self, role: Role) -> Result<()> {
        self.require_role(role)?;
        if self.environments.is_some() {
            return Err(Error::Forbidden(format!(
                "token of {:?} is limited to some environments; this needs an unrestricted token",
                self.sub
            )));
        }
        Ok(())
    }
}

/// Whether a claim fits the audit log: at most 255 bytes, no NUL (which PostgreSQL text refuses).
fn storable_claim(value: &str) -> bool {
    value.len() <= 255 && !value.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn issued_token_authenticates_with_its_claims() {
        let keys = TokenKeys::new(SECRET);
        let token = keys
            .issue("alice", Role::Editor, Some(vec!["dev".into()]), now(), 60)
            .unwrap();
        let caller = keys.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        let token_id = caller.token_id.clone().unwrap();
        assert_eq!(token_id.len(), 32, "{token_id}");
        assert!(
            token_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{token_id}"
        );
        assert_eq!(
            caller,
            Caller {
                sub: "alice".into(),
                role: Role::Editor,
                environments: Some(vec!["dev".into()]),
                token_id: Some(token_id),
            }
        );
    }

    fn claims(exp: u64, iat: Option<u64>, nbf: Option<u64>) -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "alice".into(),
            role: Role::Admin,
            environments: None,
            exp,
            iat,
            nbf,
            jti: None,
        }
    }

    fn authenticate(keys: &TokenKeys, claims: &Claims) -> Result<Caller> {
        let token = keys.sign(claims).unwrap();
        keys.authenticate(Some(&format!("Bearer {token}")))
    }

    /// Why `keys` refuse `token`.
    fn refusal(keys: &TokenKeys, token: &str) -> Error {
        keys.authenticate(Some(&format!("Bearer {token}")))
            .unwrap_err()
    }

    #[test]
    fn token_is_refused_until_its_nbf() {
        let keys = TokenKeys::new(SECRET);
        let err =
            authenticate(&keys, &claims(now() + 600, Some(now()), Some(now() + 60))).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unauthorized("token is not valid yet (nbf is in the future)")
            ),
            "{err:?}"
        );
        let caller =
            authenticate(&keys, &claims(now() + 600, Some(now()), Some(now() - 1))).unwrap();
        assert_eq!(caller.token_id, None);
    }

    #[test]
    fn lifetime_counts_from_iat_or_from_now_without_one() {
        let c = claims(1_000, Some(400), None);
        assert_eq!(lifetime(&c, 500), 600);
        // a future iat does not shorten the lifetime
        assert_eq!(lifetime(&claims(1_000, Some(900), None), 500), 500);
        assert_eq!(lifetime(&claims(1_000, None, None), 500), 500);
        assert_eq!(lifetime(&claims(1_000, None, None), 2_000), 0);
    }

    #[test]
    fn token_living_longer_than_the_maximum_is_unauthorized() {
        let keys = TokenKeys::new(SECRET).with_max_lifetime(Duration::from_secs(3600));
        assert_eq!(keys.max_lifetime(), Duration::from_secs(3600));
        assert!(authenticate(&keys, &claims(now() + 3600, Some(now()), None)).is_ok());
        for too_long in [
            claims(now() + 3601, Some(now()), None),
            claims(now() + 3601, None, None),
            claims(now() + 60, Some(now() - 3600), None),
        ] {
            let err = authenticate(&keys, &too_long).unwrap_err();
            assert!(
                matches!(err, Error::Unauthorized(m) if m.starts_with("token lifetime exceeds")),
                "{too_long:?}: {err:?}"
            );
        }
        assert_eq!(
            TokenKeys::new(SECRET).max_lifetime(),
            DEFAULT_MAX_TOKEN_LIFETIME
        );
    }

    #[test]
    fn unsigned_and_other_algorithm_tokens_are_unauthorized() {
        let keys = TokenKeys::new(SECRET);
        let body = claims(now() + 60, Some(now()), None);
        let hs384 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &body,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let payload = hs384.split('.').nth(1).unwrap();
        // {"alg":"none","typ":"JWT"}, with and without the empty signature
        let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        for token in [
            hs384.clone(),
            format!("{none_header}.{payload}."),
            format!("{none_header}.{payload}"),
        ] {
            let err = refusal(&keys, &token);
            assert!(
                matches!(
                    err,
                    Error::Unauthorized(HS256_ONLY) | Error::Unauthorized("malformed token")
                ),
                "{token}: {err:?}"
            );
        }
        let err = refusal(&keys, &format!("{none_header}.{payload}."));
        assert!(matches!(err, Error::Unauthorized(HS256_ONLY)), "{err:?}");
        let err = refusal(&keys, &hs384);
        assert!(matches!(err, Error::Unauthorized(HS256_ONLY)), "{err:?}");
    }

    #[test]
    fn expired_token_is_unauthorized() {
        let keys = TokenKeys::new(SECRET);
        let token = keys
            .issue("alice", Role::Admin, None, now() - 120, 60)
            .unwrap();
        let err = refusal(&keys, &token);
        assert!(
            matches!(err, Error::Unauthorized("token expired")),
            "{err:?}"
        );
    }

    #[test]
    fn token_signed_with_another_secret_is_unauthorized() {
        let other = TokenKeys::new(b"another-secret-another-secret-xx");
        let token = other
            .issue("mallory", Role::Admin, None, now(), 60)
            .unwrap();
        let err = refusal(&TokenKeys::new(SECRET), &token);
        assert!(
            matches!(err, Error::Unauthorized("bad token signature")),
            "{err:?}"
        );
    }

    #[test]
    fn token_for_another_audience_is_unauthorized() {
        let claims = serde_json::json!({"iss": ISSUER, "aud": "someone-else", "sub": "a",
            "role": "admin", "exp": now() + 60, "iat": now()});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let err = refusal(&TokenKeys::new(SECRET), &token);
        assert!(
            matches!(err, Error::Unauthorized("wrong token audience")),
            "{err:?}"
        );
    }

    #[test]
    fn roles_are_ordered_and_environment_restrictions_apply() {
        let caller = Caller {
            sub: "e".into(),
            role: Role::Editor,
            environments: Some(vec!["dev".into()]),
            token_id: None,
        };
        assert!(caller.require(Role::Viewer, "dev").is_ok());
        assert!(caller.require(Role::Editor, "dev").is_ok());
        assert!(matches!(
            caller.require(Role::Admin, "dev"),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            caller.require(Role::Viewer, "production"),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            caller.require_unrestricted(Role::Viewer),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn missing_and_non_bearer_headers_are_unauthorized() {
        let keys = TokenKeys::new(SECRET);
        assert!(matches!(
            keys.authenticate(None),
            Err(Error::Unauthorized(MISSING_CREDENTIALS))
        ));
        assert!(matches!(
            keys.authenticate(Some("Basic abc")),
            Err(Error::Unauthorized(_))
        ));
    }
}
