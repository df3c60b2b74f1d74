//! Outbox retention: snapshot rows every sink has passed are pruned, so the `snapshot` table stays
//! bounded however many changes it has seen.
//!
//! A row is pruned only when all of these hold:
//! - it is not its environment's newest version (the evaluation cache loads that one at start-up,
//!   the edge publisher delivers it, and a re-created environment continues its numbering);
//! - it is not among the newest [`Retention::keep_versions`] versions of its environment, and it
//!   is older than [`Retention::keep_for`];
//! - every sink has a cursor for the environment at or beyond the version. "Every sink" is the
//!   sinks this replica publishes to together with every sink that has a cursor anywhere, so a
//!   sink that has not created its cursor for a new environment yet, or one configured only on
//!   another replica, holds its versions back as well. An S3 archive therefore still receives
//!   every version: rows it has not archived are never pruned.
//!
//! Nothing else reads old versions: the evaluation cache and the edge sink read the newest one,
//! the archive reads versions after its own cursor, and flag rollback restores from the flags'
//! own history (`flag_version`), not from snapshots.
//!
//! One task per replica ([`spawn_pruner`]) prunes every `interval`, in batches, under a
//! transaction-scoped advisory lock so that replicas take turns instead of deleting the same rows
//! at once. It stops with the replica's other background tasks, on the shared
//! `CancellationToken`.

use std::time::Duration;

use clap::Args;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::store::version_i64;

/// Rows deleted per statement: keeps each delete's locks and transaction short.
const BATCH: i64 = 1000;

/// Key of the advisory lock that one pruning replica holds at a time.
const LOCK_KEY: i64 = 0x6564_6765_666c_6167; // "edgeflag"

/// Command line and environment settings of outbox retention.
#[derive(Debug, Clone, Args)]
pub struct RetentionConfig {
    /// Newest snapshot versions kept per environment, however old (at least 1: the newest is
    /// always kept).
    #[arg(
        long,
        env = "EDGEFLAGS_SNAPSHOT_RETAIN_VERSIONS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub snapshot_retain_versions: u64,

    /// Snapshots younger than this many seconds are kept, however many there are; 0 keeps only
    /// the newest EDGEFLAGS_SNAPSHOT_RETAIN_VERSIONS.
    #[arg(
        long,
        env = "EDGEFLAGS_SNAPSHOT_RETAIN_SECONDS",
        default_value_t = 3600
    )]
    pub snapshot_retain_seconds: u64,

    /// Seconds between two prunes of delivered snapshots; 0 disables pruning.
    #[arg(
        long,
        env = "EDGEFLAGS_SNAPSHOT_PRUNE_INTERVAL_SECONDS",
        default_value_t = 300
    )]
    pub snapshot_prune_interval_seconds: u64,
}

impl RetentionConfig {
    /// What to keep.
    pub fn retention(&self) -> Retention {
        Retention {
            keep_versions: self.snapshot_retain_versions.max(1),
            keep_for: Duration::from_secs(self.snapshot_retain_seconds),
        }
    }

    /// Time between prunes; `None` when pruning is disabled.
    pub fn interval(&self) -> Option<Duration> {
        (self.snapshot_prune_interval_seconds > 0)
            .then(|| Duration::from_secs(self.snapshot_prune_interval_seconds))
    }
}

/// Which delivered snapshots to keep; a row is pruned only when both let it go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The newest versions of each environment kept, however old.
    pub keep_versions: u64,
    /// Versions younger than this are kept, however many.
    pub keep_for: Duration,
}

/// Deletes the snapshot rows that `retention` lets go and that every sink has passed (`sinks`:
/// the sinks this replica publishes to; sinks with cursors count too). Returns how many rows were
/// deleted; 0 as well when another replica is pruning right now.
pub async fn prune(pool: &PgPool, retention: Retention, sinks: &[String]) -> Result<u64> {
    let mut pruned = 0;
    loop {
        let mut tx = pool.begin().await?;
        let locked: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(pruned);
        }
        let deleted = sqlx::query(
            "with sink(name) as (
                 select unnest($1::text[])
                 union
                 select distinct sink from publish_cursor
             ),
             newest as (
                 select environment_key, max(version) as version
                 from snapshot group by environment_key
             ),
             doomed as (
                 select s.environment_key, s.version
                 from snapshot s join newest n using (environment_key)
                 where s.version < n.version
                   and s.version <= n.version - $2
                   and s.created_at < now() - make_interval(secs => $3)
                   and not exists (
                       select 1 from sink k
                       where not exists (
                           select 1 from publish_cursor c
                           where c.sink = k.name
                             and c.environment_key = s.environment_key
                             and c.delivered_version >= s.version))
                 order by s.environment_key, s.version
                 limit $4
             )
             delete from snapshot s using doomed d
             where s.environment_key = d.environment_key and s.version = d.version",
        )
        .bind(sinks)
        .bind(version_i64(retention.keep_versions))
        .bind(retention.keep_for.as_secs_f64())
        .bind(BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        pruned += deleted;
        if deleted < u64::try_from(BATCH).unwrap_or(u64::MAX) {
            return Ok(pruned);
        }
    }
}

/// Starts the replica's pruner: [`prune`] every `interval` (the first one right away) until
/// `shutdown` is cancelled. Failures are logged and retried at the next tick.
pub fn spawn_pruner(
    pool: PgPool,
    retention: Retention,
    sinks: Vec<String>,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    // a zero interval would spin
    let interval = interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match prune(&pool, retention, &sinks).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned delivered snapshots"),
                Err(e) => tracing::warn!(error = %e, "pruning delivered snapshots failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        retention: RetentionConfig,
    }

    #[test]
    fn defaults_keep_100_versions_and_an_hour_and_prune_every_five_minutes() {
        let config = Cli::try_parse_from(["origin"]).unwrap().retention;
        assert_eq!(
            config.retention(),
            Retention {
                keep_versions: 100,
                keep_for: Duration::from_secs(3600)
            }
        );
        assert_eq!(config.interval(), Some(Duration::from_secs(300)));
    }

    #[test]
    fn zero_versions_is_refused_and_a_zero_interval_disables_pruning() {
        assert!(Cli::try_parse_from(["origin", "--snapshot-retain-versions", "0"]).is_err());
        let config = Cli::try_parse_from(["origin", "--snapshot-prune-interval-seconds", "0"])
            .unwrap()
            .retention;
        assert_eq!(config.interval(), None);
    }
}
