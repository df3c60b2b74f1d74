// Benchmarks of the compiled edge worker (driven by scripts/bench-edge; loopback only, bounded):
//   1. size of the .wasm, raw and gzipped;
//   2. cold isolate: a fresh Miniflare instance per sample with a 1,000-flag snapshot in KV;
//      the first evaluation reports the in-worker parse + compile time (Server-Timing), and the
//      wall time of first and second evaluation is measured from outside;
//   3. throughput of an evaluation route vs the constant route under the same wrk load.
// Prints a markdown section; with --write it replaces "## edge-worker" in docs/benchmarks.md.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";

import { BUILD, ROOT, publish, startWorker } from "../../tests/edge/harness.mjs";

const loadAtStart = os.loadavg();
const args = process.argv.slice(2);
const write = args.includes("--write");
const snapshotPath = args.find((a) => a.endsWith(".json"));
const COLD_SAMPLES = Number(process.env.EDGEFLAGS_BENCH_COLD_SAMPLES ?? 10);
const WRK_SECONDS = Number(process.env.EDGEFLAGS_BENCH_SECONDS ?? 10);
const WRK_CONNECTIONS = Number(process.env.EDGEFLAGS_BENCH_CONNECTIONS ?? 8);

const snapshotText = readFileSync(snapshotPath, "utf8");
const snapshot = JSON.parse(snapshotText);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const fmt = (x, digits = 2) => x.toFixed(digits);

// ---- 1. size -------------------------------------------------------------------------------
const wasm = readFileSync(path.join(BUILD, "index_bg.wasm"));
const js = readFileSync(path.join(BUILD, "index.js"));
const size = {
  wasmRaw: wasm.length,
  wasmGzip: gzipSync(wasm, { level: 9 }).length,
  jsRaw: js.length,
  jsGzip: gzipSync(js, { level: 9 }).length,
};

// ---- 2. cold isolate -----------------------------------------------------------------------
const RULES_FLAG_QUERY =
  "/api/v1/flags/bench-ten-rules?userId=user-1&environment=production&country=US&plan=pro&email=user1%40example.com&appVersion=2.13.6&age=34";

const RELOADS = 12;
// Findings that numbers alone do not show; kept here so --write reproduces them.
const NOTES = `The first load in a fresh isolate misses the 10 ms target: it
runs the parse and compile code once, lazily compiled by V8's baseline tier (Liftoff); from the
4th load on, the same isolate loads the same snapshot in about the time native code takes (natively,
release: ~4 ms parse, ~3-8 ms compile on this machine). Workers cannot pass V8 flags to compile
eagerly. Known levers, all outside edge-worker: fewer regex engines in the workspace's
\`regex-automata\` features (dropping \`hybrid\`, \`nfa-backtrack\`, \`perf-inline\` measured
-33 KB gzipped and less code to compile), compiling identical regex patterns once per snapshot
(the generated snapshot repeats one pattern 167 times), and a snapshot that is smaller to parse
(per-environment JSON without informational fields).`;

/** The worker's `Server-Timing` durations (ms) of a request that loaded a snapshot. */
function serverTiming(response) {
  const timing = response.headers.get("server-timing") ?? "";
  const dur = (name) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(timing)?.[1] ?? NaN);
  return { kv: dur("kv"), parse: dur("parse"), compile: dur("compile") };
}

async function timed(url) {
  const started = performance.now();
  const response = await fetch(url);
  await response.arrayBuffer();
  return { ms: performance.now() - started, response };
}

