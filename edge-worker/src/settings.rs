//! The worker's deployment settings, read from its vars and secret (`wrangler.toml`).
//!
//! Vars cannot change within an isolate (a new value is a new deployment), so they are read once
//! per isolate and looked up once per request: each read is a call into JavaScript, measurable
//! on the hot path. The secret `PUBLISH_SECRET` is read by each publish request (rare), so it is
//! never kept in memory longer than the request. What the isolate keeps instead is the event
//! streams' key derived from it ([`stream_key`]): every OFREP bulk answer signs a stream token
//! with it, and it is a one-way derivation that can only mint and check stream tokens, never
//! sign a publish.
//!
//! Parsing is separate from reading ([`Settings::from_vars`], [`publish_secret_from`],
//! [`stream_key_from`]) so it is unit-tested natively.

use std::cell::Cell;

use evaluation_api::stream::{StreamKey, HEARTBEAT_SECONDS};
use publish_protocol::Secret;
use worker::{console_warn, Env};

use crate::cache::{DEFAULT_CACHE_BYTES, DEFAULT_SUBSET_LIMIT};
use crate::error::{Error, Result};

/// Var: how often an isolate re-checks KV for a newer snapshot, in seconds.
const TTL_VAR: &str = "SNAPSHOT_TTL_SECONDS";
/// Var: whether evaluation requests must present a client key (`"true"`/`"false"`).
const CLIENT_KEYS_VAR: &str = "REQUIRE_CLIENT_KEYS";
/// Var: subsets compiled per snapshot version before the whole (see `cache`).
const SUBSET_LIMIT_VAR: &str = "SUBSET_CACHE_LIMIT";
/// Var: the most the isolate's snapshot cache may hold, in MiB (see `cache`).
const CACHE_MIB_VAR: &str = "CACHE_MIB";
/// Var: whether the worker serves OFREP event streams (`"true"`/`"false"`).
const EVENT_STREAMS_VAR: &str = "EVENT_STREAMS";
/// Var: event streams one environment may have open at once (see `stream`).
const STREAMS_PER_ENVIRONMENT_VAR: &str = "STREAMS_PER_ENVIRONMENT";
/// Var: event streams opened with one client key that may be open at once.
const STREAMS_PER_KEY_VAR: &str = "STREAMS_PER_CLIENT_KEY";
/// Var: seconds between heartbeats on idle event streams (fractions for tests).
const HEARTBEAT_VAR: &str = "STREAM_HEARTBEAT_SECONDS";
/// Secret: the publish secret shared with the origin.
pub(crate) const PUBLISH_SECRET: &str = "PUBLISH_SECRET";

const DEFAULT_TTL_MS: u64 = 5_000;
/// Streams per environment: the connections one Durable Object holds. Each costs the object a
/// few hundred bytes and every change a write, so a thousand is far from its 128 MB.
const DEFAULT_STREAMS_PER_ENVIRONMENT: usize = 1_000;
/// Streams per client key: a tenth of the environment's, so one leaked key (or one buggy app
/// reconnecting in a loop) cannot take every slot.
const DEFAULT_STREAMS_PER_KEY: usize = 100;
const DEFAULT_HEARTBEAT_MS: u64 = HEARTBEAT_SECONDS as u64 * 1000;
/// Shortest heartbeat accepted: a shorter one would keep the object's alarm firing all the time.
const MIN_HEARTBEAT_MS: u64 = 100;

/// The settings an evaluation request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Evaluation requests must present a client key (default true).
    pub(crate) require_client_keys: bool,
    /// Milliseconds between an isolate's KV checks of an environment (default 5 s).
    pub(crate) ttl_ms: u64,
    /// Subsets of a snapshot version an isolate compiles before it compiles the whole
    /// (default [`DEFAULT_SUBSET_LIMIT`]).
    pub(crate) subset_limit: usize,
    /// Bytes the isolate's snapshot cache may hold (default [`DEFAULT_CACHE_BYTES`]).
    pub(crate) cache_bytes: usize,
    /// OFREP event streams are served (default true; they also need the publish secret).
    pub(crate) event_streams: bool,
    /// Event streams one environment may have open (default 1,000).
    pub(crate) streams_per_environment: usize,
    /// Event streams one client key may have open (default 100).
    pub(crate) streams_per_key: usize,
    /// Milliseconds between heartbeats of idle streams (default `HEARTBEAT_SECONDS`, 25 s).
    pub(crate) heartbeat_ms: u64,
}

