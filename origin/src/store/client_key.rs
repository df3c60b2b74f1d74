//! `client_key` rows (client and server keys, `docs/sdk.md`) and key generation
//! (`docs/architecture.md`, "Client keys"); the writes are [`crate::domain::client_keys`]'s.

use chrono::{DateTime, Utc};
use evaluator_core::model::{ClientKey, KeyKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::rfc3339;
use crate::error::Result;

/// A stored client or server key (only its hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Unique per environment (across both kinds).
    pub name: String,
    /// `client` or `server`.
    pub kind: String,
    /// SHA-256 of the key string, lowercase hex.
    pub sha256: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Row {
    /// The API's JSON (never the key itself, which is not stored).
    pub fn to_json(&self, environment: &str) -> Value {
        json!({
            "environment": environment,
            "name": self.name,
            "sha256": self.sha256,
            "createdBy": self.created_by,
            "createdAt": rfc3339(self.created_at),
        })
    }
}

impl Row {
    /// The key's kind (a row of an unknown kind, which the column's check excludes, is a client
    /// key: the kind that may do less).
    pub fn key_kind(&self) -> KeyKind {
        if self.kind == "server" {
            KeyKind::Server
        } else {
            KeyKind::Client
        }
    }
}

/// The stored name of `kind`.
pub fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Client => "client",
        KeyKind::Server => "server",
    }
}

/// A fresh key of `kind` for `environment`: `efk.` (client) or `efs.` (server), then
/// `<environment>.<32 lowercase hex>` from 128 random bits.
pub fn generate(environment: &str, kind: KeyKind) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{}.{environment}.{}", kind.prefix(), hex(&bytes)))
}

/// SHA-256 of the whole key string, lowercase hex (what snapshots publish).
pub fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The columns of a [`Row`], in its order.
pub(crate) const COLUMNS: &str = "name, kind, sha256, created_by, created_at";

/// The environment's keys of `kind`, by name.
pub async fn list(conn: &mut PgConnection, environment_id: i64, kind: KeyKind) -> Result<Vec<Row>> {
    let sql = format!(
        "select {COLUMNS} from client_key where environment_id = $1 and kind = $2 order by name"
    );
    Ok(sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(kind_name(kind))
        .fetch_all(conn)
        .await?)
}

/// The environment's keys of both kinds as a snapshot lists them (by name).
pub async fn for_snapshot(conn: &mut PgConnection, environment_id: i64) -> Result<Vec<ClientKey>> {
    let sql = format!("select {COLUMNS} from client_key where environment_id = $1 order by name");
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(environment_id)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| ClientKey {
            kind: row.key_kind(),
            name: row.name,
            sha256: row.sha256,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_format() {
        for (kind, prefix) in [
            (KeyKind::Client, "efk.production."),
            (KeyKind::Server, "efs.production."),
        ] {
            let key = generate("production", kind).unwrap();
            let secret = key.strip_prefix(prefix).unwrap();
            assert_eq!(secret.len(), 32);
            assert!(secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_ne!(key, generate("production", kind).unwrap());
        }
    }

    #[test]
    fn hash_is_lowercase_hex_sha256_of_the_whole_key() {
        // sha256("abc"), FIPS 180-2 test vector
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
