//! Fault: the origin is killed (SIGKILL) between committing changes and publishing them (issue 11,
//! "Faults: each an automated test").
//!
//! The test runs the real `origin` binary (spawned by PID) over a scratch database, publishing to
//! a stand-in edge that is down (connection refused) at first and to an S3 archive (moto, see
//! `publish_s3.rs`) whose bucket does not exist yet. It makes changes through the admin API, waits
//! until the publisher has tried and failed to deliver them to both, kills the origin with
//! SIGKILL, brings the edge up, creates the bucket and starts the origin again: the committed
//! snapshots are still in the outbox, the edge receives the newest one (the edge sink is
//! `LatestOnly`: it skips to the newest version, docs/architecture.md "Outbox") and the archive
//! every version (`EveryVersion`), byte for byte, and both cursors reach the newest.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p origin --test faults_origin_kill`

mod publish_support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use origin::publish::{S3Sink, S3SinkConfig};
use publish_support::*;
use serde_json::{json, Value};
use sqlx::PgPool;

const JWT_SECRET: &str = "faults-jwt-secret-0123456789-faults-jwt-secret";

/// How to start `origin serve`: its database, its address, the edge and the archive it publishes
/// to.
struct OriginConfig {
    database_url: String,
    bind: SocketAddr,
    edge: SocketAddr,
    archive: S3SinkConfig,
    log: std::path::PathBuf,
}

impl OriginConfig {
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_origin"));
        command
            .env_clear()
            .env("DATABASE_URL", &self.database_url)
            .env("EDGEFLAGS_JWT_SECRET", JWT_SECRET)
            .env("EDGEFLAGS_BIND", self.bind.to_string())
            .env("EDGEFLAGS_EDGE_URL", format!("http://{}", self.edge))
            .env("EDGEFLAGS_EDGE_PUBLISH_SECRET", EDGE_SECRET)
            .env("EDGEFLAGS_PUBLISH_POLL_SECONDS", "1")
            .env(
                "EDGEFLAGS_S3_ENDPOINT",
                self.archive.endpoint.as_deref().unwrap(),
            )
            .env("EDGEFLAGS_S3_BUCKET", &self.archive.bucket)
            .env("EDGEFLAGS_S3_REGION", &self.archive.region)
            .env("EDGEFLAGS_S3_ACCESS_KEY_ID", &self.archive.access_key_id)
            .env(
                "EDGEFLAGS_S3_SECRET_ACCESS_KEY",
                &self.archive.secret_access_key,
            )
            .env("EDGEFLAGS_PUBLISH_MAX_BACKOFF_SECONDS", "1")
            // a missing bucket is a rejection (404): retried after this
            .env("EDGEFLAGS_PUBLISH_REJECTED_BACKOFF_SECONDS", "1")
            .env("EDGEFLAGS_SNAPSHOT_POLL_SECONDS", "1")
            .env("EDGEFLAGS_ADMIN_RATE_PER_SECOND", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        command
    }

