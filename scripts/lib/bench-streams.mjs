// Many event streams held open at once against the compiled worker under Miniflare (driven by
// scripts/bench-streams; loopback only, bounded): opens N streams of one environment with Node's
// fetch, measures the workerd process's memory before and after, publishes once and times the
// refetchEvaluation's arrival on every stream, then closes them all and stops the worker.
// Prints a markdown section; with --write it replaces "## 1,000 streams" in docs/event-streams.md.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import { CLIENT_KEY, ROOT, fixtureSnapshot, post, publish, startWorker } from "../../tests/edge/harness.mjs";

const STREAMS = Number(process.env.EDGEFLAGS_BENCH_STREAMS ?? 1000);
/** Rounds, each with a worker of its own, so the table shows how much the figures move. */
const ROUNDS = Number(process.env.EDGEFLAGS_BENCH_ROUNDS ?? 3);
/** Streams being opened at any moment: all 1,000 at once would time the accept queue instead. */
const OPENING_AT_ONCE = Number(process.env.EDGEFLAGS_BENCH_OPENING_AT_ONCE ?? 50);
/** How long the streams are held open before the publish (memory is read at its end). */
const HOLD_MS = 3_000;
/** Bounds: opening every stream, every stream's event, and the whole run (the watchdog). */
const OPEN_BOUND_MS = 60_000;
const EVENT_BOUND_MS = 20_000;
const RUN_BOUND_MS = 110_000;
const write = process.argv.includes("--write");
const loadAtStart = os.loadavg();
const startedAt = Date.now();

