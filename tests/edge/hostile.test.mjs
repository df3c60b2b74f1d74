// Hostile input at the edge (issue 11): a table of evaluation requests (REST API and OFREP) and
// publishes no honest client sends — malformed JSON, wrong types, huge bodies, bad keys; replayed,
// tampered, unsigned, stale and oversized publishes — each answered with its documented status
// and code, never a 5xx, and none of them changing what KV holds.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";

import { CLIENT_KEY, fixtureSnapshot, publish, read, signatureHeaders, suiteWorker } from "./harness.mjs";

const ENV = "environment=production";
const STORED = 10;
const BIG = `{"context":{"a":"${"x".repeat(70 * 1024)}"}}`;
const nested = (depth, inner) => "[".repeat(depth) + inner + "]".repeat(depth);
const json = (value) => JSON.stringify(value);

/** The error code of any answer: REST `error.code`, OFREP `errorCode`, publish `code`. */
const codeOf = (body) => body?.error?.code ?? body?.errorCode ?? body?.code ?? "";

/** Every KV key with its value (base64), in key order: equal dumps mean KV is unchanged. */
async function dumpKv(kv) {
  const { keys } = await kv.list();
  const entries = [];
  for (const { name } of keys) {
    entries.push([name, Buffer.from(await kv.get(name, "arrayBuffer")).toString("base64")]);
  }
  return entries;
}

const rest = (name, path, status, code) => ({ name: `REST: ${name}`, method: "GET", path, status, code });
const batch = (name, body, status, code) => ({ name: `REST batch: ${name}`, method: "POST", path: "/api/v1/flags/batch", body, status, code });
const ofrep = (name, body, status, code, path = "/ofrep/v1/evaluate/flags/theme") => ({ name: `OFREP: ${name}`, method: "POST", path, body, status, code });
const bulk = (name, body, status, code) => ({ name: `OFREP bulk: ${name}`, method: "POST", path: "/ofrep/v1/evaluate/flags", body, status, code });

