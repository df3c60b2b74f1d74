//! The origin's admin request decoding: what the flag, segment, override and environment
//! handlers do with a body before they touch the database.
//!
//! Input: a route byte, an environment byte, then the body. The route byte picks (low three
//! bits: 0 to 6, 7 is 6) create flag, update flag, create segment, update segment, set override, the
//! key and name members of the environment and client key bodies, or an `If-Match` header (the
//! body is its value); its next bits pick the `?environment=` query (absent, the environment's,
//! another). The environment byte picks the stored environment, a [`View`] of one of the
//! conformance snapshots (see [`environments`]). For an override the body's first line is the
//! user id (the path parameter).
//!
//! Each route runs the handler's steps: [`document::parse_object`], [`environment_of`], the
//! typed decoding ([`document::from_value`], [`segments::parse`], a partial update through
//! [`document::reject_rename`] and [`document::patched`]), then the mutation's validation
//! against the environment ([`validation::flag`], [`validation::segment`]). Checked: every
//! refusal is a client error (400 `MALFORMED_JSON` / `INVALID_PARAMETER` or 422
//! `VALIDATION_FAILED` with details), never a panic or a 500; a parsed body holds no NUL
//! character; a decoded flag or segment reads back from its own JSON unchanged (the database
//! stores that JSON); and a change that validates leaves the whole environment valid
//! ([`validation::environment`]), since the snapshot the mutation publishes is that environment.
#![no_main]

use std::fmt::Debug;

use edgeflags_fuzz::fixtures;
use evaluator_core::model::{Flag, Override, Segment, Snapshot};
use libfuzzer_sys::fuzz_target;
use origin::document;
use origin::domain::segments;
use origin::error::{Error, Result};
use origin::http::environment_of;
use origin::http::extract::IfMatch;
use origin::store::view::View;
use origin::validation;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// The time the mutation stamps on what it writes (any valid one will do).
const NOW_TEXT: &str = "2026-11-24T10:00:00Z";

/// A stored environment: its key and its flags and segments.
struct Environment {
    key: String,
    view: View,
}

/// Every valid conformance snapshot (and the generated one) as a stored environment, then the
/// nesting file's with one more segment, outside its 32-deep `segmentMatch` chain (so that one
/// change can lengthen the chain).
fn environments() -> &'static [Environment] {
    static ENVIRONMENTS: std::sync::OnceLock<Vec<Environment>> = std::sync::OnceLock::new();
    ENVIRONMENTS.get_or_init(|| {
        let valid = fixtures::fixtures().iter().filter(|f| f.valid);
        let mut out: Vec<Environment> = valid.map(|f| stored(f.name, &f.json, None)).collect();
        if let Some(nesting) = fixtures::fixtures()
            .iter()
            .find(|f| f.name == "22-nesting.json")
        {
            let extra: Segment = serde_json::from_value(serde_json::json!(
                {"segmentKey": "extra", "included": ["user-1"]}
            ))
            .unwrap_or_else(|e| panic!("the extra segment: {e}"));
            out.push(stored(nesting.name, &nesting.json, Some(extra)));
        }
        out
    })
}

fn stored(name: &str, json: &[u8], extra: Option<Segment>) -> Environment {
    let snapshot: Snapshot = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("{name}: not a model snapshot: {e}"));
    let mut view = View::default();
    for segment in snapshot.segments.into_iter().chain(extra) {
        view.put_segment(segment);
    }
    for flag in snapshot.flags {
        view.put_flag(flag);
    }
    if let Err(e) = validation::environment(&view) {
        panic!("{name}: the stored environment is not valid: {e:?}");
    }
    Environment {
        key: snapshot.environment,
        view,
    }
}

fuzz_target!(|data: &[u8]| {
    let [route, pick, body @ ..] = data else {
        return;
    };
    let all = environments();
    let env = &all[usize::from(*pick) % all.len()];
    let query = match (route >> 3) % 3 {
        0 => None,
        1 => Some(env.key.as_str()),
        _ => Some("elsewhere"),
    };
    let outcome = match route & 7 {
        0 => create_flag(env, query, body),
        1 => update_flag(env, query, body),
        2 => create_segment(env, query, body),
        3 => update_segment(env, query, body),
        4 => set_override(env, query, body),
        5 => keys(body),
        _ => if_match(body),
    };
    if let Err(e) = outcome {
        client_error(&e);
    }
});

