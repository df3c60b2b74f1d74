//! One environment's open event streams, as its Durable Object holds them: who may open one
//! more, what each is sent, and when one is let go.
//!
//! Pure like `cache`: a stream is the sending half of a bounded channel whose receiving half is
//! the response body (`Response::from_stream`), so the policy is unit-tested natively with the
//! same channels the object uses. A stream is forgotten the moment a send to it fails: the client
//! went away (the runtime cancelled the body, which dropped the receiver) or stopped reading and
//! let [`QUEUED_MESSAGES`] pile up. Either way nothing is kept for it, and what a stream holds is
//! bounded whatever the number of messages.
//!
//! The runtime notices that a client left only when it next writes to the connection (measured
//! under local workerd: an idle connection's close is not seen), so a stream's slot is free at
//! the latest two heartbeats after its client left: one write that fails, then the send that
//! finds the receiver dropped (or the next opening, which prunes dropped ones first).

use std::collections::HashSet;

use evaluation_api::stream::{refetch_event, stream_opening, ConfigVersion, HEARTBEAT};
use futures_channel::mpsc;

/// Messages a stream may have waiting for its client (beyond the one the channel keeps per
/// sender). The runtime pulls from the channel as fast as the connection takes bytes, so a
/// healthy stream has none waiting; one with this many is not reading, and is closed (the
/// client reconnects with `Last-Event-ID` and is told the newest version at once).
pub(crate) const QUEUED_MESSAGES: usize = 4;

/// How many streams may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// In the environment.
    pub(crate) per_environment: usize,
    /// Opened with one client key (keyless streams count only against the environment's).
    pub(crate) per_key: usize,
}

/// The answer to a request to open a stream.
#[derive(Debug)]
pub(crate) enum Opened {
    /// Opened: the body of the response; its first message is already queued.
    Stream(mpsc::Receiver<Vec<u8>>),
    /// Refused: `limit` streams are open already (of the environment or of the key).
    TooMany { limit: usize },
    /// Refused: the environment's snapshot no longer holds the stream's client key.
    Revoked,
}

/// The environment's streams and the configuration they were last told of.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    streams: Vec<Outlet>,
    current: Option<ConfigVersion>,
    /// Hashes (lowercase hex SHA-256) of the client keys the snapshot of `current` holds, when a
    /// publish told them; `None` when the version was learned without them.
    keys: Option<HashSet<String>>,
}

#[derive(Debug)]
struct Outlet {
    key_sha256: Option<String>,
    sender: mpsc::Sender<Vec<u8>>,
}

impl Hub {
    /// A hub without streams that knows `current` and, if given, its client keys (what the
    /// object stored before it restarted).
    pub(crate) fn new(current: Option<ConfigVersion>, keys: Option<Vec<String>>) -> Self {
        Self {
            streams: Vec::new(),
            current,
            keys: keys.map(|keys| keys.into_iter().collect()),
        }
    }

    /// The configuration streams were last told of.
    pub(crate) fn current(&self) -> Option<ConfigVersion> {
        self.current
    }

    /// The client keys of [`Hub::current`], in no order, when known (for storage).
    pub(crate) fn keys(&self) -> Option<Vec<String>> {
        self.keys
            .as_ref()
            .map(|keys| keys.iter().cloned().collect())
    }

    /// Streams open (including any whose client left since the last send).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// A new snapshot was stored: `config`, holding the client keys hashing to `keys`. A newer
    /// version is announced to every stream, after closing those whose key it no longer holds;
    /// the version already known only supplies its keys if they were missing (and closes
    /// accordingly, without announcing anything again); an older one changes nothing. Returns
    /// whether anything worth storing changed.
    pub(crate) fn change(&mut self, config: ConfigVersion, keys: Vec<String>) -> bool {
        let newer = self
            .current
            .is_none_or(|known| config.version > known.version);
        let same_without_keys = self
            .current
            .is_some_and(|known| known.version == config.version)
            && self.keys.is_none();
        if !newer && !same_without_keys {
            return false;
        }
        let keys: HashSet<String> = keys
            .into_iter()
            .map(|key| key.to_ascii_lowercase())
            .collect();
        self.streams.retain(|stream| {
            stream
                .key_sha256
                .as_ref()
                .is_none_or(|key| keys.contains(key))
        });
        self.keys = Some(keys);
        if newer {
            self.current = Some(config);
            self.send_all(&refetch_event(config));
        }
        true
    }

    /// A worker that is opening a stream holds `seen`. If that is newer than what the streams
    /// were told (a publish whose announcement did not arrive), it is announced now; its keys
    /// are unknown until a publish tells them, and the worker has checked the new stream's key
    /// against that snapshot itself. Returns whether it was newer.
    pub(crate) fn learn(&mut self, seen: Option<ConfigVersion>) -> bool {
        let Some(seen) = seen else {
            return false;
        };
        if self
            .current
            .is_some_and(|known| known.version >= seen.version)
        {
            return false;
        }
        self.current = Some(seen);
        self.keys = None;
        self.send_all(&refetch_event(seen));
        true
    }

