//! `GET /admin/environments/{environment}/delivery`: how far each sink (the edge, the S3 archive)
//! has delivered the environment's snapshots, and its last failure: a version the edge rejects
//! for good shows here (and in `/metrics`) instead of only in the origin's log.

use axum::Json;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::Admin;
use super::extract::Path;
use super::openapi::admin::DeliveryStatus;
use super::openapi::errors::EnvironmentReadErrors;
use super::AppState;
use crate::error::Result;
use crate::store::{delivery, version_u64};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

#[utoipa::path(
    get,
    path = "/admin/environments/{environment}/delivery",
    tag = "environments",
    operation_id = "getDeliveryStatus",
    summary = "Delivery of the environment's snapshots to each sink",
    description = "Per sink: the version it acknowledged, how far behind the current snapshot it \
        is, and its last failure and next attempt. Requires role `viewer` on the environment.",
    params(("environment" = String, Path, description = "Environment key")),
    responses(
        (status = 200, description = "The delivery status", body = DeliveryStatus),
        EnvironmentReadErrors,
    ),
)]
async fn status(Path(environment): Path<String>, admin: Admin) -> Result<Json<Value>> {
    let env = admin.environment_for_read(&environment).await?;
    let current = version_u64(env.snapshot_version);
    let mut conn = admin.state.pool.acquire().await?;
    let rows = delivery::for_environment(&mut conn, &environment).await?;
    let sinks: Vec<Value> = rows.iter().map(|r| r.to_json(current)).collect();
    Ok(Json(json!({
        "environment": environment,
        "snapshotVersion": current,
        "sinks": sinks,
    })))
}
