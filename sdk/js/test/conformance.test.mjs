// The whole conformance suite (tests/conformance/*.json, format in its README.md) through the
// built package's public API, judged exactly as evaluator-core/tests/conformance_common/mod.rs
// judges the native and wasm32 runs: every pinned field equal as JSON, errorCode absent unless
// pinned or ERROR, errorMessage present exactly when the reason is ERROR, and the snapshot's
// warnings matched by prefix against expectedErrors.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { isDeepStrictEqual } from "node:util";

import { bucket, Context, Engine } from "@edgeflags/sdk/engine";

const directory = new URL("../../../tests/conformance/", import.meta.url);
const files = readdirSync(directory).filter((name) => name.endsWith(".json")).sort();
const EXPECTED_FIELDS = ["value", "variant", "reason", "detail", "enabled", "errorCode", "version"];

test("the suite has every file the README lists", () => {
  assert.ok(files.length >= 23, `only ${files.length} files`);
});

for (const file of files) {
  test(`conformance ${file}`, () => {
    const doc = JSON.parse(readFileSync(new URL(file, directory), "utf8"));
    const failures = [];
    let checks = 0;
    for (const [i, vector] of (doc.bucketVectors ?? []).entries()) {
      checks++;
      const got = bucket(vector.salt, vector.value);
      if (got !== vector.bucket) {
        failures.push(`bucketVectors[${i}]: bucket(${vector.salt}, ${vector.value}) expected ${vector.bucket}, got ${got}`);
      }
    }
    for (const [i, item] of (doc.validationCases ?? []).entries()) {
      checks++;
      const engine = Engine.load(JSON.stringify(item.snapshot));
      const problems = compareErrors(item.expectedErrors, engine.warnings);
      engine.free();
      if (problems.length > 0) {
        failures.push(`validationCases[${i}] ${item.name}: ${problems.join("; ")}`);
      }
    }
    if (doc.snapshot !== undefined) {
      const engine = Engine.load(JSON.stringify(doc.snapshot));
      const problems = compareErrors(doc.expectedErrors ?? [], engine.warnings);
      if (problems.length > 0) {
        failures.push(`snapshot validation: ${problems.join("; ")}`);
      }
      for (const [i, item] of doc.cases.entries()) {
        checks++;
        const problem = evaluateCase(engine, item, doc.now);
        if (problem !== null) {
          failures.push(`cases[${i}] ${item.name}: ${problem}`);
        }
      }
      engine.free();
    }
    assert.ok(checks > 0, "a file with no checks");
    assert.deepEqual(failures, [], `${failures.length} of ${checks} checks failed`);
  });
}

/** Every expected entry starts some reported line, and every reported line starts with some entry. */
function compareErrors(expected, actual) {
  const problems = [];
  for (const e of expected) {
    if (!actual.some((a) => a.startsWith(e))) problems.push(`expected an error starting with ${JSON.stringify(e)}`);
  }
  for (const a of actual) {
    if (!expected.some((e) => a.startsWith(e))) problems.push(`unexpected error ${JSON.stringify(a)}`);
  }
  return problems;
}

function evaluateCase(engine, item, fileNow) {
  const now = Date.parse(item.now ?? fileNow);
  assert.ok(Number.isFinite(now), `unreadable now in ${item.name}`);
  const context = new Context(item.context);
  const options = item.expectType === undefined ? { now } : { now, type: item.expectType };
  const actual = engine.evaluate(item.flagKey, context, options);
  context.free();
  const diffs = [];
  for (const field of EXPECTED_FIELDS) {
    if (field in item.expected && !isDeepStrictEqual(actual[field], item.expected[field])) {
      diffs.push(`${field}: expected ${JSON.stringify(item.expected[field])}, got ${JSON.stringify(actual[field])}`);
    }
  }
  const isError = actual.reason === "ERROR";
  if (!isError && actual.errorCode !== null && !("errorCode" in item.expected)) {
    diffs.push(`errorCode: expected none, got ${actual.errorCode}`);
  }
  const hasMessage = typeof actual.errorMessage === "string" && actual.errorMessage.length > 0;
  if (isError !== hasMessage) {
    diffs.push(`errorMessage: present iff reason is ERROR, got ${JSON.stringify(actual.errorMessage)}`);
  }
  return diffs.length === 0 ? null : `${diffs.join("; ")} (actual ${JSON.stringify(actual)})`;
}
