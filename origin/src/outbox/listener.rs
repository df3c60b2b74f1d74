//! The replica's one outbox listener: LISTEN on [`CHANNEL`], plus a version-only poll.
//!
//! Flow of one listening session (repeated after every connection loss, 1 s apart):
//! 1. open a dedicated connection and `LISTEN edgeflags_snapshot`;
//! 2. poll [`latest_versions`]: anything committed while nobody was listening is announced now;
//! 3. on each notification, read the newest version of the environment in its payload
//!    ([`latest_version`]); every `poll`, read all of them again, which catches notifications lost
//!    without the connection visibly dropping.
//!
//! What it learns goes out through a `watch` channel as an [`Announcement`]: the newest version of
//! every environment. Versions only ever grow, and the channel only wakes its subscribers when
//! something changed (a version, or a new session), so an idle poll costs one version query and
//! nothing downstream. The listener never reads a snapshot body: each subscriber fetches the bodies
//! it is missing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{latest_version, latest_versions, CHANNEL};
use crate::error::Result;

/// Pause before reconnecting after the listening connection failed.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The newest committed snapshot version of every environment, as the listener last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Announcement {
    versions: Arc<BTreeMap<String, u64>>,
    sessions: u64,
}

impl Announcement {
    /// Environment key -> newest version.
    pub fn versions(&self) -> &BTreeMap<String, u64> {
        &self.versions
    }

    /// The newest version of `environment`, if it has snapshots.
    pub fn version(&self, environment: &str) -> Option<u64> {
        self.versions.get(environment).copied()
    }

    /// Listening sessions started so far (1 after the first connect, +1 per reconnect); each one
    /// began with a full poll, so the versions are complete as of that moment.
    pub fn sessions(&self) -> u64 {
        self.sessions
    }
}

/// A consumer's end of the listener's announcements. Clone one per consumer.
#[derive(Debug, Clone)]
pub struct Subscription {
    receiver: watch::Receiver<Announcement>,
    polls: Arc<AtomicU64>,
}

impl Subscription {
    /// The current announcement, marking it seen (the next [`Subscription::changed`] waits for a
    /// newer one).
    pub fn latest(&mut self) -> Announcement {
        self.receiver.borrow_and_update().clone()
    }

    /// Waits for an announcement this subscription has not seen; `false` once the listener has
    /// stopped (and nothing new will come).
    pub async fn changed(&mut self) -> bool {
        self.receiver.changed().await.is_ok()
    }

    /// Version polls the listener has completed (the one opening each session included). Kept out
    /// of the announcement so that an idle poll wakes nobody; for diagnostics and tests.
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// Waits until the announcement satisfies `condition` and returns it; `None` if the listener
    /// stopped first. For start-up ordering and tests ("the listener is up", "version 3 is known").
    pub async fn wait_for(
        &mut self,
        condition: impl FnMut(&Announcement) -> bool,
    ) -> Option<Announcement> {
        self.receiver
            .wait_for(condition)
            .await
            .ok()
            .map(|a| a.clone())
    }
}

/// Starts the replica's outbox listener; it runs until `shutdown` is cancelled. Every consumer
/// (evaluation cache, publisher) subscribes by cloning the returned [`Subscription`].
pub fn spawn_listener(
    pool: PgPool,
    poll: Duration,
    shutdown: CancellationToken,
) -> (JoinHandle<()>, Subscription) {
    let (sender, receiver) = watch::channel(Announcement::default());
    // a zero interval would spin; the poll only backs NOTIFY up
    let poll = poll.max(Duration::from_millis(10));
    let polls = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn(run(pool, poll, shutdown, sender, Arc::clone(&polls)));
    (task, Subscription { receiver, polls })
}