    /// Opens a stream for a client that presented the key hashing to `key_sha256` and resumes
    /// from `last_event_id`, within `limits`.
    pub(crate) fn open(
        &mut self,
        key_sha256: Option<&str>,
        last_event_id: Option<u64>,
        limits: Limits,
    ) -> Opened {
        // Streams whose body the runtime cancelled free their slot now, not at the next message.
        self.streams.retain(|stream| !stream.sender.is_closed());
        let key_sha256 = key_sha256.map(str::to_ascii_lowercase);
        if let (Some(keys), Some(key)) = (&self.keys, &key_sha256) {
            if !keys.contains(key) {
                return Opened::Revoked;
            }
        }
        if self.streams.len() >= limits.per_environment {
            return Opened::TooMany {
                limit: limits.per_environment,
            };
        }
        if let Some(key) = &key_sha256 {
            let of_key = self
                .streams
                .iter()
                .filter(|stream| stream.key_sha256.as_ref() == Some(key))
                .count();
            if of_key >= limits.per_key {
                return Opened::TooMany {
                    limit: limits.per_key,
                };
            }
        }
        let (mut sender, receiver) = mpsc::channel(QUEUED_MESSAGES);
        let opening = stream_opening(self.current, last_event_id).into_bytes();
        // A new channel always has room for its first message; were it refused, the sender is
        // dropped here and the body ends at once (the client reconnects).
        if sender.try_send(opening).is_ok() {
            self.streams.push(Outlet { key_sha256, sender });
        }
        Opened::Stream(receiver)
    }

    /// Sends the heartbeat comment to every stream, forgetting those that are gone; returns how
    /// many are left (no more heartbeats are needed at 0).
    pub(crate) fn heartbeat(&mut self) -> usize {
        self.send_all(HEARTBEAT);
        self.streams.len()
    }