thread_local! {
    static ISOLATE: Cell<Option<Settings>> = const { Cell::new(None) };
    /// `None` until read; then the key, or `Some(None)` when streams are off (no usable secret).
    static STREAM_KEY: Cell<Option<Option<StreamKey>>> = const { Cell::new(None) };
}

impl Settings {
    /// This isolate's settings (read from `env` by its first request).
    pub(crate) fn of(env: &Env) -> Self {
        ISOLATE.with(|cell| {
            cell.get().unwrap_or_else(|| {
                let settings = Self::from_vars(
                    |name| env.var(name).ok().map(|value| value.to_string()),
                    |warning| console_warn!("{warning}"),
                );
                cell.set(Some(settings));
                settings
            })
        })
    }

    /// Settings from var values (`var(name)`, `None` when unset); a value that does not parse
    /// falls back to the default and is reported to `warn`.
    pub(crate) fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        mut warn: impl FnMut(String),
    ) -> Self {
        let require_client_keys = match var(CLIENT_KEYS_VAR) {
            Some(value) if value.eq_ignore_ascii_case("false") => false,
            Some(value) if value.eq_ignore_ascii_case("true") => true,
            Some(value) => {
                warn(format!(
                    "{CLIENT_KEYS_VAR}={value:?} is not true/false; requiring client keys"
                ));
                true
            }
            None => true,
        };
        let event_streams = match var(EVENT_STREAMS_VAR) {
            Some(value) if value.eq_ignore_ascii_case("false") => false,
            Some(value) if value.eq_ignore_ascii_case("true") => true,
            Some(value) => {
                warn(format!(
                    "{EVENT_STREAMS_VAR}={value:?} is not true/false; serving event streams"
                ));
                true
            }
            None => true,
        };
        let ttl_ms = match var(TTL_VAR) {
            Some(value) => parse_seconds_as_ms(&value).unwrap_or_else(|| {
                warn(format!(
                    "{TTL_VAR}={value:?} is not a number of seconds; using {}",
                    DEFAULT_TTL_MS / 1000
                ));
                DEFAULT_TTL_MS
            }),
            None => DEFAULT_TTL_MS,
        };
        let mut count = |name: &str, default: usize| match var(name) {
            Some(value) => value.trim().parse::<usize>().unwrap_or_else(|_| {
                warn(format!("{name}={value:?} is not a number; using {default}"));
                default
            }),
            None => default,
        };
        let subset_limit = count(SUBSET_LIMIT_VAR, DEFAULT_SUBSET_LIMIT);
        let streams_per_environment =
            count(STREAMS_PER_ENVIRONMENT_VAR, DEFAULT_STREAMS_PER_ENVIRONMENT);
        let streams_per_key = count(STREAMS_PER_KEY_VAR, DEFAULT_STREAMS_PER_KEY);
        let cache_bytes = match var(CACHE_MIB_VAR) {
            Some(value) => value
                .trim()
                .parse::<usize>()
                .ok()
                .and_then(|mib| mib.checked_mul(1 << 20))
                .unwrap_or_else(|| {
                    warn(format!(
                        "{CACHE_MIB_VAR}={value:?} is not a number of MiB; using {}",
                        DEFAULT_CACHE_BYTES >> 20
                    ));
                    DEFAULT_CACHE_BYTES
                }),
            None => DEFAULT_CACHE_BYTES,
        };
        let heartbeat_ms = match var(HEARTBEAT_VAR) {
            Some(value) => parse_seconds_as_ms(&value)
                .filter(|ms| *ms >= MIN_HEARTBEAT_MS)
                .unwrap_or_else(|| {
                    warn(format!(
                        "{HEARTBEAT_VAR}={value:?} is not a number of seconds of at least {MIN_HEARTBEAT_MS} ms; using {HEARTBEAT_SECONDS}"
                    ));
                    DEFAULT_HEARTBEAT_MS
                }),
            None => DEFAULT_HEARTBEAT_MS,
        };
        Self {
            require_client_keys,
            ttl_ms,
            subset_limit,
            cache_bytes,
            event_streams,
            streams_per_environment,
            streams_per_key,
            heartbeat_ms,
        }
    }
}

