// Shared helpers of the edge worker tests: run the REAL compiled worker (edge-worker/build, made
// by scripts/build-worker) under Miniflare 4 on 127.0.0.1, sign publishes like the origin does,
// and build small snapshots.
import { Miniflare } from "miniflare";
import { createHash, createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BUILD = process.env.EDGE_WORKER_BUILD ?? path.join(ROOT, "edge-worker/build");
/** At least 32 bytes: the worker refuses publishes under a shorter PUBLISH_SECRET. */
export const SECRET = "test-publish-secret-of-32-bytes!";
export const COMPATIBILITY_DATE = "2026-04-01";

/** `efk.production.<32 hex>`: the fixture's client key, and its published SHA-256. */
export const CLIENT_KEY = "efk.production.0123456789abcdef0123456789abcdef";
export const sha256hex = (data) => createHash("sha256").update(data).digest("hex");

/**
 * Starts the built worker on 127.0.0.1 (a free port). `ttlSeconds` is SNAPSHOT_TTL_SECONDS
 * (fractions to the millisecond, e.g. 0.25); `kv: false` declares no KV namespace (to test a
 * broken deployment); `publishSecret: null` leaves PUBLISH_SECRET unset; `vars` adds worker vars;
 * `persist` is a directory keeping KV and Durable Object storage across workers started with it
 * (by default both are in memory and die with the worker); `streams: false` declares no
 * Durable Object namespace for the event streams (a broken deployment); `port` is the port to
 * listen on (0, the default, lets the kernel pick one; a fixed one lets a restarted worker keep
 * its URL). `logs()` is what the worker wrote to its console so far (also passed through to this
 * process).
 */
export async function startWorker({ ttlSeconds = 0, requireClientKeys = false, publishSecret = SECRET, kv = true, vars = {}, persist, streams = true, port = 0 } = {}) {
  if (!existsSync(path.join(BUILD, "index.js"))) {
    throw new Error(`no built worker in ${BUILD}: run scripts/build-worker first`);
  }
  const bindings = { SNAPSHOT_TTL_SECONDS: String(ttlSeconds), REQUIRE_CLIENT_KEYS: String(requireClientKeys) };
  Object.assign(bindings, vars);
  if (publishSecret !== null) bindings.PUBLISH_SECRET = publishSecret;
  let output = "";
  const capture = (stream, sink) =>
    stream.on("data", (chunk) => {
      output += chunk;
      sink.write(chunk);
    });
  const mf = new Miniflare({
    modules: true,
    modulesRoot: BUILD,
    scriptPath: path.join(BUILD, "index.js"),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    kvNamespaces: kv ? ["FLAGS"] : [],
    // As wrangler.toml declares it: one object per environment holding its event streams.
    durableObjects: streams ? { STREAMS: { className: "EnvironmentStreams", useSQLite: true } } : {},
    ...(persist ? { kvPersist: path.join(persist, "kv"), durableObjectsPersist: path.join(persist, "do") } : {}),
    bindings,
    host: "127.0.0.1",
    port,
    handleRuntimeStdio: (stdout, stderr) => {
      capture(stdout, process.stdout);
      capture(stderr, process.stderr);
    },
  });
  const url = await mf.ready;
  const base = url.href.replace(/\/$/, "");
  return {
    mf,
    base,
    kv: kv ? await mf.getKVNamespace("FLAGS") : null,
    logs: () => output,
    close: () => mf.dispose(),
  };
}

/**
 * The worker of the enclosing `describe` block: started with `startWorker(options)` before its
 * tests, then `setup()` (which may use the returned handle) runs, and closed after them. The
 * handle is filled in by the `before` hook, so read it only inside hooks and tests.
 */
export function suiteWorker(options, setup = async () => {}) {
  const worker = {};
  before(async () => {
    Object.assign(worker, await startWorker(options));
    await setup();
  });
  after(() => worker.close());
  return worker;
}

/**
 * The stored `snapshot:{environment}` value as evaluator-core's packed layout documents it
 * (evaluator-core/src/packed.rs): `{ packed, version, json }`, where `packed` says the magic is
 * there, `version` is the header's, and `json` the snapshot JSON it ends with (null if absent).
 */
export async function storedSnapshot(kv, environment) {
  const stored = await kv.get(`snapshot:${environment}`, "arrayBuffer");
  if (stored === null) return { packed: false, version: null, json: null };
  const bytes = Buffer.from(stored);
  const packed = bytes.length >= 80 && bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x45, 0x46, 0x50]));
  if (!packed) return { packed, version: null, json: bytes.toString("utf8") };
  const directory = bytes.readUInt32LE(8);
  return { packed, version: Number(bytes.readBigUInt64LE(32)), json: bytes.subarray(directory).toString("utf8") };
}

