// The `bundler` target's glue (pkg/wasm/edgeflags_sdk_wasm.js), which the package's `#wasm` import serves to
// bundlers: its glue imports the .wasm as an ES module, which Node runs with
// --experimental-wasm-modules (the same ESM integration webpack and Vite's wasm plugins provide).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

test("the bundler target's glue loads its .wasm as an ES module and evaluates", () => {
  const entry = createRequire(import.meta.url).resolve("@edgeflags/sdk");
  const glue = join(dirname(dirname(dirname(entry))), "wasm/edgeflags_sdk_wasm.js");
  const script = fileURLToPath(new URL("./support/bundler-glue.mjs", import.meta.url));
  const run = spawnSync(process.execPath, ["--experimental-wasm-modules", "--no-warnings", script, glue], { encoding: "utf8", timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  // STATIC (0), detail static (0), no error, enabled (bit 10), slot 0: the on variation of version 3.
  assert.deepEqual(JSON.parse(run.stdout), [1 << 10, ["on", true, 3], ["f"]]);
});
