//! Who is calling and what they may touch: extractors that authorise an admin request before its
//! handler runs, so every handler starts from a checked environment instead of repeating the
//! checks (and none can forget one).
//!
//! Handlers take their path parameters and `If-Match` before these, so malformed input is
//! reported in the order path, `If-Match`, query, body, and only then access and existence.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

use super::extract::{change_comment, IfMatch, JsonObject, Query};
use super::{environment_of, page_limit, AppState};
use crate::auth::{Caller, Role};
use crate::domain::{Target, Writer};
use crate::error::{Error, Resource, Result};
use crate::store::{environment, flag, KeyPage};

/// `?environment=`: the environment a request addresses.
#[derive(Debug, Deserialize)]
pub(super) struct EnvironmentQuery {
    pub(super) environment: Option<String>,
}

/// `?environment=&limit=&cursor=`: one page of an environment's entities, by key.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// Environment key.
    #[param(required = true)]
    pub(super) environment: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(super) limit: Option<i64>,
    /// `nextCursor` of the previous page.
    pub(super) cursor: Option<String>,
}

/// Header confirming a change of flags' `enabled` in the protected environment it names.
pub(super) const CONFIRM_HEADER: &str = "x-edgeflags-confirm";

/// Any admin request: the shared state and the caller `admin_guard` authenticated.
#[derive(Debug)]
pub(super) struct Admin {
    pub(super) state: AppState,
    pub(super) caller: Caller,
    /// The author's comment on a change (`X-Edgeflags-Comment`); only read for methods that
    /// change something, so a read never fails on it.
    pub(super) comment: Option<String>,
    /// The environment the caller confirms changes of flags' `enabled` in
    /// (`X-Edgeflags-Confirm`); protected environments need it.
    pub(super) confirm: Option<String>,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        // admin_guard inserts the caller before any admin handler runs; without it the request
        // is simply not authenticated
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(Error::Unauthorized("missing bearer token"))?;
        let comment = if parts.method == Method::GET || parts.method == Method::HEAD {
            None
        } else {
            change_comment(&parts.headers)?
        };
        // anything but an environment key confirms nothing: the change then answers 428
        let confirm = parts
            .headers
            .get(CONFIRM_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        Ok(Self {
            state: state.clone(),
            caller,
            comment,
            confirm,
        })
    }
}

impl Admin {
    /// The domain writer acting as the caller: every admin write goes through it.
    pub(super) fn writer(&self) -> Writer<'_> {
        Writer::new(&self.state.pool, &self.state.live, &self.caller.sub)
            .with_token_id(self.caller.token_id.as_deref())
            .with_comment(self.comment.as_deref())
            .with_confirmation(self.confirm.as_deref())
    }

    /// Environment `key`'s row (unlocked), once the caller may read it; 404 when absent.
    pub(super) async fn environment_for_read(&self, key: &str) -> Result<environment::Row> {
        self.caller.require(Role::Viewer, key)?;
        environment::find(&mut *self.state.pool.acquire().await?, key)
            .await?
            .ok_or_else(|| Error::not_found(Resource::Environment, key))
    }

    /// The environment `?environment=` names (required) and its row, once the caller may read it.
    async fn viewing(self, environment: Option<&str>) -> Result<Viewing> {
        let environment = environment_of(environment, None)?;
        let row = self.environment_for_read(&environment).await?;
        Ok(Viewing {
            admin: self,
            environment,
            row,
        })
    }

    /// A page read of `environment`: the page size is checked first, then access.
    pub(super) async fn paging(
        self,
        environment: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Viewing, i64)> {
        let limit = page_limit(limit)?;
        Ok((self.viewing(environment).await?, limit))
    }

    /// The environment a change addresses (the query's, or the body's: they must agree), once
    /// the caller may edit it.
    fn editing(self, query: Option<&str>, body: Option<&Value>) -> Result<Editing> {
        let environment = environment_of(query, body)?;
        self.caller.require(Role::Editor, &environment)?;
        Ok(Editing {
            admin: self,
            environment,
        })
    }
}

/// A read of the environment `?environment=` names: the caller may view it and it exists.
#[derive(Debug)]
pub(super) struct Viewing {
    pub(super) admin: Admin,
    /// Its key.
    pub(super) environment: String,
    /// Its row.
    pub(super) row: environment::Row,
}

impl FromRequestParts<AppState> for Viewing {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let Query(q) = Query::<EnvironmentQuery>::from_request_parts(parts, state).await?;
        admin.viewing(q.environment.as_deref()).await
    }
}

impl Viewing {
    /// Flag `key` of this environment; 404 when absent.
    pub(super) async fn flag(&self, key: &str) -> Result<flag::Stored> {
        flag::find(
            &mut *self.admin.state.pool.acquire().await?,
            self.row.environment_id,
            key,
        )
        .await?
        .ok_or_else(|| crate::domain::flags::not_found(&self.environment, key))
    }
}

/// One page of the environment `?environment=` names, with the page size and cursor asked for.
#[derive(Debug)]
pub(super) struct Paging {
    pub(super) viewing: Viewing,
    /// Rows to answer (the query fetches one more to know whether a next page exists).
    pub(super) limit: i64,
    /// Key after which the page starts.
    pub(super) cursor: Option<String>,
}

impl Paging {
    /// The rows to fetch: one more than the page holds, so that [`super::next_page_cursor`]
    /// knows whether another page follows.
    pub(super) fn rows(&self) -> KeyPage<'_> {
        KeyPage {
            environment_id: self.viewing.row.environment_id,
            after: self.cursor.as_deref(),
            limit: self.limit + 1,
        }
    }
}

impl FromRequestParts<AppState> for Paging {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let Query(q) = Query::<PageQuery>::from_request_parts(parts, state).await?;
        let (viewing, limit) = admin.paging(q.environment.as_deref(), q.limit).await?;
        Ok(Self {
            viewing,
            limit,
            cursor: q.cursor,
        })
    }
}

/// A change to the environment `?environment=` names, which the caller may edit.
#[derive(Debug)]
pub(super) struct Editing {
    pub(super) admin: Admin,
    /// Its key.
    pub(super) environment: String,
}

impl FromRequestParts<AppState> for Editing {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let Query(q) = Query::<EnvironmentQuery>::from_request_parts(parts, state).await?;
        admin.editing(q.environment.as_deref(), None)
    }
}

impl Editing {
    /// The domain writer acting as the caller.
    pub(super) fn writer(&self) -> Writer<'_> {
        self.admin.writer()
    }

    /// Entity `key` of this environment, as the change based on `if_match` addresses it.
    pub(super) fn target<'a>(&'a self, key: &'a str, if_match: IfMatch) -> Target<'a> {
        Target {
            environment: &self.environment,
            key,
            precondition: if_match.into(),
        }
    }
}

/// A change with a JSON object body; the environment is the query's or the body's
/// `environment` member (they must agree), and the caller may edit it.
#[derive(Debug)]
pub(super) struct EditingWith {
    pub(super) editing: Editing,
    /// The body, `environment` member included (it is part of each body's shape).
    pub(super) body: Map<String, Value>,
}

impl FromRequest<AppState> for EditingWith {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let (mut parts, body) = req.into_parts();
        let admin = Admin::from_request_parts(&mut parts, state).await?;
        let Query(q) = Query::<EnvironmentQuery>::from_request_parts(&mut parts, state).await?;
        let JsonObject(body) =
            JsonObject::from_request(Request::from_parts(parts, body), state).await?;
        let editing = admin.editing(q.environment.as_deref(), body.get("environment"))?;
        Ok(Self { editing, body })
    }
}
