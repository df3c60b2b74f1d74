//! `GET /admin/flag-index`: every flag key across the environments the caller may read, one row
//! per key with a cell per environment, searched and filtered on the server, paged by key.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::Query;
use super::openapi::admin::{ErrorBody, FlagIndexPage};
use super::{page_limit, AppState};
use crate::error::{Error, Result};
use crate::store::flag_index::{self, Copy, Filter};
use crate::store::{environment, rfc3339, version_u64};
use crate::validation;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(index))
}

/// Longest search term, in characters (a key is at most 255).
const MAX_SEARCH_CHARS: usize = 255;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
struct IndexQuery {
    /// Case-insensitive substring of the key, the description or a tag (1-255 characters;
    /// empty = no search).
    #[param(max_length = 255)]
    q: Option<String>,
    /// Only flags carrying exactly this tag.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    tag: Option<String>,
    /// Only flags that are on (`true`) or off (`false`).
    enabled: Option<bool>,
    /// Only flags that target someone beyond their default (ordered rules, segments, user ids
    /// or a percentage rollout: `true`), or that do not (`false`).
    has_rules: Option<bool>,
    /// Only flags changed at or after this time (RFC 3339).
    #[param(format = DateTime)]
    changed_since: Option<String>,
    /// The environment whose copy of a flag the filters test; without it, a flag is listed when
    /// its copy in any listed environment passes them all.
    environment: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// `nextCursor` of the previous page (opaque).
    #[param(pattern = "^[0-9a-f]{2,510}$")]
    cursor: Option<String>,
}

/// The opaque cursor of the page after flag key `key`: its bytes in hex (keys are ASCII).
fn encode_cursor(key: &str) -> String {
    key.bytes()
        .fold(String::with_capacity(key.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The flag key a cursor names; anything [`encode_cursor`] cannot have produced is a 400.
fn decode_cursor(cursor: &str) -> Result<String> {
    let bad = || Error::InvalidParameter {
        name: "cursor",
        message: "not a cursor this API returned".to_owned(),
    };
    if cursor.len() % 2 != 0 || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    validation::key(&key, "cursor").map_err(|_| bad())?;
    Ok(key)
}

fn changed_since(value: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::InvalidParameter {
                    name: "changedSince",
                    message: format!("expected an RFC 3339 timestamp, got {v:?}: {e}"),
                })
        })
        .transpose()
}

fn search(q: Option<String>) -> Result<Option<String>> {
    match q {
        Some(q) if q.chars().count() > MAX_SEARCH_CHARS => Err(Error::InvalidParameter {
            name: "q",
            message: format!("at most {MAX_SEARCH_CHARS} characters"),
        }),
        Some(q) if !q.is_empty() => Ok(Some(q)),
        _ => Ok(None),
    }
}

#[utoipa::path(
    get,
    path = "/admin/flag-index",
    tag = "flags",
    operation_id = "getFlagIndex",
    summary = "Every flag across environments, searched and filtered",
    description = "One row per flag key over the environments the caller may read \
        (`environments`, by key): in `environments` of the row, a cell per environment that has \
        the flag (an environment without it is absent). `description` and `tags` are those of \
        the copy changed most recently (`describedIn` names its environment). Filters combine \
        with `and` and must hold for one copy (in `environment` when given). Paged by key; \
        `nextCursor` is opaque. Requires role `viewer` (on `environment` when given).",
    params(IndexQuery),
    responses(
        (status = 200, description = "A page of flags", body = FlagIndexPage),
        (status = 400, description = "`INVALID_PARAMETER`: a bad filter, timestamp, `limit` or `cursor`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: the token may not read `environment`", body = ErrorBody),
        (status = 404, description = "`ENVIRONMENT_NOT_FOUND`: `environment` does not exist", body = ErrorBody),
    ),
)]
async fn index(Query(q): Query<IndexQuery>, admin: Admin) -> Result<Json<Value>> {
    let limit = page_limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let since = changed_since(q.changed_since.as_deref())?;
    let search = search(q.q)?;
    if let Some(problem) = q.tag.as_deref().and_then(validation::tag_problem) {
        return Err(Error::InvalidParameter {
            name: "tag",
            message: problem,
        });
    }
    let only = match q.environment.as_deref() {
        Some(key) => Some(admin.environment_for_read(key).await?.environment_id),
        None => None,
    };
    let mut conn = admin.state.pool.acquire().await?;
    let listed: Vec<environment::Row> = environment::list(&mut conn)
        .await?
        .into_iter()
        .filter(|row| admin.caller.can_access(&row.environment_key))
        .collect();
    let filter = Filter {
        environment_ids: listed.iter().map(|e| e.environment_id).collect(),
        environment_id: only,
        search,
        tag: q.tag,
        enabled: q.enabled,
        has_rules: q.has_rules,
        changed_since: since,
        after,
        limit: limit + 1,
    };
    let mut keys = flag_index::keys(&mut conn, &filter).await?;
    let next_cursor = super::next_page_cursor(&mut keys, limit, |k| encode_cursor(k));
    let copies = flag_index::copies(&mut conn, &filter.environment_ids, &keys).await?;
    let environments: Vec<&str> = listed.iter().map(|e| e.environment_key.as_str()).collect();
    Ok(Json(json!({
        "environments": environments,
        "flags": rows(copies),
        "nextCursor": next_cursor,
    })))
}

/// One row per key from its copies (sorted by key, then environment).
fn rows(copies: Vec<Copy>) -> Vec<Value> {
    let mut by_key: BTreeMap<String, Vec<Copy>> = BTreeMap::new();
    for copy in copies {
        by_key.entry(copy.flag_key.clone()).or_default().push(copy);
    }
    by_key
        .into_iter()
        .map(|(key, copies)| {
            // the freshest copy describes the flag; on a tie, the first environment by key
            let described = copies.iter().fold(None::<&Copy>, |best, c| match best {
                Some(b) if b.updated_at >= c.updated_at => Some(b),
                _ => Some(c),
            });
            let cells: Map<String, Value> = copies
                .iter()
                .map(|c| {
                    let cell = json!({
                        "enabled": c.enabled,
                        "version": version_u64(c.version),
                        "updatedAt": rfc3339(c.updated_at),
                        "hasRules": c.has_rules,
                    });
                    (c.environment_key.clone(), cell)
                })
                .collect();
            json!({
                "flagKey": key,
                "description": described.and_then(|c| c.description.clone()),
                "tags": described.and_then(|c| c.tags.as_ref()).map_or(&[][..], |t| &t.0[..]),
                "describedIn": described.map(|c| c.environment_key.clone()),
                "environments": cells,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_anything_else_is_refused() {
        let cursor = encode_cursor("new-checkout_2");
        assert_eq!(decode_cursor(&cursor).unwrap(), "new-checkout_2");
        for bad in ["", "0", "zz", "2e2e", "c3a9", &"61".repeat(256)] {
            assert!(
                matches!(
                    decode_cursor(bad),
                    Err(Error::InvalidParameter { name: "cursor", .. })
                ),
                "{bad:?}"
            );
        }
    }
}
