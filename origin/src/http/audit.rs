//! `GET /admin/audit`: the audit trail, newest first, filtered and paginated.

use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::Query;
use super::openapi::admin::{AuditPage, ErrorBody};
use super::{next_page_cursor, page_limit, AppState};
use crate::auth::Role;
use crate::error::{Error, Result};
use crate::store::audit::{self, EntityType, Filter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct AuditQuery {
    /// Only this environment.
    environment: Option<String>,
    /// Only this flag (shorthand for `entityType=flag&entityKey=...`).
    flag_key: Option<String>,
    /// Only this segment (shorthand for `entityType=segment&entityKey=...`).
    segment_key: Option<String>,
    /// `flag`, `segment`, `environment`, `clientKey` or `serverKey`.
    #[param(pattern = "^(flag|segment|environment|clientKey|serverKey)$")]
    entity_type: Option<String>,
    /// Only this entity key.
    entity_key: Option<String>,
    /// Only changes by this token subject.
    actor: Option<String>,
    /// Only changes made with the token of this id (its `jti`).
    token_id: Option<String>,
    /// At or after (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Before (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page.
    cursor: Option<i64>,
}

fn timestamp(value: Option<&str>, name: &'static str) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::InvalidParameter {
                    name,
                    message: format!("expected an RFC 3339 timestamp, got {v:?}: {e}"),
                })
        })
        .transpose()
}

/// Turns the query into a filter. `flagKey` and `segmentKey` are shorthands for an entity type
/// and key, and cannot contradict `entityType`/`entityKey`.
fn filter(q: AuditQuery) -> Result<Filter> {
    let mut entity_type = match q.entity_type.as_deref() {
        None => None,
        Some(t) => Some(EntityType::parse(t).ok_or_else(|| Error::InvalidParameter {
            name: "entityType",
            message: format!(
                "expected flag, segment, environment, clientKey or serverKey, got {t:?}"
            ),
        })?),
    };
    let mut entity_key = q.entity_key;
    for (shorthand, kind, name) in [
        (q.flag_key, EntityType::Flag, "flagKey"),
        (q.segment_key, EntityType::Segment, "segmentKey"),
    ] {
        let Some(key) = shorthand else { continue };
        if entity_type.is_some_and(|t| t != kind) || entity_key.as_ref().is_some_and(|k| *k != key)
        {
            return Err(Error::InvalidParameter {
                name,
                message: "contradicts entityType/entityKey or another shorthand".into(),
            });
        }
        entity_type = Some(kind);
        entity_key = Some(key);
    }
    Ok(Filter {
        environments: None,
        environment: q.environment,
        entity_type,
        entity_key,
        actor: q.actor,
        token_id: q.token_id,
        from: timestamp(q.from.as_deref(), "from")?,
        to: timestamp(q.to.as_deref(), "to")?,
        before_id: q.cursor,
    })
}

#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "audit",
    operation_id = "listAudit",
    summary = "The audit trail, newest first",
    description = "Filters combine with `and`. Requires role `viewer` (on `environment` when \
        given); restricted tokens see only their environments.",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "`INVALID_PARAMETER`: a bad filter, timestamp or `limit`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`", body = ErrorBody),
    ),
)]
async fn list(Query(q): Query<AuditQuery>, admin: Admin) -> Result<Json<Value>> {
    let Admin { state, caller, .. } = admin;
    let limit = page_limit(q.limit)?;
    let mut filter = filter(q)?;
    match &filter.environment {
        Some(environment) => caller.require(Role::Viewer, environment)?,
        None => {
            caller.require_role(Role::Viewer)?;
            // a restricted token sees the trail of its own environments only
            filter.environments.clone_from(&caller.environments);
        }
    }
    let mut rows = audit::query(&mut *state.pool.acquire().await?, &filter, limit + 1).await?;
    let next_cursor = next_page_cursor(&mut rows, limit, |r| r.audit_log_id);
    let entries: Vec<Value> = rows.iter().map(audit::Row::to_json).collect();
    Ok(Json(
        json!({ "entries": entries, "nextCursor": next_cursor }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> AuditQuery {
        AuditQuery {
            environment: None,
            flag_key: None,
            segment_key: None,
            entity_type: None,
            entity_key: None,
            actor: None,
            token_id: None,
            from: None,
            to: None,
            limit: None,
            cursor: None,
        }
    }

    #[test]
    fn flag_key_is_a_shorthand_for_a_flag_entity() {
        let f = filter(AuditQuery {
            flag_key: Some("checkout".into()),
            ..query()
        })
        .unwrap();
        assert_eq!(f.entity_type, Some(EntityType::Flag));
        assert_eq!(f.entity_key.as_deref(), Some("checkout"));
    }

    #[test]
    fn contradicting_filters_and_bad_timestamps_are_rejected() {
        let q = AuditQuery {
            flag_key: Some("a".into()),
            entity_type: Some("segment".into()),
            ..query()
        };
        assert!(matches!(
            filter(q),
            Err(Error::InvalidParameter {
                name: "flagKey",
                ..
            })
        ));
        let q = AuditQuery {
            from: Some("yesterday".into()),
            ..query()
        };
        assert!(matches!(
            filter(q),
            Err(Error::InvalidParameter { name: "from", .. })
        ));
        let q = AuditQuery {
            entity_type: Some("user".into()),
            ..query()
        };
        assert!(matches!(
            filter(q),
            Err(Error::InvalidParameter {
                name: "entityType",
                ..
            })
        ));
    }
}