    /// An admin token, printed by `origin token`.
    fn token(&self) -> String {
        let output = self
            .command()
            .args(["token", "--sub", "faults", "--role", "admin"])
            .output()
            .expect("running origin token");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// `origin serve`, ready (`/readyz` 200) within 60 s.
    async fn serve(&self) -> Origin {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .command()
            .arg("serve")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting origin serve");
        let mut origin = Origin {
            child,
            base: format!("http://{}", self.bind),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let start = Instant::now();
        loop {
            if let Some(status) = origin.child.try_wait().unwrap() {
                panic!("origin exited with {status}; log: {}", self.log.display());
            }
            let ready = origin
                .client
                .get(format!("{}/readyz", origin.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return origin;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "origin not ready within 60 s; log: {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A running `origin serve`, killed (SIGKILL, by its PID) on drop.
struct Origin {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Origin {
    /// An admin `POST`; returns the status, the JSON body and the snapshot version it committed
    /// (`X-Edgeflags-Snapshot-Version`).
    async fn admin(&self, token: &str, path: &str, body: Value) -> (u16, Value, Option<u64>) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let version = response
            .headers()
            .get("x-edgeflags-snapshot-version")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_default(),
            version,
        )
    }

    /// SIGKILL (`Child::kill` signals exactly this PID), then reap it.
    fn kill(mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{status}");
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn database_url(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap()
    )
}

/// Asserts the archive holds exactly the outbox's bytes for every version of `environment`, and
/// the newest as `latest.json`.
async fn assert_archived(pool: &PgPool, archive: &S3Sink, environment: &str) {
    let rows = snapshot_rows(pool, environment).await;
    let newest = S3Sink::latest_key(environment);
    let keys = rows
        .iter()
        .map(|(version, body)| (S3Sink::version_key(environment, *version), body))
        .chain(rows.last().map(|(_, body)| (newest, body)));
    for (key, body) in keys {
        let object = archive
            .client()
            .get_object()
            .bucket(archive.bucket())
            .key(&key);
        let object = object
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        let bytes = object.body.collect().await.unwrap().into_bytes();
        assert_eq!(bytes, body.as_bytes(), "{key}");
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn changes_committed_before_a_sigkill_reach_the_edge_and_the_archive_after_the_restart(
    pool: PgPool,
) {
    let started = Instant::now();
    let s3 = S3Server::start().await;
    let edge_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = OriginConfig {
        database_url: database_url(&pool),
        bind: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        edge: edge_addr,
        archive: S3SinkConfig {
            endpoint: Some(s3.endpoint.clone()),
            bucket: format!("faults-kill-{}", edge_addr.port()),
            region: "us-east-1".to_owned(),
            access_key_id: "test-key".to_owned(),
            secret_access_key: "test-secret".to_owned(),
            timeout: Duration::from_secs(10),
        },
        log: std::env::temp_dir().join(format!(
            "edgeflags-faults-origin-{}-{}.log",
            std::process::id(),
            edge_addr.port()
        )),
    };
    let token = config.token();

    // The edge is down (every delivery is refused at the TCP level), the bucket missing.
    let origin = config.serve().await;
    let (status, _, mut committed) = origin
        .admin(&token, "/admin/environments", json!({"key": "production"}))
        .await;
    assert_eq!((status, committed), (201, Some(1)));
    for i in 0..4 {
        let flag = json!({"flagKey": format!("flag-{i}"), "enabled": true, "defaultValue": false});
        let (status, body, version) = origin
            .admin(&token, "/admin/flags?environment=production", flag)
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(version, committed.map(|v| v + 1), "gapless versions");
        committed = version;
    }
    let committed = committed.unwrap();
    let down = wait_failed(&pool, "edge", "production", 1).await;
    down.assert_stuck(0, &["unreachable"]);
    wait_failed(&pool, "s3", "production", 1)
        .await
        .assert_stuck(0, &["404"]);

    // Killed between commit and publish: nothing of the publisher's runs to its end.
    origin.kill();

    let edge = RecordingEdge::start(edge_addr, Arc::default()).await;
    let archive = S3Sink::new(&config.archive);
    let bucket = archive.client().create_bucket().bucket(archive.bucket());
    bucket.send().await.unwrap();
    let origin = config.serve().await;
    wait_delivered(&pool, "edge", "production", committed).await;
    wait_delivered(&pool, "s3", "production", committed).await;
    assert_archived(&pool, &archive, "production").await;
    let rows = snapshot_rows(&pool, "production").await;
    assert_eq!(
        rows.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (1..=committed).collect::<Vec<_>>(),
        "every committed version survived the kill in the outbox"
    );
    // The edge keeps only the newest: the backlog is skipped to it, delivered once, exactly.
    assert_eq!(
        edge.state.accepted.lock().unwrap().clone(),
        vec![(
            "production".to_owned(),
            committed,
            rows[rows.len() - 1].1.clone()
        )]
    );
    let after = cursor(&pool, "edge", "production").await.unwrap();
    assert_eq!((after.attempts, after.last_error), (0, None));

    // And the restarted origin goes on publishing what it commits now.
    let flag = json!({"flagKey": "after-restart", "enabled": false, "defaultValue": false});
    let (status, _, version) = origin
        .admin(&token, "/admin/flags?environment=production", flag)
        .await;
    assert_eq!((status, version), (201, Some(committed + 1)));
    wait_delivered(&pool, "edge", "production", committed + 1).await;
    wait_delivered(&pool, "s3", "production", committed + 1).await;
    origin.kill();
    assert_archived(&pool, &archive, "production").await;
    assert_eq!(edge.versions("production"), vec![committed, committed + 1]);
    assert!(edge.answers().iter().all(|(_, status)| *status == 200));
    edge.stop().await;
    let _ = std::fs::remove_file(&config.log);
    eprintln!("took {:?}", started.elapsed());
}
