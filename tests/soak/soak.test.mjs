// A bounded soak of the whole system (issue 11, "Fuzzing, load and soak"): `scripts/dev` brings
// up PostgreSQL, the origin and the worker under wrangler dev; several load processes then run at
// once for EDGEFLAGS_SOAK_SECONDS (default 45): admin writes (creating and toggling flags), edge
// and origin evaluations (REST) and OFREP bulk requests at both. Every request is timed; an
// error is a network failure or any status the request does not expect (no 5xx, no 429: the soak
// turns the rate limits off, it measures the system, not them).
//
// At the end, once the edge reports the database's snapshot version: every soak flag is served
// at the edge exactly as the admin API stores it, the edge's and the origin's OFREP bulk answers
// are equal, and the audit log holds exactly one row per acknowledged write. The figures go to
// target/soak/report.json and stdout; docs/reliability.md records a run.
//
//   node --test tests/soak/                              # 45 s, as scripts/test runs it
//   EDGEFLAGS_SOAK_SECONDS=300 node --test tests/soak/   # the several-minute soak
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { ROOT, psql, sleep, startSystem } from "../support/system.mjs";

const SECONDS = Number(process.env.EDGEFLAGS_SOAK_SECONDS ?? 45);
const SOAK_FLAGS = 20;
const ENV = "production";

if (process.argv[2] === "--load") {
  await load(JSON.parse(process.argv[3]));
  process.exit(0);
}

/**
 * One load process: `role` decides what it sends, `inFlight` requests at a time until `until`
 * (epoch ms). Reports `{ kinds: { kind: { latencies, errors, samples } }, acknowledged }` to the
 * parent.
 */
async function load({ role, origin, edge, token, until, inFlight, seed }) {
  const kinds = {};
  let acknowledged = 0;
  let n = seed;
  const record = (kind, ms, ok, sample) => {
    const k = (kinds[kind] ??= { latencies: [], errors: 0, samples: [] });
    k.latencies.push(ms);
    if (!ok) {
      k.errors += 1;
      if (k.samples.length < 5) k.samples.push(sample);
    }
  };
  const timed = async (kind, url, init, expected) => {
    const started = performance.now();
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      const ok = expected.includes(response.status);
      record(kind, performance.now() - started, ok, `${response.status} ${text.slice(0, 200)}`);
      return ok ? response.status : null;
    } catch (error) {
      record(kind, performance.now() - started, false, String(error));
      return null;
    }
  };
  const json = (body) => ({ "content-type": "application/json", ...body });
  // `production` is protected: toggling there confirms it (X-Edgeflags-Confirm), as the dashboard does.
  const admin = { authorization: `Bearer ${token}`, "x-edgeflags-confirm": ENV };
  const step = async () => {
    n += 1;
    const flag = `soak-${n % SOAK_FLAGS}`;
    const user = `user-${n % 997}`;
    if (role === "writer") {
      const body = JSON.stringify({ enabled: n % 3 !== 0, description: `soak write ${seed}-${n}` });
      const status = await timed(
        "admin write",
        `${origin}/admin/flags/${flag}?environment=${ENV}`,
        { method: "PUT", headers: json(admin), body },
        [200],
      );
      if (status === 200) acknowledged += 1;
    } else {
      const base = role === "edge reader" ? edge : origin;
      const where = role === "edge reader" ? "edge" : "origin";
      if (n % 4 === 0) {
        await timed(
          `${where} OFREP bulk`,
          `${base}/ofrep/v1/evaluate/flags`,
          { method: "POST", headers: json({}), body: JSON.stringify({ context: { targetingKey: user, environment: ENV, country: "US" } }) },
          [200],
        );
      } else {
        await timed(`${where} evaluation`, `${base}/api/v1/flags/${flag}?environment=${ENV}&userId=${user}&country=US`, {}, [200]);
      }
    }
  };
  const lane = async () => {
    while (Date.now() < until) await step();
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  // Exit only once the report is out: a large message is still being written when send returns.
  await new Promise((resolve) => process.send({ kinds, acknowledged }, resolve));
}

const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null);

let system;
after(async () => system?.stop());