/// Non-negative decimal seconds with at most three decimals (`"5"`, `"0.25"`) as milliseconds.
///
/// Fractions exist for tests (a fault test re-checks KV after a quarter second instead of
/// seconds); in production whole seconds are the sensible unit. Parsed by hand rather than as a
/// float, which would pull float parsing into the wasm for one var.
fn parse_seconds_as_ms(value: &str) -> Option<u64> {
    // A leading `+` is accepted, as it was when the var was parsed as an integer.
    let value = value.trim();
    let value = value.strip_prefix('+').unwrap_or(value);
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || digits(fraction) && fraction.len() <= 3) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let fraction_ms = if fraction.is_empty() {
        0
    } else {
        // "25" is 250 ms: pad to three digits.
        format!("{fraction:0<3}").parse::<u64>().ok()?
    };
    whole.checked_mul(1000)?.checked_add(fraction_ms)
}

/// The publish secret of this deployment, read from `env` for one publish request.
pub(crate) fn publish_secret(env: &Env) -> Result<Secret> {
    publish_secret_from(env.secret(PUBLISH_SECRET).ok().map(|s| s.to_string()))
}

/// The publish secret from the secret's value (`None` when unset). Unset or empty is
/// [`Error::PublishNotConfigured`], shorter than the protocol's minimum
/// [`Error::PublishSecretTooShort`]: both are deployment mistakes to say, not signatures to
/// reject.
pub(crate) fn publish_secret_from(value: Option<String>) -> Result<Secret> {
    let value = value.unwrap_or_default();
    if value.is_empty() {
        return Err(Error::PublishNotConfigured);
    }
    Secret::new(value.as_bytes()).map_err(Error::PublishSecretTooShort)
}

/// The key of this deployment's event-stream tokens (read from `env` once per isolate); `None`
/// when streams are off (var `EVENT_STREAMS`) or the publish secret is unset or too short, and
/// then there are no event streams: bulk answers advertise none, the stream route answers like
/// an unknown path, and publishes announce nothing.
pub(crate) fn stream_key(env: &Env) -> Option<StreamKey> {
    STREAM_KEY.with(|cell| {
        cell.get().unwrap_or_else(|| {
            let key = Settings::of(env)
                .event_streams
                .then(|| stream_key_from(env.secret(PUBLISH_SECRET).ok().map(|s| s.to_string())))
                .flatten();
            cell.set(Some(key));
            key
        })
    })
}

