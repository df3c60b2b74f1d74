// The OpenFeature provider against a local fake edge (support/fake-edge.mjs, docs/sdk.md's
// contract), through OpenFeature's own client: readiness, changes pushed on the event stream,
// 304s, refused snapshots, the edge going down and coming back, polling without a stream, and a
// process that exits by itself after close. Intervals are shortened so that each test takes
// well under a second; every wait is bounded.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, test } from "node:test";

import { ErrorCode, OpenFeature, ProviderEvents, ProviderStatus } from "@openfeature/server-sdk";

import { EdgeflagsProvider } from "@edgeflags/sdk";
import { CLIENT_KEY, FakeEdge, SERVER_KEY, snapshot } from "./support/fake-edge.mjs";

const quiet = { error() {}, warn() {}, info() {}, debug() {} };
let domains = 0;

after(() => OpenFeature.close());

/** A fake edge serving `document` and a provider on it, registered under a domain of its own. */
async function setUp(t, { document = snapshot(1), streams = true, provider = {} } = {}) {
  const edge = new FakeEdge(document);
  edge.streams = streams;
  await edge.start();
  const options = {
    url: edge.url,
    serverKey: SERVER_KEY,
    logger: quiet,
    pollIntervalMs: 100,
    staleAfterMs: 300,
    retryDelayMs: 20,
    maxRetryDelayMs: 100,
    ...provider,
  };
  const edgeflags = new EdgeflagsProvider(options);
  const domain = `edgeflags-test-${++domains}`;
  const client = OpenFeature.getClient(domain);
  t.after(async () => {
    await edgeflags.onClose();
    await edge.stop();
  });
  return { edge, provider: edgeflags, client, domain };
}

/** The next `type` event of the client's provider (rejects after `ms`). */
function nextEvent(client, type, ms = 5_000) {
  return new Promise((resolve, reject) => {
    const handler = (details) => {
      clearTimeout(timer);
      client.removeHandler(type, handler);
      resolve(details);
    };
    const timer = setTimeout(() => {
      client.removeHandler(type, handler);
      reject(new Error(`no ${type} within ${ms} ms`));
    }, ms);
    client.addHandler(type, handler);
  });
}

async function waitFor(what, condition, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const snapshotRequests = (edge) => edge.requests.filter((r) => r.path === "/sdk/v1/snapshot");

test("initialize downloads the snapshot with the server key, gzip-compressed; evaluation is local afterwards", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  assert.equal(client.providerStatus, ProviderStatus.READY);
  const [first] = snapshotRequests(edge);
  assert.equal(first.headers.authorization, `Bearer ${SERVER_KEY}`);
  assert.match(first.headers["accept-encoding"], /gzip/);
  assert.equal(first.gzip, true);

  const details = await client.getBooleanDetails("checkout", false, { targetingKey: "vip" });
  assert.deepEqual(
    { value: details.value, variant: details.variant, reason: details.reason, flagMetadata: details.flagMetadata },
    { value: true, variant: "on", reason: "TARGETING_MATCH", flagMetadata: { flagVersion: 1, reasonDetail: "user-targeted" } },
  );
  const before = edge.requests.length;
  for (let i = 0; i < 200; i++) {
    assert.equal(await client.getStringValue("colour", "none", { targetingKey: `user-${i}` }), "red");
  }
  assert.equal(snapshotRequests(edge).length, 1);
  assert.ok(edge.requests.length - before <= 1, "evaluations made no requests (at most the stream opened meanwhile)");
});