function evaluationRows() {
  const sql = "x'; drop table flags; --";
  return [
    rest("NUL as the flag key", `/api/v1/flags/a%00?${ENV}`, 400, "INVALID_FLAG_KEY"),
    rest("a 256-character flag key", `/api/v1/flags/${"k".repeat(256)}?${ENV}`, 400, "INVALID_FLAG_KEY"),
    rest("a script tag as the flag key", `/api/v1/flags/${encodeURIComponent("<script>")}?${ENV}`, 400, "INVALID_FLAG_KEY"),
    rest("SQL as the flag key", `/api/v1/flags/${encodeURIComponent(sql)}?${ENV}`, 400, "INVALID_FLAG_KEY"),
    rest("a right-to-left override in the flag key", `/api/v1/flags/${encodeURIComponent("theme\u202e")}?${ENV}`, 400, "INVALID_FLAG_KEY"),
    rest("NUL as the environment", "/api/v1/flags/theme?environment=%00", 400, "INVALID_ENVIRONMENT"),
    rest("SQL as the environment", `/api/v1/flags/theme?environment=${encodeURIComponent("production' --")}`, 400, "INVALID_ENVIRONMENT"),
    rest("a 10,000-byte environment", `/api/v1/flags/theme?environment=${"e".repeat(10_000)}`, 400, "INVALID_ENVIRONMENT"),
    rest("no environment", "/api/v1/flags/theme?userId=u1", 400, "MISSING_ENVIRONMENT"),
    rest("a broken percent escape", `/api/v1/flags/theme?${ENV}&plan=%zz`, 400, "INVALID_QUERY"),
    rest("invalid UTF-8 in the query", `/api/v1/flags/theme?${ENV}&plan=%FF`, 400, "INVALID_QUERY"),
    rest("SQL as the user id evaluates as a string", `/api/v1/flags/theme?${ENV}&userId=${encodeURIComponent(sql)}`, 200, ""),
    rest("NUL in an attribute evaluates as a string", `/api/v1/flags/theme?${ENV}&userId=u1&plan=pro%00`, 200, ""),
    { ...rest("DELETE on a flag", `/api/v1/flags/theme?${ENV}`, 405, "METHOD_NOT_ALLOWED"), method: "DELETE" },
    { ...rest("a malformed client key", "/api/v1/flags/theme", 401, "INVALID_CLIENT_KEY"), headers: { "x-client-key": "efk.production.nothex" } },
    { ...rest("an unknown client key", "/api/v1/flags/theme", 401, "INVALID_CLIENT_KEY"), headers: { "x-client-key": "efk.production.00000000000000000000000000000000" } },
    { ...rest("a key of an environment that does not exist", "/api/v1/flags/theme", 401, "INVALID_CLIENT_KEY"), headers: { "x-client-key": "efk.nowhere.00000000000000000000000000000000" } },
    { ...bulk("a key of an environment that does not exist", json({ context: {} }), 401, ""), headers: { "x-api-key": "efk.nowhere.00000000000000000000000000000000" } },
    { ...rest("a client key of another environment", `/api/v1/flags/theme?environment=staging`, 403, "FORBIDDEN_ENVIRONMENT"), headers: { authorization: `Bearer ${CLIENT_KEY}` } },
    rest("an unknown route", "/api/v1/nothing/here", 404, "NOT_FOUND"),
    batch("truncated JSON", '{"environment":', 400, "INVALID_JSON"),
    batch("plain text", "flags please", 400, "INVALID_JSON"),
    batch("an array body", "[]", 400, "INVALID_FIELD"),
    batch("flagKeys is a string", json({ environment: "production", flagKeys: "theme" }), 400, "INVALID_FIELD"),
    batch("flagKeys holds a number", json({ environment: "production", flagKeys: [1] }), 400, "INVALID_FIELD"),
    batch("userId is a number", json({ environment: "production", userId: 5 }), 400, "INVALID_FIELD"),
    batch("context is an array", json({ environment: "production", context: [] }), 400, "INVALID_FIELD"),
    batch("environment is a number", json({ environment: 5 }), 400, "INVALID_FIELD"),
    batch("NUL as the environment", json({ environment: "production\u0000" }), 400, "INVALID_ENVIRONMENT"),
    batch("invalid UTF-8", Buffer.from('{"environment":"\xff"}', "latin1"), 400, "INVALID_JSON"),
    batch("a lone surrogate", '{"environment":"production","userId":"\\ud800"}', 400, "INVALID_JSON"),
    batch("200 nested arrays in the context", `{"environment":"production","context":{"a":${nested(200, "1")}}}`, 400, "INVALID_JSON"),
    batch("a 70 KiB body", BIG, 413, "PAYLOAD_TOO_LARGE"),
    { ...batch("a 70 KiB chunked body (no Content-Length)", BIG, 413, "PAYLOAD_TOO_LARGE"), chunked: true },
    { ...batch("a small chunked body", json({ environment: "production", flagKeys: ["theme"] }), 200, ""), chunked: true },
    ofrep("truncated JSON", '{"context":', 400, "PARSE_ERROR"),
    ofrep("plain text", "context", 400, "PARSE_ERROR"),
    ofrep("context is a string", json({ context: "x" }), 400, "INVALID_CONTEXT"),
    ofrep("targetingKey is a number", json({ context: { targetingKey: 5, environment: "production" } }), 400, "INVALID_CONTEXT"),
    ofrep("environment is a number", json({ context: { environment: 5 } }), 400, "INVALID_CONTEXT"),
    ofrep("NUL as the environment", json({ context: { environment: "\u0000" } }), 400, "INVALID_CONTEXT"),
    ofrep("NUL as the flag key", json({ context: { environment: "production" } }), 404, "FLAG_NOT_FOUND", "/ofrep/v1/evaluate/flags/a%00"),
    ofrep("a 256-character flag key", json({ context: { environment: "production" } }), 404, "FLAG_NOT_FOUND", `/ofrep/v1/evaluate/flags/${"k".repeat(256)}`),
    ofrep("a 70 KiB body", BIG, 413, "GENERAL"),
    { ...ofrep("an unknown client key", json({ context: {} }), 401, ""), headers: { "x-client-key": "efk.production.00000000000000000000000000000000" } },
    bulk("an array body", "[1]", 400, "INVALID_CONTEXT"),
    bulk("200 nested arrays", `{"context":{"environment":"production","a":${nested(200, "1")}}}`, 400, "PARSE_ERROR"),
    bulk("a 70 KiB body", BIG, 413, "GENERAL"),
    { ...bulk("a 70 KiB chunked body (no Content-Length)", BIG, 413, "GENERAL"), chunked: true },
    { ...bulk("GET", undefined, 405, "GENERAL"), method: "GET" },
  ];
}