for (const [name, value] of [["EDGEFLAGS_BENCH_STREAMS", STREAMS], ["EDGEFLAGS_BENCH_ROUNDS", ROUNDS], ["EDGEFLAGS_BENCH_OPENING_AT_ONCE", OPENING_AT_ONCE]]) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: not a count: ${value}`);
}

// ---- the workerd process ---------------------------------------------------------------------

/** The PIDs of this process's children named workerd (Miniflare spawns workerd directly). */
function workerdChildren() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces, so split after its closing parenthesis.
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === process.pid && comm === "workerd") pids.push(Number(entry));
  }
  return pids;
}

/** `VmRSS` and `VmHWM` of `pid`, in bytes. */
function memory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) * 1024;
  return { rss: kib("VmRSS"), peak: kib("VmHWM") };
}

/** CPU time `pid` has used, user + system, in milliseconds (clock ticks of 10 ms). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const openFiles = (pid) => readdirSync(`/proc/${pid}/fd`).length;

// ---- streams -----------------------------------------------------------------------------------

/**
 * One stream, read with fetch's body reader until it is closed: resolves `opened` once its
 * opening is in, and records when the refetchEvaluation of `version` arrives.
 */
function openStream(url, version) {
  const controller = new AbortController();
  const stream = { controller, openMs: NaN, eventAt: NaN, status: null };
  const startedOpening = performance.now();
  let markOpened;
  let markEvent;
  stream.opened = new Promise((resolve) => (markOpened = resolve));
  stream.event = new Promise((resolve) => (markEvent = resolve));
  const wanted = `id: ${version}\n`;
  stream.done = (async () => {
    const response = await fetch(url, { signal: controller.signal });
    stream.status = response.status;
    if (response.status !== 200) {
      markOpened(new Error(`a stream was refused: ${response.status} ${await response.text()}`));
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      // The opening: `retry:`, and the current version as the last event id when there is one.
      if (Number.isNaN(stream.openMs) && /^retry: \d+\n(id: \d+\n)?\n/.test(text)) {
        stream.openMs = performance.now() - startedOpening;
        markOpened(null);
      }
      if (Number.isNaN(stream.eventAt) && text.includes(wanted) && text.includes('"type":"refetchEvaluation"')) {
        stream.eventAt = performance.now();
        markEvent();
      }
      // Only the newest messages matter; heartbeats must not grow what is kept.
      text = text.slice(-512);
    }
    markOpened(new Error("a stream ended before its opening"));
  })().catch((error) => {
    if (error.name !== "AbortError") markOpened(error);
  });
  return stream;
}

/** Opens `count` streams of `url`, `OPENING_AT_ONCE` at a time; resolves once all are open. */
async function openStreams(url, count, version) {
  const streams = [];
  let next = 0;
  const opener = async () => {
    while (next < count) {
      next += 1;
      const stream = openStream(url, version);
      streams.push(stream);
      const failure = await stream.opened;
      if (failure) throw failure;
    }
  };
  const all = Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, count) }, opener));
  await bounded(all, OPEN_BOUND_MS, `opening ${count} streams`);
  return streams;
}

async function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const fmt = (x, digits = 0) => x.toFixed(digits);
const mib = (bytes) => `${fmt(bytes / 2 ** 20, 1)} MiB`;

// ---- the run -----------------------------------------------------------------------------------

let worker = null;
let workerd = null;
let streams = [];

async function stopAll() {
  for (const stream of streams) stream.controller.abort();
  streams = [];
  const running = worker;
  worker = null;
  if (running) await bounded(running.close(), 10_000, "stopping the worker").catch(() => {});
  // Miniflare's dispose ends workerd; if it could not, end it by its PID (ours: our child).
  if (workerd !== null && workerdChildren().includes(workerd)) process.kill(workerd, "SIGKILL");
}

const watchdog = setTimeout(async () => {
  process.stderr.write(`bench-streams: not done within ${RUN_BOUND_MS / 1000} s, stopping\n`);
  await stopAll();
  process.exit(1);
}, RUN_BOUND_MS);

async function run() {
  // The limits above what is opened (N plus the warm-up stream).
  const limit = String(STREAMS + 10);
  worker = await startWorker({
    ttlSeconds: 3600,
    requireClientKeys: true,
    vars: { STREAMS_PER_ENVIRONMENT: limit, STREAMS_PER_CLIENT_KEY: limit },
  });
  const children = workerdChildren();
  if (children.length !== 1) throw new Error(`expected one workerd child, found ${children.join(", ") || "none"}`);
  [workerd] = children;

  const first = await publish(worker.base, fixtureSnapshot(1));
  if (first.status !== 200) throw new Error(`publish failed: ${JSON.stringify(first.body)}`);
  const bulk = await post(worker.base, "/ofrep/v1/evaluate/flags", { context: { targetingKey: "u1" } }, { "x-client-key": CLIENT_KEY });
  if (bulk.status !== 200) throw new Error(`bulk evaluation failed: ${bulk.status} ${bulk.text}`);
  const url = worker.base + bulk.json.eventStreams[0].endpoint.requestUri;

  // The warm-up stream starts the object (and its isolate), so the figures are per stream only.
  streams = await openStreams(url, 1, 2);
  await sleep(1_000);
  const before = { ...memory(workerd), files: openFiles(workerd), cpu: cpuMs(workerd) };

  const openingStarted = performance.now();
  streams.push(...(await openStreams(url, STREAMS, 2)));
  const openingMs = performance.now() - openingStarted;
  const openingCpu = cpuMs(workerd) - before.cpu;
  await sleep(HOLD_MS);
  const after = { ...memory(workerd), files: openFiles(workerd), cpu: cpuMs(workerd) };

  const measured = streams.slice(1);
  const publishStarted = performance.now();
  const second = await publish(worker.base, fixtureSnapshot(2));
  const publishMs = performance.now() - publishStarted;
  if (second.status !== 200) throw new Error(`publish failed: ${JSON.stringify(second.body)}`);
  await bounded(
    Promise.all(measured.map((stream) => stream.event)),
    EVENT_BOUND_MS,
    `the event on every stream (${measured.filter((s) => !Number.isNaN(s.eventAt)).length} of ${measured.length} so far)`,
  );
  const lastAt = Math.max(...measured.map((s) => s.eventAt));
  const fanOutCpu = cpuMs(workerd) - after.cpu;
  const arrivals = measured.map((s) => s.eventAt - publishStarted).sort((a, b) => a - b);
  const opens = measured.map((s) => s.openMs).sort((a, b) => a - b);

  const closingStarted = performance.now();
  await stopAll();
  const stopMs = performance.now() - closingStarted;
  return {
    before,
    after,
    openingMs,
    openingCpu,
    opens,
    publishMs,
    arrivals,
    lastMs: lastAt - publishStarted,
    fanOutCpu,
    stopMs,
  };
}

const rounds = [];
try {
  for (let round = 0; round < ROUNDS; round++) rounds.push(await run());
} catch (error) {
  await stopAll();
  clearTimeout(watchdog);
  throw error;
}
clearTimeout(watchdog);

// ---- report ------------------------------------------------------------------------------------

const cpu = (readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.+)/) ?? [])[1] ?? os.arch();
const workerdVersion = execFileSync(path.join(ROOT, "node_modules/.bin/workerd"), ["--version"], { encoding: "utf8" }).trim();
const miniflareVersion = JSON.parse(readFileSync(path.join(ROOT, "node_modules/miniflare/package.json"), "utf8")).version;
const ms = (x) => `${fmt(x)} ms`;
const streamsText = STREAMS.toLocaleString("en-US");
/** A table row: `label`, then `cell(round)` for every round. */
const row = (label, cell) => `| ${label} | ${rounds.map(cell).join(" | ")} |`;
const rows = [
  row("streams open at once", () => `${streamsText} + the warm-up`),
  row("workerd's open files before → after", (r) => `${r.before.files} → ${r.after.files}`),
  row("opening them all", (r) => `${fmt(r.openingMs / 1000, 1)} s`),
  row("one opening: p50 / p95 / max", (r) => `${ms(percentile(r.opens, 50))} / ${ms(percentile(r.opens, 95))} / ${ms(r.opens.at(-1))}`),
  row("workerd CPU opening them (per stream)", (r) => `${ms(r.openingCpu)} (${fmt(r.openingCpu / STREAMS, 2)} ms)`),
  row("workerd RSS before → after (peak)", (r) => `${mib(r.before.rss)} → ${mib(r.after.rss)} (${mib(r.after.peak)})`),
  row(`**memory per stream** (RSS delta / ${streamsText})`, (r) => `**${fmt((r.after.rss - r.before.rss) / STREAMS / 1024, 1)} KiB**`),
  row("the publish's answer (stored, then announced to the object)", (r) => ms(r.publishMs)),
  row("`refetchEvaluation` read by the client, from sending the publish: p50 / p95", (r) => `${ms(percentile(r.arrivals, 50))} / ${ms(percentile(r.arrivals, 95))}`),
  row(`**the last of the ${streamsText} streams has it**`, (r) => `**${ms(r.lastMs)}**`),
  row("workerd CPU from the publish to the last event", (r) => ms(r.fanOutCpu)),
  row("closing every stream and stopping the worker", (r) => `${fmt(r.stopMs / 1000, 1)} s`),
].join("\n");
const section = `## 1,000 streams

