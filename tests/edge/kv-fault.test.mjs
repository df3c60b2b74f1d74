// The isolate cache and KV faults, through the compiled worker: corrupt data in KV never replaces
// the last good snapshot, a newer version written to KV reaches the isolate after
// SNAPSHOT_TTL_SECONDS and not before, and an isolate with nothing good answers the fallback.
// The same policy is unit-tested natively with an injected clock (edge-worker/src/cache/tests.rs);
// here a quarter-second TTL keeps the waits short, and "not before the TTL" runs on a worker
// whose TTL is an hour, so no timing can make it pass or fail by chance.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";

import { fixtureSnapshot, get, publish, suiteWorker } from "./harness.mjs";

const TTL_SECONDS = 0.25;
const FLAG = "/api/v1/flags/theme?environment=production&userId=u1&plan=pro";

async function servedVersion(base) {
  const response = await get(base, FLAG);
  assert.equal(response.status, 200, response.text);
  assert.equal(response.json.value, "dark");
  return Number(response.headers.get("x-edgeflags-snapshot-version"));
}

/**
 * Writes KV directly, in the order a publish does: the production snapshot (an object is written
 * as its JSON, a string as it is), then the version key.
 */
async function writeKv(kv, snapshot, version) {
  await kv.put("snapshot:production", typeof snapshot === "string" ? snapshot : JSON.stringify(snapshot));
  await kv.put("version:production", String(version));
}

/** Waits past the TTL so the next request re-checks KV. */
const pastTtl = () => sleep(TTL_SECONDS * 1000 + 150);
const SERVER_TIMING_OF_A_LOAD = /^kv;dur=\d+\.\d{3}, parse;dur=\d+\.\d{3}, compile;dur=\d+\.\d{3}, total;dur=\d+\.\d{3}$/;

describe("isolate cache over KV", () => {
  const worker = suiteWorker({ ttlSeconds: TTL_SECONDS }, async () => {
    assert.equal((await publish(worker.base, fixtureSnapshot(1))).status, 200);
  });

  test("a corrupt snapshot written to KV keeps the last good one in service", async () => {
    assert.equal(await servedVersion(worker.base), 1);
    await writeKv(worker.kv, '{"environment":"production","version":2,"flags":[{', 2);
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 1);
    // And again after the next re-check: the corrupt body is never adopted.
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 1);
    const health = await get(worker.base, "/healthz");
    assert.deepEqual(health.json.snapshots, [{ environment: "production", version: 1 }]);
  });

  test("a snapshot of another environment under this key is ignored", async () => {
    await writeKv(worker.kv, fixtureSnapshot(3, { environment: "staging" }), 3);
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 1);
  });

  test("a garbage version key falls back to the snapshot's own version", async () => {
    await writeKv(worker.kv, fixtureSnapshot(4), "not-a-number");
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 4);
  });

  test("a newer snapshot written to KV reaches the isolate after the TTL", async () => {
    await writeKv(worker.kv, fixtureSnapshot(5), 5);
    await pastTtl();
    const loading = await get(worker.base, FLAG);
    assert.equal(loading.headers.get("x-edgeflags-snapshot-version"), "5");
    // The request that loaded it reports the KV wait, the parse and compile times, and its total.
    assert.match(loading.headers.get("server-timing"), SERVER_TIMING_OF_A_LOAD);
    await writeKv(worker.kv, fixtureSnapshot(6), 6);
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 6);
  });

  test("an older snapshot in KV (a lagging replica) never rolls the isolate back", async () => {
    await writeKv(worker.kv, fixtureSnapshot(2), 2);
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 6);
  });

  test("a deleted snapshot keeps the last good one in service", async () => {
    await worker.kv.delete("snapshot:production");
    await worker.kv.delete("version:production");
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 6);
  });

  test("publishing after a direct KV write checks the stored version", async () => {
    await writeKv(worker.kv, fixtureSnapshot(8), 8);
    const stale = await publish(worker.base, fixtureSnapshot(7));
    assert.equal(stale.status, 409);
    assert.equal(stale.body.storedVersion, 8);
  });
});

describe("damage inside a stored snapshot's JSON", () => {
  // Packs snapshots the way a publish stores them, so a test can damage real packed bytes.
  const packer = suiteWorker({});
  const worker = suiteWorker({ ttlSeconds: TTL_SECONDS }, async () => {
    assert.equal((await publish(worker.base, fixtureSnapshot(1))).status, 200);
  });

  test("is caught by the checksum over the whole value, and the last good snapshot keeps serving", async () => {
    assert.equal((await publish(packer.base, fixtureSnapshot(2))).status, 200);
    const packed = Buffer.from(await packer.kv.get("snapshot:production", "arrayBuffer"));
    const directory = packed.readUInt32LE(8);
    // A variation's value: "dark" becomes "dbrk", still valid JSON, a wrong answer if served.
    const at = packed.indexOf('"value":"dark"', directory) + '"value":"d'.length;
    assert.ok(at > directory);
    const damaged = Buffer.from(packed);
    damaged[at] = "b".charCodeAt(0);
    const arrayBuffer = (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
    await worker.kv.put("snapshot:production", arrayBuffer(damaged));
    await worker.kv.put("version:production", "2");
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 1);
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 1);
    // The same bytes undamaged are adopted: the refusal was the checksum's.
    await worker.kv.put("snapshot:production", arrayBuffer(packed));
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 2);
  });
});

describe("an isolate within its TTL", () => {
  const worker = suiteWorker({ ttlSeconds: 3600 });

  test("does not see a newer snapshot written to KV before the TTL", async () => {
    await writeKv(worker.kv, fixtureSnapshot(5), 5);
    const loading = await get(worker.base, FLAG);
    assert.equal(loading.headers.get("x-edgeflags-snapshot-version"), "5");
    assert.match(loading.headers.get("server-timing"), SERVER_TIMING_OF_A_LOAD);
    await writeKv(worker.kv, fixtureSnapshot(6), 6);
    // Right after a check the cached copy is served without asking KV.
    const cached = await get(worker.base, FLAG);
    assert.equal(cached.headers.get("x-edgeflags-snapshot-version"), "5");
    assert.equal(cached.headers.get("server-timing"), null);
  });
});

describe("a fresh isolate with only corrupt data in KV", () => {
  const worker = suiteWorker({ ttlSeconds: TTL_SECONDS }, async () => {
    await writeKv(worker.kv, "not json at all", 1);
  });

  test("answers the fallback with a clear code, and recovers once a good snapshot lands", async () => {
    const single = await get(worker.base, FLAG);
    assert.equal(single.status, 503);
    assert.equal(single.json.errorCode, "GENERAL");
    assert.equal(single.json.value, null);
    const bulk = await fetch(`${worker.base}/ofrep/v1/evaluate/flags`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ context: { environment: "production" } }),
    });
    assert.equal(bulk.status, 500);
    assert.equal((await bulk.json()).errorCode, "GENERAL");
    await writeKv(worker.kv, fixtureSnapshot(2), 2);
    await pastTtl();
    assert.equal(await servedVersion(worker.base), 2);
  });
});
