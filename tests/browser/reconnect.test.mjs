// Reconnecting through a restart of the worker (docs/event-streams.md, "At the edge"): an
// unmodified @openfeature/ofrep-web-provider with no polling, in Debian's chromium, connected to
// the compiled worker under Miniflare. The worker is stopped while the page's stream is open, and
// started again on the same port with the same persisted KV and Durable Object storage, so the
// page's EventSource reconnects to the same URL and finds the snapshot and the object's stored
// version there. The page must end on the newest value through its reconnect alone (no polling):
// the event pushed to the new stream, or the change replayed for its Last-Event-ID, which is the
// id of its last event or, before any, the version its stream opened at.
//
// Needs the built worker (scripts/build-worker; EDGE_WORKER_BUILD names another build):
//   source scripts/lib/browser.sh && ensure_chromium && node --test tests/browser/reconnect.test.mjs
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";


import { CLIENT_KEY, fixtureSnapshot, publish, startWorker } from "../edge/harness.mjs";
import { freePort, sleep } from "../support/system.mjs";
import { launchChromium, servePage } from "./support.mjs";

const FLAG = "reconnect-banner";
/** How long the page may take to show a change after its worker is back (generous: shared cores). */
const RECOVERY_BOUND_MS = 20_000;
/** How long the provider may take to notice that its stream broke, and to open one. */
const NOTICE_BOUND_MS = 10_000;
const TEST_TIMEOUT_MS = 120_000;

/** The fixture snapshot at `version`, with FLAG on or off. */
const snapshot = (version, enabled) =>
  fixtureSnapshot(version, { extraFlags: [{ flagKey: FLAG, enabled, version: 100 + version }] });

/** `promise`, or a failure naming `what` after `ms`. */
async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 20 ms until it holds, failing after `ms`. */
async function until(ms, what, condition) {
  for (const deadline = Date.now() + ms; !condition(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
  }
}

let browser;
let pageServer;
let pageUrl;

before(async () => {
  // Another origin than the worker's, as in a real app.
  pageServer = await servePage("edgeflags reconnect");
  pageUrl = pageServer.url;
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  pageServer?.close();
});

/**
 * One test's servers: the worker on a fixed port over a persisted directory, restartable, and
 * short-lived workers on other ports over the same directory. `stop()` ends whatever still runs
 * and removes the directory.
 */
async function restartableWorker() {
  const persist = mkdtempSync(path.join(os.tmpdir(), "edgeflags-reconnect-"));
  const options = { ttlSeconds: 3600, requireClientKeys: true, persist };
  const port = await freePort();
  let current = null;
  const handle = {
    base: `http://127.0.0.1:${port}`,
    start: async () => {
      current = await startWorker({ ...options, port });
      assert.equal(current.base, handle.base, "the restarted worker has the same URL");
    },
    stop: async () => {
      const running = current;
      current = null;
      await running?.close();
    },
    /** Publishes `snapshot` to a worker of its own on another port (the page cannot reach it). */
    publishAside: async (snapshot) => {
      const aside = await startWorker(options);
      try {
        assert.equal((await publish(aside.base, snapshot)).status, 200);
      } finally {
        await aside.close();
      }
    },
    dispose: async () => {
      await handle.stop();
      rmSync(persist, { recursive: true, force: true });
    },
  };
  return handle;
}

/**
 * A page whose provider is connected to `base` with the fixture's client key: its initial value
 * is read and its stream is open. Records the page's stream requests (with their Last-Event-ID),
 * stream responses and bulk requests, and the provider's stale events.
 */
async function connectedPage(base) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { streamRequests: [], streamResponses: [], bulk: [] };
  page.on("request", async (request) => {
    const url = request.url();
    if (url.includes("/ofrep/v1/event-stream")) {
      const headers = await request.allHeaders().catch(() => request.headers());
      seen.streamRequests.push({ at: Date.now(), lastEventId: headers["last-event-id"] ?? null });
    } else if (url.includes("/ofrep/v1/evaluate/flags") && request.method() === "POST") {
      seen.bulk.push({ at: Date.now(), url });
    }
  });
  page.on("response", (response) => {
    if (response.url().includes("/ofrep/v1/event-stream")) seen.streamResponses.push({ at: Date.now(), status: response.status() });
  });
  await page.goto(pageUrl);
  await page.waitForFunction(() => typeof window.startProvider === "function", null, { timeout: NOTICE_BOUND_MS });
  const initial = await within(
    NOTICE_BOUND_MS,
    "the provider was ready",
    page.evaluate((options) => window.startProvider(options), { baseUrl: base, apiKey: CLIENT_KEY, flag: FLAG }),
  );
  // The provider's own signal that its stream broke (and that it did not give up: no error).
  await page.evaluate(() => {
    window.stale = [];
    window.errors = [];
    window.client.addHandler("PROVIDER_STALE", () => window.stale.push(performance.now()));
    window.client.addHandler("PROVIDER_ERROR", () => window.errors.push(performance.now()));
  });
  await until(NOTICE_BOUND_MS, "the provider opened its stream", () => seen.streamResponses.some((r) => r.status === 200));
  return {
    page,
    seen,
    initial,
    value: () => page.evaluate((flag) => window.value(flag), FLAG),
    /** Waits until the page serves `expected` for FLAG, at most `ms`. */
    valueBecomes: (expected, ms) =>
      page.waitForFunction(([flag, value]) => window.value(flag) === value, [FLAG, expected], { timeout: ms }),
    staleCount: () => page.evaluate(() => window.stale.length),
    errorCount: () => page.evaluate(() => window.errors.length),
    close: () => context.close(),
  };
}

