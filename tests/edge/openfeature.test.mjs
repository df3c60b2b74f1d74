// Unmodified OpenFeature OFREP providers against the compiled worker: the server provider
// (single-flag route, dynamic context) and the web provider (bulk route, ETag polling).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { OFREPProvider } from "@openfeature/ofrep-provider";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
import { OpenFeature as ServerOpenFeature } from "@openfeature/server-sdk";
import { OpenFeature as WebOpenFeature } from "@openfeature/web-sdk";

import { CLIENT_KEY, fixtureSnapshot, publish, startWorker } from "./harness.mjs";

let worker;
before(async () => {
  worker = await startWorker({ requireClientKeys: true });
  assert.equal((await publish(worker.base, fixtureSnapshot(1))).status, 200);
});
after(async () => {
  await ServerOpenFeature.close();
  await WebOpenFeature.close();
  await worker.close();
});

describe("@openfeature/ofrep-provider (server SDK)", () => {
  let client;
  before(async () => {
    await ServerOpenFeature.setProviderAndWait(
      "edge",
      new OFREPProvider({ baseUrl: worker.base, headers: { Authorization: `Bearer ${CLIENT_KEY}` } }),
    );
    client = ServerOpenFeature.getClient("edge");
  });

  const context = { targetingKey: "u1", plan: "pro", country: "US" };

  test("evaluates a boolean flag with reason, variant and metadata", async () => {
    const details = await client.getBooleanDetails("targeted", false, context);
    assert.equal(details.value, true);
    assert.equal(details.reason, "TARGETING_MATCH");
    assert.equal(details.variant, "on");
    assert.deepEqual(details.flagMetadata, { flagVersion: 3, reasonDetail: "user-targeted" });
    assert.equal(details.errorCode, undefined);
    assert.equal(await client.getBooleanValue("targeted", true, { ...context, targetingKey: "u2" }), false);
    assert.equal(await client.getBooleanValue("kill", true, context), false);
  });

  test("evaluates string, number and object flags", async () => {
    const theme = await client.getStringDetails("theme", "none", context);
    assert.equal(theme.value, "dark");
    assert.equal(theme.variant, "dark");
    assert.equal(await client.getStringValue("theme", "none", { ...context, plan: "free" }), "light");
    assert.equal(await client.getNumberValue("page-size", 0, context), 50);
    const checkout = await client.getObjectDetails("checkout", {}, context);
    assert.deepEqual(checkout.value, { flow: "v2", steps: ["cart", "pay"] });
    assert.equal(checkout.reason, "TARGETING_MATCH");
  });

  test("maps the worker's errors to OpenFeature error codes and the code default", async () => {
    const missing = await client.getBooleanDetails("nope", true, context);
    assert.equal(missing.value, true);
    assert.equal(missing.reason, "ERROR");
    assert.equal(missing.errorCode, "FLAG_NOT_FOUND");
    const noKey = await client.getBooleanDetails("rollout", true, {});
    assert.equal(noKey.value, true);
    assert.equal(noKey.errorCode, "TARGETING_KEY_MISSING");
    const wrongType = await client.getBooleanDetails("theme", false, context);
    assert.equal(wrongType.value, false);
    assert.equal(wrongType.errorCode, "TYPE_MISMATCH");
  });

  test("a wrong client key yields the code default with an error", async () => {
    await ServerOpenFeature.setProviderAndWait(
      "bad-key",
      new OFREPProvider({
        baseUrl: worker.base,
        headers: { Authorization: "Bearer efk.production.ffffffffffffffffffffffffffffffff" },
      }),
    );
    const details = await ServerOpenFeature.getClient("bad-key").getBooleanDetails("static-on", false, context);
    assert.equal(details.value, false);
    assert.equal(details.reason, "ERROR");
    assert.equal(details.errorCode, "GENERAL");
  });
});

describe("@openfeature/ofrep-web-provider (web SDK, bulk + ETag)", () => {
  const statuses = [];
  const recordingFetch = async (request, init) => {
    const response = await fetch(request, init);
    statuses.push(response.status);
    return response;
  };
  let provider;
  let client;
  before(async () => {
    provider = new OFREPWebProvider({
      baseUrl: worker.base,
      headers: [["Authorization", `Bearer ${CLIENT_KEY}`]],
      cacheMode: "disabled",
      pollInterval: 0,
      fetchImplementation: recordingFetch,
    });
    await WebOpenFeature.setContext("web", { targetingKey: "u1", plan: "pro" });
    await WebOpenFeature.setProviderAndWait("web", provider);
    client = WebOpenFeature.getClient("web");
  });

  test("resolves every type from one bulk evaluation", () => {
    assert.deepEqual(statuses, [200]);
    assert.equal(client.getBooleanValue("static-on", false), true);
    assert.equal(client.getBooleanValue("targeted", false), true);
    assert.equal(client.getStringValue("theme", "none"), "dark");
    assert.equal(client.getNumberValue("page-size", 0), 50);
    assert.deepEqual(client.getObjectValue("checkout", {}), { flow: "v1" });
    assert.equal(client.getBooleanDetails("nope", true).errorCode, "FLAG_NOT_FOUND");
  });

  test("a context change with the same targeting key re-fetches and sees the new answers", async () => {
    // The provider sends its last ETag with the new context; the worker's tag covers the
    // context, so it must answer 200 with new values, not 304.
    await WebOpenFeature.setContext("web", { targetingKey: "u1", plan: "free", country: "US" });
    assert.deepEqual(statuses, [200, 200]);
    assert.equal(client.getStringValue("theme", "none"), "light");
    assert.deepEqual(client.getObjectValue("checkout", {}), { flow: "v2", steps: ["cart", "pay"] });
  });

  test("re-sending an unchanged context is answered 304 and keeps the values", async () => {
    await WebOpenFeature.setContext("web", { targetingKey: "u1", plan: "free", country: "US" });
    assert.deepEqual(statuses, [200, 200, 304]);
    assert.equal(client.getStringValue("theme", "none"), "light");
  });
});