/**
 * The origin's signature headers for `body`: X-Edgeflags-Timestamp, and X-Edgeflags-Signature
 * `v1=` + hex HMAC-SHA256(secret, "<timestamp>.<body>") (the publish protocol, written here
 * independently of the publish-protocol crate; docs/architecture.md, "Publish protocol").
 */
export function signatureHeaders(body, { secret = SECRET, timestamp = Math.floor(Date.now() / 1000) } = {}) {
  const mac = createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex");
  return { "X-Edgeflags-Timestamp": String(timestamp), "X-Edgeflags-Signature": `v1=${mac}` };
}

/** PUT /internal/snapshots/{environment}, signed. Returns `{ status, body }`. */
export async function publish(base, snapshot, { environment, ...signing } = {}) {
  const body = typeof snapshot === "string" ? snapshot : JSON.stringify(snapshot);
  const target = environment ?? JSON.parse(body).environment;
  const response = await fetch(`${base}/internal/snapshots/${target}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...signatureHeaders(body, signing) },
    body,
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

/** POST JSON, returning `{ status, headers, text, json }`. */
export async function post(base, pathAndQuery, payload, headers = {}) {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  const response = await fetch(base + pathAndQuery, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return read(response);
}

export async function get(base, pathAndQuery, headers = {}) {
  return read(await fetch(base + pathAndQuery, { headers }));
}

export async function read(response) {
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/**
 * A small snapshot of environment `production` exercising every value type: boolean flags
 * (static, kill switch, user list, rollout), string, number and object flags.
 */
export function fixtureSnapshot(version = 1, { environment = "production", extraFlags = [] } = {}) {
  return {
    environment,
    version,
    generatedAt: "2026-11-24T10:00:00Z",
    flags: [
      { flagKey: "static-on", enabled: true, version: 1 },
      { flagKey: "kill", enabled: false, version: 2 },
      { flagKey: "targeted", enabled: true, version: 3, targetingRules: { userIds: ["u1"] } },
      { flagKey: "rollout", enabled: true, version: 4, targetingRules: { percentage: 50 } },
      {
        flagKey: "theme",
        enabled: true,
        version: 5,
        variations: [
          { key: "light", value: "light" },
          { key: "dark", value: "dark" },
        ],
        defaultVariation: "light",
        targetingRules: {
          rules: [{ clauses: [{ attribute: "plan", operator: "in", values: ["pro"] }], variation: "dark" }],
        },
      },
      {
        flagKey: "checkout",
        enabled: true,
        version: 6,
        variations: [
          { key: "v1", value: { flow: "v1" } },
          { key: "v2", value: { flow: "v2", steps: ["cart", "pay"] } },
        ],
        defaultVariation: "v1",
        onVariation: "v2",
        targetingRules: { countries: ["US"] },
      },
      {
        flagKey: "page-size",
        enabled: true,
        version: 7,
        variations: [
          { key: "small", value: 10 },
          { key: "large", value: 50 },
        ],
        defaultVariation: "small",
        targetingRules: {
          rules: [{ clauses: [{ attribute: "plan", operator: "in", values: ["pro"] }], variation: "large" }],
        },
      },
      ...extraFlags,
    ],
    segments: [],
    clientKeys: [{ name: "web", sha256: sha256hex(CLIENT_KEY) }],
  };
}
