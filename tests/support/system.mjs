// The whole system as `scripts/dev` brings it up (PostgreSQL, the origin, the worker under
// wrangler dev with local KV, demo data), on free loopback ports, in a throw-away database and
// directory, for the tests that drive it from outside (soak, browser). `stop()` ends what it
// started (the scripts/dev process group, by PID) and drops the database.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const STARTUP_LIMIT_MS = 15 * 60 * 1000; // a cold build of origin + worker on 2 cores
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port on 127.0.0.1 that nothing listens on. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `sql` run with psql against database `db` (trust auth on 127.0.0.1), its output trimmed. */
export function psql(db, sql) {
  return execFileSync("psql", [`postgres://postgres@127.0.0.1:5432/${db}`, "-tAqc", sql], {
    stdio: ["ignore", "pipe", "pipe"],
  })
    .toString()
    .trim();
}

/**
 * Starts `scripts/dev` with `env` added to its environment; resolves once it reports
 * "edgeflags is running." with `{ origin, edge, token, database, admin, stop }`, where
 * `admin(method, path, body, headers)` calls the origin's admin API as the dev admin, `process` is the
 * scripts/dev child and `output()` what it printed.
 */
export async function startSystem(name, env = {}) {
  const database = `edgeflags_${name}_${process.pid}`;
  const devDir = mkdtempSync(join(tmpdir(), `edgeflags-${name}-`));
  const [originPort, edgePort] = [await freePort(), await freePort()];
  const origin = `http://127.0.0.1:${originPort}`;
  const edge = `http://127.0.0.1:${edgePort}`;
  const dev = spawn(join(ROOT, "scripts", "dev"), [], {
    cwd: ROOT,
    env: {
      ...process.env,
      EDGEFLAGS_DEV_DIR: devDir,
      EDGEFLAGS_ORIGIN_PORT: String(originPort),
      EDGEFLAGS_EDGE_PORT: String(edgePort),
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const stop = async () => {
    if (dev.exitCode === null) {
      dev.kill("SIGTERM");
      for (let i = 0; i < 50 && dev.exitCode === null; i++) await sleep(100);
    }
    try {
      psql("postgres", `drop database if exists "${database}" with (force)`);
    } catch {
      /* best effort */
    }
    rmSync(devDir, { recursive: true, force: true });
  };
  try {
    await new Promise((resolve, reject) => {
      const onData = (chunk) => {
        output += chunk;
        if (output.includes("edgeflags is running.")) resolve();
      };
      dev.stdout.on("data", onData);
      dev.stderr.on("data", onData);
      dev.on("exit", (code) => reject(new Error(`scripts/dev exited with ${code}:\n${output.slice(-4000)}`)));
      setTimeout(() => reject(new Error(`scripts/dev not ready in time:\n${output.slice(-4000)}`)), STARTUP_LIMIT_MS).unref();
    });
  } catch (error) {
    await stop();
    throw error;
  }
  const token = readFileSync(join(devDir, "admin-token"), "utf8").trim();
  // Changes confirm the environment they change (`?environment=`, or the body's `environment`
  // for a rollback, `to` for a copy), as the dashboard does after asking: `production` is
  // protected, and toggling a flag there needs X-Edgeflags-Confirm. Tests of that rule itself
  // are the origin's (origin/tests/dashboard_api.rs).
  const admin = async (method, path, body, headers = {}) => {
    const named = new URL(path, origin).searchParams.get("environment") ?? body?.to ?? body?.environment;
    const confirm = named && method !== "GET" ? { "x-edgeflags-confirm": named } : {};
    const response = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...confirm, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
  };
  return { origin, edge, token, database, admin, stop, process: dev, output: () => output };
}
