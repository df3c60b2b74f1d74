// Differential test: the compiled worker (wasm32, under workerd) must answer exactly what
// evaluator-core and evaluation-api answer natively, for a generated 1,000-flag snapshot and
// 1,000 generated contexts. The native side is evaluation-api/examples/differential.rs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";

import { ROOT, publish, startWorker } from "./harness.mjs";

const FLAGS = 1000;
const SEGMENTS = 200;
const CONTEXTS = 1000;
const PARALLEL = 8;

function differential(...args) {
  return execFileSync("cargo", ["run", "-q", "-p", "evaluation-api", "--example", "differential", "--", ...args], {
    cwd: ROOT,
    maxBuffer: 256 * 1024 * 1024,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

let worker;
// A second isolate that never saw the publish: it reads the packed snapshot from its KV and,
// with no limit on cached subsets, compiles just the flags each single-flag request names.
let cold;
let reference;
before(async () => {
  reference = JSON.parse(differential("cases", String(FLAGS), String(SEGMENTS), String(CONTEXTS)));
  // The native reference answers bulk requests without `eventStreams` (whose tokens depend on
  // the secret and the hour), so the workers compared with it serve no streams.
  worker = await startWorker({ vars: { EVENT_STREAMS: "false" } });
  const published = await publish(worker.base, reference.snapshot);
  assert.equal(published.status, 200, JSON.stringify(published.body));
  cold = await startWorker({ ttlSeconds: 3600, vars: { SUBSET_CACHE_LIMIT: "1000000", EVENT_STREAMS: "false" } });
  for (const key of ["snapshot:production", "version:production"]) {
    await cold.kv.put(key, await worker.kv.get(key, "arrayBuffer"));
  }
});
after(async () => {
  await worker?.close();
  await cold?.close();
});

/** Runs `task` over `items` with at most PARALLEL in flight. */
async function pool(items, task) {
  let next = 0;
  const lanes = Array.from({ length: PARALLEL }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await task(item);
    }
  });
  await Promise.all(lanes);
}

test("REST API batch answers equal evaluator-core's native evaluate_all byte for byte", async () => {
  assert.equal(reference.cases.length, CONTEXTS);
  const mismatches = [];
  await pool(reference.cases, async (c) => {
    const response = await fetch(`${worker.base}/api/v1/flags/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(c.restBatchRequest),
    });
    const text = await response.text();
    if (response.status !== 200 || sha256(text) !== c.restBatchSha256) mismatches.push({ n: c.n, text });
  });
  if (mismatches.length > 0) {
    // Show the first differing flag of the first mismatching context.
    const { n, text } = mismatches[0];
    const expected = JSON.parse(differential("dump", String(FLAGS), String(SEGMENTS), String(n))).flags;
    const actual = JSON.parse(text).flags ?? [];
    const i = expected.findIndex((e, k) => JSON.stringify(e) !== JSON.stringify(actual[k]));
    assert.deepEqual(actual[i], expected[i], `${mismatches.length} contexts differ; first: context ${n}, flag #${i}`);
    assert.fail(`${mismatches.length} contexts differ in serialisation only; first: context ${n}`);
  }
});

test("REST API GET, OFREP single and OFREP bulk answers equal evaluation-api's native answers", async () => {
  const requests = reference.cases.flatMap((c) => c.requests);
  assert.ok(requests.length >= 3 * CONTEXTS);
  const mismatches = [];
  await pool(requests, async (r) => {
    const url = `${worker.base}${r.path}${r.query ? `?${r.query}` : ""}`;
    const init = r.method === "GET" ? {} : { method: r.method, headers: { "content-type": "application/json" }, body: r.body };
    const response = await fetch(url, init);
    const text = await response.text();
    const actual = {
      status: response.status,
      body: r.responseBody === null ? sha256(text) : text,
      etag: response.headers.get("etag"),
    };
    const expected = { status: r.status, body: r.responseBody ?? r.responseBodySha256, etag: r.etag };
    if (JSON.stringify(actual) !== JSON.stringify(expected)) mismatches.push({ request: `${r.method} ${url}`, actual, expected });
  });
  assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} of ${requests.length} requests differ`);
});

/** Deterministic pseudo-random picks (a 32-bit LCG), so a failure reproduces. */
function picker(seed) {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
}

test("an isolate compiling only the requested flags from the packed KV snapshot answers like the whole snapshot", async () => {
  const keys = JSON.parse(reference.snapshot).flags.map((f) => f.flagKey);
  const pick = picker(20261124);
  // Single-flag routes first: until a request needs every flag, the cold isolate serves subsets.
  const single = reference.cases.flatMap((c) => c.requests).filter((r) => !r.path.endsWith("/flags"));
  const batches = reference.cases.slice(0, 300).map((c) => {
    const flagKeys = Array.from({ length: 1 + pick(8) }, () => keys[pick(keys.length)]);
    if (pick(10) === 0) flagKeys.push("no-such-flag");
    return JSON.stringify({ ...c.restBatchRequest, flagKeys });
  });
  const mismatches = [];
  const compare = async (path, init) => {
    const [a, b] = await Promise.all([fetch(worker.base + path, init), fetch(cold.base + path, init)]);
    const [whole, subset] = [await a.text(), await b.text()];
    if (a.status !== b.status || whole !== subset || a.headers.get("etag") !== b.headers.get("etag")) {
      mismatches.push({ path, init: init?.body, whole: `${a.status} ${whole}`, subset: `${b.status} ${subset}` });
    }
    return b;
  };
  let compiledSubsets = 0;
  await pool(single, async (r) => {
    const init = r.method === "GET" ? undefined : { method: r.method, headers: { "content-type": "application/json" }, body: r.body };
    const response = await compare(`${r.path}${r.query ? `?${r.query}` : ""}`, init);
    if (/compile;dur/.test(response.headers.get("server-timing") ?? "")) compiledSubsets++;
  });
  await pool(batches, (body) => compare("/api/v1/flags/batch", { method: "POST", headers: { "content-type": "application/json" }, body }));
  assert.deepEqual(mismatches.slice(0, 3), [], `${mismatches.length} answers differ`);
  // Proof that the subset path ran: one compile per distinct flag asked for, not one in all.
  assert.ok(compiledSubsets > 100, `only ${compiledSubsets} requests compiled a subset`);
  const health = await (await fetch(`${cold.base}/healthz`)).json();
  assert.deepEqual(health.snapshots, [{ environment: "production", version: JSON.parse(reference.snapshot).version }]);
});