test("errors come back as OpenFeature error codes with the caller's default value", async (t) => {
  const { provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  const missing = await client.getBooleanDetails("no-such-flag", true, {});
  assert.deepEqual([missing.value, missing.reason, missing.errorCode], [true, "ERROR", ErrorCode.FLAG_NOT_FOUND]);
  assert.equal(missing.errorMessage, 'flag "no-such-flag" not found');
  const mismatch = await client.getNumberDetails("colour", 7, {});
  assert.deepEqual([mismatch.value, mismatch.reason, mismatch.errorCode], [7, "ERROR", ErrorCode.TYPE_MISMATCH]);
  assert.equal(mismatch.errorMessage, 'flag "colour" serves a string, not number');
});

test("a change announced on the event stream is served at once, with ConfigurationChanged naming the changed flag", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  const first = snapshotRequests(edge)[0];
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(snapshot(2, { beta: true, checkoutVersion: 2 }));
  const details = await changed;
  assert.deepEqual(details.flagsChanged, ["checkout"]);
  assert.equal(details.metadata.snapshotVersion, 2);
  assert.equal(await client.getBooleanValue("checkout", false, { targetingKey: "someone" }), true);
  const refetch = snapshotRequests(edge).at(-1);
  assert.ok(refetch.headers["if-none-match"], "the re-fetch is conditional");
  assert.notEqual(refetch, first);
  assert.equal(provider.engine.version, 2);
});

test("an event in CR and CRLF lines split over many writes is understood", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  edge.ragged = true;
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(snapshot(2, { colour: "blue" }));
  assert.deepEqual((await changed).flagsChanged, ["colour"]);
});

test("flagsChanged names the flags depending on a changed segment or prerequisite, and only them", async (t) => {
  const document = (version, { betaUsers, baseOn }) => ({
    environment: "test",
    version,
    generatedAt: "2026-11-24T10:00:00Z",
    flags: [
      { flagKey: "base", enabled: baseOn, version: baseOn ? 1 : 2 },
      { flagKey: "needs-base", enabled: true, version: 1, prerequisites: [{ flagKey: "base", variation: "on" }] },
      { flagKey: "for-beta", enabled: true, version: 1, targetingRules: { segments: ["beta"] } },
      { flagKey: "unrelated", enabled: true, version: 1 },
    ],
    segments: [{ segmentKey: "beta", included: betaUsers }],
  });
  const { edge, provider, client, domain } = await setUp(t, { document: document(1, { betaUsers: ["u1"], baseOn: true }) });
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  assert.equal(await client.getBooleanValue("for-beta", false, { targetingKey: "u2" }), false);

  let changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(document(2, { betaUsers: ["u1", "u2"], baseOn: true }));
  assert.deepEqual((await changed).flagsChanged, ["for-beta"]);
  assert.equal(await client.getBooleanValue("for-beta", false, { targetingKey: "u2" }), true);

  changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(document(3, { betaUsers: ["u1", "u2"], baseOn: false }));
  assert.deepEqual((await changed).flagsChanged, ["base", "needs-base"]);
  assert.equal(await client.getBooleanValue("needs-base", true, { targetingKey: "u2" }), false);
});

test("an announcement of the version already held is answered 304 and changes nothing", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  let changes = 0;
  const count = () => changes++;
  client.addHandler(ProviderEvents.ConfigurationChanged, count);
  t.after(() => client.removeHandler(ProviderEvents.ConfigurationChanged, count));
  edge.announce();
  await waitFor("the conditional re-fetch", () => snapshotRequests(edge).some((r) => r.status === 304));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(changes, 0);
  assert.equal(provider.engine.version, 1);
});

