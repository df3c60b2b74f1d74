//! The publisher task: drains the outbox into every sink, woken by the replica's outbox listener
//! ([`crate::outbox::spawn_listener`]), with its own poll as a fallback.
//!
//! Task layout (all inside one `JoinSet`, so aborting the returned handle stops everything):
//! - one coordinator: follows the listener's announcements, creates the cursors of environments it
//!   has not seen yet, ends the backoff of latest-only cursors when a newer version is announced,
//!   refreshes the outbox depth gauge every poll, and bumps a `watch` counter to wake the drainers;
//! - `concurrency` drainers per sink: each repeatedly claims one due cursor (`for update skip
//!   locked`), delivers one version and advances or backs off the cursor in the same transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::config::PublisherSettings;
use super::cursor;
use super::metrics::PublishMetrics;
use super::sink::{Delivery, DeliveryMode, Outgoing, SinkError, SnapshotSink};
use crate::outbox::{Announcement, Subscription};

/// Starts publishing to `sinks` (`crate::publish::PublishConfig::sinks` builds the configured ones; tests bring
/// their own), woken by `announcements` (the replica's outbox listener). The task ends after
/// `shutdown` is cancelled and in-flight deliveries finish (each bounded by the delivery
/// timeout); with no sink it ends at once.
pub fn spawn_with_sinks(
    pool: PgPool,
    sinks: Vec<Arc<dyn SnapshotSink>>,
    settings: PublisherSettings,
    metrics: PublishMetrics,
    announcements: Subscription,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, SinkError> {
    let mut names = HashSet::new();
    for sink in &sinks {
        // Two sinks with one name would share (and fight over) one set of cursors.
        if !names.insert(sink.name().to_owned()) {
            return Err(SinkError::Setup(
                format!("two sinks are named {:?}", sink.name()).into(),
            ));
        }
    }
    Ok(tokio::spawn(run(
        pool,
        sinks,
        settings,
        metrics,
        announcements,
        shutdown,
    )))
}

/// The publisher: one coordinator and `concurrency` drainers per sink, until `shutdown`.
async fn run(
    pool: PgPool,
    sinks: Vec<Arc<dyn SnapshotSink>>,
    settings: PublisherSettings,
    metrics: PublishMetrics,
    announcements: Subscription,
    shutdown: CancellationToken,
) {
    if sinks.is_empty() {
        info!("snapshot publishing disabled: no sink configured");
        return;
    }
    let names: Arc<[String]> = sinks.iter().map(|s| s.name().to_owned()).collect();
    let latest_only: Vec<String> = sinks
        .iter()
        .filter(|s| s.mode() == DeliveryMode::LatestOnly)
        .map(|s| s.name().to_owned())
        .collect();
    info!(sinks = ?names, "snapshot publisher started");

    // A child token: a failed task stops this publisher without shutting the process down.
    let stop = shutdown.child_token();
    let (wake_tx, wake_rx) = watch::channel(0_u64);
    let mut tasks = JoinSet::new();
    tasks.spawn(coordinate(
        pool.clone(),
        SinkNames {
            all: Arc::clone(&names),
            latest_only,
        },
        settings.poll_interval,
        metrics.clone(),
        announcements,
        wake_tx,
        stop.clone(),
    ));
    for sink in sinks {
        let drainer = Arc::new(Drainer {
            pool: pool.clone(),
            sink,
            settings: settings.clone(),
            metrics: metrics.clone(),
        });
        for _ in 0..settings.concurrency {
            tasks.spawn(Arc::clone(&drainer).run(wake_rx.clone(), stop.clone()));
        }
    }

    tokio::select! {
        () = stop.cancelled() => info!("snapshot publisher stopping"),
        Some(ended) = tasks.join_next() => {
            // Tasks only return on stop, so this is a panic (a bug in a sink): stop the rest
            // rather than keep publishing with some sinks silently gone.
            error!(?ended, "a snapshot publisher task ended unexpectedly; stopping the publisher");
        }
    }
    // Drainers finish the delivery in hand (bounded by the delivery timeout) and commit it.
    stop.cancel();
    while let Some(ended) = tasks.join_next().await {
        if let Err(e) = ended {
            error!(error = %e, "snapshot publisher task failed");
        }
    }
    info!("snapshot publisher stopped");
}

/// The names of the publisher's sinks.
struct SinkNames {
    all: Arc<[String]>,
    /// Those delivering only the newest version ([`DeliveryMode::LatestOnly`]).
    latest_only: Vec<String>,
}

/// Cursor creation, ending backoffs a newer version makes moot, depth gauge, and waking the
/// drainers: on every announcement of the outbox listener, and every poll (which is what keeps the
/// publisher going if the listener is down).
async fn coordinate(
    pool: PgPool,
    sinks: SinkNames,
    poll_interval: Duration,
    metrics: PublishMetrics,
    mut announcements: Subscription,
    wake: watch::Sender<u64>,
    stop: CancellationToken,
) {
    // Environments whose cursors exist for every sink.
    let mut known: HashSet<String> = HashSet::new();
    // The newest version announced per environment, to notice one moving on.
    let mut announced: HashMap<String, u64> = HashMap::new();
    let mut listening = true;
    let mut tick = tokio::time::interval(poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                follow(&pool, &sinks, &mut announcements, &mut known, &mut announced).await;
                if let Err(e) = refresh_depth(&pool, &sinks.all, &metrics).await {
                    warn!(error = format!("{e:#}"), "snapshot publisher poll failed");
                }
                wake.send_modify(|n| *n = n.wrapping_add(1));
            }
            changed = announcements.changed(), if listening => {
                if changed {
                    debug!("snapshot announcement");
                    follow(&pool, &sinks, &mut announcements, &mut known, &mut announced).await;
                } else {
                    // The listener stopped (shutdown in progress): the poll carries on alone.
                    listening = false;
                }
                wake.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

/// Acts on the latest announcement: [`ensure_cursors`], then [`expedite`]. It is read once, so
/// whatever arrives meanwhile is still unseen for the next `changed()`.
async fn follow(
    pool: &PgPool,
    sinks: &SinkNames,
    announcements: &mut Subscription,
    known: &mut HashSet<String>,
    announced: &mut HashMap<String, u64>,
) {
    let announcement = announcements.latest();
    ensure_cursors(pool, &sinks.all, &announcement, known).await;
    expedite(pool, &sinks.latest_only, &announcement, announced).await;
}

/// Creates the cursors of every announced environment not in `known` (for all sinks).
async fn ensure_cursors(
    pool: &PgPool,
    sinks: &[String],
    announcement: &Announcement,
    known: &mut HashSet<String>,
) {
    let new: Vec<String> = announcement
        .versions()
        .keys()
        .filter(|environment| !known.contains(*environment))
        .cloned()
        .collect();
    if new.is_empty() {
        return;
    }
    match cursor::ensure(pool, sinks, &new).await {
        Ok(created) => {
            if created > 0 {
                debug!(created, "publish cursors created");
            }
            known.extend(new);
        }
        // retried at the next announcement or poll: `known` only records successes
        Err(e) => warn!(error = %e, "creating publish cursors failed"),
    }
}

/// Makes the backed-off cursors of the `latest_only` sinks due now for every environment whose
/// announced version moved past the one in `announced`.
///
/// A latest-only sink (the edge) delivers the newest version, so a failure's backoff was earned by
/// an older version than the one now waiting: a refused or undeliverable version must not hold
/// back a newer, valid one for a backoff of up to `EDGEFLAGS_PUBLISH_REJECTED_BACKOFF_SECONDS`.
/// The first announcement of an environment (at start-up) changes nothing, so a restart does not
/// end backoffs; the failure count stays, so a newer version that fails too backs off longer.
/// Archives (`EveryVersion`) are left alone: their versions go in order, the failed one first.
async fn expedite(
    pool: &PgPool,
    latest_only: &[String],
    announcement: &Announcement,
    announced: &mut HashMap<String, u64>,
) {
    for (environment, &version) in announcement.versions() {
        let Some(&previous) = announced.get(environment) else {
            announced.insert(environment.clone(), version);
            continue;
        };
        if version <= previous {
            continue;
        }
        if !latest_only.is_empty() {
            // Waits for a drainer delivering this cursor (at most the delivery timeout), so a
            // failure it is about to record is ended too.
            if let Err(e) = cursor::expedite(pool, latest_only, environment, version).await {
                // `announced` keeps the old version: the next announcement or poll tries again
                warn!(error = %e, environment, "ending a superseded backoff failed");
                continue;
            }
        }
        announced.insert(environment.clone(), version);
    }
}

async fn refresh_depth(
    pool: &PgPool,
    sinks: &[String],
    metrics: &PublishMetrics,
) -> anyhow::Result<()> {
    for sink in sinks {
        let depth = cursor::depth(pool, sink)
            .await
            .context("measuring the outbox depth")?;
        metrics.outbox_depth.with_label_values(&[sink]).set(depth);
    }
    Ok(())
}

/// Delivers one sink's outbox; several run per sink, coordinated only through row locks.
struct Drainer {
    pool: PgPool,
    sink: Arc<dyn SnapshotSink>,
    settings: PublisherSettings,
    metrics: PublishMetrics,
}

impl Drainer {
    async fn run(self: Arc<Self>, mut wake: watch::Receiver<u64>, stop: CancellationToken) {
        loop {
            // Mark the wake-ups seen *before* draining: one that arrives while draining makes the
            // `changed()` below return at once, so no notification falls between the two.
            wake.borrow_and_update();
            loop {
                if stop.is_cancelled() {
                    return;
                }
                match self.step(&stop).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        warn!(
                            sink = self.sink.name(),
                            error = format!("{e:#}"),
                            "snapshot publisher database error"
                        );
                        break;
                    }
                }
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Claims one due cursor and delivers one version. `Ok(false)` when nothing is due or `stop`
    /// was cancelled.
    async fn step(&self, stop: &CancellationToken) -> anyhow::Result<bool> {
        let sink = self.sink.name();
        let mut tx = self.pool.begin().await.context("starting a transaction")?;
        let Some(claim) = cursor::claim(&mut tx, sink)
            .await
            .context("claiming a cursor")?
        else {
            return Ok(false);
        };
        // Checked again after the claim: a claim sent before shutdown began can return after it
        // (with the cursor another worker just committed), and shutdown finishes the deliveries
        // in hand without starting new ones. Dropping `tx` rolls the claim back.
        if stop.is_cancelled() {
            return Ok(false);
        }
        let environment = claim.environment_key.as_str();
        let Some(pending) = cursor::next_version(
            &mut tx,
            environment,
            claim.delivered_version,
            self.sink.mode(),
        )
        .await
        .context("reading the next snapshot")?
        else {
            // The versions vanished between the two statements (pruned): look again.
            return Ok(true);
        };
        let version = u64::try_from(pending.version).context("negative snapshot version")?;

        // The row lock is held while delivering: that is what keeps other replicas off this
        // (sink, environment) until the cursor has moved.
        let timeout = self.settings.delivery_timeout;
        let outcome = match tokio::time::timeout(
            timeout,
            self.sink.deliver(Outgoing {
                environment,
                version,
                body: &pending.body,
            }),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(SinkError::TimedOut(timeout)),
        };
        match outcome {
            Ok(delivery) => {
                let lag = cursor::advance(&mut tx, sink, environment, pending.version)
                    .await
                    .context("advancing the cursor")?;
                tx.commit().await.context("committing the cursor")?;
                if let Some(lag) = lag {
                    self.metrics
                        .lag_seconds
                        .with_label_values(&[sink])
                        .observe(lag);
                }
                self.metrics
                    .deliveries
                    .with_label_values(&[sink, delivery.as_str()])
                    .inc();
                if let Delivery::Superseded { stored_version } = delivery {
                    info!(
                        sink,
                        environment,
                        version,
                        ?stored_version,
                        "sink already holds a newer snapshot"
                    );
                } else {
                    debug!(
                        sink,
                        environment,
                        version,
                        outcome = delivery.as_str(),
                        lag,
                        "snapshot delivered"
                    );
                }
            }
            Err(failure) => {
                let attempts = claim.attempts.saturating_add(1);
                let retry_in = backoff(
                    &self.settings,
                    attempts,
                    failure.is_permanent(),
                    fastrand::f64(),
                );
                let message = failure.to_string();
                if failure.is_permanent() {
                    error!(sink, environment, version, attempts, ?retry_in, error = %message,
                           "sink refused the snapshot; retrying slowly until it is fixed");
                } else {
                    warn!(sink, environment, version, attempts, ?retry_in, error = %message,
                          "snapshot delivery failed; will retry");
                }
                cursor::record_failure(&mut tx, sink, environment, &message, retry_in)
                    .await
                    .context("recording a failed delivery")?;
                tx.commit().await.context("committing a failed delivery")?;
                self.metrics
                    .delivery_errors
                    .with_label_values(&[sink, failure.kind()])
                    .inc();
            }
        }
        Ok(true)
    }

    /// How long to sleep when nothing is due: until the next backoff deadline, at most one poll.
    async fn idle_wait(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match cursor::next_deadline(&self.pool, self.sink.name()).await {
            Ok(Some(seconds)) if seconds.is_finite() && seconds > 0.0 => {
                // A few milliseconds late so the deadline has passed when the claim runs.
                Duration::from_secs_f64(seconds)
                    .saturating_add(Duration::from_millis(5))
                    .min(poll)
            }
            Ok(_) => poll,
            Err(e) => {
                warn!(sink = self.sink.name(), error = %e, "reading publish deadlines failed");
                poll
            }
        }
    }
}

/// Delay before retrying after the `attempts`-th consecutive failure: `base * 2^(attempts-1)`
/// capped at `max_backoff` (or `rejected_backoff` for permanent failures), then jittered into
/// [50 %, 100 %] with `jitter` ∈ [0, 1) so environments and replicas that failed together do not
/// retry in lockstep.
pub(crate) fn backoff(
    settings: &PublisherSettings,
    attempts: i32,
    permanent: bool,
    jitter: f64,
) -> Duration {
    let ceiling = if permanent {
        settings.rejected_backoff
    } else {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(24);
        settings
            .base_backoff
            .saturating_mul(1_u32 << doublings)
            .min(settings.max_backoff)
    };
    ceiling.mul_f64(0.5 + jitter.clamp(0.0, 1.0) * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PublisherSettings {
        PublisherSettings {
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            rejected_backoff: Duration::from_secs(300),
            ..PublisherSettings::default()
        }
    }

    #[test]
    fn backoff_doubles_per_attempt_until_the_cap() {
        let s = settings();
        let full = |attempts| backoff(&s, attempts, false, 1.0);
        assert_eq!(full(1), Duration::from_millis(250));
        assert_eq!(full(2), Duration::from_millis(500));
        assert_eq!(full(3), Duration::from_secs(1));
        assert_eq!(full(8), Duration::from_secs(30));
        assert_eq!(full(1_000), Duration::from_secs(30));
    }

    #[test]
    fn backoff_jitter_stays_between_half_and_full() {
        let s = settings();
        assert_eq!(backoff(&s, 3, false, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&s, 3, false, 0.5), Duration::from_millis(750));
    }

    #[test]
    fn permanent_failures_wait_the_rejected_backoff() {
        let s = settings();
        assert_eq!(backoff(&s, 1, true, 1.0), Duration::from_secs(300));
        assert_eq!(backoff(&s, 1, true, 0.0), Duration::from_secs(150));
    }
}
