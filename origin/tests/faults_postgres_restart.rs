//! Fault: PostgreSQL restarts while admins write (issue 11, "Faults: each an automated test").
//!
//! The test starts its own PostgreSQL cluster (Debian's binaries under
//! `/usr/lib/postgresql/*/bin`, trust auth, a free port on 127.0.0.1, a temporary directory), runs
//! the origin's router in-process over a pool pointing at it, sends a stream of flag creations from
//! a task and restarts the cluster in the middle (`pg_ctl stop -m fast`, 3 s down, `pg_ctl start`):
//! - every acknowledged (201) write is in the database with its history and audit rows;
//! - every other write was answered `503 UNAVAILABLE` with `Retry-After` within a bound, never a
//!   500, and left all of its rows or none;
//! - the origin recovers without a restart: `/readyz` is 200 again and new writes succeed.
//!
//! Run: `cargo test -p origin --test faults_postgres_restart` (needs no DATABASE_URL; skips, saying
//! so, when no PostgreSQL binaries are installed).

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{count, TestApp};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The longest any one request may take, a restart included: the pool's acquire timeout (2 s)
/// plus a reconnect, with room to spare. A request past it is a hang.
const REQUEST_BOUND: Duration = Duration::from_secs(15);

/// How long the database stays down: longer than the pool's acquire timeout.
const OUTAGE: Duration = Duration::from_secs(3);

