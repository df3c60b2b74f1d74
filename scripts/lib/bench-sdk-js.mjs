// Benchmarks of @edgeflags/sdk (run by scripts/bench-sdk-js, which builds the package and writes
// the 1,000-flag snapshot and evaluator-core's context 42):
//   node scripts/lib/bench-sdk-js.mjs SNAPSHOT.json CONTEXT.json
// Prints a Markdown table; asserts nothing. Loopback only; every loop is bounded by count.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
// The package by name, as an application resolves it (sdk/js/node_modules/@edgeflags/sdk -> pkg/);
// OpenFeature from the repository's node_modules, the copy the package itself resolves.
const requireFromSdk = createRequire(join(root, "sdk/js/package.json"));
const pkg = dirname(requireFromSdk.resolve("@edgeflags/sdk/package.json"));
// The ES module build (what `import "@edgeflags/sdk"` loads).
const entry = join(pkg, "dist/index.js");
const { FakeEdge } = await import(pathToFileURL(join(root, "sdk/js/test/support/fake-edge.mjs")).href);
const SERVER_KEY = `efs.production.${"5eed".repeat(8)}`;

if (process.argv[2] === "--cold") {
  await coldStart(process.argv[3]);
} else {
  await main(process.argv[2], process.argv[3]);
}

/** A fresh process: import the package, initialize a provider, evaluate once; prints the times in ms. */
async function coldStart(url) {
  const started = performance.now();
  const { EdgeflagsProvider } = await import(pathToFileURL(entry).href);
  const imported = performance.now();
  const provider = new EdgeflagsProvider({ url, serverKey: SERVER_KEY, stream: false, pollIntervalMs: 60_000 });
  await provider.initialize();
  const ready = performance.now();
  provider.resolve("bench-simple-bool", false, { targetingKey: "user-1" }, "boolean");
  const first = performance.now();
  await provider.onClose();
  process.stdout.write(JSON.stringify({ import: imported - started, initialize: ready - imported, firstEvaluation: first - ready }));
}

async function main(snapshotPath, contextPath) {
  const rounds = Number(process.env.EDGEFLAGS_BENCH_ROUNDS ?? 7);
  const coldSamples = Number(process.env.EDGEFLAGS_BENCH_COLD_SAMPLES ?? 7);
  const { Context, EdgeflagsProvider, Engine } = await import(pathToFileURL(entry).href);
  const { InMemoryProvider, OpenFeature } = await import("@openfeature/server-sdk");
  const text = readFileSync(snapshotPath, "utf8");
  const rows = [];

  // Loading.
  const loads = [];
  for (let i = 0; i < 12; i++) {
    const start = performance.now();
    const engine = Engine.load(text);
    loads.push(performance.now() - start);
    engine.free();
  }
  const engine = Engine.load(text);
  // testdata::context(42) of evaluator-core, the context of its criterion benches.
  const input = JSON.parse(readFileSync(contextPath, "utf8"));
  const context = new Context(input);

  const simple = engine.indexOf("bench-simple-bool");
  const worst = engine.indexOf("bench-ten-rules");
  const typical = engine.indexOf("bench-ten-rules-typical");
  const map = new Map(engine.flagKeys.map((key, i) => [key, i]));
  let sink = 0;
  rows.push(["baseline: JS `Map.get` (1,000 keys)", perOp(rounds, 5_000_000, () => (sink += map.get("flag-0500")))]);
  rows.push(["engine: static flag, by position", perOp(rounds, 2_000_000, () => (sink += engine.evaluate(simple, context).enabled ? 1 : 0))]);
  rows.push(["engine: static flag, by key", perOp(rounds, 2_000_000, () => (sink += engine.evaluate("bench-simple-bool", context).enabled ? 1 : 0))]);
  rows.push(["engine: 10 rules × 3 clauses + 25 % rollout, worst case", perOp(rounds, 300_000, () => (sink += engine.evaluate(worst, context).enabled ? 1 : 0))]);
  rows.push(["engine: 10 rules × 3 clauses + 25 % rollout, typical", perOp(rounds, 500_000, () => (sink += engine.evaluate(typical, context).enabled ? 1 : 0))]);
  rows.push(["engine: evaluateAll, 1,000 flags (per call)", perOp(rounds, 200, () => (sink += engine.evaluateAll(context).length))]);
  rows.push(["engine: convert a context (`new Context`, then free)", perOp(rounds, 100_000, () => new Context(input).free())]);

  // Through OpenFeature: the provider on a local server, then the client's async API.
  const edge = new FakeEdge(JSON.parse(text), { serverKey: SERVER_KEY });
  await edge.start();
  const provider = new EdgeflagsProvider({ url: edge.url, serverKey: SERVER_KEY, stream: false, pollIntervalMs: 600_000 });
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  rows.push(["provider.resolve (synchronous, context cache hit)", perOp(rounds, 1_000_000, () => (sink += provider.resolve("bench-simple-bool", false, input, "boolean").value ? 1 : 0))]);
  rows.push(["OpenFeature client: static flag (`await getBooleanValue`)", await perOpAsync(rounds, 30_000, async () => (sink += (await client.getBooleanValue("bench-simple-bool", false, input)) ? 1 : 0))]);
  rows.push(["OpenFeature client: 10 rules × 3 clauses + rollout, worst case", await perOpAsync(rounds, 20_000, async () => (sink += (await client.getBooleanValue("bench-ten-rules", false, input)) ? 1 : 0))]);
  // The SDK's own cost per call, with its in-memory provider answering a constant flag.
  await OpenFeature.setProviderAndWait(
    "in-memory",
    new InMemoryProvider({ "bench-simple-bool": { variants: { on: true, off: false }, defaultVariant: "on", disabled: false } }),
  );
  const memory = OpenFeature.getClient("in-memory");
  rows.push(["baseline: OpenFeature client over its InMemoryProvider", await perOpAsync(rounds, 20_000, async () => (sink += (await memory.getBooleanValue("bench-simple-bool", false, input)) ? 1 : 0))]);
  await OpenFeature.close();

  // Cold start in fresh processes, against the same local server.
  const cold = [];
  for (let i = 0; i < coldSamples; i++) cold.push(await coldProcess(edge.url));
  await edge.stop();

  console.log(`\n@edgeflags/sdk on Node ${process.versions.node}, ${text.length.toLocaleString("en")}-byte snapshot of ${engine.flagKeys.length.toLocaleString("en")} flags (median of ${rounds} rounds)\n`);
  console.log("| operation | ns/op | ops/s | × Map.get |");
  console.log("|---|---:|---:|---:|");
  const base = rows[0][1];
  for (const [name, ns] of rows) {
    console.log(`| ${name} | ${ns.toFixed(1)} | ${Math.round(1e9 / ns).toLocaleString("en")} | ${(ns / base).toFixed(1)} |`);
  }
  console.log(`\n| load / cold start (ms) | median | min | max |`);
  console.log("|---|---:|---:|---:|");
  const line = (name, samples) => {
    const s = [...samples].sort((a, b) => a - b);
    console.log(`| ${name} | ${median(s).toFixed(1)} | ${s[0].toFixed(1)} | ${s.at(-1).toFixed(1)} |`);
  };
  line("`Engine.load` of the snapshot text (warm process)", loads.slice(2));
  line("cold: `import('@edgeflags/sdk')` (wasm compile + instantiate)", cold.map((c) => c.import));
  line("cold: `initialize()` → ready (HTTP gzip fetch + load)", cold.map((c) => c.initialize));
  line("cold: first evaluation", cold.map((c) => c.firstEvaluation));
  line("cold: import + initialize + first evaluation", cold.map((c) => c.import + c.initialize + c.firstEvaluation));
  sizes();
  if (sink === 0.5) console.log(sink); // keeps the loops' results alive
  engine.free();
}

