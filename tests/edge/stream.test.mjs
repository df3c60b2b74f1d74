// OFREP event streams at the edge (docs/event-streams.md, "At the edge"), through the compiled
// worker and its Durable Object under Miniflare: discovery in the bulk answer, events pushed by
// publishes to every stream of the environment and no other, Last-Event-ID, token and key
// refusals, the limits, heartbeats, the re-fetch after an event reading KV before the TTL, and a
// restarted object still knowing the version. Every wait is bounded; streams are read with
// fetch's body reader.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import {
  CLIENT_KEY,
  SECRET,
  fixtureSnapshot,
  get,
  post,
  publish,
  sha256hex,
  signatureHeaders,
  startWorker,
  suiteWorker,
} from "./harness.mjs";

const BULK = "/ofrep/v1/evaluate/flags";
const STREAM = "/ofrep/v1/event-stream";
/** How long an event may take from the publish's answer to the stream (generous: shared cores). */
const PUSH_BOUND_MS = 2_000;
/** How long a stream is watched to show that something does not arrive. */
const QUIET_MS = 600;
const HEARTBEAT_SECONDS = 0.3;
/** The fixture's generatedAt, 2026-11-24T10:00:00Z, in Unix seconds: the events' lastModified. */
const GENERATED_AT = Date.parse("2026-11-24T10:00:00Z") / 1000;

const MOBILE_KEY = "efk.production.fedcba9876543210fedcba9876543210";
const STAGING_KEY = "efk.staging.00112233445566778899aabbccddeeff";
const WEB = { name: "web", sha256: sha256hex(CLIENT_KEY) };
const MOBILE = { name: "mobile", sha256: sha256hex(MOBILE_KEY) };

/** A production snapshot at `version` holding the client keys `keys`. */
const production = (version, keys = [WEB, MOBILE]) => ({ ...fixtureSnapshot(version), clientKeys: keys });
const staging = (version) => ({
  ...fixtureSnapshot(version, { environment: "staging" }),
  clientKeys: [{ name: "web", sha256: sha256hex(STAGING_KEY) }],
});

