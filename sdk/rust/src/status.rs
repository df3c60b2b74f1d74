//! What the client holds and how current it is: the snapshot in service, and its health,
//! shared between the background task (the only writer) and every evaluation.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::error::Error;
use crate::snapshot::Snapshot;

/// How current the client's flags are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// No snapshot yet; the first download is under way.
    NotReady,
    /// A snapshot is in service and the last contact with the server succeeded.
    Ready,
    /// A snapshot is in service, but the last contact failed (the server is unreachable, sent an
    /// unreadable snapshot, or refused the key): it keeps serving while the client retries.
    Stale,
    /// No snapshot, and the last attempt to get one failed; the client keeps retrying.
    Error,
}

impl Status {
    /// Whether flags can be evaluated (a snapshot is in service).
    #[must_use]
    pub fn has_snapshot(self) -> bool {
        matches!(self, Self::Ready | Self::Stale)
    }
}

/// A point-in-time view of the client's synchronisation.
#[derive(Debug, Clone)]
pub struct Health {
    /// See [`Status`].
    pub status: Status,
    /// The version in service.
    pub version: Option<u64>,
    /// Whether the event stream is connected (otherwise the client polls).
    pub streaming: bool,
    /// The last failure; cleared by the next success.
    pub last_error: Option<Arc<Error>>,
    /// When the server last answered the snapshot request (`200` or `304`).
    pub last_fetched: Option<SystemTime>,
    /// Whether the background task has stopped ([`crate::Client::shutdown`]).
    pub shut_down: bool,
}

pub(crate) struct Shared {
    snapshot: RwLock<Option<Snapshot>>,
    health: watch::Sender<Health>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        let (health, _) = watch::channel(Health {
            status: Status::NotReady,
            version: None,
            streaming: false,
            last_error: None,
            last_fetched: None,
            shut_down: false,
        });
        Self {
            snapshot: RwLock::new(None),
            health,
        }
    }

    /// The snapshot in service. The lock is held for an `Arc` clone only, and no code panics
    /// while holding it, so a poisoned lock still holds a consistent value.
    pub(crate) fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn install(&self, snapshot: Snapshot) {
        let version = snapshot.version();
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(snapshot);
        self.health.send_modify(|h| h.version = Some(version));
    }

    pub(crate) fn health(&self) -> Health {
        self.health.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// The server answered the snapshot request.
    pub(crate) fn fetched(&self) {
        let has_snapshot = self.snapshot().is_some();
        self.health.send_if_modified(|h| {
            let before = (h.status, h.last_error.is_some());
            h.status = if has_snapshot {
                Status::Ready
            } else {
                Status::NotReady
            };
            h.last_error = None;
            h.last_fetched = Some(SystemTime::now());
            // Only a change of status wakes watchers; the time alone is not news.
            before != (h.status, false)
        });
    }

    /// The event stream opened. The status stays what the last snapshot request made it: an
    /// open stream says nothing about whether the snapshot in service is readable and current.
    pub(crate) fn stream_opened(&self) {
        self.health
            .send_if_modified(|h| !std::mem::replace(&mut h.streaming, true));
    }

    pub(crate) fn stream_closed(&self) {
        self.health
            .send_if_modified(|h| std::mem::replace(&mut h.streaming, false));
    }

    pub(crate) fn failed(&self, error: Error) {
        let has_snapshot = self.snapshot().is_some();
        self.health.send_modify(|h| {
            h.status = if has_snapshot {
                Status::Stale
            } else {
                Status::Error
            };
            h.last_error = Some(Arc::new(error));
        });
    }

    pub(crate) fn shut_down(&self) {
        self.health.send_modify(|h| {
            h.shut_down = true;
            h.streaming = false;
        });
    }
}
