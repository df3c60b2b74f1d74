// The package against native evaluator-core on a generated snapshot and generated contexts:
// `cargo run -p evaluation-api --example differential -- evaluations FLAGS SEGMENTS CONTEXTS`
// writes the snapshot and evaluator-core's own answers (every flag per context, and a few flags
// under each typed resolution); the package must give the same, field for field, through
// evaluateAll, through evaluate by key and by position, and from text and from bytes.
//
// EDGEFLAGS_SDK_DIFFERENTIAL_JSON names a file written beforehand by that command; without it
// the test runs cargo itself (CARGO_TARGET_DIR is honoured).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Context, Engine } from "@edgeflags/sdk/engine";

const FLAGS = 400;
const SEGMENTS = 80;
const CONTEXTS = 120;

function nativeAnswers() {
  const file = process.env.EDGEFLAGS_SDK_DIFFERENTIAL_JSON;
  const text = file
    ? readFileSync(file, "utf8")
    : execFileSync(
        "cargo",
        ["run", "--quiet", "-p", "evaluation-api", "--example", "differential", "--", "evaluations", `${FLAGS}`, `${SEGMENTS}`, `${CONTEXTS}`],
        { cwd: new URL("../../../", import.meta.url), encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 15 * 60 * 1000, stdio: ["ignore", "pipe", "inherit"] },
      );
  return JSON.parse(text);
}

/** A native REST flag result in the package's shape. */
function expected(native) {
  return {
    flagKey: native.flagKey,
    value: native.value,
    variant: native.variant ?? null,
    reason: native.openFeatureReason,
    detail: native.reason,
    enabled: native.enabled,
    errorCode: native.errorCode ?? null,
    errorMessage: native.errorMessage ?? null,
    version: native.version ?? null,
  };
}

const answers = nativeAnswers();

test("the generated snapshot loads without warnings, from text and from bytes alike", () => {
  const fromText = Engine.load(answers.snapshot);
  const fromBytes = Engine.load(new TextEncoder().encode(answers.snapshot));
  assert.deepEqual(fromText.warnings, []);
  assert.equal(fromText.flagKeys.length, FLAGS);
  assert.deepEqual(fromBytes.flagKeys, fromText.flagKeys);
  assert.equal(fromBytes.version, fromText.version);
  fromText.free();
  fromBytes.free();
});

test("every flag for every generated context equals native, through evaluateAll, by key and by position", () => {
  const engine = Engine.load(answers.snapshot);
  const now = answers.nowMs;
  let compared = 0;
  for (const item of answers.contexts) {
    const context = new Context(item.context);
    const want = item.all.map(expected);
    assert.deepStrictEqual(engine.evaluateAll(context, { now }), want, `context ${item.n}: evaluateAll`);
    for (const [position, native] of want.entries()) {
      assert.deepStrictEqual(engine.evaluate(native.flagKey, context, { now }), native, `context ${item.n}: ${native.flagKey} by key`);
      assert.deepStrictEqual(engine.evaluate(position, context, { now }), native, `context ${item.n}: ${native.flagKey} by position`);
      compared += 3;
    }
    context.free();
  }
  assert.equal(compared, 3 * FLAGS * CONTEXTS);
  engine.free();
});

test("typed resolution equals native expect_type for every generated context", () => {
  const engine = Engine.load(answers.snapshot);
  let mismatches = 0;
  for (const item of answers.contexts) {
    const context = new Context(item.context);
    for (const { type, result } of item.typed) {
      const native = expected(result);
      const actual = engine.evaluate(native.flagKey, context, { type, now: answers.nowMs });
      assert.deepStrictEqual(actual, native, `context ${item.n}: ${native.flagKey} as ${type}`);
      if (native.errorCode === "TYPE_MISMATCH") mismatches++;
    }
    context.free();
  }
  // The generated flags serve booleans, strings, numbers and objects: some requests mismatch.
  assert.ok(mismatches > 0);
  engine.free();
});

test("one context serves two engines (contexts are independent of snapshots)", () => {
  const first = Engine.load(answers.snapshot);
  const second = Engine.load(answers.snapshot);
  const item = answers.contexts[0];
  const context = new Context(item.context);
  const want = item.all.map(expected);
  assert.deepStrictEqual(first.evaluateAll(context, { now: answers.nowMs }), want);
  first.free();
  assert.deepStrictEqual(second.evaluateAll(context, { now: answers.nowMs }), want);
  second.free();
  context.free();
});
