// Run by bundler.test.mjs under `node --experimental-wasm-modules`: the `bundler` target's glue
// imported as bundlers do (the .wasm as an ES module, ESM integration of WebAssembly), and one
// evaluation through it. Prints the packed result, the served slot and the flag keys.
const { Context, Engine } = await import(process.argv[2]);
const engine = Engine.fromString(
  JSON.stringify({ environment: "bundler", version: 1, flags: [{ flagKey: "f", enabled: true, version: 3 }], segments: [] }),
);
const context = new Context(JSON.stringify({ targetingKey: "u" }));
process.stdout.write(JSON.stringify([engine.evaluate(context, 0, 0, 0), JSON.parse(engine.slot(0)), JSON.parse(engine.flagKeys())]));
