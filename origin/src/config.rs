//! Command line and environment configuration of the origin.
//!
//! Every setting is a `--flag` and an environment variable; the doc comments are the `--help`
//! text.

use std::net::SocketAddr;

use clap::{ArgAction, Args, Parser, Subcommand};

/// edgeflags origin: the control plane (admin API, snapshot outbox) and an evaluation API.
#[derive(Debug, Parser)]
#[command(name = "origin", version)]
pub struct Cli {
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings shared by every subcommand.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands of the binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Print an admin JWT signed with EDGEFLAGS_JWT_SECRET (bootstrapping, scripts, tests).
    Token(TokenArgs),
    /// Print the OpenAPI document of the HTTP API (the one served at /openapi.json) and exit;
    /// needs no secret and no database.
    Openapi,
}

/// Claims of a token printed by `origin token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Subject: who the audit log will name as the actor.
    #[arg(long)]
    pub sub: String,
    /// One of viewer, editor, admin.
    #[arg(long)]
    pub role: String,
    /// Comma-separated environments the token is limited to (all when absent).
    #[arg(long, value_delimiter = ',')]
    pub environments: Option<Vec<String>>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

/// Server settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL connection string.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/edgeflags",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Maximum connections in the database pool.
    #[arg(long, env = "EDGEFLAGS_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Address the HTTP server listens on.
    #[arg(long, env = "EDGEFLAGS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// HS256 secret that admin JWTs are signed with (at least 32 bytes; `serve` and `token`
    /// refuse to start without it).
    #[arg(
        long,
        env = "EDGEFLAGS_JWT_SECRET",
        hide_env_values = true,
        default_value = "",
        hide_default_value = true
    )]
    pub jwt_secret: String,

    /// Sustained admin API requests per second allowed per token subject (or client IP when
    /// unauthenticated); 0 disables rate limiting.
    #[arg(long, env = "EDGEFLAGS_ADMIN_RATE_PER_SECOND", default_value_t = 20.0)]
    pub admin_rate_per_second: f64,

    /// Burst size of the admin API rate limit (the token bucket's capacity).
    #[arg(long, env = "EDGEFLAGS_ADMIN_RATE_BURST", default_value_t = 100)]
    pub admin_rate_burst: u32,

    /// Sustained evaluation API requests per second allowed per client IP at the origin; over
    /// it, 429 RATE_LIMITED with Retry-After. 0 disables this limit.
    #[arg(long, env = "EDGEFLAGS_EVALUATION_RATE_PER_SECOND", default_value_t = crate::live::EvaluationBudget::DEFAULT.rate_per_second)]
    pub evaluation_rate_per_second: f64,

    /// Burst size of the evaluation API rate limit (the token bucket's capacity).
    #[arg(long, env = "EDGEFLAGS_EVALUATION_RATE_BURST", default_value_t = crate::live::EvaluationBudget::DEFAULT.burst)]
    pub evaluation_rate_burst: u32,

    /// Evaluations of many flags (batch and bulk requests) running at once at the origin, off
    /// the async runtime; more get 503 OVERLOADED with Retry-After.
    #[arg(long, env = "EDGEFLAGS_EVALUATION_CONCURRENCY", default_value_t = crate::live::EvaluationBudget::DEFAULT.concurrency)]
    pub evaluation_concurrency: usize,

    /// Largest admin request body in bytes; larger bodies get 413 PAYLOAD_TOO_LARGE.
    #[arg(long, env = "EDGEFLAGS_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Whether the evaluation API requires a client key (`efk.<env>.<hex>`); when false, requests
    /// without one name their environment themselves.
    #[arg(
        long,
        env = "EDGEFLAGS_REQUIRE_CLIENT_KEYS",
        default_value_t = true,
        action = ArgAction::Set
    )]
    pub require_client_keys: bool,

    /// Whether the origin serves OFREP event streams (real-time push, docs/event-streams.md):
    /// when false, bulk answers advertise none and the stream route refuses every token.
    #[arg(
        long,
        env = "EDGEFLAGS_EVENT_STREAMS",
        default_value_t = true,
        action = ArgAction::Set
    )]
    pub event_streams: bool,

    /// OFREP event streams (`GET /ofrep/v1/event-stream`) open at once per environment at this
    /// origin; more get 429 TOO_MANY_STREAMS with Retry-After.
    #[arg(long, env = "EDGEFLAGS_STREAMS_PER_ENVIRONMENT", default_value_t = crate::http::stream::StreamSettings::PER_ENVIRONMENT)]
    pub streams_per_environment: usize,

    /// OFREP event streams open at once per client key at this origin; more get 429
    /// TOO_MANY_STREAMS with Retry-After.
    #[arg(long, env = "EDGEFLAGS_STREAMS_PER_CLIENT_KEY", default_value_t = crate::http::stream::StreamSettings::PER_CLIENT_KEY)]
    pub streams_per_client_key: usize,

    /// Seconds between polls of the newest snapshot versions (no bodies) into the evaluation
    /// cache, in case a NOTIFY from another replica was missed. The replica's one outbox listener
    /// polls at the shorter of this and the publisher's poll.
    #[arg(long, env = "EDGEFLAGS_SNAPSHOT_POLL_SECONDS", default_value_t = 10)]
    pub snapshot_poll_seconds: u64,

    /// Longest admin token lifetime accepted, in seconds (`exp - iat`, or `exp - now` when the
    /// token has no `iat`); longer-lived tokens get 401, and `origin token` refuses to mint one.
    #[arg(
        long,
        env = "EDGEFLAGS_MAX_TOKEN_LIFETIME_SECONDS",
        default_value_t = crate::auth::DEFAULT_MAX_TOKEN_LIFETIME.as_secs()
    )]
    pub max_token_lifetime_seconds: u64,

    /// Pruning of delivered snapshots from the outbox (origin/src/outbox/retention.rs).
    #[command(flatten)]
    pub retention: crate::outbox::RetentionConfig,

    /// Snapshot publishing to the edge and the S3 archive (origin/src/publish).
    #[command(flatten)]
    pub publish: crate::publish::PublishConfig,
}

