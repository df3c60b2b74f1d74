// Type-checked by ../types.test.mjs as an application's ES module would use the package.
import { OpenFeature } from "@openfeature/server-sdk";

import { Context, EdgeflagsProvider, Engine, type Evaluation, type EdgeflagsProviderOptions } from "@edgeflags/sdk";
import { bucket } from "@edgeflags/sdk/engine";

const options: EdgeflagsProviderOptions = { url: "http://127.0.0.1:8787", serverKey: "efs.production.0123456789abcdef0123456789abcdef" };
await OpenFeature.setProviderAndWait(new EdgeflagsProvider(options));

const engine: Engine = Engine.load('{"environment":"dev","version":1,"flags":[],"segments":[]}');
const context = new Context({ targetingKey: "user-1", country: "NL", signedUp: new Date() });
const evaluation: Evaluation = engine.evaluate("checkout", context, { type: "boolean", now: Date.now() });
const on: boolean = evaluation.enabled;
const reason: "STATIC" | "TARGETING_MATCH" | "SPLIT" | "DEFAULT" | "DISABLED" | "ERROR" = evaluation.reason;
const all: Evaluation[] = engine.evaluateAll(context);
const position: number = engine.indexOf("checkout");
const b: number = bucket("salt", "user-1");
// @ts-expect-error the typed resolution names one of four types
engine.evaluate("checkout", context, { type: "date" });
// @ts-expect-error a context's targeting key is a string
new Context({ targetingKey: 42 });
export { on, reason, all, position, b };