/** A publish of `body` (a string) to `environment` with `headers` as sent. */
const put = (name, body, headers, status, code, environment = "production") => ({
  name: `publish: ${name}`,
  method: "PUT",
  path: `/internal/snapshots/${environment}`,
  body,
  headers: { "content-type": "application/json", ...headers },
  status,
  code,
});

function publishRows() {
  const now = Math.floor(Date.now() / 1000);
  const body = json(fixtureSnapshot(STORED + 1));
  const good = signatureHeaders(body);
  const signature = good["X-Edgeflags-Signature"];
  const signed = (text, status, code, name, environment) => put(name, text, signatureHeaders(text), status, code, environment);
  const snapshot = (patch) => json({ ...fixtureSnapshot(STORED + 1), ...patch });
  const rejected = (name, headers) => put(name, body, headers, 401, "INVALID_SIGNATURE");
  return [
    rejected("no signature headers", {}),
    rejected("only the timestamp", { "X-Edgeflags-Timestamp": good["X-Edgeflags-Timestamp"] }),
    rejected("only the signature", { "X-Edgeflags-Signature": signature }),
    rejected("signed with another secret", signatureHeaders(body, { secret: "another-secret-of-at-least-32-bytes" })),
    rejected("replayed an hour later", signatureHeaders(body, { timestamp: now - 3600 })),
    // 330 s, not 301: the rows are built before they are sent, and the boundary itself is publish.test.mjs's
    rejected("a timestamp 330 s old", signatureHeaders(body, { timestamp: now - 330 })),
    rejected("a timestamp 330 s ahead", signatureHeaders(body, { timestamp: now + 330 })),
    rejected("timestamp changed after signing", { ...good, "X-Edgeflags-Timestamp": String(now - 1) }),
    rejected("the signature of another body", signatureHeaders(body.replace(`"version":${STORED + 1}`, `"version":${STORED + 2}`))),
    put("a tampered body under a good signature", body.replace('"static-on"', '"static-of"'), good, 401, "INVALID_SIGNATURE"),
    put("a body with a trailing space under its signature", `${body} `, good, 401, "INVALID_SIGNATURE"),
    rejected("an uppercase signature", { ...good, "X-Edgeflags-Signature": `v1=${signature.slice(3).toUpperCase()}` }),
    rejected("a truncated signature", { ...good, "X-Edgeflags-Signature": signature.slice(0, -2) }),
    rejected("a v2= signature", { ...good, "X-Edgeflags-Signature": `v2=${signature.slice(3)}` }),
    rejected("no v1= prefix", { ...good, "X-Edgeflags-Signature": signature.slice(3) }),
    rejected("two signatures", { ...good, "X-Edgeflags-Signature": `${signature}, ${signature}` }),
    rejected("an empty timestamp", signatureHeaders(body, { timestamp: "" })),
    rejected("a negative timestamp", signatureHeaders(body, { timestamp: "-1" })),
    rejected("a timestamp beyond u64", signatureHeaders(body, { timestamp: "99999999999999999999" })),
    rejected("a fractional timestamp", signatureHeaders(body, { timestamp: `${now}.5` })),
    rejected("a timestamp with a space", signatureHeaders(body, { timestamp: ` ${now}` })),
    rejected("a timestamp in hex", signatureHeaders(body, { timestamp: `0x${now.toString(16)}` })),
    signed(json(fixtureSnapshot(STORED - 1)), 409, "STALE_VERSION", "an older version (stale)"),
    signed(json(fixtureSnapshot(0)), 409, "STALE_VERSION", "version 0"),
    signed(json(fixtureSnapshot(STORED, { extraFlags: [{ flagKey: "sneaky", enabled: true }] })), 200, "", "other content under the stored version"),
    signed(json(fixtureSnapshot(STORED + 1, { environment: "staging" })), 400, "ENVIRONMENT_MISMATCH", "a body of another environment"),
    signed(json(fixtureSnapshot(STORED + 1, { environment: "a.b" })), 400, "INVALID_ENVIRONMENT", "an invalid environment in the path", "a.b"),
    signed(json(fixtureSnapshot(STORED + 1)), 400, "INVALID_ENVIRONMENT", "NUL in the path's environment", "prod%00uction"),
    signed("{nope", 400, "INVALID_SNAPSHOT", "a body that is not JSON"),
    signed("[]", 400, "INVALID_SNAPSHOT", "a JSON array"),
    signed("", 400, "INVALID_SNAPSHOT", "an empty body"),
    signed(snapshot({ version: -1 }), 400, "INVALID_SNAPSHOT", "a negative version"),
    signed(snapshot({ version: "11" }), 400, "INVALID_SNAPSHOT", "a version that is a string"),
    signed(snapshot({ version: 1e30 }), 400, "INVALID_SNAPSHOT", "a version beyond u64"),
    signed(snapshot({ flags: "all" }), 400, "INVALID_SNAPSHOT", "flags that are a string"),
    signed(json(fixtureSnapshot(STORED + 1, { extraFlags: [{ flagKey: "bad\u0000key", enabled: true }] })), 400, "INVALID_SNAPSHOT", "NUL in a flag key"),
    signed(json(fixtureSnapshot(STORED + 1, { extraFlags: [{ flagKey: "k".repeat(256), enabled: true }] })), 400, "INVALID_SNAPSHOT", "a 256-character flag key"),
    signed(json(fixtureSnapshot(STORED + 1, { extraFlags: [{ flagKey: "static-on", enabled: true }] })), 400, "INVALID_SNAPSHOT", "a duplicate flag key"),
    signed(`{"environment":"production","version":11,"flags":${nested(200, "1")}}`, 400, "INVALID_SNAPSHOT", "200 nested arrays"),
    signed('{"environment":"production\\ud800","version":11}', 400, "INVALID_SNAPSHOT", "a lone surrogate"),
    { ...signed(`${"x".repeat(25 * 1024 * 1024 + 64 * 1024)}`, 413, "PAYLOAD_TOO_LARGE", "a chunked body over 25 MiB (no Content-Length)"), chunked: true },
    { ...signed(json(fixtureSnapshot(STORED)), 200, "", "the stored version again, chunked"), chunked: true },
    { ...signed(body, 405, "METHOD_NOT_ALLOWED", "GET instead of PUT"), method: "GET", body: undefined },
    { ...signed(body, 405, "METHOD_NOT_ALLOWED", "POST instead of PUT"), method: "POST" },
  ];
}