test(`a ${SECONDS} s soak: no errors, no lost writes, the edge serves the database's state`, async () => {
  system = await startSystem("soak", {
    EDGEFLAGS_ADMIN_RATE_PER_SECOND: "0",
    EDGEFLAGS_EVALUATION_RATE_PER_SECOND: "0",
  });
  const { origin, edge, token, admin, database } = system;

  for (let i = 0; i < SOAK_FLAGS; i++) {
    const targeting = i % 2 ? { percentage: 5 * i, countries: ["US"], userIds: [`user-${i}`] } : {};
    const created = await admin("POST", `/admin/flags?environment=${ENV}`, { flagKey: `soak-${i}`, enabled: true, targetingRules: targeting });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  }

  const until = Date.now() + SECONDS * 1000;
  const roles = [
    ["writer", 2],
    ["writer", 2],
    ["edge reader", 4],
    ["edge reader", 4],
    ["origin reader", 3],
  ];
  const reports = await Promise.all(
    roles.map(
      ([role, inFlight], i) =>
        new Promise((resolve, reject) => {
          const args = JSON.stringify({ role, origin, edge, token, until, inFlight, seed: i * 1_000_003 });
          const child = fork(fileURLToPath(import.meta.url), ["--load", args], { stdio: "inherit" });
          let report;
          child.on("message", (message) => (report = message));
          // "close", not "exit": it comes after the IPC channel has delivered every message.
          child.on("close", (code) => (code === 0 && report ? resolve(report) : reject(new Error(`load process ${role} exited with ${code}`))));
        }),
    ),
  );

  // Merge, report.
  const kinds = {};
  let acknowledged = 0;
  for (const report of reports) {
    acknowledged += report.acknowledged;
    for (const [kind, k] of Object.entries(report.kinds)) {
      const merged = (kinds[kind] ??= { latencies: [], errors: 0, samples: [] });
      merged.latencies.push(...k.latencies);
      merged.errors += k.errors;
      merged.samples.push(...k.samples);
    }
  }
  const rows = Object.entries(kinds).map(([kind, k]) => {
    const sorted = k.latencies.sort((a, b) => a - b);
    const round = (ms) => (ms === null ? null : Math.round(ms * 100) / 100);
    return {
      kind,
      requests: sorted.length,
      perSecond: Math.round(sorted.length / SECONDS),
      errors: k.errors,
      p50: round(percentile(sorted, 50)),
      p95: round(percentile(sorted, 95)),
      p99: round(percentile(sorted, 99)),
      errorSamples: k.samples,
    };
  });
  const total = rows.reduce((sum, r) => sum + r.requests, 0);
  const errors = rows.reduce((sum, r) => sum + r.errors, 0);

  // The end state: the edge at the database's version, serving exactly the database's flags.
  const environment = await admin("GET", `/admin/environments/${ENV}`);
  const dbVersion = environment.body.snapshotVersion;
  const deadline = Date.now() + 30_000;
  let edgeVersion = null;
  while (Date.now() < deadline) {
    const response = await fetch(`${edge}/api/v1/flags/soak-0?environment=${ENV}&userId=u`);
    edgeVersion = Number(response.headers.get("x-edgeflags-snapshot-version"));
    await response.text();
    if (edgeVersion === dbVersion) break;
    await sleep(50);
  }
  assert.equal(edgeVersion, dbVersion, "the edge reached the database's snapshot version");
  const mismatches = [];
  for (let i = 0; i < SOAK_FLAGS; i++) {
    const stored = await admin("GET", `/admin/flags/soak-${i}?environment=${ENV}`);
    for (const user of ["user-1", "user-3", "user-500"]) {
      const query = `environment=${ENV}&userId=${user}&country=US`;
      const [atEdge, atOrigin] = await Promise.all(
        [edge, origin].map(async (base) => (await fetch(`${base}/api/v1/flags/soak-${i}?${query}`)).json()),
      );
      if (JSON.stringify(atEdge) !== JSON.stringify(atOrigin)) mismatches.push(`soak-${i} for ${user}: edge ${JSON.stringify(atEdge)}, origin ${JSON.stringify(atOrigin)}`);
      if (!stored.body.enabled && atEdge.enabled) mismatches.push(`soak-${i} is off in the database and on at the edge`);
      if (atEdge.version !== stored.body.version) mismatches.push(`soak-${i}: edge version ${atEdge.version}, database ${stored.body.version}`);
    }
  }
  const bulk = async (base) => {
    const response = await fetch(`${base}/ofrep/v1/evaluate/flags`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ context: { targetingKey: "user-3", environment: ENV, country: "US" } }),
    });
    return response.json();
  };
  const [edgeBulk, originBulk] = [await bulk(edge), await bulk(origin)];
  const audited = Number(
    psql(database, `select count(*) from audit_log where environment_key = '${ENV}' and entity_key like 'soak-%' and action <> 'create'`),
  );
  const actions = psql(database, `select string_agg(distinct action, ',') from audit_log where entity_key like 'soak-%'`);

  const report = { seconds: SECONDS, processes: roles.length, total, errors, acknowledgedWrites: acknowledged, auditedWrites: audited, snapshotVersion: dbVersion, kinds: rows };
  mkdirSync(join(ROOT, "target", "soak"), { recursive: true });
  writeFileSync(join(ROOT, "target", "soak", "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`soak: ${total} requests in ${SECONDS} s from ${roles.length} processes, ${errors} errors; ${acknowledged} acknowledged writes, ${audited} audited (actions: ${actions}); snapshot version ${dbVersion}`);
  console.log("kind                 requests   req/s  errors   p50 ms   p95 ms   p99 ms");
  for (const r of rows) {
    console.log(`${r.kind.padEnd(20)} ${String(r.requests).padStart(8)} ${String(r.perSecond).padStart(7)} ${String(r.errors).padStart(7)} ${String(r.p50).padStart(8)} ${String(r.p95).padStart(8)} ${String(r.p99).padStart(8)}`);
  }

  assert.equal(errors, 0, `errors: ${JSON.stringify(rows.filter((r) => r.errors).map((r) => [r.kind, r.errorSamples]))}`);
  assert.ok(acknowledged > 0, "the writers wrote");
  assert.equal(audited, acknowledged, "one audit row per acknowledged write");
  assert.deepEqual(mismatches, []);
  assert.deepEqual(edgeBulk, originBulk, "the edge's and the origin's bulk answers agree");
});