const cold = [];
for (let i = 0; i < COLD_SAMPLES; i++) {
  // TTL 0: every request re-checks the version key, so a new version is loaded at once.
  const worker = await startWorker({ ttlSeconds: 0 });
  try {
    await worker.kv.put("snapshot:production", snapshotText);
    await worker.kv.put("version:production", String(snapshot.version));
    const instantiate = await timed(`${worker.base}/internal/constant`);
    const first = await timed(worker.base + RULES_FLAG_QUERY);
    const second = await timed(worker.base + RULES_FLAG_QUERY);
    if (first.response.status !== 200 || second.response.status !== 200) throw new Error("evaluation failed");
    const load = serverTiming(first.response);
    // Then the same isolate loads RELOADS new versions of the snapshot in a row: V8 tiers the
    // parse and compile code up after a few, so the last ones show the steady cost of an update.
    const reloads = [];
    for (let k = 1; k <= RELOADS; k++) {
      const version = snapshot.version + k;
      await worker.kv.put("snapshot:production", JSON.stringify({ ...snapshot, version }));
      await worker.kv.put("version:production", String(version));
      const reloaded = await timed(worker.base + RULES_FLAG_QUERY);
      if (reloaded.response.headers.get("x-edgeflags-snapshot-version") !== String(version)) {
        throw new Error("the isolate did not load the new version");
      }
      reloads.push(serverTiming(reloaded.response));
    }
    const steady = reloads.slice(-3);
    cold.push({
      instantiate: instantiate.ms,
      first: first.ms,
      second: second.ms,
      parse: load.parse,
      compile: load.compile,
      load: load.parse + load.compile,
      kv: load.kv,
      reload: median(steady.map((r) => r.parse + r.compile)),
      reloadParse: median(steady.map((r) => r.parse)),
      reloadCompile: median(steady.map((r) => r.compile)),
    });
  } finally {
    await worker.close();
  }
}
const coldSummary = Object.fromEntries(
  ["instantiate", "first", "second", "parse", "compile", "load", "kv", "reload", "reloadParse", "reloadCompile"].map((k) => [k, median(cold.map((c) => c[k]))]),
);
const loadMin = Math.min(...cold.map((c) => c.load));
const loadMax = Math.max(...cold.map((c) => c.load));