/** Publishes `snapshot`, which must be accepted; resolves to the answer's exact text. */
async function publishText(base, snapshot) {
  const body = JSON.stringify(snapshot);
  const response = await fetch(`${base}/internal/snapshots/${snapshot.environment}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...signatureHeaders(body) },
    body,
  });
  assert.equal(response.status, 200);
  return response.text();
}

/** The stream URL a bulk answer advertises to `key` (and the answer). */
async function streamUri(base, key = CLIENT_KEY) {
  const bulk = await post(base, BULK, { context: { targetingKey: "u1" } }, { "x-client-key": key });
  assert.equal(bulk.status, 200, bulk.text);
  return bulk.json.eventStreams[0].endpoint.requestUri;
}

/**
 * A token as the worker mints it (docs/event-streams.md), written here independently:
 * `v1.<environment>.<key hash or ->.<expiry>.<first 32 hex of HMAC-SHA256>`, under the key
 * HMAC-SHA256(secret, "edgeflags event-stream tokens v1").
 */
function mintToken({ environment = "production", keyHash = sha256hex(CLIENT_KEY), expiresAt, secret = SECRET }) {
  const streamKey = createHmac("sha256", secret).update("edgeflags event-stream tokens v1").digest();
  const payload = `v1.${environment}.${keyHash}.${expiresAt}`;
  return `${payload}.${createHmac("sha256", streamKey).update(payload).digest("hex").slice(0, 32)}`;
}
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** One SSE message: its fields (`id`, `event`, `data` parsed, `retry`) or `comment`. */
function parseMessage(block) {
  const message = {};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) message.comment = line.slice(1).trim();
    const [field, ...rest] = line.split(": ");
    const value = rest.join(": ");
    if (field === "id" || field === "event" || field === "retry") message[field] = value;
    if (field === "data") message.data = JSON.parse(value);
  }
  return message;
}

const isEvent = (message) => message.comment === undefined && message.retry === undefined;
const isHeartbeat = (message) => message.comment === "heartbeat";

/** An open stream, read with fetch's body reader; every wait has a bound. */
class Stream {
  constructor(response, controller) {
    this.response = response;
    this.controller = controller;
    this.reader = response.body.getReader();
    this.decoder = new TextDecoder();
    this.buffer = "";
    this.queue = [];
    this.pending = null;
    this.ended = false;
  }

  /** Reads one chunk, or gives up at `deadline` (ms since the epoch); false on timeout. */
  async fill(deadline) {
    this.pending ??= this.reader.read();
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, deadline - Date.now()));
    });
    const result = await Promise.race([this.pending, timeout]);
    clearTimeout(timer);
    if (result === "timeout") return false;
    this.pending = null;
    if (result.done) {
      this.ended = true;
      return true;
    }
    this.buffer += this.decoder.decode(result.value, { stream: true });
    let end;
    while ((end = this.buffer.indexOf("\n\n")) >= 0) {
      this.queue.push(parseMessage(this.buffer.slice(0, end)));
      this.buffer = this.buffer.slice(end + 2);
    }
    return true;
  }

  /** The next message matching `predicate` (earlier ones are dropped), within `ms`. */
  async next(predicate, ms = PUSH_BOUND_MS) {
    const deadline = Date.now() + ms;
    for (;;) {
      const index = this.queue.findIndex(predicate);
      if (index >= 0) return this.queue.splice(0, index + 1).pop();
      this.queue = [];
      if (this.ended) throw new Error("the stream ended");
      if (!(await this.fill(deadline))) throw new Error(`no matching message within ${ms} ms`);
    }
  }

  /** The next event (neither `retry` nor a comment), within `ms`. */
  nextEvent(ms) {
    return this.next(isEvent, ms);
  }

  /** Asserts that no event arrives within `ms` (heartbeats may). */
  async noEventFor(ms = QUIET_MS) {
    await assert.rejects(this.nextEvent(ms), /no matching message/);
  }

  /** Resolves when the body ends, failing after `ms`. */
  async end(ms = PUSH_BOUND_MS) {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      this.queue = [];
      if (!(await this.fill(deadline))) throw new Error(`the stream did not end within ${ms} ms`);
    }
  }

  close() {
    this.controller.abort();
  }
}

/** Opens `uri`; resolves to `{ status, json, headers }` for a refusal, or a `Stream`. */
async function open(base, uri, headers = {}) {
  const controller = new AbortController();
  const response = await fetch(base + uri, { headers, signal: controller.signal });
  if (response.status !== 200) {
    const text = await response.text();
    return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : undefined };
  }
  const stream = new Stream(response, controller);
  const first = await stream.next(() => true);
  assert.equal(first.retry, "2000", "a stream starts with its reconnect delay");
  return stream;
}

/** Opens `uri`, which must open. */
async function opened(base, uri, headers) {
  const stream = await open(base, uri, headers);
  assert.ok(stream instanceof Stream, `refused: ${stream.status} ${JSON.stringify(stream.json)}`);
  return stream;
}

function assertRefetch(message, version) {
  assert.equal(message.id, String(version));
  assert.equal(message.event, "message");
  assert.deepEqual(message.data, { type: "refetchEvaluation", etag: `"${version}"`, lastModified: GENERATED_AT });
}

/** Closes every stream a test opened, whatever it asserted. */
function streams() {
  const open = [];
  return {
    track: (stream) => {
      if (stream instanceof Stream) open.push(stream);
      return stream;
    },
    closeAll: () => open.splice(0).forEach((stream) => stream.close()),
  };
}

describe("event streams at the edge", () => {
  const worker = suiteWorker(
    { ttlSeconds: 3600, requireClientKeys: true, vars: { STREAM_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } },
    async () => {
      assert.equal((await publish(worker.base, production(1))).status, 200);
      assert.equal((await publish(worker.base, staging(1))).status, 200);
    },
  );
  const opens = streams();
  const stream = async (uri, headers) => opens.track(await opened(worker.base, uri, headers));

  test("bulk answers advertise the environment's stream, without the client key in its URL", async () => {
    const bulk = await post(worker.base, BULK, { context: { targetingKey: "u1" } }, { "x-client-key": CLIENT_KEY });
    assert.equal(bulk.status, 200);
    assert.deepEqual(Object.keys(bulk.json.eventStreams[0]).sort(), ["endpoint", "inactivityDelaySec", "type"]);
    assert.equal(bulk.json.eventStreams[0].type, "sse");
    const uri = bulk.json.eventStreams[0].endpoint.requestUri;
    assert.match(uri, /^\/ofrep\/v1\/event-stream\?token=v1\.production\.[0-9a-f]{64}\.\d+\.[0-9a-f]{32}$/);
    assert.ok(!uri.includes(CLIENT_KEY) && !uri.includes("efk."), uri);
  });

  test("an opened stream has the event-stream headers", async (t) => {
    t.after(opens.closeAll);
    const opened = await stream(await streamUri(worker.base));
    assert.equal(opened.response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    assert.equal(opened.response.headers.get("cache-control"), "private, no-store");
    assert.equal(opened.response.headers.get("access-control-allow-origin"), "*");
    assert.equal(opened.response.headers.get("x-accel-buffering"), "no");
  });

  test("a publish reaches every open stream of its environment at once, and no other environment's", async (t) => {
    t.after(opens.closeAll);
    const uri = await streamUri(worker.base);
    const first = await stream(uri);
    const second = await stream(uri);
    const other = await stream(await streamUri(worker.base, STAGING_KEY));
    // The publish answer is what it was before streams existed, byte for byte.
    assert.equal(await publishText(worker.base, production(2)), '{"environment":"production","stored":true,"version":2}');
    const started = Date.now();
    assertRefetch(await first.nextEvent(), 2);
    assertRefetch(await second.nextEvent(), 2);
    assert.ok(Date.now() - started < PUSH_BOUND_MS);
    await other.noEventFor();
    // The staging stream gets staging's own change.
    assert.equal((await publish(worker.base, staging(2))).status, 200);
    assert.equal((await other.nextEvent()).id, "2");
    await first.noEventFor(200);
  });

  test("a publish of the version stored, or an older one, announces nothing", async (t) => {
    t.after(opens.closeAll);
    const listening = await stream(await streamUri(worker.base));
    assert.equal((await publish(worker.base, production(2))).body.stored, false);
    assert.equal((await publish(worker.base, production(1))).status, 409);
    await listening.noEventFor();
  });

  test("Last-Event-ID older than the current version gets that change at once; the current one gets nothing", async (t) => {
    t.after(opens.closeAll);
    const uri = await streamUri(worker.base);
    const behind = await stream(uri, { "Last-Event-ID": "1" });
    assertRefetch(await behind.nextEvent(500), 2);
    const current = await stream(uri, { "Last-Event-ID": "2" });
    await current.noEventFor();
  });

  test("idle streams get a heartbeat comment every STREAM_HEARTBEAT_SECONDS", async (t) => {
    t.after(opens.closeAll);
    const idle = await stream(await streamUri(worker.base));
    await idle.next(isHeartbeat, HEARTBEAT_SECONDS * 1000 * 4);
    await idle.next(isHeartbeat, HEARTBEAT_SECONDS * 1000 * 4);
  });

  test("a missing, forged, expired or foreign token is 401 INVALID_STREAM_TOKEN", async () => {
    const uri = await streamUri(worker.base);
    const token = uri.split("token=")[1];
    const forged = token.slice(0, -1) + (token.endsWith("0") ? "1" : "0");
    const expired = mintToken({ expiresAt: Math.floor(Date.now() / 1000) - 1 });
    const foreign = mintToken({ expiresAt: inAnHour(), secret: "another-secret-of-at-least-32-b!" });
    for (const [what, path] of [
      ["missing", STREAM],
      ["empty", `${STREAM}?token=`],
      ["forged", `${STREAM}?token=${forged}`],
      ["expired", `${STREAM}?token=${expired}`],
      ["signed with another secret", `${STREAM}?token=${foreign}`],
    ]) {
      const refused = await open(worker.base, path);
      assert.equal(refused.status, 401, what);
      assert.equal(refused.json.error.code, "INVALID_STREAM_TOKEN", what);
    }
    // The token the worker would mint is accepted: the test's minting is the worker's.
    const minted = await open(worker.base, `${STREAM}?token=${mintToken({ expiresAt: inAnHour() })}`);
    assert.ok(minted instanceof Stream);
    minted.close();
    const posted = await fetch(worker.base + uri, { method: "POST" });
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get("allow"), "GET");
  });

  test("a valid token for an environment that does not exist, for a key it does not hold, or without a key is 401", async () => {
    for (const [what, token] of [
      ["unknown environment", mintToken({ environment: "nowhere", expiresAt: inAnHour() })],
      ["unknown key", mintToken({ keyHash: sha256hex("efk.production.ffffffffffffffffffffffffffffffff"), expiresAt: inAnHour() })],
      // Evaluations need a key here, so a token issued without one opens nothing.
      ["no key", mintToken({ keyHash: "-", expiresAt: inAnHour() })],
    ]) {
      const refused = await open(worker.base, `${STREAM}?token=${token}`);
      assert.equal(refused.status, 401, what);
      assert.equal(refused.json.error.code, "INVALID_STREAM_TOKEN", what);
    }
  });

  test("revoking a key (a snapshot without it) closes its streams, and it cannot open another", async (t) => {
    t.after(opens.closeAll);
    const mobileUri = await streamUri(worker.base, MOBILE_KEY);
    const mobile = await stream(mobileUri);
    const web = await stream(await streamUri(worker.base));
    assert.equal((await publish(worker.base, production(3, [WEB]))).status, 200);
    assertRefetch(await web.nextEvent(), 3);
    await mobile.end();
    const again = await open(worker.base, mobileUri);
    assert.equal(again.status, 401);
    assert.equal(again.json.error.code, "INVALID_STREAM_TOKEN");
    // Given back, the key opens streams again.
    assert.equal((await publish(worker.base, production(4))).status, 200);
    assertRefetch(await web.nextEvent(), 4);
    opens.track(await opened(worker.base, mobileUri)).close();
  });

  test("after an event, the bulk re-fetch naming a version newer than the isolate holds is answered from it", async () => {
    // Written to KV directly, as another isolate's publish would be: this isolate's TTL is an hour.
    await worker.kv.put("snapshot:production", JSON.stringify(production(5)));
    await worker.kv.put("version:production", "5");
    const context = { context: { targetingKey: "u1" } };
    const headers = { "x-client-key": CLIENT_KEY };
    const stale = await post(worker.base, BULK, context, headers);
    assert.equal(stale.headers.get("x-edgeflags-snapshot-version"), "4", "within the TTL");
    const refetch = await post(worker.base, `${BULK}?flagConfigEtag=%225%22&flagConfigLastModified=${GENERATED_AT}`, context, headers);
    assert.equal(refetch.status, 200, refetch.text);
    assert.equal(refetch.headers.get("x-edgeflags-snapshot-version"), "5");
  });

  test("a version the object was not told of reaches open streams when a stream opens from an isolate holding it", async (t) => {
    t.after(opens.closeAll);
    // Version 5 went to KV without a publish (previous test); this isolate holds it now.
    const uri = await streamUri(worker.base);
    const listening = await stream(uri, { "Last-Event-ID": "5" });
    await stream(uri);
    await listening.noEventFor(200);
    await worker.kv.put("snapshot:production", JSON.stringify(production(6)));
    await worker.kv.put("version:production", "6");
    // Hints force at most one KV check per environment per 250 ms (the previous test's was one).
    await sleep(300);
    const refetch = await post(worker.base, `${BULK}?flagConfigEtag=%226%22`, { context: { targetingKey: "u1" } }, { "x-client-key": CLIENT_KEY });
    assert.equal(refetch.headers.get("x-edgeflags-snapshot-version"), "6");
    await stream(uri);
    assertRefetch(await listening.nextEvent(), 6);
  });
});

describe("stream limits", () => {
  const worker = suiteWorker(
    {
      ttlSeconds: 3600,
      requireClientKeys: true,
      // The runtime notices a client has left when the next write to its stream fails: a short
      // heartbeat makes that next write come soon.
      vars: { STREAMS_PER_ENVIRONMENT: "3", STREAMS_PER_CLIENT_KEY: "2", STREAM_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) },
    },
    async () => {
      assert.equal((await publish(worker.base, production(1))).status, 200);
    },
  );
  const opens = streams();

  function assertTooMany(refused, limit) {
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "30");
    assert.equal(refused.json.error.code, "TOO_MANY_STREAMS");
    assert.match(refused.json.error.message, new RegExp(`\\b${limit}\\b`));
  }

  test("per client key and per environment, over the limit is 429 with Retry-After, and a closed stream frees its slot", async (t) => {
    t.after(opens.closeAll);
    const web = await streamUri(worker.base);
    const mobile = await streamUri(worker.base, MOBILE_KEY);
    const first = opens.track(await opened(worker.base, web));
    opens.track(await opened(worker.base, web));
    assertTooMany(await open(worker.base, web), 2);
    opens.track(await opened(worker.base, mobile));
    assertTooMany(await open(worker.base, mobile), 3);
    // The client of the first stream leaves; its slot is free once the runtime has cancelled its
    // body, at the latest two heartbeats later.
    first.close();
    const deadline = Date.now() + PUSH_BOUND_MS + HEARTBEAT_SECONDS * 2 * 1000;
    let reopened;
    while (!((reopened = opens.track(await open(worker.base, web))) instanceof Stream)) {
      // Until then, whichever limit the object still counts it against.
      assert.equal(reopened.status, 429);
      assert.ok(Date.now() < deadline, "the closed stream's slot was not freed");
      await sleep(50);
    }
    // Every slot is taken again.
    assertTooMany(await open(worker.base, mobile), 3);
  });
});

describe("a worker whose streams' Durable Object cannot be reached", () => {
  const worker = suiteWorker({ streams: false });

  test("still stores publishes and answers them exactly as before, and logs the failed announcement", async () => {
    assert.equal(await publishText(worker.base, production(1)), '{"environment":"production","stored":true,"version":1}');
    assert.equal(await worker.kv.get("version:production"), "1");
    assert.match(worker.logs(), /event streams of production: announcing version 1 failed/);
  });
});

for (const [what, options] of [
  ["without a publish secret", { publishSecret: null }],
  ["with EVENT_STREAMS=false", { vars: { EVENT_STREAMS: "false" } }],
]) {
  describe(`a worker ${what}`, () => {
    const worker = suiteWorker(options, async () => {
      await worker.kv.put("snapshot:production", JSON.stringify(fixtureSnapshot(1)));
      await worker.kv.put("version:production", "1");
    });

    test("has no streams: bulk answers advertise none, and the stream path is an unknown route", async () => {
      const bulk = await post(worker.base, BULK, { context: { targetingKey: "u1", environment: "production" } });
      assert.equal(bulk.status, 200, bulk.text);
      assert.equal(bulk.json.eventStreams, undefined);
      const token = mintToken({ keyHash: "-", expiresAt: inAnHour() });
      const stream = await get(worker.base, `${STREAM}?token=${token}`);
      const unknown = await get(worker.base, "/ofrep/v1/no-such-route");
      assert.equal(stream.status, 404);
      assert.equal(unknown.status, 404);
      assert.deepEqual(Object.keys(stream.json), Object.keys(unknown.json));
      assert.equal(stream.text, unknown.text.replace("/ofrep/v1/no-such-route", STREAM));
    });
  });
}

describe("a restarted Durable Object", () => {
  const persist = mkdtempSync(path.join(os.tmpdir(), "edgeflags-streams-"));
  const options = { ttlSeconds: 3600, requireClientKeys: true, persist };

  test("still answers Last-Event-ID by the version it stored, even if the isolate opening the stream holds an older one", async (t) => {
    t.after(() => rmSync(persist, { recursive: true, force: true }));
    const before = await startWorker(options);
    try {
      assert.equal((await publish(before.base, production(1))).status, 200);
      assert.equal((await publish(before.base, production(2))).status, 200);
      // A lagging KV replica: the next isolate reads version 1.
      await before.kv.put("snapshot:production", JSON.stringify(production(1)));
      await before.kv.put("version:production", "1");
    } finally {
      await before.close();
    }
    const after = await startWorker(options);
    try {
      const uri = await streamUri(after.base);
      const bulk = await post(after.base, BULK, { context: { targetingKey: "u1" } }, { "x-client-key": CLIENT_KEY });
      assert.equal(bulk.headers.get("x-edgeflags-snapshot-version"), "1");
      const resumed = await opened(after.base, uri, { "Last-Event-ID": "1" });
      assertRefetch(await resumed.nextEvent(500), 2);
      resumed.close();
    } finally {
      await after.close();
    }
  });
});