/// `POST /admin/flags`.
fn create_flag(env: &Environment, query: Option<&str>, body: &[u8]) -> Result<()> {
    let body = object(body)?;
    environment(query, &body)?;
    let flag: Flag = document::from_value(Value::Object(body))?;
    reads_back(&flag);
    if env.view.flag(&flag.flag_key).is_some() {
        return Ok(()); // 409 `FLAG_EXISTS` before any validation
    }
    stage_flag(env, flag, None)
}

/// `PUT /admin/flags/{key}`: the path names the flag the body's `flagKey` names when the
/// environment has it, else its first flag.
fn update_flag(env: &Environment, query: Option<&str>, body: &[u8]) -> Result<()> {
    let patch = object(body)?;
    environment(query, &patch)?;
    let named = patch.get("flagKey").and_then(Value::as_str);
    let Some(stored) = named
        .and_then(|k| env.view.flag(k))
        .or_else(|| env.view.flags().first())
    else {
        return Ok(());
    };
    document::reject_rename(&patch, "flagKey", &stored.flag_key, "flag")?;
    let merged = document::patched(json(stored), patch, "flag")?;
    let changed: Flag = document::from_value(Value::Object(merged))?;
    reads_back(&changed);
    stage_flag(env, changed, Some(stored))
}

/// `POST /admin/segments`.
fn create_segment(env: &Environment, query: Option<&str>, body: &[u8]) -> Result<()> {
    let body = object(body)?;
    environment(query, &body)?;
    let segment = segments::parse(body)?;
    reads_back(&segment);
    if env
        .view
        .segments()
        .iter()
        .any(|s| s.segment_key == segment.segment_key)
    {
        return Ok(()); // 409 `SEGMENT_EXISTS` before any validation
    }
    stage_segment(env, segment)
}

/// `PUT /admin/segments/{key}`, the path naming a segment like [`update_flag`]'s.
fn update_segment(env: &Environment, query: Option<&str>, body: &[u8]) -> Result<()> {
    let patch = object(body)?;
    environment(query, &patch)?;
    let named = patch.get("segmentKey").and_then(Value::as_str);
    let segments = env.view.segments();
    let Some(stored) = named
        .and_then(|k| segments.iter().find(|s| s.segment_key == k))
        .or_else(|| segments.first())
    else {
        return Ok(());
    };
    document::reject_rename(&patch, "segmentKey", &stored.segment_key, "segment")?;
    let merged = document::patched(json(stored), patch, "segment")?;
    let changed = segments::parse(merged)?;
    reads_back(&changed);
    stage_segment(env, changed)
}

/// `PUT /admin/flags/{key}/overrides/{user_id}`: the body's first line is the user id, the flag
/// is picked by its length. The handler's body type is private to the origin; its members
/// (`variation`, `enabled`, `expiresAt`, `environment`) are those of [`Override`] less
/// `userId`, so the override is decoded as one with the path's user id added.
fn set_override(env: &Environment, query: Option<&str>, body: &[u8]) -> Result<()> {
    let (user_id, body) = match body.iter().position(|&b| b == b'\n') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &b"{}"[..]),
    };
    let Ok(user_id) = std::str::from_utf8(user_id) else {
        return Ok(()); // not a path the router decodes
    };
    // The path extractor refuses these before the handler runs.
    if user_id.contains('\0') || user_id.len() > origin::http::extract::MAX_PARAMETER_BYTES {
        return Ok(());
    }
    let mut body = object(body)?;
    environment(query, &body)?;
    if body.contains_key("userId") {
        return Ok(()); // an unknown member of the handler's body: refused by its decoding
    }
    body.remove("environment");
    body.insert("userId".into(), Value::String(user_id.to_owned()));
    let new: Override = document::from_value(Value::Object(body))?;
    let flags = env.view.flags();
    let Some(stored) = flags.get(user_id.len() % flags.len().max(1)) else {
        return Ok(());
    };
    // What `domain::overrides::put` does to the stored flag.
    let mut changed = stored.clone();
    match changed
        .overrides
        .iter_mut()
        .find(|o| o.user_id == new.user_id)
    {
        Some(existing) => *existing = new,
        None => {
            changed.overrides.push(new);
            changed.overrides.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        }
    }
    stage_flag(env, changed, Some(stored))
}

/// The `key` and `name` members of `POST /admin/environments` and of client key creation.
fn keys(body: &[u8]) -> Result<()> {
    let body = object(body)?;
    for field in ["key", "name"] {
        if let Some(Value::String(text)) = body.get(field) {
            validation::key(text, field)?;
        }
    }
    Ok(())
}