/**
 * Sends `body` on a raw socket and resolves to the answer `{ status, text, json }` as soon as it
 * is complete. A server may answer a request whose body it refuses (too large, badly signed)
 * before reading that body and close the connection; fetch then fails while still writing, at
 * random. Here a write error after the answer has arrived is expected and ignored.
 *
 * `chunked` sends the body with `Transfer-Encoding: chunked` (no length declared, 16 KiB chunks);
 * `declaredLength` declares that Content-Length but sends only `body`, and never ends the request.
 */
function sendRaw(base, method, path, headers, body, { chunked = false, declaredLength } = {}) {
  const { hostname, port } = new URL(base);
  const bytes = Buffer.from(body);
  const framing = chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${declaredLength ?? bytes.length}`;
  const head = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Connection: close",
    framing,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ].join("\r\n");
  return new Promise((resolve, reject) => {
    let answer = Buffer.alloc(0);
    let done = false;
    // The answer's body once complete (by Content-Length, or the chunked terminator), else null.
    const complete = (final) => {
      const split = answer.indexOf("\r\n\r\n");
      if (split < 0) return null;
      const head = answer.subarray(0, split).toString("latin1");
      const rest = answer.subarray(split + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(head)) {
        const chunks = [];
        let at = 0;
        for (;;) {
          const line = rest.indexOf("\r\n", at);
          if (line < 0) return final ? Buffer.concat(chunks) : null;
          const size = parseInt(rest.subarray(at, line).toString("latin1"), 16);
          if (!(size > 0)) return Buffer.concat(chunks);
          if (rest.length < line + 2 + size) return final ? Buffer.concat(chunks) : null;
          chunks.push(rest.subarray(line + 2, line + 2 + size));
          at = line + 2 + size + 2;
        }
      }
      const length = head.match(/\r\ncontent-length: (\d+)/i);
      if (length && rest.length >= Number(length[1])) return rest.subarray(0, Number(length[1]));
      return final || /^HTTP\/1\.1 (204|304)/.test(head) ? rest : null;
    };
    const finish = (final) => {
      if (done) return;
      const status = answer.toString("latin1").match(/^HTTP\/1\.1 (\d{3})/);
      const content = complete(final);
      if (!status || content === null) {
        if (final) reject(new Error(`no complete HTTP answer: ${answer.toString("utf8").slice(0, 200)}`));
        return;
      }
      done = true;
      socket.destroy();
      const text = content.toString("utf8");
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status: Number(status[1]), text, json });
    };
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`${head}\r\n\r\n`);
      if (chunked) {
        for (let at = 0; at < bytes.length; at += 16 * 1024) {
          const chunk = bytes.subarray(at, at + 16 * 1024);
          socket.write(`${chunk.length.toString(16)}\r\n`);
          socket.write(chunk);
          socket.write("\r\n");
        }
        socket.end("0\r\n\r\n");
      } else if (declaredLength !== undefined) {
        socket.write(bytes);
      } else {
        socket.end(bytes);
      }
    });
    socket.on("data", (chunk) => {
      answer = Buffer.concat([answer, chunk]);
      finish(false);
    });
    socket.on("end", () => finish(true));
    socket.on("close", () => finish(true));
    socket.on("error", (error) => (answer.length ? finish(true) : reject(error)));
  });
}

async function send(base, row) {
  if (row.chunked || (typeof row.body === "string" && row.body.length > 16 * 1024)) {
    const headers = { "Content-Type": "application/json", ...row.headers };
    return sendRaw(base, row.method, row.path, headers, row.body, { chunked: row.chunked });
  }
  const response = await fetch(base + row.path, {
    method: row.method,
    headers: row.body === undefined ? row.headers : { "content-type": "application/json", ...row.headers },
    body: row.body,
  });
  return read(response);
}

describe("hostile requests at the edge", () => {
  const worker = suiteWorker({}, async () => {
    const published = await publish(worker.base, fixtureSnapshot(STORED));
    assert.equal(published.status, 200, JSON.stringify(published.body));
  });

  test("every hostile row gets its documented status and code, and KV is unchanged", async () => {
    const rows = [...evaluationRows(), ...publishRows()];
    assert.ok(rows.length >= 40, `only ${rows.length} rows`);
    const before = await dumpKv(worker.kv);
    const failures = [];
    for (const row of rows) {
      const response = await send(worker.base, row);
      const code = codeOf(response.json);
      if (response.status >= 500 || response.status !== row.status || code !== row.code) {
        failures.push(`${row.name}: expected ${row.status} ${row.code}, got ${response.status} ${code}: ${response.text.slice(0, 200)}`);
      }
    }
    // A body over the KV value limit (25 MiB + 1) declared but not sent: refused by its
    // Content-Length before a byte of it is read.
    const signed = { "Content-Type": "application/json", ...signatureHeaders("{}") };
    const oversize = await sendRaw(worker.base, "PUT", "/internal/snapshots/production", signed, "x".repeat(1024), {
      declaredLength: 25 * 1024 * 1024 + 1,
    });
    if (oversize.status !== 413 || codeOf(oversize.json) !== "PAYLOAD_TOO_LARGE") {
      failures.push(`publish: a declared 25 MiB + 1 body: got ${oversize.status} ${codeOf(oversize.json)}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${rows.length + 1} rows failed`);
    assert.deepEqual(await dumpKv(worker.kv), before, "a hostile request changed KV");
    assert.equal(await worker.kv.get("version:production"), String(STORED));
  });
});