**What:** ${streamsText} event streams of one environment held open at once against the compiled worker
(\`edge-worker/build\`) under local workerd (Miniflare) on loopback, all held by the environment's
one Durable Object. ${ROUNDS} rounds, each with a worker of its own: start it, publish version 1 with the
fixture's client key, take the stream URL of a bulk answer, open a warm-up stream (it starts the
object, so what follows is the streams' own cost), read workerd's RSS (\`VmRSS\` of the Miniflare
instance's workerd child, found by its parent PID in \`/proc\`), open the ${streamsText} streams with
Node's \`fetch\` (${OPENING_AT_ONCE} being opened at a time; one counts as open when its opening, \`retry:\` and \`id:\`, is read),
hold them ${HOLD_MS / 1000} s, read the RSS again; publish version 2 and time, on every stream, the
\`refetchEvaluation\` from sending the publish to the client reading it; close every stream and
stop the worker. \`STREAMS_PER_ENVIRONMENT\` and \`STREAMS_PER_CLIENT_KEY\` are set above the count.

**Command:** \`scripts/bench-streams\` (\`--write\` replaces this section). Knobs:
\`EDGEFLAGS_BENCH_STREAMS\` (${STREAMS}), \`EDGEFLAGS_BENCH_ROUNDS\` (${ROUNDS}), \`EDGEFLAGS_BENCH_OPENING_AT_ONCE\`
(${OPENING_AT_ONCE}). It stops itself after ${RUN_BOUND_MS / 1000} s at the latest; this run took ${fmt((Date.now() - startedAt) / 1000)} s.

**Machine:** ${os.cpus().length} vCPU ${cpu}, ${fmt(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${workerdVersion} under
Miniflare ${miniflareVersion}. A shared 2-core machine, with fuzzers running niced beside it (load
average ${loadAtStart.map((l) => fmt(l, 1)).join(" / ")} at the start), and the client runs on the same cores as the
server: times are pessimistic. Measured ${new Date().toISOString().slice(0, 10)}.

| what | ${rounds.map((_, i) => `round ${i + 1}`).join(" | ")} |
|---|${rounds.map(() => "---").join("|")}|
${rows}

Reading: under Miniflare each stream is three requests in flight in one workerd process
(Miniflare's entry worker, our worker, which forwards the opening to the object and streams the
object's body back, and the object), so the memory per stream is that of all three, not the
object's alone; on Cloudflare there is no entry worker, and the object usually runs apart from the
worker that opened the stream. RSS counts the isolates' heaps and workerd's own buffers, not the
kernel's socket buffers; heaps grow in steps, so part of the delta is fixed and the figure per
stream falls as the count grows (\`EDGEFLAGS_BENCH_STREAMS\` shows it). Events arrive before the publish's answer: the object queues the event on
every stream before it answers the announcement, and the publish answers after that. CPU is
counted in 10 ms clock ticks.
`;
process.stdout.write(`${section}\n`);

if (write) {
  const docPath = path.join(ROOT, "docs/event-streams.md");
  const doc = readFileSync(docPath, "utf8");
  const start = doc.indexOf("\n## 1,000 streams\n");
  let updated;
  if (start === -1) {
    updated = `${doc.replace(/\n*$/, "\n\n")}${section}`;
  } else {
    const next = doc.indexOf("\n## ", start + 1);
    updated = doc.slice(0, start + 1) + section + (next === -1 ? "" : doc.slice(next));
  }
  writeFileSync(docPath, updated);
  process.stderr.write(`wrote the "1,000 streams" section of ${docPath}\n`);
}