/** Every bulk request after the first came from an event: it names the event's version. */
function assertNoPolling(seen) {
  const later = seen.bulk.slice(1);
  assert.ok(
    later.every((request) => request.url.includes("flagConfigEtag=")),
    `re-fetches not caused by an event: ${later.map((r) => r.url).join(", ")}`,
  );
}

/**
 * Connects a page at version 1 (FLAG on) and, `withEvent`, gives it one event (version 2, FLAG
 * off); then stops the worker, waits until the provider reports its stream broken and until one
 * reconnect was refused (the EventSource keeps trying after that). Resolves to the page, the
 * version it holds (its Last-Event-ID from then on) and the value it serves.
 */
async function pageThroughAStop(t, worker, { withEvent }) {
  await worker.start();
  assert.equal((await publish(worker.base, snapshot(1, true))).status, 200);
  const client = await connectedPage(worker.base);
  t.after(client.close);
  assert.equal(client.initial, true);
  let version = 1;
  if (withEvent) {
    version = 2;
    assert.equal((await publish(worker.base, snapshot(version, false))).status, 200);
    await client.valueBecomes(false, NOTICE_BOUND_MS);
  }
  const streamsBefore = client.seen.streamRequests.length;
  await worker.stop();
  for (const deadline = Date.now() + NOTICE_BOUND_MS; (await client.staleCount()) === 0; await sleep(50)) {
    assert.ok(Date.now() < deadline, "the provider did not report its stream broken");
  }
  await until(NOTICE_BOUND_MS, "the page tried to reconnect", () => client.seen.streamRequests.length > streamsBefore);
  return { client, streamsBefore, version, value: !withEvent };
}

/**
 * Checks how the page got version `version`: its last reconnect (after a refused one) named
 * `resumedFrom`, the re-fetch named `version` (so it came from the stream), nothing polled, and
 * the provider never gave up on its stream. Returns the stream requests since the stop.
 */
async function assertRecoveredThroughTheStream(client, streamsBefore, { resumedFrom, version }) {
  const reconnects = client.seen.streamRequests.slice(streamsBefore);
  assert.ok(reconnects.length > 1, "the page reconnected after a refused attempt");
  assert.equal(reconnects.at(-1).lastEventId, String(resumedFrom), "the Last-Event-ID of the reconnect");
  assert.ok(client.seen.bulk.at(-1).url.includes(`flagConfigEtag=%22${version}%22`), client.seen.bulk.at(-1).url);
  assertNoPolling(client.seen);
  assert.equal(await client.errorCount(), 0, "the provider never gave up on its stream");
  return reconnects;
}

describe("a browser client through a restart of the worker", { timeout: TEST_TIMEOUT_MS * 4 }, () => {
  for (const [when, reconnectFirst] of [
    // At once, so most often before its reconnect (2 s after the refused one, by the stream's
    // `retry`): the change then comes with the opening, for the page's Last-Event-ID.
    ["right after the restart", false],
    // After it: the change is pushed to the new stream, held by the restarted object.
    ["once the page has reconnected", true],
  ]) {
    test(`a change published ${when} reaches the page through its new stream`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const worker = await restartableWorker();
      t.after(worker.dispose);
      const { client, streamsBefore, version, value } = await pageThroughAStop(t, worker, { withEvent: false });

      const opensBefore = client.seen.streamResponses.length;
      await worker.start();
      if (reconnectFirst) {
        await until(RECOVERY_BOUND_MS, "the page reconnected", () => client.seen.streamResponses.slice(opensBefore).some((r) => r.status === 200));
      }
      assert.equal((await publish(worker.base, snapshot(version + 1, !value))).status, 200);
      const publishedAt = Date.now();
      await client.valueBecomes(!value, RECOVERY_BOUND_MS);
      const tookMs = Date.now() - publishedAt;

      const reconnects = await assertRecoveredThroughTheStream(client, streamsBefore, { resumedFrom: version, version: version + 1 });
      t.diagnostic(`publish -> value in the page: ${tookMs} ms; stream requests since the stop: ${reconnects.length}`);
    });
  }

  for (const [which, withEvent] of [
    ["the id of the event it had", true],
    // The stream's opening names the current version as the last event id (a block without
    // data), so even a page that never had an event reconnects with Last-Event-ID. Without it
    // the object could not tell the page missed anything, and the provider does not re-fetch
    // when its EventSource reopens (only once its 30 s grace period passes without one).
    ["the id its stream opened with, before any event", false],
  ]) {
    test(`a change published while the worker was down reaches the page when it reconnects with ${which}`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const worker = await restartableWorker();
      t.after(worker.dispose);
      const { client, streamsBefore, version, value } = await pageThroughAStop(t, worker, { withEvent });

      // The change is stored (KV) and announced (the object's stored version) by a worker the
      // page cannot reach; the page's worker comes back over the same storage.
      await worker.publishAside(snapshot(version + 1, !value));
      assert.equal(await client.value(), value, "nothing reached the page while its worker was down");
      const restartedAt = Date.now();
      await worker.start();
      await client.valueBecomes(!value, RECOVERY_BOUND_MS);
      const tookMs = Date.now() - restartedAt;

      const reconnects = await assertRecoveredThroughTheStream(client, streamsBefore, { resumedFrom: version, version: version + 1 });
      t.diagnostic(`worker started again -> value in the page: ${tookMs} ms; stream requests since the stop: ${reconnects.length}`);
    });
  }
});
