//! `audit_log` rows, queried by the audit API (each mutation writes its own, see
//! [`crate::domain`]).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::{rfc3339, version_u64};
use crate::error::Result;

/// What an audit row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityType {
    /// A flag (including its overrides).
    Flag,
    /// A segment.
    Segment,
    /// An environment.
    Environment,
    /// A client key.
    ClientKey,
    /// A server key.
    ServerKey,
}

impl EntityType {
    /// The stored and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flag => "flag",
            Self::Segment => "segment",
            Self::Environment => "environment",
            Self::ClientKey => "clientKey",
            Self::ServerKey => "serverKey",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Flag,
            Self::Segment,
            Self::Environment,
            Self::ClientKey,
            Self::ServerKey,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// A stored audit row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// Increasing id; the pagination cursor.
    pub audit_log_id: i64,
    /// Environment.
    pub environment_key: String,
    /// `flag`, `segment`, `environment` or `clientKey`.
    pub entity_type: String,
    /// Entity key.
    pub entity_key: String,
    /// What happened.
    pub action: String,
    /// Who: the token subject.
    pub actor: String,
    /// The token's `jti`; `None` for tokens without one (and rows written before it was kept).
    pub token_id: Option<String>,
    /// The author's comment on the change, if any.
    pub comment: Option<String>,
    /// Before.
    pub old_value: Option<Json<Value>>,
    /// After.
    pub new_value: Option<Json<Value>>,
    /// Entity version after.
    pub entity_version: Option<i64>,
    /// Snapshot version produced.
    pub snapshot_version: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Row {
    /// The API's JSON; flag entries also carry `flagKey`, as the REST API's flag audit log has it.
    pub fn to_json(&self) -> Value {
        let mut entry = json!({
            "id": self.audit_log_id,
            "environment": self.environment_key,
            "entityType": self.entity_type,
            "entityKey": self.entity_key,
            "action": self.action,
            "actor": self.actor,
            "tokenId": self.token_id,
            "comment": self.comment,
            "oldValue": self.old_value.as_ref().map(|v| &v.0),
            "newValue": self.new_value.as_ref().map(|v| &v.0),
            "snapshotVersion": version_u64(self.snapshot_version),
            "timestamp": rfc3339(self.created_at),
        });
        if let Some(v) = self.entity_version {
            entry["version"] = json!(version_u64(v));
        }
        if self.entity_type == EntityType::Flag.as_str() {
            entry["flagKey"] = json!(self.entity_key);
        }
        entry
    }
}

/// Filters of an audit query; all optional and combined with `and`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these environments (a token's restriction); `None` = all.
    pub environments: Option<Vec<String>>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only this kind of entity.
    pub entity_type: Option<EntityType>,
    /// Only this entity key.
    pub entity_key: Option<String>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only changes made with the token of this id (`jti`).
    pub token_id: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Only rows older than this id (pagination).
    pub before_id: Option<i64>,
}

/// Up to `limit` rows matching `filter`, newest first.
pub async fn query(conn: &mut PgConnection, filter: &Filter, limit: i64) -> Result<Vec<Row>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
        "select audit_log_id, environment_key, entity_type, entity_key, action, actor, token_id,
                comment, old_value, new_value, entity_version, snapshot_version, created_at
         from audit_log where true",
    );
    if let Some(list) = &filter.environments {
        q.push(" and environment_key = any(")
            .push_bind(list.clone())
            .push(")");
    }
    if let Some(env) = &filter.environment {
        q.push(" and environment_key = ").push_bind(env.clone());
    }
    if let Some(t) = filter.entity_type {
        q.push(" and entity_type = ").push_bind(t.as_str());
    }
    if let Some(key) = &filter.entity_key {
        q.push(" and entity_key = ").push_bind(key.clone());
    }
    if let Some(actor) = &filter.actor {
        q.push(" and actor = ").push_bind(actor.clone());
    }
    if let Some(token_id) = &filter.token_id {
        q.push(" and token_id = ").push_bind(token_id.clone());
    }
    if let Some(from) = filter.from {
        q.push(" and created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.to {
        q.push(" and created_at < ").push_bind(to);
    }
    if let Some(id) = filter.before_id {
        q.push(" and audit_log_id < ").push_bind(id);
    }
    q.push(" order by audit_log_id desc limit ")
        .push_bind(limit);
    Ok(q.build_query_as().fetch_all(conn).await?)
}
