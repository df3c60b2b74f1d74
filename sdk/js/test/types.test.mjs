// The package's type declarations, as an application written in TypeScript sees them: an ES
// module and a CommonJS module (types/consumer.mts, .cts) that use the public API, checked by
// tsc with Node's module resolution (package exports, the `import`/`require` conditions). The
// `@ts-expect-error` lines fail the check if the types turn into `any`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

test("the declarations type-check an ES module and a CommonJS consumer", () => {
  const tsc = fileURLToPath(new URL("../../../node_modules/typescript/bin/tsc", import.meta.url));
  const project = fileURLToPath(new URL("./types/tsconfig.json", import.meta.url));
  const run = spawnSync(process.execPath, [tsc, "-p", project], { encoding: "utf8", timeout: 120_000 });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
});
