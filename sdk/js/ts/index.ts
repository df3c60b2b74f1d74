// @edgeflags/sdk: in-process evaluation (the low-level Engine API) and the OpenFeature server
// provider over it. `@edgeflags/sdk/engine` is the engine alone, without OpenFeature.
export * from "./engine.js";
