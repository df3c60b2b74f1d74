//! Snapshot build cost at the origin, against the real database, for 1,000 and 10,000 flags.
//!
//! For each size it creates an environment from evaluator-core's deterministic generator (the same
//! realistic mix the edge benchmarks use: user lists, segments, rules, rollouts, overrides,
//! prerequisites) and times, per iteration:
//! - `build`: `outbox::build` — loading flags, overrides, segments and client keys from
//!   PostgreSQL and assembling the snapshot (what every mutation does under its lock);
//! - `serialize`: rendering it as the outbox text;
//! - `compile`: evaluator-core's `CompiledSnapshot::compile` (what the evaluation cache does);
//! - `mutation`: one complete admin `PUT /admin/flags/{key}` through the in-process router —
//!   lock, load, validate, write, history, audit, snapshot append, NOTIFY, commit, cache install.
//!
//! Run: `cargo bench -p origin --bench snapshot_build` (PostgreSQL on 127.0.0.1:5432; creates and
//! drops the database `edgeflags_origin_bench`, or `ORIGIN_BENCH_DATABASE`, so that two runs on one
//! server need not share it). Knobs: `ORIGIN_BENCH_SIZES` (default `1000,10000`),
//! `ORIGIN_BENCH_ITERATIONS` (default 15).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use evaluator_core::{testdata, CompiledSnapshot};
use origin::auth::Role;
use origin::domain::environments::{self, Contents};
use origin::domain::Writer;
use origin::{app, outbox, AppState, Settings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use tower::ServiceExt;

fn database() -> String {
    std::env::var("ORIGIN_BENCH_DATABASE").unwrap_or_else(|_| "edgeflags_origin_bench".to_owned())
}
const SECRET: &str = "bench-secret-bench-secret-bench-secret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn base_options() -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/edgeflags".to_owned());
    url.parse().expect("DATABASE_URL")
}

/// Runs `sql` on the server's `postgres` database (to create or drop the bench database).
async fn administer(sql: &str) {
    let mut admin = base_options()
        .database("postgres")
        .connect()
        .await
        .expect("connect");
    admin.execute(sql).await.unwrap();
}

async fn fresh_database() -> PgPool {
    administer(&format!(
        "drop database if exists {} with (force)",
        database()
    ))
    .await;
    administer(&format!("create database {}", database())).await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(base_options().database(&database()))
        .await
        .unwrap();
    sqlx::migrate!("../migrations").run(&pool).await.unwrap();
    pool
}

async fn drop_database(pool: PgPool) {
    pool.close().await;
    administer(&format!(
        "drop database if exists {} with (force)",
        database()
    ))
    .await;
}

/// Creates the generated environment through the origin's own write path, in one mutation
/// (validated as a whole, one history and audit row per flag and segment, snapshot version 1).
async fn populate(state: &AppState, key: &str, flags: usize) {
    let generated = testdata::snapshot(flags, (flags / 5).clamp(20, 200));
    let writer = Writer::new(&state.pool, &state.live, "bench");
    let contents = Contents {
        flags: generated.flags,
        segments: generated.segments,
    };
    environments::create_with_contents(&writer, key, None, contents)
        .await
        .unwrap();
}

struct Stats(Vec<Duration>);

impl Stats {
    fn line(&mut self, what: &str, flags: usize) -> String {
        self.0.sort_unstable();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "| {flags} | {what} | {:.2} | {:.2} | {:.2} | {} |",
            ms(at(0.5)),
            ms(at(0.95)),
            ms(*self.0.last().unwrap()),
            self.0.len()
        )
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("ORIGIN_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let iterations: usize = env_or("ORIGIN_BENCH_ITERATIONS", 15);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = fresh_database().await;
        let settings = Settings {
            jwt_secret: SECRET.to_owned(),
            admin_rate_per_second: 0.0,
            admin_rate_burst: 1,
            max_body_bytes: 1 << 20,
            require_client_keys: false,
        };
        let state = AppState::new(pool.clone(), settings).unwrap();
        let router = app(state.clone());
        let token = state
            .tokens
            .issue("bench", Role::Admin, None, now_secs(), 3600)
            .unwrap();
        println!("| flags | step | p50 ms | p95 ms | max ms | runs |");
        println!("|---|---|---|---|---|---|");
        for &size in &sizes {
            let key = format!("bench{size}");
            let started = Instant::now();
            populate(&state, &key, size).await;
            eprintln!(
                "stored {size} flags in {:.1} s",
                started.elapsed().as_secs_f64()
            );

            let (mut build, mut serialize, mut compile, mut mutation) =
                (Stats(vec![]), Stats(vec![]), Stats(vec![]), Stats(vec![]));
            let mut bytes = 0;
            for i in 0..iterations {
                let mut conn = pool.acquire().await.unwrap();
                let t = Instant::now();
                let built = outbox::build(&mut conn, &key, 1).await.unwrap();
                build.0.push(t.elapsed());
                let t = Instant::now();
                let text = serde_json::to_string(&built).unwrap();
                serialize.0.push(t.elapsed());
                bytes = text.len();
                let t = Instant::now();
                let (compiled, _warnings) = CompiledSnapshot::compile(built);
                compile.0.push(t.elapsed());
                assert_eq!(compiled.len(), size);

                // a real admin change of the generator's always-present flag
                let body = serde_json::json!({"description": format!("bench {i}")}).to_string();
                let request = Request::put(format!(
                    "/admin/flags/{}?environment={key}",
                    testdata::SIMPLE_FLAG
                ))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
                let t = Instant::now();
                let response = router.clone().oneshot(request).await.unwrap();
                mutation.0.push(t.elapsed());
                assert_eq!(response.status(), 200);
            }
            println!("{}", build.line("build (load + assemble)", size));
            println!("{}", serialize.line("serialize", size));
            println!("{}", compile.line("compile", size));
            println!("{}", mutation.line("admin PUT (whole mutation)", size));
            eprintln!("snapshot of {size} flags: {} KiB", bytes / 1024);
        }
        drop(router);
        drop(state);
        drop_database(pool).await;
    });
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
