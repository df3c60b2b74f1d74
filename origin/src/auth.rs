//! Admin authentication and authorisation (contract "Admin auth").
//!
//! Tokens are HS256 JWTs with `iss` = `edgeflags`, `aud` = `edgeflags-admin`, a checked `exp`,
//! the subject that audit rows name as the actor, a role, and optionally the environments the
//! token is limited to (for reads and writes alike).

use std::fmt;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, MISSING_CREDENTIALS};

/// `iss` of every admin token.
pub const ISSUER: &str = "edgeflags";
/// `aud` of every admin token.
pub const AUDIENCE: &str = "edgeflags-admin";

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
    /// Issued at, Unix seconds.
    pub iat: u64,
}

/// Signs and verifies admin tokens with one shared secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // a token that expired a second ago is expired: no grace period
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `sub` with `role`, valid for `ttl_secs` from `now_secs`.
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
            iat: now_secs,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
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
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                Error::Unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidIssuer => "wrong token issuer",
                    ErrorKind::InvalidAudience => "wrong token audience",
                    ErrorKind::InvalidAlgorithm => "token must be signed with HS256",
                    ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                    _ => "malformed token",
                })
            })?;
        if data.claims.sub.is_empty() {
            return Err(Error::Unauthorized("token subject is empty"));
        }
        Ok(Caller {
            sub: data.claims.sub,
            role: data.claims.role,
            environments: data.claims.environments,
        })
    }
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
        assert_eq!(
            caller,
            Caller {
                sub: "alice".into(),
                role: Role::Editor,
                environments: Some(vec!["dev".into()])
            }
        );
    }

    #[test]
    fn expired_token_is_unauthorized() {
        let keys = TokenKeys::new(SECRET);
        let token = keys
            .issue("alice", Role::Admin, None, now() - 120, 60)
            .unwrap();
        let err = keys
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap_err();
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
        let err = TokenKeys::new(SECRET)
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap_err();
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
        let err = TokenKeys::new(SECRET)
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap_err();
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
