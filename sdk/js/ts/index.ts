// @edgeflags/sdk: the OpenFeature server provider (EdgeflagsProvider) and the low-level engine
// it evaluates with (Engine, Context). `@edgeflags/sdk/engine` is the engine alone, for code
// that does not use OpenFeature.
export * from "./engine.js";
export { EdgeflagsProvider, type EdgeflagsProviderOptions } from "./provider.js";
