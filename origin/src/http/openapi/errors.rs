//! The error answers several admin operations document alike, as `IntoResponses` sets that a
//! `#[utoipa::path]` lists next to its own statuses (`responses((status = 200, ...), ReadErrors)`).
//!
//! Each set is what one kind of request can fail with in the same words: a read of one entity,
//! a page, a create, a change with a body and `If-Match`, a deletion. What differs per operation
//! (which entity is not found, what a 409 or 422 means there) stays in the operation itself.

use std::collections::BTreeMap;

use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

// The descriptions the sets share; each set pairs them with their statuses.
const BAD_ENVIRONMENT: &str = "`INVALID_PARAMETER`: no environment";
const BAD_PAGE: &str = "`INVALID_PARAMETER`: no environment, a bad `limit` or query";
const BAD_CREATE: &str = "`MALFORMED_JSON`, or `INVALID_PARAMETER`: no environment";
const BAD_CHANGE: &str = "`MALFORMED_JSON`, or `INVALID_PARAMETER` (environment, `If-Match`)";
const BAD_DELETE: &str = "`INVALID_PARAMETER` (environment, `If-Match`)";
const READ_FORBIDDEN: &str = "`FORBIDDEN`: the token may not read this environment";
const EDIT_FORBIDDEN: &str = "`FORBIDDEN`: the token may not edit this environment";
const NO_ENVIRONMENT: &str = "`ENVIRONMENT_NOT_FOUND`";
const VERSION_CONFLICT: &str = "`VERSION_CONFLICT`";
const TOO_LARGE: &str = "`PAYLOAD_TOO_LARGE`";
const ADMIN_FORBIDDEN: &str = "`FORBIDDEN`: the token is not an admin of this environment";

/// The answers (status, description) as the document has them: each an `ErrorBody` in JSON.
fn error_answers(answers: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            ((*status).to_owned(), RefOr::T(response))
        })
        .collect()
}

/// Declares each set as a unit type whose `IntoResponses` lists its answers.
macro_rules! error_sets {
    ($($(#[$doc:meta])* $name:ident => [$($status:literal: $answer:expr),+];)+) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_answers(&[$((stringify!($status), $answer)),+])
            }
        }
    )+};
}

error_sets! {
    /// A read of one entity of an environment (`?environment=` required).
    ReadErrors => [400: BAD_ENVIRONMENT, 403: READ_FORBIDDEN];
    /// A page of an environment's entities (`environment`, `limit`, `cursor`).
    PageErrors => [400: BAD_PAGE, 403: READ_FORBIDDEN];
    /// A create in an environment that must exist (named in the query or the body).
    CreateErrors => [400: BAD_CREATE, 403: EDIT_FORBIDDEN, 404: NO_ENVIRONMENT, 413: TOO_LARGE];
    /// A change with a JSON body, based on the version `If-Match` names.
    ChangeErrors => [400: BAD_CHANGE, 403: EDIT_FORBIDDEN, 413: TOO_LARGE];
    /// A deletion, based on the version `If-Match` names.
    DeleteErrors => [400: BAD_DELETE, 403: EDIT_FORBIDDEN, 409: VERSION_CONFLICT];
    /// A read of the environment named in the path.
    EnvironmentReadErrors => [403: READ_FORBIDDEN, 404: NO_ENVIRONMENT];
    /// An admin operation without a body on the environment named in the path.
    EnvironmentAdminErrors => [403: ADMIN_FORBIDDEN, 404: NO_ENVIRONMENT];
    /// An admin operation with a JSON body on the environment named in the path.
    EnvironmentBodyErrors => [400: "`MALFORMED_JSON`", 403: ADMIN_FORBIDDEN, 404: NO_ENVIRONMENT, 413: TOO_LARGE];
}