/// The `If-Match` header of every change.
fn if_match(value: &[u8]) -> Result<()> {
    let Ok(value) = http::HeaderValue::from_bytes(value) else {
        return Ok(()); // not a header value HTTP can carry
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::IF_MATCH, value);
    match IfMatch::from_headers(&headers) {
        Ok(IfMatch::Version(v)) => {
            assert!(IfMatch::Version(v).check(v).is_ok());
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => {
            assert!(
                matches!(
                    e,
                    Error::InvalidParameter {
                        name: "If-Match",
                        ..
                    }
                ),
                "{e:?}"
            );
            Err(e)
        }
    }
}

/// [`document::parse_object`]; what it accepts holds no NUL character anywhere.
fn object(body: &[u8]) -> Result<Map<String, Value>> {
    let map = document::parse_object(body)?;
    for (key, value) in &map {
        assert!(!key.contains('\0'), "a member name with NUL was accepted");
        storable(value);
    }
    Ok(map)
}

fn storable(value: &Value) {
    match value {
        Value::String(text) => assert!(!text.contains('\0'), "a string with NUL was accepted"),
        Value::Array(items) => items.iter().for_each(storable),
        Value::Object(members) => {
            for (key, member) in members {
                assert!(!key.contains('\0'), "a member name with NUL was accepted");
                storable(member);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// [`environment_of`] the query and the body, as every body route but the environment's own
/// applies it; the answer is the query's or else the body's environment.
fn environment(query: Option<&str>, body: &Map<String, Value>) -> Result<String> {
    let environment = environment_of(query, body.get("environment"))?;
    let from_body = body.get("environment").and_then(Value::as_str);
    assert_eq!(Some(environment.as_str()), query.or(from_body));
    Ok(environment)
}

/// The stored JSON of a definition (what `to_value` makes of the stored row).
fn json<T: Serialize + Debug>(stored: &T) -> Value {
    serde_json::to_value(stored).unwrap_or_else(|e| panic!("{stored:?} does not serialise: {e}"))
}

/// The database stores a definition as its JSON and reads it back with the same decoding: that
/// must give the same definition.
fn reads_back<T: Serialize + DeserializeOwned + PartialEq + Debug>(decoded: &T) {
    match document::from_value::<T>(json(decoded)) {
        Ok(back) => assert_eq!(&back, decoded, "the stored JSON reads back differently"),
        Err(e) => panic!("the stored JSON of {decoded:?} does not read back: {e:?}"),
    }
}

/// What `domain::flags::save` does before validating: the server-managed members, then the
/// flag validated in its environment. When it is valid there, the environment with it must be.
fn stage_flag(env: &Environment, mut flag: Flag, previous: Option<&Flag>) -> Result<()> {
    flag.version = previous.map_or(1, |p| p.version.saturating_add(1));
    flag.environment = Some(env.key.clone());
    flag.created_at = Some(
        previous
            .and_then(|p| p.created_at.clone())
            .unwrap_or_else(|| NOW_TEXT.to_owned()),
    );
    flag.updated_at = Some(NOW_TEXT.to_owned());
    validation::flag(&flag, &env.view)?;
    let key = flag.flag_key.clone();
    let mut view = env.view.clone();
    view.put_flag(flag);
    if let Err(e) = validation::environment(&view) {
        panic!("flag {key:?} is valid in its environment, which it leaves invalid: {e:?}");
    }
    Ok(())
}

/// What `Mutation::stage_segment` does; as for flags, the environment must stay valid.
fn stage_segment(env: &Environment, segment: Segment) -> Result<()> {
    validation::segment(&segment, &env.view)?;
    let key = segment.segment_key.clone();
    let mut view = env.view.clone();
    view.put_segment(segment);
    if let Err(e) = validation::environment(&view) {
        panic!("segment {key:?} is valid in its environment, which it leaves invalid: {e:?}");
    }
    Ok(())
}

/// A refusal the client is to blame for, with something to say.
fn client_error(e: &Error) {
    let status = e.status_code().as_u16();
    assert!(
        matches!(
            e,
            Error::MalformedJson(_) | Error::InvalidParameter { .. } | Error::Validation(_)
        ),
        "not a client error ({status}): {e:?}"
    );
    assert!(status == 400 || status == 422, "{status}: {e:?}");
    if let Error::Validation(details) = e {
        assert!(!details.is_empty(), "a validation error without details");
        for detail in details {
            assert!(
                !detail.message.is_empty(),
                "a detail without message: {e:?}"
            );
        }
    }
}
