// Run by provider.test.mjs as a process of its own: initialise a provider against the fake edge
// at argv[2], evaluate, let the event stream open, close OpenFeature, and then do nothing. The
// process must exit by itself: a timer, socket or stream left running would keep it alive.
import { OpenFeature } from "@openfeature/server-sdk";

import { EdgeflagsProvider } from "@edgeflags/sdk";

const [url, serverKey] = process.argv.slice(2);
const quiet = { error() {}, warn() {}, info() {}, debug() {} };
await OpenFeature.setProviderAndWait(new EdgeflagsProvider({ url, serverKey, logger: quiet, pollIntervalMs: 50 }));
const colour = await OpenFeature.getClient().getStringValue("colour", "none", {});
await new Promise((resolve) => setTimeout(resolve, 300));
await OpenFeature.close();
process.stdout.write(`served ${colour}, closed\n`);
