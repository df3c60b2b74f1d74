// GET /sdk/v1/snapshot at the edge (docs/sdk.md): only a server key of the environment gets its
// snapshot, byte for byte as published, gzipped by the runtime when asked, revalidated with its
// ETag, with the event stream that announces the next version; client, unknown and revoked keys
// get the documented refusals, exactly as the origin renders them (evaluation-api).
import assert from "node:assert/strict";
import http from "node:http";
import { describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";

import { CLIENT_KEY, fixtureSnapshot, get, publish, sha256hex, suiteWorker } from "./harness.mjs";

const SERVER_KEY = "efs.production.00112233445566778899aabbccddeeff";
const OTHER_SERVER_KEY = "efs.production.ffeeddccbbaa99887766554433221100";

function snapshotWith(version, keys) {
  return { ...fixtureSnapshot(version), clientKeys: keys };
}

const bothKeys = [
  { name: "web", sha256: sha256hex(CLIENT_KEY) },
  { name: "backend", sha256: sha256hex(SERVER_KEY), kind: "server" },
];

/**
 * A GET that reports the body as sent: no automatic decompression (fetch would undo gzip). It
 * asks for `identity` unless told otherwise: without an Accept-Encoding of the client's,
 * Miniflare's proxy in front of workerd asks for gzip itself.
 */
function rawGet(base, pathAndQuery, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.get(base + pathAndQuery, { headers: { "accept-encoding": "identity", ...headers } }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on("error", reject);
    request.setTimeout(10_000, () => request.destroy(new Error("timed out")));
  });
}

const bearer = (key) => ({ authorization: `Bearer ${key}` });

describe("the snapshot route, keys required", () => {
  const worker = suiteWorker({ requireClientKeys: true });
  let published;

  test("a server key gets the published JSON byte for byte, with its ETag and version", async () => {
    published = JSON.stringify(snapshotWith(3, bothKeys));
    assert.equal((await publish(worker.base, published)).status, 200);
    const answer = await rawGet(worker.base, "/sdk/v1/snapshot", bearer(SERVER_KEY));
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(answer.body.toString(), published);
    assert.equal(answer.headers["content-type"], "application/json");
    assert.equal(answer.headers["content-encoding"], undefined);
    assert.equal(answer.headers["x-edgeflags-snapshot-version"], "3");
    assert.equal(answer.headers["cache-control"], "private, no-cache");
    assert.equal(answer.headers["access-control-allow-origin"], undefined);
    const digest = createHash("sha256").update(published).digest("hex").slice(0, 16);
    assert.equal(answer.headers.etag, `"3-${digest}"`);
  });

  test("with Accept-Encoding: gzip the runtime sends it gzipped, smaller, decoding to the same bytes", async () => {
    const answer = await rawGet(worker.base, "/sdk/v1/snapshot", { ...bearer(SERVER_KEY), "accept-encoding": "gzip" });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-encoding"], "gzip");
    assert.ok(answer.body.length < published.length, `${answer.body.length} >= ${published.length}`);
    assert.equal(gunzipSync(answer.body).toString(), published);
  });

  test("If-None-Match with the current ETag is a 304; a newer version is a 200 with a new tag", async () => {
    const first = await rawGet(worker.base, "/sdk/v1/snapshot", bearer(SERVER_KEY));
    const etag = first.headers.etag;
    const same = await rawGet(worker.base, "/sdk/v1/snapshot", { ...bearer(SERVER_KEY), "if-none-match": etag });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    assert.equal(same.headers.etag, etag);
    published = JSON.stringify(snapshotWith(4, bothKeys));
    assert.equal((await publish(worker.base, published)).status, 200);
    const changed = await rawGet(worker.base, "/sdk/v1/snapshot", { ...bearer(SERVER_KEY), "if-none-match": etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.etag, etag);
    assert.equal(changed.body.toString(), published);
  });

  test("a client key the environment holds is 403 SERVER_KEY_REQUIRED, and learns nothing of the flags", async () => {
    const answer = await get(worker.base, "/sdk/v1/snapshot", bearer(CLIENT_KEY));
    assert.equal(answer.status, 403);
    assert.equal(answer.json.error.code, "SERVER_KEY_REQUIRED");
    assert.equal(answer.json.error.field, "Authorization");
    assert.ok(!answer.text.includes("static-on"));
    // It still evaluates.
    const evaluated = await get(worker.base, "/api/v1/flags/static-on", bearer(CLIENT_KEY));
    assert.equal(evaluated.status, 200);
  });

  test("a server key evaluates like a client key", async () => {
    const evaluated = await get(worker.base, "/api/v1/flags/static-on", bearer(SERVER_KEY));
    assert.equal(evaluated.status, 200);
    assert.equal(evaluated.json.value, true);
  });

  test("unknown, revoked, missing and malformed keys, and unknown environments, are refused alike", async () => {
    const unknown = await get(worker.base, "/sdk/v1/snapshot", bearer(OTHER_SERVER_KEY));
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json.error.code, "INVALID_CLIENT_KEY");
    const nowhere = await get(worker.base, "/sdk/v1/snapshot", bearer("efs.nowhere.00112233445566778899aabbccddeeff"));
    assert.equal(nowhere.status, 401);
    assert.equal(nowhere.text, unknown.text);
    const missing = await get(worker.base, "/sdk/v1/snapshot");
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.code, "MISSING_CLIENT_KEY");
    const malformed = await get(worker.base, "/sdk/v1/snapshot", bearer("efs.production.zz"));
    assert.equal(malformed.json.error.code, "INVALID_CLIENT_KEY");
    const posted = await fetch(`${worker.base}/sdk/v1/snapshot`, { method: "POST", headers: bearer(SERVER_KEY) });
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get("allow"), "GET");
    // Revoked: the next snapshot no longer lists it.
    assert.equal((await publish(worker.base, snapshotWith(5, bothKeys.slice(0, 1)))).status, 200);
    const revoked = await get(worker.base, "/sdk/v1/snapshot", bearer(SERVER_KEY));
    assert.equal(revoked.status, 401);
    assert.equal(revoked.text, unknown.text);
  });
});

