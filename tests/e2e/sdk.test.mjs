// End to end, the in-process Node SDK (issue 14; docs/sdk.md): the whole system as `scripts/dev`
// brings it up, a server key created through the admin API, and `@edgeflags/sdk`'s OpenFeature
// provider (the built package, sdk/js/pkg) evaluating locally from the snapshot it downloads
// from the real worker under wrangler dev, then from the origin. Every admin change must reach
// the running provider through the event stream (ConfigurationChanged, then the new value
// served); the time from each write's acknowledgement to the provider serving its value is
// written to target/sdk-propagation.json (reported, never asserted: machines here are noisy).
// A client key cannot initialise the provider.
//
// Run it through scripts/test (which builds the package first), or alone:
//   scripts/build-sdk-js && source scripts/lib/toolchain.sh && node --test tests/e2e/sdk.test.mjs
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { OpenFeature, ProviderEvents } from "@openfeature/server-sdk";

import { ROOT, startSystem } from "../support/system.mjs";

const { EdgeflagsProvider } = await import(join(ROOT, "sdk/js/pkg/dist/index.js"));

const CHANGES = 20;
const CHANGE_LIMIT_MS = 15_000; // a change not served by then is a failure
const FLAG = "sdk-e2e-flag";
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

let system;
after(async () => {
  await OpenFeature.close();
  await system?.stop();
});

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

/** Registers a provider on `url` with `serverKey` under `domain`; its client and provider. */
async function connect(domain, url, serverKey) {
  const provider = new EdgeflagsProvider({ url, serverKey, logger: quiet, pollIntervalMs: 60_000 });
  await OpenFeature.setProviderAndWait(domain, provider);
  return { provider, client: OpenFeature.getClient(domain) };
}

/**
 * Makes `CHANGES` toggles of the flag through the admin API; after each, waits until `client`
 * serves the new value (and its provider said ConfigurationChanged). Milliseconds per change.
 */
async function propagation(admin, provider, client) {
  const changed = [];
  provider.events.addHandler(ProviderEvents.ConfigurationChanged, (details) => changed.push(details));
  const times = [];
  let version = (await admin("GET", `/admin/flags/${FLAG}?environment=production`)).body.version;
  for (let i = 0; i < CHANGES; i++) {
    const enabled = i % 2 === 1;
    const events = changed.length;
    const started = performance.now();
    const written = await admin("PUT", `/admin/flags/${FLAG}?environment=production`, { enabled }, { "if-match": String(version) });
    assert.equal(written.status, 200, JSON.stringify(written.body));
    version = written.body.version;
    const acknowledged = performance.now();
    for (;;) {
      const served = await client.getBooleanValue(FLAG, !enabled, { targetingKey: "e2e-user" });
      if (served === enabled && changed.length > events) break;
      assert.ok(performance.now() - acknowledged < CHANGE_LIMIT_MS, `change ${i} not served within ${CHANGE_LIMIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - acknowledged);
    assert.ok(started <= acknowledged);
  }
  return times;
}

test("the Node SDK serves every admin change pushed through the edge and through the origin", async (t) => {
  system = await startSystem("sdk");
  const { origin, edge, admin } = system;
  const key = await admin("POST", "/admin/environments/production/server-keys", { name: "e2e-backend" });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  const serverKey = key.body.key;
  assert.match(serverKey, /^efs\.production\.[0-9a-f]{32}$/);
  const created = await admin("POST", "/admin/flags?environment=production", { flagKey: FLAG, enabled: false });
  assert.equal(created.status, 201, JSON.stringify(created.body));

  const figures = {};
  for (const [name, url] of [["edge", edge], ["origin", origin]]) {
    await t.test(`through the ${name}`, async () => {
      // The edge holds the key once the snapshot listing it is published: wait for that first.
      const deadline = performance.now() + CHANGE_LIMIT_MS;
      while ((await fetch(`${url}/sdk/v1/snapshot`, { headers: { authorization: `Bearer ${serverKey}` } })).status !== 200) {
        assert.ok(performance.now() < deadline, `the ${name} never accepted the server key`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const connected = await connect(`sdk-e2e-${name}`, url, serverKey);
      const { provider, client } = connected;
      const details = await client.getBooleanDetails(FLAG, true, { targetingKey: "e2e-user" });
      assert.equal(details.value, (await admin("GET", `/admin/flags/${FLAG}?environment=production`)).body.enabled);
      assert.equal(details.errorCode, undefined);
      const times = await propagation(admin, provider, client);
      const sorted = [...times].sort((a, b) => a - b);
      figures[name] = {
        changes: times.length,
        p50Ms: Math.round(percentile(sorted, 50)),
        p95Ms: Math.round(percentile(sorted, 95)),
        maxMs: Math.round(sorted[sorted.length - 1]),
      };
      console.log(`# sdk propagation through the ${name}: ${JSON.stringify(figures[name])}`);
    });
  }

  await t.test("a client key cannot initialise the provider", async () => {
    const client = await admin("POST", "/admin/environments/production/client-keys", { name: "e2e-web" });
    assert.equal(client.status, 201);
    const provider = new EdgeflagsProvider({ url: edge, serverKey: client.body.key, logger: quiet });
    await assert.rejects(OpenFeature.setProviderAndWait("sdk-e2e-client-key", provider));
  });

  mkdirSync(join(ROOT, "target"), { recursive: true });
  writeFileSync(join(ROOT, "target", "sdk-propagation.json"), JSON.stringify(figures, null, 2) + "\n");
});
