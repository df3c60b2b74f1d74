//! The background task: keeps the snapshot in service current.
//!
//! It downloads the snapshot, then follows the event stream the answer names; each
//! `refetchEvaluation` event triggers a conditional re-fetch (`If-None-Match`, so an event about
//! a version the client already holds costs a `304`). Without a stream (the server advertises
//! none, streaming is switched off, or the stream is down) it polls with the `ETag` instead.
//! Failures never replace the snapshot in service; they are retried with jittered exponential
//! backoff and reported through [`crate::Health`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::Response;
use tokio::time::{sleep_until, Instant};
use url::Url;

use crate::endpoint::{http_error, Endpoint, Fetch};
use crate::error::Error;
use crate::sse::Parser;
use crate::status::{Shared, Status};

/// The task's timing (see [`crate::ClientBuilder`] for each).
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) poll_interval: Duration,
    pub(crate) streaming: bool,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) stream_idle_timeout: Duration,
}

/// After an event names a version the server does not serve yet (an edge location whose KV
/// read is still the old value), the re-fetch is repeated this many times, backing off from
/// [`CATCH_UP_DELAY`].
const CATCH_UP_ATTEMPTS: u32 = 8;
const CATCH_UP_DELAY: Duration = Duration::from_millis(100);
/// A stream open this long ended normally (a server restart, a proxy's connection limit); a
/// shorter one counts as a failed connection for the backoff.
const STABLE_STREAM: Duration = Duration::from_secs(10);

pub(crate) async fn run(endpoint: Endpoint, shared: Arc<Shared>, timing: Timing) {
    Task {
        fetch_backoff: Backoff::new(timing.min_backoff, timing.max_backoff),
        stream_backoff: Backoff::new(timing.min_backoff, timing.max_backoff),
        endpoint,
        shared,
        timing,
        etag: None,
        stream_url: None,
        need_stream_url: false,
        target: None,
        catch_up: 0,
        next_fetch: Some(Instant::now()),
        next_connect: None,
    }
    .run()
    .await;
}

/// What woke the task.
enum Wake {
    Fetch,
    Connect,
    Stream(StreamRead),
}

enum StreamRead {
    /// A `refetchEvaluation` event; the version it announces, when it names one.
    Refetch(Option<u64>),
    /// The stream ended (closed by the server, broken, silent too long, malformed).
    Ended(Option<Error>),
}

struct Task {
    endpoint: Endpoint,
    shared: Arc<Shared>,
    timing: Timing,
    /// The `ETag` of the snapshot in service.
    etag: Option<String>,
    /// Where the event stream is, as the last answer said.
    stream_url: Option<Url>,
    /// The stream refused its URL (an expired token): the next snapshot request must bring a
    /// new one.
    need_stream_url: bool,
    /// The newest version an event announced that the client does not hold yet.
    target: Option<u64>,
    catch_up: u32,
    next_fetch: Option<Instant>,
    next_connect: Option<Instant>,
    fetch_backoff: Backoff,
    stream_backoff: Backoff,
}

impl Task {
    async fn run(mut self) {
        let mut stream: Option<(Response, Parser)> = None;
        let mut connected_at = Instant::now();
        loop {
            let (fetch_at, connect_at) = (self.next_fetch, self.next_connect);
            let idle = self.timing.stream_idle_timeout;
            let wake = tokio::select! {
                biased;
                read = read_stream(&mut stream, idle), if stream.is_some() => Wake::Stream(read),
                () = sleep_until_some(fetch_at) => Wake::Fetch,
                () = sleep_until_some(connect_at), if stream.is_none() => Wake::Connect,
            };
            match wake {
                Wake::Fetch => self.fetch(stream.is_some()).await,
                Wake::Connect => {
                    self.next_connect = None;
                    stream = self.connect().await.map(|r| (r, Parser::default()));
                    connected_at = Instant::now();
                }
                Wake::Stream(StreamRead::Refetch(version)) => {
                    if let Some(version) = version {
                        self.target = self.target.max(Some(version));
                    }
                    self.catch_up = 0;
                    self.next_fetch = Some(Instant::now());
                }
                Wake::Stream(StreamRead::Ended(error)) => {
                    let retry = stream
                        .take()
                        .and_then(|(_, parser)| parser.retry_ms())
                        .map(Duration::from_millis);
                    self.stream_ended(error, retry, connected_at.elapsed());
                }
            }
        }
    }

