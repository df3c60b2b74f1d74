// Every evaluation route and error of the compiled worker, over HTTP on 127.0.0.1.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CLIENT_KEY, fixtureSnapshot, get, post, publish, read, sha256hex, suiteWorker } from "./harness.mjs";

const ENV = "environment=production";

function assertApiHeaders(response, { json = true } = {}) {
  assert.equal(response.headers.get("cache-control"), "private, no-store");
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  if (json) assert.equal(response.headers.get("content-type"), "application/json");
}

describe("evaluation API without client keys", () => {
  const worker = suiteWorker({}, async () => {
    const published = await publish(worker.base, fixtureSnapshot(3));
    assert.equal(published.status, 200, JSON.stringify(published.body));
  });

  test("GET /healthz reports the snapshots this isolate holds", async () => {
    await get(worker.base, `/api/v1/flags/static-on?${ENV}`);
    const response = await get(worker.base, "/healthz");
    assert.equal(response.status, 200);
    assert.deepEqual(response.json, { status: "ok", snapshotsHeld: 1, snapshots: [{ environment: "production", version: 3 }] });
  });

  test("GET /internal/constant answers a constant with the API's headers", async () => {
    const response = await get(worker.base, "/internal/constant");
    assert.equal(response.status, 200);
    assertApiHeaders(response);
    assert.deepEqual(response.json, { ok: true });
  });

  test("REST API GET evaluates with query parameters as attributes", async () => {
    const response = await get(worker.base, `/api/v1/flags/theme?userId=u9&${ENV}&plan=pro`);
    assert.equal(response.status, 200);
    assertApiHeaders(response);
    assert.equal(response.headers.get("x-edgeflags-snapshot-version"), "3");
    assert.deepEqual(response.json, {
      flagKey: "theme",
      enabled: true,
      value: "dark",
      variant: "dark",
      reason: "rule-match",
      version: 5,
      openFeatureReason: "TARGETING_MATCH",
    });
  });

  test("REST API GET of an unknown flag is 404 FLAG_NOT_FOUND", async () => {
    const response = await get(worker.base, `/api/v1/flags/nope?${ENV}`);
    assert.equal(response.status, 404);
    assertApiHeaders(response);
    assert.deepEqual(response.json, {
      error: {
        code: "FLAG_NOT_FOUND",
        message: 'flag "nope" does not exist in environment "production"',
        field: "flagKey",
      },
    });
  });

  test("REST API GET errors name the field", async () => {
    const cases = [
      [`/api/v1/flags/bad%20key?${ENV}`, 400, "INVALID_FLAG_KEY", "flagKey"],
      ["/api/v1/flags/static-on?userId=u1", 400, "MISSING_ENVIRONMENT", "environment"],
      ["/api/v1/flags/static-on?environment=a.b", 400, "INVALID_ENVIRONMENT", "environment"],
      [`/api/v1/flags/static-on?${ENV}&plan=%zz`, 400, "INVALID_QUERY", "plan"],
    ];
    for (const [url, status, code, field] of cases) {
      const response = await get(worker.base, url);
      assert.equal(response.status, status, url);
      assertApiHeaders(response);
      assert.equal(response.json.error.code, code, url);
      assert.equal(response.json.error.field, field, url);
    }
  });

  test("an environment that was never published gets the fallback, not a 500", async () => {
    const single = await get(worker.base, "/api/v1/flags/static-on?environment=staging");
    assert.equal(single.status, 503);
    assertApiHeaders(single);
    assert.deepEqual(single.json, {
      flagKey: "static-on",
      enabled: false,
      value: null,
      reason: "error",
      openFeatureReason: "ERROR",
      errorCode: "GENERAL",
      errorMessage: 'no flag snapshot is available for environment "staging"; serving the fallback',
    });
    const ofrep = await post(worker.base, "/ofrep/v1/evaluate/flags/static-on", { context: { environment: "staging" } });
    assert.equal(ofrep.status, 500);
    assertApiHeaders(ofrep);
    assert.equal(ofrep.json.errorCode, "GENERAL");
    assert.equal(ofrep.json.key, "static-on");
  });

  test("REST API batch evaluates the requested flags in order", async () => {
    const response = await post(worker.base, "/api/v1/flags/batch", {
      userId: "u1",
      environment: "production",
      flagKeys: ["targeted", "nope", "kill"],
      context: { country: "US" },
    });
    assert.equal(response.status, 200);
    assertApiHeaders(response);
    assert.deepEqual(
      response.json.flags.map((f) => [f.flagKey, f.reason, f.errorCode ?? null]),
      [
        ["targeted", "user-targeted", null],
        ["nope", "error", "FLAG_NOT_FOUND"],
        ["kill", "flag-disabled", null],
      ],
    );
  });

  test("REST API batch without flagKeys evaluates every flag in snapshot order", async () => {
    const response = await post(worker.base, "/api/v1/flags/batch", { userId: "u1", environment: "production" });
    assert.deepEqual(
      response.json.flags.map((f) => f.flagKey),
      ["static-on", "kill", "targeted", "rollout", "theme", "checkout", "page-size"],
    );
  });

  test("REST API batch body errors name the field", async () => {
    const cases = [
      ["{nope", "INVALID_JSON", "body"],
      [{ environment: "production", flagKeys: "a" }, "INVALID_FIELD", "flagKeys"],
      [{ environment: "production", flagKeys: ["a", 2] }, "INVALID_FIELD", "flagKeys[1]"],
      [{ environment: "production", context: { targetingKey: 1 } }, "INVALID_FIELD", "context.targetingKey"],
    ];
    for (const [body, code, field] of cases) {
      const response = await post(worker.base, "/api/v1/flags/batch", body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.json.error.code, code);
      assert.equal(response.json.error.field, field);
    }
  });

  test("OFREP single answers key, value, reason, variant and metadata", async () => {
    const response = await post(worker.base, "/ofrep/v1/evaluate/flags/checkout", {
      context: { targetingKey: "u1", environment: "production", country: "US" },
    });
    assert.equal(response.status, 200);
    assertApiHeaders(response);
    assert.deepEqual(response.json, {
      key: "checkout",
      value: { flow: "v2", steps: ["cart", "pay"] },
      reason: "TARGETING_MATCH",
      variant: "v2",
      metadata: { flagVersion: 6, reasonDetail: "country-targeted" },
    });
  });

  test("OFREP single errors follow the OFREP schema", async () => {
    const cases = [
      ["/ofrep/v1/evaluate/flags/nope", { context: { environment: "production" } }, 404, "FLAG_NOT_FOUND"],
      ["/ofrep/v1/evaluate/flags/rollout", { context: { environment: "production" } }, 400, "TARGETING_KEY_MISSING"],
      ["/ofrep/v1/evaluate/flags/static-on", "{nope", 400, "PARSE_ERROR"],
      ["/ofrep/v1/evaluate/flags/static-on", {}, 400, "INVALID_CONTEXT"],
      ["/ofrep/v1/evaluate/flags/static-on", { context: { targetingKey: 7, environment: "production" } }, 400, "INVALID_CONTEXT"],
      ["/ofrep/v1/evaluate/flags/static-on", { context: { targetingKey: "u1" } }, 400, "INVALID_CONTEXT"],
    ];
    for (const [url, body, status, errorCode] of cases) {
      const response = await post(worker.base, url, body);
      assert.equal(response.status, status, `${url} ${JSON.stringify(body)}`);
      assertApiHeaders(response);
      assert.equal(response.json.errorCode, errorCode);
      assert.equal(response.json.key, url.split("/").pop());
      assert.equal(typeof response.json.errorDetails, "string");
    }
  });

  test("OFREP bulk lists every flag with failures inline and set metadata", async () => {
    const response = await post(worker.base, "/ofrep/v1/evaluate/flags", {
      context: { environment: "production", plan: "pro" },
    });
    assert.equal(response.status, 200);
    assertApiHeaders(response);
    assert.deepEqual(response.json.metadata, { environment: "production", snapshotVersion: 3 });
    const byKey = Object.fromEntries(response.json.flags.map((f) => [f.key, f]));
    assert.equal(byKey["page-size"].value, 50);
    assert.equal(byKey.rollout.errorCode, "TARGETING_KEY_MISSING");
    assert.equal(byKey.kill.reason, "DISABLED");
    assert.match(response.headers.get("etag"), /^"[0-9a-f]{32}"$/);
  });

  test("bulk ETag: 304 on a match, a new tag when the context changes", async () => {
    const context = { environment: "production", targetingKey: "u1", plan: "free" };
    const first = await post(worker.base, "/ofrep/v1/evaluate/flags", { context });
    const etag = first.headers.get("etag");
    const again = await post(worker.base, "/ofrep/v1/evaluate/flags", { context }, { "If-None-Match": etag });
    assert.equal(again.status, 304);
    assert.equal(again.text, "");
    assert.equal(again.headers.get("etag"), etag);
    assert.equal(again.headers.get("cache-control"), "private, no-store");
    // Member order does not matter, the values do.
    const reordered = await post(worker.base, "/ofrep/v1/evaluate/flags", {
      context: { plan: "free", targetingKey: "u1", environment: "production" },
    });
    assert.equal(reordered.headers.get("etag"), etag);
    const changed = await post(
      worker.base,
      "/ofrep/v1/evaluate/flags",
      { context: { ...context, plan: "pro" } },
      { "If-None-Match": etag },
    );
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get("etag"), etag);
    assert.equal(changed.json.flags.find((f) => f.key === "theme").value, "dark");
  });

  test("bulk ETag changes when a new snapshot version is published", async () => {
    const context = { environment: "production", targetingKey: "u7" };
    const before = await post(worker.base, "/ofrep/v1/evaluate/flags", { context });
    const published = await publish(worker.base, fixtureSnapshot(4));
    assert.equal(published.status, 200);
    const afterPublish = await post(
      worker.base,
      "/ofrep/v1/evaluate/flags",
      { context },
      { "If-None-Match": before.headers.get("etag") },
    );
    assert.equal(afterPublish.status, 200);
    assert.equal(afterPublish.json.metadata.snapshotVersion, 4);
    assert.notEqual(afterPublish.headers.get("etag"), before.headers.get("etag"));
  });

  test("CORS preflight answers 204 with the allowed methods and headers", async () => {
    const response = await read(
      await fetch(`${worker.base}/ofrep/v1/evaluate/flags/static-on`, {
        method: "OPTIONS",
        headers: { Origin: "https://app.example.com", "Access-Control-Request-Method": "POST" },
      }),
    );
    assert.equal(response.status, 204);
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    assert.equal(response.headers.get("access-control-allow-methods"), "POST, OPTIONS");
    assert.match(response.headers.get("access-control-allow-headers"), /Authorization/);
  });

  test("unknown routes are 404 and wrong methods 405 with Allow", async () => {
    const unknown = await get(worker.base, "/nope");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, "NOT_FOUND");
    const wrong = await post(worker.base, "/api/v1/flags/static-on", {});
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, OPTIONS");
    const health = await post(worker.base, "/healthz", {});
    assert.equal(health.status, 405);
    assert.equal(health.json.code, "METHOD_NOT_ALLOWED");
    const publishGet = await get(worker.base, "/internal/snapshots/production");
    assert.equal(publishGet.status, 405);
    assert.equal(publishGet.headers.get("allow"), "PUT");
  });

  test("oversized evaluation bodies are 413 with a clear code, declared or streamed", async () => {
    const big = JSON.stringify({ environment: "production", context: { blob: "x".repeat(70 * 1024) } });
    const declared = await post(worker.base, "/api/v1/flags/batch", big);
    assert.equal(declared.status, 413);
    assert.equal(declared.json.error.code, "PAYLOAD_TOO_LARGE");
    // No Content-Length: the worker reads the body, then refuses it.
    const streamed = await read(
      await fetch(`${worker.base}/ofrep/v1/evaluate/flags`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new Blob([big]).stream(),
        duplex: "half",
      }),
    );
    assert.equal(streamed.status, 413);
    assert.equal(streamed.json.errorCode, "GENERAL");
    assert.match(streamed.json.errorDetails, /limit is 65536 bytes/);
  });
});

