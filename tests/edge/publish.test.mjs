// PUT /internal/snapshots/{environment}: signature, timestamp, validation and version checks
// (the publish protocol: docs/architecture.md, "Publish protocol"; crate publish-protocol).
import assert from "node:assert/strict";
import http from "node:http";
import { describe, test } from "node:test";

import { setTimeout as sleep } from "node:timers/promises";

import { fixtureSnapshot, get, publish, signatureHeaders, storedSnapshot, suiteWorker } from "./harness.mjs";

async function put(base, environment, body, headers) {
  const response = await fetch(`${base}/internal/snapshots/${environment}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

describe("publishing snapshots", () => {
  const worker = suiteWorker();

  test("a signed valid snapshot is stored (packed, with the JSON verbatim; version key) and served at once", async () => {
    const snapshot = JSON.stringify(fixtureSnapshot(5));
    const response = await publish(worker.base, snapshot);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.deepEqual(response.body, { environment: "production", version: 5, stored: true });
    const stored = await storedSnapshot(worker.kv, "production");
    assert.ok(stored.packed, "stored in the packed layout");
    assert.equal(stored.version, 5);
    assert.equal(stored.json, snapshot, "the JSON inside is byte for byte the published one");
    assert.equal(await worker.kv.get("version:production"), "5");
    const evaluated = await get(worker.base, "/api/v1/flags/static-on?environment=production");
    assert.equal(evaluated.headers.get("x-edgeflags-snapshot-version"), "5");
  });

  test("the same version again is an idempotent 200 with stored:false", async () => {
    const response = await publish(worker.base, fixtureSnapshot(5));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { environment: "production", version: 5, stored: false });
  });

  test("an older version is 409 STALE_VERSION and never overwrites the newer one", async () => {
    const response = await publish(worker.base, fixtureSnapshot(4));
    assert.equal(response.status, 409);
    assert.equal(response.body.code, "STALE_VERSION");
    assert.equal(response.body.storedVersion, 5);
    assert.equal(typeof response.body.message, "string");
    assert.equal(await worker.kv.get("version:production"), "5");
    assert.equal((await storedSnapshot(worker.kv, "production")).version, 5);
  });

  test("a newer version replaces the stored one", async () => {
    const response = await publish(worker.base, fixtureSnapshot(6));
    assert.equal(response.status, 200);
    assert.equal(response.body.stored, true);
    const evaluated = await get(worker.base, "/api/v1/flags/static-on?environment=production");
    assert.equal(evaluated.headers.get("x-edgeflags-snapshot-version"), "6");
  });

  test("bad, missing, expired or tampered signatures are 401 INVALID_SIGNATURE", async () => {
    const body = JSON.stringify(fixtureSnapshot(9));
    const now = Math.floor(Date.now() / 1000);
    const good = signatureHeaders(body);
    const cases = [
      ["no headers", {}],
      ["wrong secret", signatureHeaders(body, { secret: "other" })],
      ["timestamp 301 s old", signatureHeaders(body, { timestamp: now - 301 })],
      ["timestamp 301 s ahead", signatureHeaders(body, { timestamp: now + 301 })],
      ["signature of another body", signatureHeaders(body.replace('"version":9', '"version":8'))],
      ["timestamp changed after signing", { ...good, "X-Edgeflags-Timestamp": String(now - 1) }],
      ["no v1= prefix", { ...good, "X-Edgeflags-Signature": good["X-Edgeflags-Signature"].slice(3) }],
      ["timestamp not a number", { ...good, "X-Edgeflags-Timestamp": "yesterday" }],
    ];
    for (const [name, headers] of cases) {
      const response = await put(worker.base, "production", body, headers);
      assert.equal(response.status, 401, name);
      assert.equal(response.body.code, "INVALID_SIGNATURE", name);
      assert.match(response.body.message, /^signature rejected: /, name);
    }
    assert.equal(await worker.kv.get("version:production"), "6");
  });

  test("a signature within 300 s either way is accepted", async () => {
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await publish(worker.base, fixtureSnapshot(10), { timestamp: now - 290 })).status, 200);
    assert.equal((await publish(worker.base, fixtureSnapshot(11), { timestamp: now + 290 })).status, 200);
  });

  test("an invalid snapshot is 400 INVALID_SNAPSHOT listing every problem with its path", async () => {
    const snapshot = fixtureSnapshot(20, {
      extraFlags: [
        { flagKey: "bad key", enabled: true },
        {
          flagKey: "bad-rule",
          enabled: true,
          targetingRules: { rules: [{ clauses: [{ attribute: "plan", operator: "regexx", values: ["x"] }], variation: "on" }] },
        },
      ],
    });
    const response = await publish(worker.base, snapshot);
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "INVALID_SNAPSHOT");
    assert.ok(response.body.errors.some((e) => e.startsWith("flags[7].flagKey: ")), response.body.errors.join("\n"));
    assert.ok(
      response.body.errors.some((e) => e.startsWith("flags[8].targetingRules.rules[0].clauses[0].operator: ")),
      response.body.errors.join("\n"),
    );
    assert.equal(await worker.kv.get("version:production"), "11");
  });

  test("a body that is not a snapshot is 400 INVALID_SNAPSHOT naming the body", async () => {
    for (const body of ["{nope", '{"environment":"production"}', "[]"]) {
      const response = await put(worker.base, "production", body, signatureHeaders(body));
      assert.equal(response.status, 400, body);
      assert.equal(response.body.code, "INVALID_SNAPSHOT");
      assert.match(response.body.errors[0], /^body: /);
    }
  });

  test("a snapshot of another environment than the path is 400 ENVIRONMENT_MISMATCH", async () => {
    const response = await publish(worker.base, fixtureSnapshot(30, { environment: "staging" }), {
      environment: "production",
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "ENVIRONMENT_MISMATCH");
  });

  test("an invalid environment key in the path is 400", async () => {
    const body = JSON.stringify(fixtureSnapshot(1, { environment: "a.b" }));
    const response = await put(worker.base, "a.b", body, signatureHeaders(body));
    assert.equal(response.status, 400);
    assert.equal(response.body.code, "INVALID_ENVIRONMENT");
  });

  test("environments are independent", async () => {
    const response = await publish(worker.base, fixtureSnapshot(2, { environment: "staging" }));
    assert.equal(response.status, 200);
    assert.equal(await worker.kv.get("version:staging"), "2");
    const evaluated = await get(worker.base, "/api/v1/flags/static-on?environment=staging");
    assert.equal(evaluated.headers.get("x-edgeflags-snapshot-version"), "2");
  });

  test("a snapshot over the KV value limit is 413 before it is read", async () => {
    // Declares the size but sends only the first bytes: the worker must answer from the
    // Content-Length alone (sending all 25 MiB races the early answer and the connection reset).
    const length = 25 * 1024 * 1024 + 1;
    const { status, body } = await new Promise((resolve, reject) => {
      const request = http.request(`${worker.base}/internal/snapshots/production`, {
        method: "PUT",
        headers: { "content-type": "application/json", "content-length": String(length), ...signatureHeaders("{}") },
      });
      request.on("response", (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk) => (text += chunk));
        response.on("end", () => {
          request.destroy();
          resolve({ status: response.statusCode, body: JSON.parse(text) });
        });
      });
      request.on("error", reject);
      request.write("x".repeat(1024));
    });
    assert.equal(status, 413);
    assert.equal(body.code, "PAYLOAD_TOO_LARGE");
  });
});

describe("publishing without PUBLISH_SECRET", () => {
  const worker = suiteWorker({ publishSecret: null });

  test("is refused with 503 PUBLISH_NOT_CONFIGURED", async () => {
    const response = await publish(worker.base, fixtureSnapshot(1));
    assert.equal(response.status, 503);
    assert.equal(response.body.code, "PUBLISH_NOT_CONFIGURED");
    assert.equal(await worker.kv.get("version:production"), null);
  });
});

describe("publishing with a PUBLISH_SECRET shorter than 32 bytes", () => {
  const SHORT = "test-publish-secret"; // 19 bytes
  const worker = suiteWorker({ publishSecret: SHORT });

  test("is refused with 503 PUBLISH_NOT_CONFIGURED naming the secret and the minimum, and logged", async () => {
    // Correctly signed with the short secret: the length alone refuses it.
    const response = await publish(worker.base, fixtureSnapshot(1), { secret: SHORT });
    assert.equal(response.status, 503);
    assert.equal(response.body.code, "PUBLISH_NOT_CONFIGURED");
    assert.equal(
      response.body.message,
      "publishing is disabled: the secret PUBLISH_SECRET is 19 bytes; it must be at least 32 bytes",
    );
    assert.equal(await worker.kv.get("version:production"), null);
    const logged = /PUBLISH_SECRET is 19 bytes; it must be at least 32 bytes/;
    for (let i = 0; i < 50 && !logged.test(worker.logs()); i++) await sleep(100);
    assert.match(worker.logs(), logged);
  });
});