impl Config {
    /// The longest admin token lifetime accepted.
    pub fn max_token_lifetime(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.max_token_lifetime_seconds)
    }
}

/// Shortest JWT secret accepted: HS256 is only as strong as its key.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_local_setup() {
        let cli = Cli::try_parse_from(["origin", "--jwt-secret", "x"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.config.bind.to_string(), "127.0.0.1:8080");
        assert!(cli.config.require_client_keys);
        assert_eq!(cli.config.max_body_bytes, 1024 * 1024);
        assert_eq!(cli.config.max_token_lifetime_seconds, 30 * 24 * 3600);
    }

    #[test]
    fn max_token_lifetime_is_configurable() {
        let cli = Cli::try_parse_from([
            "origin",
            "--jwt-secret",
            "x",
            "--max-token-lifetime-seconds",
            "3600",
        ])
        .unwrap();
        assert_eq!(
            cli.config.max_token_lifetime(),
            std::time::Duration::from_secs(3600)
        );
    }

    #[test]
    fn token_subcommand_takes_a_comma_separated_environment_list() {
        let cli = Cli::try_parse_from([
            "origin",
            "--jwt-secret",
            "x",
            "token",
            "--sub",
            "alice",
            "--role",
            "admin",
            "--environments",
            "dev,staging",
        ])
        .unwrap();
        let Some(Command::Token(args)) = cli.command else {
            panic!("not a token command")
        };
        assert_eq!(args.environments.unwrap(), ["dev", "staging"]);
        assert_eq!(args.ttl, 3600);
    }

    #[test]
    fn openapi_subcommand_needs_no_secret() {
        let cli = Cli::try_parse_from(["origin", "openapi"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Openapi)));
        assert_eq!(cli.config.jwt_secret, "");
    }

    #[test]
    fn require_client_keys_can_be_switched_off() {
        let cli = Cli::try_parse_from([
            "origin",
            "--jwt-secret",
            "x",
            "--require-client-keys",
            "false",
        ])
        .unwrap();
        assert!(!cli.config.require_client_keys);
    }
}