    fn send_all(&mut self, message: &str) {
        self.streams
            .retain_mut(|stream| stream.sender.try_send(message.as_bytes().to_vec()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "8ea1b6fea071e237e0facd3020a1096c514dd7a0b71ed7dff3319816011817ba";
    const OTHER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const LIMITS: Limits = Limits {
        per_environment: 1_000,
        per_key: 100,
    };

    fn version(version: u64) -> ConfigVersion {
        ConfigVersion {
            version,
            last_modified: Some(1_771_622_898),
        }
    }

    fn opened(hub: &mut Hub, key: Option<&str>, last_event_id: Option<u64>) -> Client {
        match hub.open(key, last_event_id, LIMITS) {
            Opened::Stream(receiver) => Client(receiver),
            other => panic!("not opened: {other:?}"),
        }
    }

    /// The client end of a stream.
    struct Client(mpsc::Receiver<Vec<u8>>);

    impl Client {
        /// Everything sent so far, as text.
        fn received(&mut self) -> String {
            let mut text = String::new();
            while let Ok(message) = self.0.try_recv() {
                text.push_str(&String::from_utf8(message).unwrap());
            }
            text
        }

        /// Whether the hub has let the stream go (its body ends).
        fn closed(&mut self) -> bool {
            matches!(self.0.try_recv(), Err(mpsc::TryRecvError::Closed))
        }
    }

    /// docs/event-streams.md, "The stream": `retry` and the current version as the last event
    /// id, or the missed change if the client resumes from an older event.
    #[test]
    fn a_stream_opens_with_retry_and_the_missed_change_only_for_an_older_last_event_id() {
        let mut hub = Hub::new(Some(version(7)), None);
        assert_eq!(
            opened(&mut hub, None, None).received(),
            "retry: 2000\nid: 7\n\n"
        );
        assert_eq!(
            opened(&mut hub, None, Some(7)).received(),
            "retry: 2000\nid: 7\n\n"
        );
        assert_eq!(
            opened(&mut hub, None, Some(6)).received(),
            format!("retry: 2000\n\n{}", refetch_event(version(7)))
        );
        // An object that never learned a version cannot tell what was missed.
        let mut empty = Hub::default();
        assert_eq!(
            opened(&mut empty, None, Some(1)).received(),
            "retry: 2000\n\n"
        );
    }

    #[test]
    fn a_newer_version_reaches_every_stream_once_and_older_or_repeated_ones_none() {
        let mut hub = Hub::new(Some(version(1)), Some(vec![KEY.to_owned()]));
        let mut first = opened(&mut hub, Some(KEY), None);
        let mut second = opened(&mut hub, None, None);
        first.received();
        second.received();
        assert!(hub.change(version(2), vec![KEY.to_owned()]));
        assert_eq!(first.received(), refetch_event(version(2)));
        assert_eq!(second.received(), refetch_event(version(2)));
        assert!(!hub.change(version(2), vec![KEY.to_owned()]));
        assert!(!hub.change(version(1), vec![KEY.to_owned()]));
        assert_eq!(first.received(), "");
        assert_eq!(hub.current(), Some(version(2)));
    }

    #[test]
    fn a_change_closes_the_streams_of_keys_the_new_snapshot_no_longer_holds() {
        let mut hub = Hub::new(
            Some(version(1)),
            Some(vec![KEY.to_owned(), OTHER.to_owned()]),
        );
        let mut revoked = opened(&mut hub, Some(OTHER), None);
        let mut kept = opened(&mut hub, Some(KEY), None);
        let mut keyless = opened(&mut hub, None, None);
        revoked.received();
        kept.received();
        keyless.received();
        // Hashes compare in either case, as snapshots list them.
        assert!(hub.change(version(2), vec![KEY.to_ascii_uppercase()]));
        assert!(revoked.closed(), "closed without being told of the change");
        assert_eq!(kept.received(), refetch_event(version(2)));
        assert_eq!(keyless.received(), refetch_event(version(2)));
        assert_eq!(hub.len(), 2);
        // And it cannot open a new one.
        assert!(matches!(
            hub.open(Some(OTHER), None, LIMITS),
            Opened::Revoked
        ));
        assert_eq!(hub.keys(), Some(vec![KEY.to_owned()]));
    }

    #[test]
    fn the_environment_and_key_limits_refuse_and_a_stream_whose_client_left_frees_its_slot() {
        let limits = Limits {
            per_environment: 3,
            per_key: 2,
        };
        let mut hub = Hub::default();
        let first = hub.open(Some(KEY), None, limits);
        let _second = hub.open(Some(KEY), None, limits);
        assert!(matches!(
            hub.open(Some(KEY), None, limits),
            Opened::TooMany { limit: 2 }
        ));
        let _third = hub.open(Some(OTHER), None, limits);
        assert!(matches!(
            hub.open(None, None, limits),
            Opened::TooMany { limit: 3 }
        ));
        // The client of the first stream leaves: the runtime drops its body.
        drop(first);
        assert!(matches!(
            hub.open(Some(KEY), None, limits),
            Opened::Stream(_)
        ));
        assert_eq!(hub.len(), 3);
    }

    #[test]
    fn a_newer_version_a_worker_reports_is_announced_and_its_keys_are_then_unknown() {
        let mut hub = Hub::new(Some(version(3)), Some(vec![KEY.to_owned()]));
        let mut client = opened(&mut hub, Some(KEY), None);
        client.received();
        assert!(!hub.learn(Some(version(3))));
        assert!(!hub.learn(None));
        assert_eq!(client.received(), "");
        assert!(hub.learn(Some(version(4))));
        assert_eq!(client.received(), refetch_event(version(4)));
        assert_eq!(hub.keys(), None);
        // The worker checked the key against version 4; the object cannot, until a publish of
        // version 4 tells it the keys, without announcing version 4 a second time.
        let mut other = opened(&mut hub, Some(OTHER), None);
        other.received();
        assert!(hub.change(version(4), vec![KEY.to_owned()]));
        assert!(other.closed());
        assert_eq!(client.received(), "");
        assert!(!hub.change(version(4), vec![KEY.to_owned()]));
    }

    #[test]
    fn heartbeats_reach_every_stream_and_streams_whose_client_left_are_forgotten() {
        let mut hub = Hub::default();
        let mut staying = opened(&mut hub, None, None);
        let leaving = opened(&mut hub, None, None);
        staying.received();
        drop(leaving);
        assert_eq!(hub.heartbeat(), 1);
        assert_eq!(staying.received(), HEARTBEAT);
        drop(staying);
        assert_eq!(hub.heartbeat(), 0);
    }

    #[test]
    fn a_client_that_stops_reading_is_closed_once_its_queue_is_full() {
        let mut hub = Hub::default();
        let mut stalled = opened(&mut hub, None, None);
        let mut reading = opened(&mut hub, None, None);
        // The opening plus the queue: what the channel holds for one sender.
        for _ in 0..QUEUED_MESSAGES {
            assert_eq!(hub.heartbeat(), 2);
            reading.received();
        }
        assert_eq!(hub.heartbeat(), 1, "the stalled stream is let go");
        assert_eq!(reading.received(), HEARTBEAT);
        // Its queued messages still drain, then its body ends.
        assert!(stalled.received().starts_with("retry: 2000\n\n"));
        assert!(stalled.closed());
        for version in 1..=100 {
            hub.change(self::version(version), Vec::new());
            reading.received();
        }
        assert_eq!(hub.len(), 1);
    }
}
