// The repository's wrangler.toml under `wrangler dev --local` (what scripts/dev runs): its
// [build] command builds the worker, the KV binding and vars work, a signed publish is served.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";

import { ROOT, SECRET, fixtureSnapshot, get, post, publish } from "./harness.mjs";

const START_TIMEOUT_MS = 300_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

let child;
let state;
let base;
let output = "";

before(async () => {
  const port = await freePort();
  state = mkdtempSync(path.join(tmpdir(), "edgeflags-wrangler-"));
  base = `http://127.0.0.1:${port}`;
  child = spawn(
    path.join(ROOT, "node_modules/.bin/wrangler"),
    [
      "dev",
      "--port", String(port),
      "--ip", "127.0.0.1",
      "--local",
      "--persist-to", state,
      "--log-level", "warn",
      "--show-interactive-dev-session=false",
      "--var", "REQUIRE_CLIENT_KEYS:false",
      "--var", `PUBLISH_SECRET:${SECRET}`,
    ],
    {
      cwd: ROOT,
      // Its own process group, so `after` stops wrangler and its workerd children together.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        CLOUDFLARE_CF_FETCH_ENABLED: "false",
        WRANGLER_SEND_METRICS: "false",
        XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME ?? path.join(state, "xdg"),
      },
    },
  );
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error(`wrangler dev did not come up on ${base}:\n${output.slice(-4000)}`);
});

after(async () => {
  if (child && child.exitCode === null) {
    process.kill(-child.pid, "SIGTERM");
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (child.exitCode === null) process.kill(-child.pid, "SIGKILL");
        resolve();
      }, 5000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  if (state) rmSync(state, { recursive: true, force: true });
});

test("wrangler dev serves the built worker with wrangler.toml's bindings", async () => {
  const health = await get(base, "/healthz");
  assert.equal(health.status, 200);
  assert.equal(health.json.status, "ok");
  const published = await publish(base, fixtureSnapshot(1));
  assert.equal(published.status, 200, JSON.stringify(published.body));
  const single = await get(base, "/api/v1/flags/theme?environment=production&userId=u1&plan=pro");
  assert.equal(single.status, 200);
  assert.equal(single.json.value, "dark");
  const ofrep = await post(base, "/ofrep/v1/evaluate/flags/static-on", { context: { environment: "production" } });
  assert.equal(ofrep.status, 200);
  assert.equal(ofrep.json.value, true);
  const stale = await publish(base, fixtureSnapshot(0));
  assert.equal(stale.status, 409);
});
