// The package from CommonJS (`require`), as a Node service that is not an ES module loads it:
// the CommonJS build of the layer over the same nodejs wasm glue.
const assert = require("node:assert/strict");
const { test } = require("node:test");

const { Context, EdgeflagsProvider, Engine } = require("@edgeflags/sdk");
const engineOnly = require("@edgeflags/sdk/engine");

test("require() gives the engine and the provider, and the engine evaluates", () => {
  assert.equal(typeof EdgeflagsProvider, "function");
  assert.equal(engineOnly.Engine, Engine);
  const engine = Engine.load(
    JSON.stringify({
      environment: "cjs",
      version: 4,
      flags: [{ flagKey: "on-for-vip", enabled: true, version: 2, targetingRules: { userIds: ["vip"] } }],
      segments: [],
    }),
  );
  const vip = new Context({ targetingKey: "vip" });
  assert.deepEqual(engine.evaluate("on-for-vip", vip), {
    flagKey: "on-for-vip",
    value: true,
    variant: "on",
    reason: "TARGETING_MATCH",
    detail: "user-targeted",
    enabled: true,
    errorCode: null,
    errorMessage: null,
    version: 2,
  });
  engine.free();
  vip.free();
});
