//! The Durable Object that holds one environment's event streams (binding `STREAMS`, class
//! `EnvironmentStreams`, one object per environment by `idFromName(environment)`).
//!
//! Every stream of the environment is a response this object is still writing, so one publish
//! (to whichever isolate it reaches) is one request here and one write to each stream; no stream
//! polls KV. The object stores the version its streams were last told of ([`Known`]), so that
//! after a restart (a deployment, an eviction: the streams are gone then, and reconnect) it still
//! answers `Last-Event-ID` by the current version. It learns versions from publishes and from
//! the snapshot each opening worker holds; it never reads KV itself.
//!
//! Heartbeats are the object's alarm, every `STREAM_HEARTBEAT_SECONDS` while streams are open
//! and never while none is, so an idle environment costs nothing.

use std::cell::{Cell, RefCell};

use evaluation_api::stream::{stream_head, stream_key_revoked, too_many_streams, ConfigVersion};
use evaluation_api::ApiResponse;
use futures_util::StreamExt;
use worker::{
    console_error, durable_object, DurableObject, Env, Headers, Request, Response, State,
};

use super::hub::{Hub, Limits, Opened};
use super::wire::{Known, Open, CHANGE_PATH, OPEN_PATH, RECORD_KEY};
use crate::http;
use crate::settings::Settings;

/// One environment's streams.
#[durable_object(alarm)]
pub struct EnvironmentStreams {
    state: State,
    env: Env,
    /// `None` until the first request read the stored record.
    hub: RefCell<Option<Hub>>,
    /// Whether a heartbeat alarm is set (kept in memory: the streams it is for die with the
    /// object, so an alarm left from before a restart only finds none and is not set again).
    alarm_set: Cell<bool>,
}

impl DurableObject for EnvironmentStreams {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            hub: RefCell::new(None),
            alarm_set: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        let (path, _) = http::split_url(&url);
        let path = path.to_owned();
        let body = req.text().await?;
        self.load().await;
        match path.as_str() {
            OPEN_PATH => match Open::decode(&body) {
                Some(open) => self.open(open).await,
                None => Response::error("bad open request", 400),
            },
            CHANGE_PATH => match Known::decode(&body) {
                Some(Known {
                    config: Some(config),
                    keys: Some(keys),
                }) => self.change(config, keys).await,
                _ => Response::error("bad change request", 400),
            },
            _ => Response::error("not found", 404),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_set.set(false);
        let open = self
            .hub
            .borrow_mut()
            .as_mut()
            .map_or(0, |hub| hub.heartbeat());
        if open > 0 {
            self.arm_heartbeat().await;
        }
        Response::empty()
    }
}

impl EnvironmentStreams {
    /// Reads the stored record into a hub, once per object.
    async fn load(&self) {
        if self.hub.borrow().is_some() {
            return;
        }
        let stored = self.state.storage().get::<String>(RECORD_KEY).await;
        let known = match stored {
            Ok(Some(text)) => Known::decode(&text).unwrap_or_else(|| {
                console_error!("event streams: stored record unreadable, starting afresh");
                Known::default()
            }),
            Ok(None) => Known::default(),
            Err(e) => {
                console_error!("event streams: storage read failed, starting afresh: {e}");
                Known::default()
            }
        };
        let mut hub = self.hub.borrow_mut();
        if hub.is_none() {
            *hub = Some(Hub::new(known.config, known.keys));
        }
    }

    async fn open(&self, open: Open) -> worker::Result<Response> {
        let settings = Settings::of(&self.env);
        let limits = Limits {
            per_environment: settings.streams_per_environment,
            per_key: settings.streams_per_key,
        };
        let (opened, learned) = {
            let mut hub = self.hub.borrow_mut();
            let hub = hub.get_or_insert_with(Hub::default);
            let learned = hub.learn(open.seen);
            let opened = hub.open(open.key_sha256.as_deref(), open.last_event_id, limits);
            (opened, learned.then(|| record_of(hub)))
        };
        if let Some(record) = learned {
            self.save(&record).await;
        }
        match opened {
            Opened::Stream(receiver) => {
                self.arm_heartbeat().await;
                let head = stream_head();
                Response::builder()
                    .with_status(head.status)
                    .with_headers(headers(&head)?)
                    .from_stream(receiver.map(Ok::<Vec<u8>, worker::Error>))
            }
            Opened::TooMany { limit } => answer(too_many_streams(limit)),
            Opened::Revoked => answer(stream_key_revoked()),
        }
    }

    async fn change(&self, config: ConfigVersion, keys: Vec<String>) -> worker::Result<Response> {
        let changed = {
            let mut hub = self.hub.borrow_mut();
            let hub = hub.get_or_insert_with(Hub::default);
            hub.change(config, keys).then(|| record_of(hub))
        };
        if let Some(record) = changed {
            self.save(&record).await;
        }
        Ok(Response::empty()?.with_status(204))
    }

    async fn save(&self, record: &Known) {
        if let Err(e) = self.state.storage().put(RECORD_KEY, record.encode()).await {
            // The streams were told; only a restart before the next change forgets it.
            console_error!("event streams: storing the current version failed: {e}");
        }
    }

    /// Sets the heartbeat alarm unless one is set (every stream opened sets it if needed).
    async fn arm_heartbeat(&self) {
        if self.alarm_set.replace(true) {
            return;
        }
        let delay_ms = i64::try_from(Settings::of(&self.env).heartbeat_ms).unwrap_or(i64::MAX);
        if let Err(e) = self.state.storage().set_alarm(delay_ms).await {
            self.alarm_set.set(false);
            console_error!("event streams: setting the heartbeat alarm failed: {e}");
        }
    }
}

fn record_of(hub: &Hub) -> Known {
    Known {
        config: hub.current(),
        keys: hub.keys(),
    }
}

fn headers(answer: &ApiResponse) -> worker::Result<Headers> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.set(name, value)?;
    }
    Ok(headers)
}

/// An `evaluation_api` refusal as the object's answer (the worker passes it on as is).
fn answer(answer: ApiResponse) -> worker::Result<Response> {
    http::api_response(answer).map_err(|e| worker::Error::RustError(e.to_string()))
}