    /// One snapshot request, and what to do next.
    async fn fetch(&mut self, streaming: bool) {
        self.next_fetch = None;
        let held = self.shared.snapshot();
        // A refused stream URL is renewed by the next answer; a `304` may not carry one, so
        // that request is unconditional.
        let etag = if self.need_stream_url {
            None
        } else {
            self.etag.as_deref()
        };
        match self.endpoint.fetch(etag).await {
            Ok(fetch) => {
                self.fetched(fetch, held.as_ref().map(crate::Snapshot::version));
                self.fetch_backoff.reset();
                self.shared.fetched();
                if !streaming {
                    self.next_fetch = Some(Instant::now() + self.timing.poll_interval);
                    self.schedule_connect();
                }
                self.schedule_catch_up();
            }
            Err(error) => {
                let delay = match &error {
                    _ if error.is_refusal() => self.timing.max_backoff,
                    Error::Status {
                        retry_after: Some(after),
                        ..
                    } => self.fetch_backoff.next().max(*after),
                    _ => self.fetch_backoff.next(),
                };
                tracing::warn!(%error, retry_in = ?delay, "edgeflags: snapshot request failed; serving the last good snapshot");
                self.shared.failed(error);
                self.next_fetch = Some(Instant::now() + delay);
            }
        }
    }

    fn fetched(&mut self, fetch: Fetch, held: Option<u64>) {
        // A `200` says where the stream is (or that there is none); a `304` may leave the
        // header out, and then the location known stays.
        if fetch.snapshot.is_some() || fetch.stream.is_some() {
            self.need_stream_url = false;
            self.stream_url = fetch.stream;
        }
        let Some(snapshot) = fetch.snapshot else {
            return; // 304: the snapshot in service is current
        };
        if held.is_some_and(|held| snapshot.version() < held) {
            // A server behind the one that sent ours (another edge location): keep the newer.
            tracing::debug!(
                got = snapshot.version(),
                held,
                "edgeflags: ignoring an older snapshot"
            );
            return;
        }
        self.etag = Some(snapshot.etag().to_owned()).filter(|e| !e.is_empty());
        tracing::debug!(
            version = snapshot.version(),
            "edgeflags: snapshot installed"
        );
        self.shared.install(snapshot);
    }

    /// An event announced a version the server has not served yet: ask again shortly.
    fn schedule_catch_up(&mut self) {
        let held = self.shared.snapshot().map(|s| s.version());
        match self.target {
            Some(target) if held < Some(target) && self.catch_up < CATCH_UP_ATTEMPTS => {
                let delay =
                    (CATCH_UP_DELAY * 2u32.pow(self.catch_up)).min(self.timing.poll_interval);
                self.catch_up += 1;
                let at = Instant::now() + delay;
                self.next_fetch = Some(self.next_fetch.map_or(at, |n| n.min(at)));
            }
            _ => {
                self.target = None;
                self.catch_up = 0;
            }
        }
    }

    /// Plans a stream connection when there is a stream to follow and none is planned.
    fn schedule_connect(&mut self) {
        if self.timing.streaming && self.stream_url.is_some() && self.next_connect.is_none() {
            self.next_connect = Some(Instant::now() + self.stream_backoff.current());
        }
    }

    async fn connect(&mut self) -> Option<Response> {
        let url = self.stream_url.clone()?;
        let last_version = self.shared.snapshot().map(|s| s.version());
        match self.endpoint.open_stream(&url, last_version).await {
            Ok(response) => {
                tracing::debug!("edgeflags: event stream connected");
                self.shared.stream_opened();
                if self.shared.health().status != Status::Ready {
                    // The server is back: a snapshot request (conditional) restores the status.
                    self.next_fetch = Some(Instant::now());
                } else if self.fetch_backoff.failures == 0 && self.target.is_none() {
                    // Pushed changes replace polling; a retry or catch-up planned stays.
                    self.next_fetch = None;
                }
                Some(response)
            }
            Err(error) => {
                let delay = match &error {
                    Error::Status {
                        retry_after: Some(after),
                        ..
                    } => *after,
                    Error::Status {
                        status: 401 | 403 | 404 | 410,
                        ..
                    } => {
                        // The token expired or the stream is gone: the next snapshot request
                        // (unconditional, after a backoff so that a server refusing every
                        // stream is not asked in a loop) brings a new location; polling goes
                        // on meanwhile.
                        self.need_stream_url = true;
                        self.stream_url = None;
                        let at = Instant::now() + self.stream_backoff.next();
                        self.next_fetch = Some(self.next_fetch.map_or(at, |n| n.min(at)));
                        tracing::debug!(%error, "edgeflags: event stream refused; renewing its location");
                        return None;
                    }
                    _ => self.stream_backoff.next(),
                };
                tracing::debug!(%error, retry_in = ?delay, "edgeflags: event stream failed");
                self.next_connect = Some(Instant::now() + delay);
                if matches!(error, Error::Http { .. }) {
                    // The server is unreachable: the snapshot in service may be outdated, and
                    // the next poll may be far.
                    self.shared.failed(error);
                }
                None
            }
        }
    }