describe("evaluation API with client keys required", () => {
  const worker = suiteWorker({ requireClientKeys: true }, async () => {
    assert.equal((await publish(worker.base, fixtureSnapshot(1))).status, 200);
  });

  test("an environment that does not exist answers exactly like a wrong key, and costs no cache entry", async () => {
    const wrong = "efk.production.00000000000000000000000000000000";
    const routes = [
      (key) => get(worker.base, "/api/v1/flags/static-on", { "x-client-key": key }),
      (key) => post(worker.base, "/api/v1/flags/batch", {}, { authorization: `Bearer ${key}` }),
      (key) => post(worker.base, "/ofrep/v1/evaluate/flags/static-on", { context: {} }, { "x-api-key": key }),
      (key) => post(worker.base, "/ofrep/v1/evaluate/flags", { context: {} }, { "x-api-key": key }),
    ];
    const shape = (response) => ({
      status: response.status,
      text: response.text,
      headers: [...response.headers].filter(([name]) => name !== "date"),
    });
    for (const route of routes) {
      const expected = shape(await route(wrong));
      assert.equal(expected.status, 401);
      for (let i = 0; i < 50; i++) {
        assert.deepEqual(shape(await route(`efk.probe-${i}.0123456789abcdef0123456789abcdef`)), expected);
      }
    }
    // 200 made-up environments later the isolate holds what it held, and /healthz names none.
    const health = await get(worker.base, "/healthz");
    assert.deepEqual(health.json, { status: "ok", snapshotsHeld: 1 });
  });

  test("a publish stores the environment index's metadata with the snapshot", async () => {
    const { keys } = await worker.kv.list({ prefix: "snapshot:" });
    assert.deepEqual(keys.map(({ name, metadata }) => ({ name, metadata })), [
      { name: "snapshot:production", metadata: { version: 1, keys: [sha256hex(CLIENT_KEY).slice(0, 16)] } },
    ]);
  });

  test("no key is 401 with a REST API error body", async () => {
    const response = await get(worker.base, `/api/v1/flags/static-on?${ENV}`);
    assert.equal(response.status, 401);
    assert.equal(response.headers.get("www-authenticate"), "Bearer");
    assert.equal(response.json.error.code, "MISSING_CLIENT_KEY");
  });

  test("a valid key selects its environment, in any of the three headers", async () => {
    for (const headers of [
      { Authorization: `Bearer ${CLIENT_KEY}` },
      { "X-Client-Key": CLIENT_KEY },
      { "X-API-Key": CLIENT_KEY },
    ]) {
      const response = await get(worker.base, "/api/v1/flags/static-on?userId=u1", headers);
      assert.equal(response.status, 200, JSON.stringify(headers));
      assert.equal(response.json.value, true);
    }
  });

  test("an unknown key is 401, a key of another environment 403", async () => {
    const unknown = await get(worker.base, "/api/v1/flags/static-on", {
      Authorization: "Bearer efk.production.ffffffffffffffffffffffffffffffff",
    });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json.error.code, "INVALID_CLIENT_KEY");
    const other = await get(worker.base, "/api/v1/flags/static-on?environment=staging", {
      Authorization: `Bearer ${CLIENT_KEY}`,
    });
    assert.equal(other.status, 403);
    assert.equal(other.json.error.code, "FORBIDDEN_ENVIRONMENT");
  });

  test("OFREP 401 has no body", async () => {
    const response = await post(worker.base, "/ofrep/v1/evaluate/flags/static-on", { context: {} });
    assert.equal(response.status, 401);
    assert.equal(response.text, "");
    assert.equal(response.headers.get("content-type"), null);
  });
});

describe("a deployment without its KV binding", () => {
  const worker = suiteWorker({ kv: false });

  test("evaluation serves the fallback and publishing says storage is unavailable", async () => {
    const evaluation = await get(worker.base, `/api/v1/flags/static-on?${ENV}`);
    assert.equal(evaluation.status, 503);
    assert.equal(evaluation.json.errorCode, "GENERAL");
    const published = await publish(worker.base, fixtureSnapshot(1));
    assert.equal(published.status, 503);
    assert.equal(published.body.code, "STORAGE_UNAVAILABLE");
  });
});