/** ns per call of `fn`, the median of `rounds` rounds of `n` calls (after one warm-up round). */
function perOp(rounds, n, fn) {
  const samples = [];
  for (let r = 0; r <= rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const ns = Number(process.hrtime.bigint() - start) / n;
    if (r > 0) samples.push(ns);
  }
  return median(samples.sort((a, b) => a - b));
}

async function perOpAsync(rounds, n, fn) {
  const samples = [];
  for (let r = 0; r <= rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    const ns = Number(process.hrtime.bigint() - start) / n;
    if (r > 0) samples.push(ns);
  }
  return median(samples.sort((a, b) => a - b));
}

function median(sorted) {
  return sorted[Math.floor(sorted.length / 2)];
}

function coldProcess(url) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--cold", url], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`cold-start process exited with ${code}`));
    });
  });
}

function sizes() {
  const gz = (path) => gzipSync(readFileSync(path), { level: 9 }).length;
  const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
  const files = (dir) => readdirSync(dir).filter((f) => f.endsWith(".js")).map((f) => join(dir, f));
  const wasm = join(pkg, "wasm/edgeflags_sdk_wasm_bg.wasm");
  const glueNode = [join(pkg, "wasm/edgeflags_sdk_wasm.cjs")];
  const glueBundler = files(join(pkg, "wasm"));
  const layer = files(join(pkg, "dist"));
  const sum = (list) => list.reduce((total, f) => total + gz(f), 0);
  console.log("\n| package size | raw | gzip -9 |");
  console.log("|---|---:|---:|");
  console.log(`| .wasm | ${kb(statSync(wasm).size)} | ${kb(gz(wasm))} |`);
  console.log(`| wasm-bindgen glue (nodejs target) | ${kb(glueNode.reduce((t, f) => t + statSync(f).size, 0))} | ${kb(sum(glueNode))} |`);
  console.log(`| wasm-bindgen glue (bundler target) | ${kb(glueBundler.reduce((t, f) => t + statSync(f).size, 0))} | ${kb(sum(glueBundler))} |`);
  console.log(`| TypeScript layer (dist/*.js) | ${kb(layer.reduce((t, f) => t + statSync(f).size, 0))} | ${kb(sum(layer))} |`);
  console.log(`| **total loaded by Node** (.wasm + node glue + layer) | | **${kb(gz(wasm) + sum(glueNode) + sum(layer))}** |`);
}