/// A PostgreSQL cluster of this test alone: created by `initdb`, started and stopped by `pg_ctl`
/// (which signals the postmaster by the PID in its `postmaster.pid`), removed on drop.
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Debian's PostgreSQL binaries, the newest major version installed.
    fn binaries() -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
            .collect();
        found.sort_by_key(|bin| {
            bin.parent()
                .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
                .unwrap_or(0)
        });
        found.pop()
    }

    /// A new cluster, started; `None` when PostgreSQL is not installed.
    fn start() -> Option<Self> {
        let bin = Self::binaries()?;
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("edgeflags-faults-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Self { bin, dir, port };
        // PostgreSQL refuses to run as root: then the cluster belongs to the `postgres` user.
        if running_as_root() {
            run(Command::new("chown").arg("postgres").arg(&cluster.dir));
        }
        run(cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]));
        run(&mut cluster.pg_ctl("start"));
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `tool` of the PostgreSQL binaries, run as the cluster's owner.
    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    /// `pg_ctl <action>` on this cluster, waiting at most 30 s; fast shutdown for stop/restart.
    fn pg_ctl(&self, action: &str) -> Command {
        let mut command = self.command("pg_ctl");
        command
            .arg(action)
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "30", "-m", "fast", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            ));
        command
    }

    /// The postmaster's PID, from `postmaster.pid`.
    fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let stopped = self
            .pg_ctl("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            // pg_ctl could not stop it: signal exactly the postmaster this test started.
            if let Some(pid) = self.pid() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[track_caller]
fn run(command: &mut Command) -> Output {
    let output = command.output().expect("running a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The pool `origin serve` builds (`origin/src/main.rs`), with a shorter acquire timeout.
async fn origin_pool(url: &str) -> PgPool {
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .unwrap();
    sqlx::migrate!("../migrations").run(&pool).await.unwrap();
    pool
}

/// One write of the stream and how it was answered.
#[derive(Debug)]
struct Attempt {
    flag: String,
    status: StatusCode,
    code: String,
    retry_after: Option<String>,
    took: Duration,
}

/// Creates flags `flag-000`, `flag-001`, … one after another until `stop`, each bounded by
/// [`REQUEST_BOUND`].
async fn write_stream(app: TestApp, stop: Arc<AtomicBool>) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let flag = format!("flag-{i:03}");
        let body = json!({"flagKey": flag, "enabled": true, "defaultValue": false});
        let started = Instant::now();
        let response = tokio::time::timeout(
            REQUEST_BOUND,
            app.post("/admin/flags?environment=production", body),
        )
        .await
        .unwrap_or_else(|_| panic!("creating {flag} hung for more than {REQUEST_BOUND:?}"));
        attempts.push(Attempt {
            status: response.status,
            code: response.code().to_owned(),
            retry_after: response.header("retry-after").map(str::to_owned),
            took: started.elapsed(),
            flag,
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    attempts
}

async fn rows_of(pool: &PgPool, flag: &str) -> (i64, i64, i64) {
    let one = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(flag)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    (
        one("select count(*) from feature_flag where flag_key = $1").await,
        one("select count(*) from flag_version where flag_key = $1").await,
        one("select count(*) from audit_log where entity_type = 'flag' and entity_key = $1").await,
    )
}

/// Waits (at most `limit`) until the stream has `n` acknowledged writes.
async fn wait_acknowledged(app: &TestApp, n: i64, limit: Duration) {
    let start = Instant::now();
    while count(&app.pool, "select count(*) from feature_flag").await < n {
        assert!(
            start.elapsed() < limit,
            "fewer than {n} writes within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_across_a_postgres_restart_are_either_committed_or_answered_503_and_the_origin_recovers(
) {
    let Some(cluster) = PrivatePostgres::start() else {
        eprintln!(
            "SKIPPED: no PostgreSQL binaries under /usr/lib/postgresql/*/bin (install postgresql)"
        );
        return;
    };
    let started = Instant::now();
    let pool = origin_pool(&cluster.url()).await;
    let app = TestApp::new(pool.clone());
    app.create_environment("production").await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_stream(app.clone(), Arc::clone(&stop)));
    wait_acknowledged(&app, 5, Duration::from_secs(30)).await;

    // The restart: fast shutdown terminates every backend (mid-statement ones included), and the
    // cluster stays down for longer than the pool's 2 s acquire timeout before it starts again on
    // the same port, so writes meet both a dropped connection and a refused one. The stream keeps
    // writing throughout.
    let restart = tokio::task::spawn_blocking({
        let mut stop = cluster.pg_ctl("stop");
        let mut start = cluster.pg_ctl("start");
        move || {
            run(&mut stop);
            std::thread::sleep(OUTAGE);
            run(&mut start);
        }
    });
    tokio::time::timeout(Duration::from_secs(90), restart)
        .await
        .expect("the restart took more than 90 s")
        .unwrap();
    let after_restart = count(&app.pool, "select count(*) from feature_flag").await;
    wait_acknowledged(&app, after_restart + 5, Duration::from_secs(30)).await;
    stop.store(true, Ordering::SeqCst);
    let attempts = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("the write stream stops")
        .unwrap();

    let failed: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.status != StatusCode::CREATED)
        .collect();
    eprintln!(
        "{} writes, {} answered otherwise than 201: {failed:?}",
        attempts.len(),
        failed.len()
    );
    assert!(
        !failed.is_empty(),
        "the outage outlasts the acquire timeout: some write must have been refused"
    );
    for attempt in &attempts {
        assert!(attempt.took < REQUEST_BOUND, "{attempt:?}");
        let rows = rows_of(&pool, &attempt.flag).await;
        if attempt.status == StatusCode::CREATED {
            assert_eq!(
                rows,
                (1, 1, 1),
                "acknowledged but not all stored: {attempt:?}"
            );
        } else {
            // The documented answer to a lost database connection, never a 500.
            assert_eq!(
                (
                    attempt.status,
                    attempt.code.as_str(),
                    attempt.retry_after.as_deref()
                ),
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", Some("1")),
                "{attempt:?}"
            );
            // A commit whose answer was lost may have happened; a half of one never.
            assert!(
                rows == (0, 0, 0) || rows == (1, 1, 1),
                "{attempt:?}: {rows:?}"
            );
        }
    }

    // Recovered without restarting the origin.
    app.get("/readyz").await.assert_status(StatusCode::OK);
    app.post(
        "/admin/flags?environment=production",
        json!({"flagKey": "after-restart", "enabled": true, "defaultValue": false}),
    )
    .await
    .assert_status(StatusCode::CREATED);
    assert_eq!(rows_of(&pool, "after-restart").await, (1, 1, 1));
    // Gapless versions: one snapshot per acknowledged-or-committed write, 1 for the environment.
    let flags = count(&pool, "select count(*) from feature_flag").await;
    let snapshots = count(&pool, "select count(*) from snapshot").await;
    assert_eq!(snapshots, flags + 1);
    assert_eq!(
        count(&pool, "select max(version) from snapshot").await,
        snapshots
    );
    pool.close().await;
    drop(cluster);
    eprintln!("took {:?}", started.elapsed());
}

/// `/readyz` says 503 while the database is down and 200 again once it is back, with the same
/// pool: readiness follows the database without an origin restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_postgres_is_down_and_200_once_it_is_back() {
    let Some(cluster) = PrivatePostgres::start() else {
        eprintln!(
            "SKIPPED: no PostgreSQL binaries under /usr/lib/postgresql/*/bin (install postgresql)"
        );
        return;
    };
    let pool = origin_pool(&cluster.url()).await;
    let app = TestApp::new(pool.clone());
    app.get("/readyz").await.assert_status(StatusCode::OK);

    run(&mut cluster.pg_ctl("stop"));
    let down = tokio::time::timeout(REQUEST_BOUND, app.get("/readyz"))
        .await
        .expect("/readyz answers while the database is down");
    down.assert_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    assert_eq!(down.header("retry-after"), Some("1"));
    let write = tokio::time::timeout(
        REQUEST_BOUND,
        app.post("/admin/environments", json!({"key": "staging"})),
    )
    .await
    .expect("a write answers while the database is down");
    write.assert_error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");

    run(&mut cluster.pg_ctl("start"));
    let start = Instant::now();
    while app.get("/readyz").await.status != StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "/readyz stays 503"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.create_environment("staging").await;
    pool.close().await;
}
