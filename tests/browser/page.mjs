// The page under test: an unmodified @openfeature/ofrep-web-provider in @openfeature/web-sdk,
// bundled by esbuild and driven by tests/browser/realtime.test.mjs. No polling: the provider
// learns of changes only through the OFREP event stream the bulk answer advertises.
import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";

window.changes = [];

/** Sets the provider up against `baseUrl` with client key `apiKey`; resolves once it is ready. */
window.startProvider = async ({ baseUrl, apiKey, flag }) => {
  const provider = new OFREPWebProvider({
    baseUrl,
    headers: [["X-API-Key", apiKey]],
    pollInterval: 0,
  });
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (details) => {
    window.changes.push({ at: performance.now(), flags: details?.flagsChanged ?? null });
  });
  await OpenFeature.setContext({ targetingKey: "browser-user" });
  await OpenFeature.setProviderAndWait(provider);
  window.client = OpenFeature.getClient();
  return window.client.getBooleanValue(flag, false);
};

/** The flag's value now, as the application would read it. */
window.value = (flag) => window.client.getBooleanValue(flag, false);
