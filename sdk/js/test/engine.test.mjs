// The low-level API's own behaviour, beyond what evaluator-core decides (the conformance and
// differential tests cover that): errors of the API, the default time, frozen results.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Context, Engine, SnapshotError } from "@edgeflags/sdk/engine";

const snapshot = JSON.stringify({
  environment: "dev",
  version: 9,
  generatedAt: "2026-11-24T10:00:00Z",
  flags: [
    {
      flagKey: "promo",
      enabled: true,
      version: 3,
      variations: [
        { key: "on", value: { banner: "sale", colours: ["red"] } },
        { key: "off", value: { banner: "none", colours: [] } },
      ],
      defaultVariation: "off",
      onVariation: "on",
      offVariation: "off",
      targetingRules: { percentage: 0 },
      overrides: [
        { userId: "expired", variation: "on", expiresAt: "2000-01-01T00:00:00Z" },
        { userId: "current", variation: "on", expiresAt: "2999-01-01T00:00:00Z" },
      ],
    },
  ],
  segments: [],
});

test("the load reports the snapshot's identity", () => {
  const engine = Engine.load(snapshot);
  assert.deepEqual([engine.environment, engine.version, engine.generatedAt, engine.flagKeys, engine.warnings], ["dev", 9, "2026-11-24T10:00:00Z", ["promo"], []]);
  assert.equal(engine.indexOf("promo"), 0);
  assert.equal(engine.indexOf("other"), -1);
  assert.equal(engine.has("promo"), true);
});

test("without a time, evaluation uses the current one: an expired override no longer applies, a current one does", () => {
  const engine = Engine.load(snapshot);
  assert.equal(engine.evaluate("promo", new Context({ targetingKey: "expired" })).detail, "default");
  assert.equal(engine.evaluate("promo", new Context({ targetingKey: "current" })).detail, "user-override");
  // At a time before the first expiry, both apply.
  assert.equal(engine.evaluate("promo", new Context({ targetingKey: "expired" }), { now: Date.parse("1999-06-01T00:00:00Z") }).detail, "user-override");
});

test("results and served values are frozen, so that no caller changes what the next one gets", () => {
  const engine = Engine.load(snapshot);
  const result = engine.evaluate("promo", new Context({ targetingKey: "current" }));
  assert.ok(Object.isFrozen(result));
  assert.ok(Object.isFrozen(result.value));
  assert.throws(() => {
    "use strict";
    result.value.colours.push("blue");
  }, TypeError);
  assert.deepEqual(engine.evaluate("promo", new Context({ targetingKey: "current" })).value, { banner: "sale", colours: ["red"] });
});

test("what is not a snapshot, not a context or not a position is refused with a typed error", () => {
  assert.throws(() => Engine.load("{ not json"), SnapshotError);
  assert.throws(() => Engine.load(JSON.stringify({ flags: [] })), SnapshotError);
  assert.throws(() => new Context({ targetingKey: 42 }), TypeError);
  assert.throws(() => new Context([]), TypeError);
  const engine = Engine.load(snapshot);
  assert.throws(() => engine.evaluate(5, new Context({})), RangeError);
});

test("a snapshot with invalid flags loads, lists them, and serves them as PARSE_ERROR", () => {
  const engine = Engine.load(
    JSON.stringify({ environment: "dev", version: 1, flags: [{ flagKey: "broken", enabled: true, version: 1, targetingRules: { percentage: "lots" } }], segments: [] }),
  );
  assert.equal(engine.warnings.length, 1);
  assert.match(engine.warnings[0], /^flags\[0\]/);
  const result = engine.evaluate("broken", new Context({}));
  assert.deepEqual([result.reason, result.errorCode], ["ERROR", "PARSE_ERROR"]);
  assert.ok(result.errorMessage.length > 0);
});
