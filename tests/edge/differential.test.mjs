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
let reference;
before(async () => {
  reference = JSON.parse(differential("cases", String(FLAGS), String(SEGMENTS), String(CONTEXTS)));
  worker = await startWorker();
  const published = await publish(worker.base, reference.snapshot);
  assert.equal(published.status, 200, JSON.stringify(published.body));
});
after(() => worker?.close());

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

test("seed batch answers equal evaluator-core's native evaluate_all byte for byte", async () => {
  assert.equal(reference.cases.length, CONTEXTS);
  const mismatches = [];
  await pool(reference.cases, async (c) => {
    const response = await fetch(`${worker.base}/api/v1/flags/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(c.seedBatchRequest),
    });
    const text = await response.text();
    if (response.status !== 200 || sha256(text) !== c.seedBatchSha256) mismatches.push({ n: c.n, text });
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

test("seed GET, OFREP single and OFREP bulk answers equal evaluation-api's native answers", async () => {
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