async fn run(
    pool: PgPool,
    poll: Duration,
    shutdown: CancellationToken,
    sender: watch::Sender<Announcement>,
    polls: Arc<AtomicU64>,
) {
    while !shutdown.is_cancelled() {
        match session(&pool, poll, &shutdown, &sender, &polls).await {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::ConnectionLost) => {
                tracing::warn!("snapshot LISTEN connection lost; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "snapshot listener failed; reconnecting"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

enum Ended {
    Shutdown,
    ConnectionLost,
}

async fn session(
    pool: &PgPool,
    poll: Duration,
    shutdown: &CancellationToken,
    sender: &watch::Sender<Announcement>,
    polls: &AtomicU64,
) -> Result<Ended> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    // Anything committed while nobody listened; the session count tells subscribers to look even
    // when no version changed (the publisher re-checks its cursors after a reconnect).
    let versions = latest_versions(pool).await?;
    polls.fetch_add(1, Ordering::Relaxed);
    sender.send_modify(|current| {
        merge(current, versions);
        current.sessions += 1;
    });
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(Ended::Shutdown),
            // `try_recv`, not `recv`: `recv` reconnects silently and the notifications sent in
            // between would only be noticed at the next poll.
            notification = listener.try_recv() => {
                let Some(notification) = notification? else {
                    return Ok(Ended::ConnectionLost);
                };
                let environment = notification.payload();
                if let Some(version) = latest_version(pool, environment).await? {
                    announce(sender, vec![(environment.to_owned(), version)]);
                }
            }
            _ = ticker.tick() => {
                let versions = latest_versions(pool).await?;
                polls.fetch_add(1, Ordering::Relaxed);
                announce(sender, versions);
            }
        }
    }
}

/// Publishes `versions`, waking subscribers only if one of them is new.
fn announce(sender: &watch::Sender<Announcement>, versions: Vec<(String, u64)>) {
    sender.send_if_modified(|current| merge(current, versions));
}

/// Raises the versions of `current` to `seen`; true if any grew or appeared. A version never goes
/// down: a poll that started before a notification's read may finish after it.
fn merge(current: &mut Announcement, seen: Vec<(String, u64)>) -> bool {
    let grows = |(environment, version): &(String, u64)| {
        current
            .versions
            .get(environment)
            .is_none_or(|known| known < version)
    };
    if !seen.iter().any(grows) {
        return false;
    }
    let versions = Arc::make_mut(&mut current.versions);
    for (environment, version) in seen {
        let known = versions.entry(environment).or_insert(version);
        *known = (*known).max(version);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(pairs: &[(&str, u64)]) -> Announcement {
        let mut a = Announcement::default();
        merge(
            &mut a,
            pairs.iter().map(|(e, v)| ((*e).to_owned(), *v)).collect(),
        );
        a
    }

    #[test]
    fn merging_only_raises_versions() {
        let mut a = announcement(&[("production", 3), ("staging", 1)]);
        assert!(!merge(&mut a, vec![("production".into(), 2)]));
        assert!(!merge(&mut a, vec![("production".into(), 3)]));
        assert_eq!(a.version("production"), Some(3));
        assert!(merge(
            &mut a,
            vec![("production".into(), 2), ("staging".into(), 2)]
        ));
        assert_eq!(a.version("production"), Some(3));
        assert_eq!(a.version("staging"), Some(2));
    }

    #[test]
    fn a_new_environment_is_a_change() {
        let mut a = announcement(&[("production", 3)]);
        assert!(merge(&mut a, vec![("qa".into(), 1)]));
        assert_eq!(a.versions().len(), 2);
        assert!(!merge(&mut a, Vec::new()));
    }

    #[tokio::test]
    async fn subscribers_wake_only_for_changes() {
        let (sender, receiver) = watch::channel(Announcement::default());
        let mut sub = Subscription {
            receiver,
            polls: Arc::default(),
        };
        announce(&sender, vec![("production".into(), 1)]);
        assert!(sub.changed().await);
        assert_eq!(sub.latest().version("production"), Some(1));
        announce(&sender, vec![("production".into(), 1)]);
        assert!(!sub.receiver.has_changed().unwrap());
        drop(sender);
        assert!(!sub.changed().await);
    }
}