// ---- 3. throughput -------------------------------------------------------------------------
function wrk(url) {
  const out = execFileSync(
    "wrk",
    ["-t1", `-c${WRK_CONNECTIONS}`, `-d${WRK_SECONDS}s`, "--latency", "--timeout", "5s", url],
    { encoding: "utf8" },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /50%\s+([\d.]+\w+)/.exec(out)?.[1];
  const p99 = /99%\s+([\d.]+\w+)/.exec(out)?.[1];
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? "0";
  if (errors !== "0") throw new Error(`wrk saw ${errors} error responses for ${url}`);
  return { rps, p50, p99 };
}

const worker = await startWorker({ ttlSeconds: 5 });
let rounds;
try {
  const published = await publish(worker.base, snapshotText);
  if (published.status !== 200) throw new Error(`publish failed: ${JSON.stringify(published.body)}`);
  const constantUrl = `${worker.base}/internal/constant`;
  const evalUrl = worker.base + RULES_FLAG_QUERY;
  const staticUrl = `${worker.base}/api/v1/flags/bench-simple-bool?userId=user-1&environment=production`;
  // Warm-up, then alternate so drift on the shared machine hits both routes alike.
  wrk(constantUrl);
  rounds = [];
  for (let round = 0; round < 2; round++) {
    rounds.push({ constant: wrk(constantUrl), rules: wrk(evalUrl), simple: wrk(staticUrl) });
  }
} finally {
  await worker.close();
}
const mean = (key) => rounds.reduce((sum, r) => sum + r[key].rps, 0) / rounds.length;
const throughput = { constant: mean("constant"), rules: mean("rules"), simple: mean("simple") };

// ---- report --------------------------------------------------------------------------------
const cpu = (readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.+)/) ?? [])[1] ?? os.arch();
const workerdVersion = execFileSync(path.join(ROOT, "node_modules/.bin/workerd"), ["--version"], { encoding: "utf8" }).trim();
const flags = snapshot.flags.length;
const segments = snapshot.segments.length;
const kb = (bytes) => `${fmt(bytes / 1024, 1)} KB`;
const section = `## edge-worker

**What:** the compiled worker (\`edge-worker/build\`, made by \`scripts/build-worker\`) under local
workerd (Miniflare), with evaluator-core's generated snapshot of ${flags} flags / ${segments} segments
(${kb(snapshotText.length)} of JSON) in KV:
- size of the wasm, raw and gzip -9;
- cold isolate: a fresh Miniflare instance per sample with the snapshot already in KV; the first
  evaluation loads it, and the worker reports the CPU time of parsing and compiling it in
  \`Server-Timing\` (local workerd advances \`performance.now()\` during execution; Cloudflare's
  production runtime does not, so there the header reads 0). The same isolate then loads
  ${RELOADS} new versions in a row (the last 3 show the cost of an update once V8 tiered up);
- throughput: \`wrk\` against the evaluation route and the constant route
  (\`GET /internal/constant\`: same headers, no KV, no evaluation), alternated, same load.

**Command:** \`scripts/bench-edge\` (builds the worker if needed, generates the snapshot with
\`cargo run -p evaluation-api --example differential -- snapshot 1000 200\`, runs
\`scripts/lib/bench-edge.mjs\`; loopback only, about ${Math.ceil((COLD_SAMPLES * 4 + 7 * WRK_SECONDS) / 10) * 10} s;
\`--write\` replaces this section). Knobs: \`EDGEFLAGS_BENCH_COLD_SAMPLES\` (${COLD_SAMPLES}),
\`EDGEFLAGS_BENCH_SECONDS\` (${WRK_SECONDS} per wrk run), \`EDGEFLAGS_BENCH_CONNECTIONS\` (${WRK_CONNECTIONS}).

**Machine:** ${os.cpus().length} vCPU ${cpu}, ${fmt(os.totalmem() / 2 ** 30, 0)} GiB, Node ${process.version}, ${workerdVersion} under
Miniflare ${JSON.parse(readFileSync(path.join(ROOT, "node_modules/miniflare/package.json"), "utf8")).version}, wrk 4.1.0 (1 thread, ${WRK_CONNECTIONS} connections); load average ${loadAtStart.map((l) => fmt(l, 1)).join(" / ")}
at the start (shared with other builds, so times are pessimistic). Measured ${new Date().toISOString().slice(0, 10)}.

**Numbers** (medians of ${COLD_SAMPLES} isolates; throughput = mean of 2 alternated rounds):

| what | result | target |
|---|---|---|
| \`index_bg.wasm\` raw / gzip -9 | ${kb(size.wasmRaw)} / **${kb(size.wasmGzip)}** | ≤ 400 KB gz |
| \`index.js\` (wasm-bindgen glue) raw / gzip -9 | ${kb(size.jsRaw)} / ${kb(size.jsGzip)} | |
| cold isolate: load of the snapshot (\`CompiledSnapshot::from_json\`, one pass), in-worker CPU | **${fmt(coldSummary.load)} ms** (min ${fmt(loadMin)}, max ${fmt(loadMax)}) | ≤ 10 ms |
| same isolate, versions ${RELOADS - 2}-${RELOADS} of ${RELOADS} consecutive reloads, in-worker CPU | ${fmt(coldSummary.reload)} ms | |
| cold isolate: first evaluation incl. KV read + load, wall from the client | ${fmt(coldSummary.first)} ms (KV wait ${fmt(coldSummary.kv)} ms) | |
| same isolate: second evaluation (re-checks the version key, no load), wall from the client | ${fmt(coldSummary.second)} ms | |
| fresh isolate: first request (constant route; module instantiation), wall | ${fmt(coldSummary.instantiate)} ms | |
| throughput, constant route | ${fmt(throughput.constant, 0)} req/s | |
| throughput, \`GET /api/v1/flags/bench-ten-rules?…\` (10 rules × 3 clauses walked, then a 25 % rollout) | ${fmt(throughput.rules, 0)} req/s, **ratio ${fmt(throughput.rules / throughput.constant)}** | ≥ 0.7 |
| throughput, \`GET /api/v1/flags/bench-simple-bool?…\` (static flag) | ${fmt(throughput.simple, 0)} req/s, ratio ${fmt(throughput.simple / throughput.constant)} | |

Per round (req/s, p50 / p99 latency): ${rounds
  .map(
    (r, i) =>
      `round ${i + 1}: constant ${fmt(r.constant.rps, 0)} (${r.constant.p50} / ${r.constant.p99}), rules ${fmt(r.rules.rps, 0)} (${r.rules.p50} / ${r.rules.p99}), simple ${fmt(r.simple.rps, 0)} (${r.simple.p50} / ${r.simple.p99})`,
  )
  .join("; ")}.

Reading: the wasm's name section is stripped by \`scripts/build-worker\` (worker-build keeps it:
+200 KB raw, ~+100 KB gzipped). Throughput on 2 shared cores is bounded by workerd's HTTP handling
and wrk itself, so the ratio is the figure to compare. ${NOTES}
`;
process.stdout.write(`${section}\n`);

if (write) {
  const docPath = path.join(ROOT, "docs/benchmarks.md");
  const doc = existsSync(docPath) ? readFileSync(docPath, "utf8") : "# Benchmarks\n";
  const start = doc.indexOf("## edge-worker");
  let updated;
  if (start === -1) {
    updated = `${doc.replace(/\n*$/, "\n\n")}${section}`;
  } else {
    const next = doc.indexOf("\n## ", start + 1);
    updated = doc.slice(0, start) + section + (next === -1 ? "" : doc.slice(next + 1).replace(/^/, "\n"));
  }
  writeFileSync(docPath, updated);
  process.stderr.write(`wrote the edge-worker section of ${docPath}\n`);
}
