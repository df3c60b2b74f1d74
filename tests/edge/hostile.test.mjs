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
    { ...signed(body, 405, "METHOD_NOT_ALLOWED", "GET instead of PUT"), method: "GET", body: undefined },
    { ...signed(body, 405, "METHOD_NOT_ALLOWED", "POST instead of PUT"), method: "POST" },
  ];
}

/**
 * Declares a body over the KV value limit (25 MiB + 1) on a raw socket but sends only 1 KiB: the
 * worker must refuse it by its Content-Length before reading it. Resolves to the answer's status
 * and JSON body.
 */
function declaredOversize(base) {
  const { hostname, port } = new URL(base);
  const signed = signatureHeaders("{}");
  const head = [
    "PUT /internal/snapshots/production HTTP/1.1",
    `Host: ${hostname}:${port}`,
    "Content-Type: application/json",
    `Content-Length: ${25 * 1024 * 1024 + 1}`,
    ...Object.entries(signed).map(([name, value]) => `${name}: ${value}`),
  ].join("\r\n");
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = net.connect(Number(port), hostname, () => socket.write(`${head}\r\n\r\n${"x".repeat(1024)}`));
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      answer += chunk;
      const [status, body] = [answer.match(/^HTTP\/1\.1 (\d{3})/), answer.match(/\r\n\r\n(?:[0-9a-f]+\r\n)?(\{.*\})/s)];
      if (!status || !body) return;
      let json;
      try {
        json = JSON.parse(body[1]);
      } catch {
        return; // more of the body is still to come
      }
      socket.destroy();
      resolve({ status: Number(status[1]), json });
    });
    socket.on("error", reject);
  });
}

/**
 * Sends `body` on a raw socket and resolves to the answer. A server may answer a request whose
 * body it refuses (too large, badly signed) before reading that body and close the connection;
 * fetch then fails while still writing, at random. Here a write error after the answer has
 * arrived is expected and ignored.
 */
function sendRaw(base, method, path, headers, body) {
  const { hostname, port } = new URL(base);
  const head = [
    `${method} ${path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Connection: close",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ].join("\r\n");
  return new Promise((resolve, reject) => {
    let answer = "";
    let done = false;
    const finish = () => {
      if (done) return;
      const status = answer.match(/^HTTP\/1\.1 (\d{3})/);
      const split = answer.indexOf("\r\n\r\n");
      if (!status || split < 0) return reject(new Error(`no HTTP answer: ${answer.slice(0, 200)}`));
      done = true;
      let text = answer.slice(split + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(answer.slice(0, split))) {
        // one or more chunks: "<hex>\r\n<data>\r\n", ending with "0\r\n\r\n"
        let rest = text;
        text = "";
        for (;;) {
          const line = rest.indexOf("\r\n");
          const size = parseInt(rest.slice(0, line), 16);
          if (!(size > 0)) break;
          text += rest.slice(line + 2, line + 2 + size);
          rest = rest.slice(line + 2 + size + 2);
        }
      }
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status: Number(status[1]), text, json });
    };
    const socket = net.connect(Number(port), hostname, () => socket.end(`${head}\r\n\r\n${body}`));
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => (answer += chunk));
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", (error) => (answer ? finish() : reject(error)));
  });
}

async function send(base, row) {
  if (typeof row.body === "string" && row.body.length > 16 * 1024) {
    const headers = { "Content-Type": "application/json", ...row.headers };
    return sendRaw(base, row.method, row.path, headers, row.body);
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
    const oversize = await declaredOversize(worker.base);
    if (oversize.status !== 413 || codeOf(oversize.json) !== "PAYLOAD_TOO_LARGE") {
      failures.push(`publish: a declared 25 MiB + 1 body: got ${oversize.status} ${codeOf(oversize.json)}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${rows.length + 1} rows failed`);
    assert.deepEqual(await dumpKv(worker.kv), before, "a hostile request changed KV");
    assert.equal(await worker.kv.get("version:production"), String(STORED));
  });
});