describe("the snapshot route's event stream", () => {
  const worker = suiteWorker({ requireClientKeys: true });

  test("names a stream bound to the server key that announces the next publish", async () => {
    assert.equal((await publish(worker.base, snapshotWith(7, bothKeys))).status, 200);
    const answer = await rawGet(worker.base, "/sdk/v1/snapshot", bearer(SERVER_KEY));
    const location = answer.headers["x-edgeflags-event-stream"];
    assert.match(location, /^\/ofrep\/v1\/event-stream\?token=v1\.production\.[0-9a-f]{64}\./);
    assert.ok(!location.includes(SERVER_KEY));
    const controller = new AbortController();
    const stream = await fetch(worker.base + location, { signal: controller.signal });
    assert.equal(stream.status, 200);
    const reader = stream.body.getReader();
    const decoder = new TextDecoder();
    let seen = decoder.decode((await reader.read()).value);
    assert.equal((await publish(worker.base, snapshotWith(8, bothKeys))).status, 200);
    const deadline = Date.now() + 10_000;
    while (!seen.includes("id: 8\n") && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
    }
    controller.abort();
    assert.ok(seen.includes("id: 8\n") && seen.includes("refetchEvaluation"), seen);
    const next = await rawGet(worker.base, "/sdk/v1/snapshot", bearer(SERVER_KEY));
    assert.equal(next.headers["x-edgeflags-snapshot-version"], "8");
  });
});

describe("the snapshot route, keys off", () => {
  const worker = suiteWorker({ requireClientKeys: false });

  test("names the environment in the query", async () => {
    const published = JSON.stringify(fixtureSnapshot(2));
    assert.equal((await publish(worker.base, published)).status, 200);
    const open = await rawGet(worker.base, "/sdk/v1/snapshot?environment=production");
    assert.equal(open.status, 200);
    assert.equal(open.body.toString(), published);
    const unnamed = await get(worker.base, "/sdk/v1/snapshot");
    assert.equal(unnamed.status, 400);
    assert.equal(unnamed.json.error.code, "MISSING_ENVIRONMENT");
    const unknown = await get(worker.base, "/sdk/v1/snapshot?environment=nowhere");
    assert.equal(unknown.status, 503);
    assert.equal(unknown.json.error.code, "SNAPSHOT_UNAVAILABLE");
  });
});