test("an event announcing a version the endpoint does not serve yet is followed by a few re-fetches until it does", async (t) => {
  const { edge, provider, client, domain } = await setUp(t, { provider: { pollIntervalMs: 60_000 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.announce(2); // the snapshot endpoint still serves version 1
  await waitFor("the first re-fetch", () => snapshotRequests(edge).some((r) => r.status === 304));
  edge.replace(snapshot(2, { colour: "blue" })); // it catches up, and no second event comes
  assert.deepEqual((await changed).flagsChanged, ["colour"]);
  assert.ok(snapshotRequests(edge).filter((r) => r.status === 304).length >= 1);
});

test("a snapshot that does not compile is refused with Error; the last good one keeps serving until a good one comes", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  const error = nextEvent(client, ProviderEvents.Error);
  edge.publish("{ this is not a snapshot", 2);
  assert.match((await error).message, /refused a snapshot/);
  assert.equal(await client.getStringValue("colour", "none", {}), "red");
  assert.equal(provider.engine.version, 1);

  const ready = nextEvent(client, ProviderEvents.Ready);
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(snapshot(3, { colour: "blue" }));
  await ready;
  assert.deepEqual((await changed).flagsChanged, ["colour"]);
  assert.equal(await client.getStringValue("colour", "none", {}), "blue");
  assert.equal(client.providerStatus, ProviderStatus.READY);
});

test("a snapshot of another environment than the key's is refused", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  const error = nextEvent(client, ProviderEvents.Error);
  edge.publish({ ...snapshot(2, { colour: "blue" }), environment: "production" });
  assert.match((await error).message, /environment "production", not the key's "test"/);
  assert.equal(await client.getStringValue("colour", "none", {}), "red");
});

test("the edge down: Stale while unreachable, still serving; back up: Ready and the change made meanwhile", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  const stale = nextEvent(client, ProviderEvents.Stale);
  await edge.stop();
  await stale;
  assert.equal(client.providerStatus, ProviderStatus.STALE);
  assert.equal(await client.getStringValue("colour", "none", {}), "red");

  edge.publish(snapshot(2, { colour: "blue" }));
  const ready = nextEvent(client, ProviderEvents.Ready);
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  await edge.start();
  await ready;
  assert.deepEqual((await changed).flagsChanged, ["colour"]);
  assert.equal(await client.getStringValue("colour", "none", {}), "blue");
  assert.equal(client.providerStatus, ProviderStatus.READY);
});

test("a stream cut while a change is made reconnects with Last-Event-ID and gets the change at once", async (t) => {
  // Polling far off: the change can only come through the stream's catch-up.
  const { edge, provider, client, domain } = await setUp(t, { provider: { pollIntervalMs: 60_000 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  await edge.stop();
  edge.publish(snapshot(2, { colour: "blue" }));
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  await edge.start();
  assert.deepEqual((await changed).flagsChanged, ["colour"]);
  const reconnect = edge.requests.filter((r) => r.path === "/ofrep/v1/event-stream").at(-1);
  assert.equal(reconnect.headers["last-event-id"], "1", "the version held while away");
  assert.equal(await client.getStringValue("colour", "none", {}), "blue");
});

test("a silent stream is reconnected after streamIdleTimeoutMs", async (t) => {
  const { edge, provider, domain } = await setUp(t, { provider: { streamIdleTimeoutMs: 100 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("three stream connections", () => edge.requests.filter((r) => r.path === "/ofrep/v1/event-stream").length >= 3, 3_000);
});

test("a stream refused with 429 is retried after its Retry-After", async (t) => {
  const { edge, provider, domain } = await setUp(t);
  edge.refuseStreams = 1;
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the stream after the refusal", () => edge.openStreams === 1, 5_000);
  const attempts = edge.requests.filter((r) => r.path === "/ofrep/v1/event-stream");
  assert.deepEqual(attempts.map((r) => r.status), [429, 200]);
  const gap = attempts[1].at - attempts[0].at;
  assert.ok(gap >= 900, `retried after ${gap} ms, not after the 1 s asked for`);
});

test("an expired stream token: the provider gets a new one from the snapshot endpoint and keeps following", async (t) => {
  const { edge, provider, client, domain } = await setUp(t, { provider: { pollIntervalMs: 60_000 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("the event stream", () => edge.openStreams === 1);
  edge.rotateToken();
  await waitFor("a stream on the new token", () => edge.openStreams === 1 && edge.requests.some((r) => r.query.includes(".2") && r.status === 200));
  assert.ok(edge.requests.some((r) => r.path === "/ofrep/v1/event-stream" && r.status === 401), "the old token was refused");
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(snapshot(2, { colour: "blue" }));
  await changed;
  assert.equal(await client.getStringValue("colour", "none", {}), "blue");
});

test("without an event stream the provider polls with If-None-Match and picks up a change", async (t) => {
  const { edge, provider, client, domain } = await setUp(t, { streams: false, provider: { pollIntervalMs: 50 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  await waitFor("two polls answered 304", () => snapshotRequests(edge).filter((r) => r.status === 304).length >= 2);
  assert.ok(snapshotRequests(edge).slice(1).every((r) => r.headers["if-none-match"] !== undefined));
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(snapshot(2, { colour: "blue" }));
  assert.deepEqual((await changed).flagsChanged, ["colour"]);
  assert.equal(await client.getStringValue("colour", "none", {}), "blue");
  assert.equal(edge.requests.filter((r) => r.path !== "/sdk/v1/snapshot").length, 0, "no stream was opened");
});

test("a poll answered 503 with Retry-After waits that long before the next one", async (t) => {
  const { edge, provider, domain } = await setUp(t, { streams: false, provider: { pollIntervalMs: 50 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  edge.unavailable = 1;
  await waitFor("the 503 and the poll after it", () => snapshotRequests(edge).some((r) => r.status === 503) && snapshotRequests(edge).at(-1).status === 304, 5_000);
  const polls = snapshotRequests(edge);
  const refused = polls.findIndex((r) => r.status === 503);
  const gap = polls[refused + 1].at - polls[refused].at;
  assert.ok(gap >= 900, `polled again after ${gap} ms, not after the 1 s asked for`);
});

test("with the stream turned off the provider polls even when the server names one", async (t) => {
  const { edge, provider, client, domain } = await setUp(t, { provider: { stream: false, pollIntervalMs: 50 } });
  await OpenFeature.setProviderAndWait(domain, provider);
  const changed = nextEvent(client, ProviderEvents.ConfigurationChanged);
  edge.publish(snapshot(2, { colour: "blue" }));
  await changed;
  assert.equal(edge.openStreams, 0);
});

test("a client key is refused for good: initialize fails with PROVIDER_FATAL", async (t) => {
  const { edge, provider, client, domain } = await setUp(t, { provider: { serverKey: CLIENT_KEY } });
  await assert.rejects(OpenFeature.setProviderAndWait(domain, provider));
  assert.equal(client.providerStatus, ProviderStatus.FATAL);
  const details = await client.getBooleanDetails("checkout", false, {});
  assert.equal(details.errorCode, ErrorCode.PROVIDER_FATAL);
  assert.equal(snapshotRequests(edge)[0].status, 403);
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(snapshotRequests(edge).length, 1, "no retries after a refused key");
});

test("an edge unreachable at start: initialize rejects, then the provider becomes Ready once it answers", async (t) => {
  const { edge, provider, client, domain } = await setUp(t);
  await edge.stop();
  await assert.rejects(OpenFeature.setProviderAndWait(domain, provider));
  assert.equal(client.providerStatus, ProviderStatus.ERROR);
  const ready = nextEvent(client, ProviderEvents.Ready);
  await edge.start();
  await ready;
  assert.equal(await client.getStringValue("colour", "none", {}), "red");
});

test("onClose leaves nothing running: a process using the provider exits by itself", async (t) => {
  const edge = new FakeEdge(snapshot(1));
  await edge.start();
  t.after(() => edge.stop());
  const child = spawn(process.execPath, [new URL("./support/close-and-exit.mjs", import.meta.url).pathname, edge.url, SERVER_KEY], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  const code = await new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("still running after 10 s");
    }, 10_000);
    child.on("exit", (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  assert.equal(code, 0, output);
  assert.match(output, /served red, closed/);
  assert.ok(edge.requests.some((r) => r.path === "/ofrep/v1/event-stream" && r.status === 200), "the stream was open before close");
});
