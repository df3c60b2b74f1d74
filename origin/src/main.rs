//! The `origin` binary: parse configuration, set up logging and the database, serve.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use origin::auth::{Role, TokenKeys};
use origin::config::{Cli, Command, Config, TokenArgs, MIN_JWT_SECRET_BYTES};
use origin::http::stream::StreamSettings;
use origin::publish::{self, PublishMetrics};
use origin::{app, live, outbox, AppState, Settings};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        return print_openapi();
    }
    if cli.config.jwt_secret.len() < MIN_JWT_SECRET_BYTES {
        bail!("EDGEFLAGS_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes");
    }
    match cli.command {
        Some(Command::Token(args)) => print_token(&cli.config, args),
        Some(Command::Serve) | None => serve(cli.config).await,
        Some(Command::Openapi) => print_openapi(),
    }
}

/// The document `/openapi.json` serves, pretty-printed (for client generators and reviews).
fn print_openapi() -> anyhow::Result<()> {
    let document = origin::http::document()
        .to_pretty_json()
        .context("rendering the OpenAPI document")?;
    println!("{document}");
    Ok(())
}

fn print_token(config: &Config, args: TokenArgs) -> anyhow::Result<()> {
    let role: Role = args
        .role
        .parse()
        .map_err(anyhow::Error::msg)
        .context("--role")?;
    let max = config.max_token_lifetime();
    if args.ttl > max.as_secs() {
        bail!(
            "--ttl {} is longer than the longest token lifetime accepted, {} seconds \
             (EDGEFLAGS_MAX_TOKEN_LIFETIME_SECONDS)",
            args.ttl,
            max.as_secs()
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock")?
        .as_secs();
    let token = TokenKeys::new(config.jwt_secret.as_bytes())
        .issue(&args.sub, role, args.environments, now, args.ttl)
        .context("signing the token")?;
    println!("{token}");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&config.database_url)
        .await
        .context("connecting to the database")?;
    sqlx::migrate!("../migrations")
        .run(&pool)
        .await
        .context("applying migrations")?;

    // One shutdown for everything: the HTTP server and its event streams, the outbox listener
    // and its two consumers, and the outbox pruner.
    let shutdown = CancellationToken::new();
    let state = AppState::new(pool.clone(), Settings::from(&config))
        .context("metrics registry")?
        .with_max_token_lifetime(config.max_token_lifetime())
        .with_streams(StreamSettings::from(&config))
        .with_shutdown(shutdown.clone());
    state
        .live
        .set_evaluation_budget(live::EvaluationBudget::from(&config));
    // Serve nothing before every environment's snapshot is loaded.
    state.live.load(&pool).await.context("loading snapshots")?;

    // One listener per replica feeds the evaluation cache and the publisher. It polls as often
    // as the more impatient of the two asks for.
    let poll = Duration::from_secs(
        config
            .snapshot_poll_seconds
            .min(config.publish.publish_poll_seconds)
            .max(1),
    );
    let (outbox_listener, announcements) =
        outbox::spawn_listener(pool.clone(), poll, shutdown.clone());
    let follower = live::spawn_follower(
        pool.clone(),
        state.live.clone(),
        announcements.clone(),
        shutdown.clone(),
    );

    let publish_metrics = PublishMetrics::register(&state.metrics.registry)
        .context("registering publisher metrics")?;
    let sinks = config
        .publish
        .sinks()
        .context("configuring the snapshot sinks")?;
    let sink_names: Vec<String> = sinks.iter().map(|s| s.name().to_owned()).collect();
    let publisher = publish::spawn_with_sinks(
        pool.clone(),
        sinks,
        config.publish.settings(),
        publish_metrics,
        announcements,
        shutdown.clone(),
    )
    .context("starting the snapshot publisher")?;
    // Delivered snapshots beyond the retention go; what a sink still needs stays.
    let pruner = config.retention.interval().map(|interval| {
        outbox::spawn_pruner(
            pool.clone(),
            config.retention.retention(),
            sink_names,
            interval,
            shutdown.clone(),
        )
    });

    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    tracing::info!(address = %config.bind, "origin listening");
    let signal = shutdown.clone();
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        wait_for_signal().await;
        signal.cancel();
    })
    .await
    .context("serving")?;

    shutdown.cancel();
    let _ = outbox_listener.await;
    let _ = follower.await;
    // in-flight deliveries finish (bounded by the delivery timeout); undelivered versions stay
    // in the outbox for the next start or another replica
    let _ = publisher.await;
    if let Some(pruner) = pruner {
        let _ = pruner.await;
    }
    pool.close().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
