//! A tiny HTTP service that answers per user from a flag, evaluated in-process through the
//! OpenFeature API with the edgeflags provider (sdk/rust/README.md).
//!
//! ```sh
//! EDGEFLAGS_URL=http://127.0.0.1:8080 EDGEFLAGS_SERVER_KEY=efs.production.… \
//!   cargo run -p edgeflags-client --example service
//! curl 'http://127.0.0.1:3000/checkout?user=user123&country=US'
//! # {"user":"user123","flag":"new-checkout-flow","checkout":"new","reason":"TARGETING_MATCH",...}
//! ```
//!
//! Environment: `EDGEFLAGS_URL` (the edge or the origin; default `http://127.0.0.1:8080`),
//! `EDGEFLAGS_SERVER_KEY`, or `EDGEFLAGS_ENVIRONMENT` against a server with keys switched off
//! (`scripts/dev`), `FLAG` (default `new-checkout-flow`), `BIND` (default `127.0.0.1:3000`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use edgeflags_client::{Client, EdgeflagsProvider};
use open_feature::{EvaluationContext, OpenFeature};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Clone)]
struct AppState {
    flags: Arc<open_feature::Client>,
    edgeflags: Client,
    flag: Arc<str>,
}

#[derive(Deserialize)]
struct Visitor {
    user: Option<String>,
    country: Option<String>,
}

/// `GET /checkout?user=…&country=…`: which checkout this user gets.
async fn checkout(State(state): State<AppState>, Query(visitor): Query<Visitor>) -> Json<Value> {
    let mut context = EvaluationContext::default();
    if let Some(user) = &visitor.user {
        context = context.with_targeting_key(user.clone());
    }
    if let Some(country) = &visitor.country {
        context = context.with_custom_field("country", country.clone());
    }
    // Evaluated in this process, from the snapshot in memory: no request leaves the service.
    let details = state
        .flags
        .get_bool_details(&state.flag, Some(&context), None)
        .await;
    Json(match details {
        Ok(details) => json!({
            "user": visitor.user,
            "flag": &*state.flag,
            "checkout": if details.value { "new" } else { "classic" },
            "reason": details.reason.map(|r| r.to_string()),
            "variant": details.variant,
        }),
        // The application's default when the flag cannot be evaluated.
        Err(error) => json!({
            "user": visitor.user,
            "flag": &*state.flag,
            "checkout": "classic",
            "error": error.code.to_string(),
        }),
    })
}

/// `GET /healthz`: how current the flags are.
async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let health = state.edgeflags.health();
    Json(json!({
        "status": format!("{:?}", health.status),
        "snapshotVersion": health.version,
        "streaming": health.streaming,
        "lastError": health.last_error.map(|e| e.to_string()),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let url = env("EDGEFLAGS_URL", "http://127.0.0.1:8080");
    let mut builder = Client::builder(&url, env("EDGEFLAGS_SERVER_KEY", ""));
    if let Ok(environment) = std::env::var("EDGEFLAGS_ENVIRONMENT") {
        builder = builder.environment(environment);
    }
    let edgeflags = builder
        .build()
        .context("configuring the edgeflags client")?;
    // Registering the provider waits for the first snapshot (at most 10 s); the service starts
    // anyway and answers with the defaults until it has one.
    OpenFeature::singleton_mut()
        .await
        .set_provider(EdgeflagsProvider::new(edgeflags.clone()))
        .await;
    let flags = OpenFeature::singleton().await.create_client();
    tracing::info!(url, health = ?edgeflags.health(), "edgeflags client started");

    let state = AppState {
        flags: Arc::new(flags),
        edgeflags: edgeflags.clone(),
        flag: env("FLAG", "new-checkout-flow").into(),
    };
    let app = Router::new()
        .route("/checkout", get(checkout))
        .route("/healthz", get(healthz))
        .with_state(state);
    let bind: SocketAddr = env("BIND", "127.0.0.1:3000")
        .parse()
        .context("BIND must be an address such as 127.0.0.1:3000")?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    tracing::info!(%bind, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    // Stops the background synchronisation (the event stream closes).
    tokio::time::timeout(Duration::from_secs(5), edgeflags.shutdown())
        .await
        .context("stopping the edgeflags client")?;
    Ok(())
}
