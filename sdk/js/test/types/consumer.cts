// Type-checked by ../types.test.mjs as an application's CommonJS module would use the package.
import { Context, EdgeflagsProvider, Engine } from "@edgeflags/sdk";
import type { Evaluation } from "@edgeflags/sdk/engine";

const provider = new EdgeflagsProvider({ url: "http://127.0.0.1:8787", environment: "dev", pollIntervalMs: 5_000 });
const engine = Engine.load(new Uint8Array());
const evaluation: Evaluation = engine.evaluate(0, new Context({}));
// @ts-expect-error Engine.load takes text or bytes
Engine.load(42);
export = { provider, evaluation };