/// The stream key of a publish secret's value: derived from the same bytes the origin derives
/// its key from, so tokens from either end are valid at both. A secret publishes refuse
/// (unset, empty, too short) gives none.
pub(crate) fn stream_key_from(value: Option<String>) -> Option<StreamKey> {
    let value = value?;
    publish_secret_from(Some(value.clone())).ok()?;
    Some(StreamKey::derive(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> (Settings, Vec<String>) {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut warnings = Vec::new();
        let settings = Settings::from_vars(|name| vars.get(name).cloned(), |w| warnings.push(w));
        (settings, warnings)
    }

    /// The documented defaults (wrangler.toml, README): keys required, 5 s TTL, 32 subsets,
    /// 32 MiB of snapshots.
    const DEFAULTS: Settings = Settings {
        require_client_keys: true,
        ttl_ms: 5_000,
        subset_limit: 32,
        cache_bytes: 32 << 20,
        event_streams: true,
        streams_per_environment: 1_000,
        streams_per_key: 100,
        heartbeat_ms: 25_000,
    };

    #[test]
    fn unset_vars_are_the_defaults() {
        let (settings, warnings) = settings(&[]);
        assert_eq!(settings, DEFAULTS);
        assert!(warnings.is_empty());
    }

    #[test]
    fn vars_are_read() {
        let (settings, warnings) = settings(&[
            ("REQUIRE_CLIENT_KEYS", "FALSE"),
            ("SNAPSHOT_TTL_SECONDS", " 2 "),
            ("SUBSET_CACHE_LIMIT", "0"),
            ("CACHE_MIB", "8"),
            ("EVENT_STREAMS", "False"),
            ("STREAMS_PER_ENVIRONMENT", "3"),
            ("STREAMS_PER_CLIENT_KEY", "2"),
            ("STREAM_HEARTBEAT_SECONDS", "0.5"),
        ]);
        assert_eq!(
            settings,
            Settings {
                require_client_keys: false,
                ttl_ms: 2_000,
                subset_limit: 0,
                cache_bytes: 8 << 20,
                event_streams: false,
                streams_per_environment: 3,
                streams_per_key: 2,
                heartbeat_ms: 500,
            }
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn the_ttl_takes_fractions_of_a_second_to_the_millisecond() {
        for (value, ms) in [
            ("0", 0),
            ("5", 5_000),
            ("0.25", 250),
            ("0.2", 200),
            ("1.005", 1_005),
            ("10.", 10_000),
            ("+1", 1_000),
        ] {
            assert_eq!(parse_seconds_as_ms(value), Some(ms), "{value}");
        }
        for value in [
            "",
            ".5",
            "-1",
            "0.0001",
            "1e3",
            "five",
            "1.2.3",
            "++1",
            "99999999999999999999",
        ] {
            assert_eq!(parse_seconds_as_ms(value), None, "{value}");
        }
    }

    #[test]
    fn values_that_do_not_parse_are_the_defaults_with_a_warning() {
        let (settings, warnings) = settings(&[
            ("REQUIRE_CLIENT_KEYS", "yes"),
            ("SNAPSHOT_TTL_SECONDS", "soon"),
            ("SUBSET_CACHE_LIMIT", "many"),
            ("CACHE_MIB", "lots"),
            ("EVENT_STREAMS", "maybe"),
            ("STREAMS_PER_ENVIRONMENT", "-1"),
            ("STREAMS_PER_CLIENT_KEY", "all"),
            ("STREAM_HEARTBEAT_SECONDS", "0.05"),
        ]);
        assert_eq!(settings, DEFAULTS);
        assert_eq!(
            warnings,
            [
                r#"REQUIRE_CLIENT_KEYS="yes" is not true/false; requiring client keys"#,
                r#"EVENT_STREAMS="maybe" is not true/false; serving event streams"#,
                r#"SNAPSHOT_TTL_SECONDS="soon" is not a number of seconds; using 5"#,
                r#"SUBSET_CACHE_LIMIT="many" is not a number; using 32"#,
                r#"STREAMS_PER_ENVIRONMENT="-1" is not a number; using 1000"#,
                r#"STREAMS_PER_CLIENT_KEY="all" is not a number; using 100"#,
                r#"CACHE_MIB="lots" is not a number of MiB; using 32"#,
                r#"STREAM_HEARTBEAT_SECONDS="0.05" is not a number of seconds of at least 100 ms; using 25"#,
            ]
        );
    }

    #[test]
    fn an_unset_or_empty_publish_secret_is_not_configured() {
        for value in [None, Some(String::new())] {
            let err = publish_secret_from(value).unwrap_err();
            assert_eq!(err.code(), "PUBLISH_NOT_CONFIGURED");
            assert_eq!(err.status_code(), 503);
        }
    }

    #[test]
    fn a_publish_secret_shorter_than_32_bytes_is_refused_naming_the_secret_and_the_minimum() {
        let err = publish_secret_from(Some("test-publish-secret".to_owned())).unwrap_err();
        assert_eq!(err.code(), "PUBLISH_NOT_CONFIGURED");
        assert_eq!(err.status_code(), 503);
        assert_eq!(
            err.to_string(),
            "publishing is disabled: the secret PUBLISH_SECRET is 19 bytes; it must be at least 32 bytes"
        );
        assert!(publish_secret_from(Some("x".repeat(32))).is_ok());
    }

    #[test]
    fn the_stream_key_comes_from_a_usable_publish_secret_only() {
        let secret = "test-publish-secret-of-32-bytes!";
        assert_eq!(
            stream_key_from(Some(secret.to_owned())),
            Some(StreamKey::derive(secret.as_bytes()))
        );
        for unusable in [None, Some(String::new()), Some("short".to_owned())] {
            assert_eq!(stream_key_from(unusable), None);
        }
    }
}