    fn stream_ended(&mut self, error: Option<Error>, retry: Option<Duration>, lived: Duration) {
        self.shared.stream_closed();
        // Only a stream that lasted counts as a success: one closed right after it opened
        // (a proxy that does not pass streams through) backs off like a failure, instead of
        // costing a connection and a snapshot request every few seconds.
        if lived >= STABLE_STREAM {
            self.stream_backoff.reset();
        }
        match &error {
            Some(error) => tracing::debug!(%error, "edgeflags: event stream broke"),
            None => tracing::debug!("edgeflags: event stream closed by the server"),
        }
        // Changes may have been missed, and the server may be gone: a conditional request
        // finds out at once (and sets the status); the stream reconnects after its delay.
        self.next_fetch = Some(Instant::now());
        if let Some(retry) = retry {
            self.stream_backoff.at_least(retry);
        }
        self.next_connect = Some(Instant::now() + self.stream_backoff.next());
    }
}

/// Reads the stream until an event calls for a re-fetch or the stream ends.
async fn read_stream(stream: &mut Option<(Response, Parser)>, idle: Duration) -> StreamRead {
    let Some((response, parser)) = stream.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        let chunk = match tokio::time::timeout(idle, response.chunk()).await {
            Err(_) => {
                return StreamRead::Ended(Some(Error::Protocol {
                    url: crate::error::redact(response.url()),
                    problem: "the event stream was silent longer than its idle timeout",
                }))
            }
            Ok(Err(e)) => {
                let url = response.url().clone();
                return StreamRead::Ended(Some(http_error(&url, e)));
            }
            Ok(Ok(None)) => return StreamRead::Ended(None),
            Ok(Ok(Some(chunk))) => chunk,
        };
        let Ok(events) = parser.feed(&chunk) else {
            return StreamRead::Ended(Some(Error::Protocol {
                url: crate::error::redact(response.url()),
                problem: "the event stream sent an oversized line",
            }));
        };
        let refetch = events.iter().any(|e| {
            e.event == "message"
                && serde_json::from_str::<serde_json::Value>(&e.data)
                    .is_ok_and(|d| d["type"] == "refetchEvaluation")
        });
        if refetch {
            return StreamRead::Refetch(parser.last_event_id().parse().ok());
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Exponential backoff with jitter: each delay is drawn from the upper half of
/// `min · 2^failures`, capped at `max`, so that many clients cut off together do not return
/// together.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    floor: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
            floor: min,
        }
    }

    fn reset(&mut self) {
        self.failures = 0;
        self.floor = self.min;
    }

    /// The server asked for at least this delay between reconnections (`retry:`).
    fn at_least(&mut self, delay: Duration) {
        self.floor = delay.clamp(self.min, self.max);
    }

    /// The delay before the next attempt if none has failed since the last success.
    fn current(&self) -> Duration {
        if self.failures == 0 {
            Duration::ZERO
        } else {
            self.ceiling()
        }
    }

    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.floor.saturating_mul(factor).min(self.max)
    }

    fn next(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let jitter = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(fastrand::u64(0..=jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..6).map(|_| b.next()).collect();
        let ceilings = [100, 200, 400, 800, 1000, 1000];
        for (delay, ceiling) in delays.iter().zip(ceilings) {
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                *delay >= ceiling / 2 && *delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(100));
    }

    #[test]
    fn a_server_retry_raises_the_floor_within_the_bounds() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        b.at_least(Duration::from_millis(600));
        let first = b.next();
        assert!(first >= Duration::from_millis(300) && first <= Duration::from_millis(600));
        b.at_least(Duration::from_secs(60));
        assert!(b.next() <= Duration::from_secs(1));
    }
}
