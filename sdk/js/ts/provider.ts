// The OpenFeature server provider: the environment's snapshot from `GET {url}/sdk/v1/snapshot`
// (docs/sdk.md), evaluated in-process; kept current by the event stream the snapshot's
// `X-Edgeflags-Event-Stream` header names, or by polling with the ETag when there is none.
//
// Whatever goes wrong after the first snapshot (the network, the server, a snapshot that does
// not compile), the last good snapshot keeps answering; the events say what happened.
import {
  ErrorCode,
  GeneralError,
  type EvaluationContext,
  type FlagMetadata,
  type Hook,
  type JsonValue,
  type Logger,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  ProviderFatalError,
  type ResolutionDetails,
  StandardResolutionReasons,
} from "@openfeature/server-sdk";

import { changedFlags } from "./diff.js";
import { Context, Engine, type Evaluation, type ValueType } from "./engine.js";
import { SseParser } from "./sse.js";
import { messageOf } from "./util.js";

export interface EdgeflagsProviderOptions {
  /** The edge (or origin) base URL, e.g. `https://flags.example.com`. */
  readonly url: string;
  /** The environment's server key, `efs.<environment>.<32 hex>` (secret: keep it on the server). */
  readonly serverKey?: string;
  /** Local development with keys off only: the environment to download, instead of a key. */
  readonly environment?: string;
  /** Follow the event stream when the server names one (default true); false: poll only. */
  readonly stream?: boolean;
  /** How often to poll when there is no event stream, or while it is down (default 30 s). */
  readonly pollIntervalMs?: number;
  /** After how long without reaching the server the provider reports Stale (default 60 s). */
  readonly staleAfterMs?: number;
  /** Time limit of one snapshot request (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** A stream silent this long is reconnected (default 60 s; the server sends a heartbeat every 25 s). */
  readonly streamIdleTimeoutMs?: number;
  /** The first delay before reconnecting a failed stream or retrying a failed poll, doubled up to the maximum (default 1 s). */
  readonly retryDelayMs?: number;
  /** The longest such delay (default 30 s). */
  readonly maxRetryDelayMs?: number;
  /** How many distinct evaluation contexts to keep converted (default 1,000). */
  readonly contextCacheSize?: number;
  /** The fetch implementation (default: the global one). */
  readonly fetch?: typeof globalThis.fetch;
  /** Where warnings and errors go (default: the console). */
  readonly logger?: Logger;
}

/** The snapshot endpoint refused the key (401/403): retrying cannot help. */
class KeyRefused extends Error {}

/** The snapshot endpoint answered with an error status (and maybe how long to wait: 429, 503). */
class SnapshotRefused extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`the snapshot endpoint answered ${status}`);
  }
}

/** The stream answered with an error status. */
class StreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`event stream answered ${status}`);
  }
}

type Status = "not-ready" | "ready" | "stale" | "error" | "fatal" | "closed";

const CATCH_UP_DELAYS_MS = [250, 500, 1_000, 2_000, 4_000];

export class EdgeflagsProvider implements Provider {
  readonly metadata = { name: "edgeflags" } as const;
  readonly runsOn = "server" as const;
  readonly events = new OpenFeatureEventEmitter();
  readonly hooks: Hook[] = [];

  readonly #snapshotUrl: string;
  readonly #base: string;
  readonly #serverKey: string | undefined;
  readonly #keyEnvironment: string | undefined;
  readonly #followStream: boolean;
  readonly #pollMs: number;
  readonly #staleMs: number;
  readonly #timeoutMs: number;
  readonly #idleMs: number;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #cacheSize: number;
  readonly #fetch: typeof globalThis.fetch;
  readonly #logger: Logger;

  #status: Status = "not-ready";
  #initializing = false;
  #engine: Engine | undefined;
  /** The current snapshot's bytes, to tell which flags the next one changes. */
  #bytes: Uint8Array | undefined;
  #etag: string | undefined;
  /** The ETag of a snapshot that did not compile: not compiled (nor reported) again. */
  #refusedEtag: string | undefined;
  #streamUrl: string | undefined;
  #streamLoop: Promise<void> | undefined;
  #streamConnected = false;
  readonly #abort = new AbortController();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #pollDelayMs: number;
  #staleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastContact = 0;
  #inflight: Promise<void> | undefined;
  #again = false;
  #full = false;
  /** The newest version an event announced. */
  #announced = 0;
  #catchUps = 0;
  readonly #contexts = new Map<string, Context>();

  constructor(options: EdgeflagsProviderOptions) {
    if (!options.url) throw new TypeError("EdgeflagsProvider needs the url of the edge or origin");
    if (!options.serverKey && !options.environment) {
      throw new TypeError("EdgeflagsProvider needs a serverKey (or, with keys off, an environment)");
    }
    this.#base = options.url;
    const snapshot = new URL("sdk/v1/snapshot", options.url.endsWith("/") ? options.url : `${options.url}/`);
    if (!options.serverKey && options.environment) snapshot.searchParams.set("environment", options.environment);
    this.#snapshotUrl = snapshot.href;
    this.#serverKey = options.serverKey;
    this.#keyEnvironment = options.serverKey?.match(/^efs\.(.+)\.[0-9a-f]{32}$/)?.[1] ?? options.environment;
    this.#followStream = options.stream ?? true;
    this.#pollMs = options.pollIntervalMs ?? 30_000;
    this.#staleMs = options.staleAfterMs ?? 60_000;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#idleMs = options.streamIdleTimeoutMs ?? 60_000;
    this.#retryMs = options.retryDelayMs ?? 1_000;
    this.#maxRetryMs = options.maxRetryDelayMs ?? 30_000;
    this.#pollDelayMs = this.#pollMs;
    this.#cacheSize = options.contextCacheSize ?? 1_000;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#logger = options.logger ?? console;
  }

  /** The snapshot being served, for the low-level API ({@link Engine}); undefined before the first one. */
  get engine(): Engine | undefined {
    return this.#engine;
  }

  /** Fetches the first snapshot. Rejects when it cannot (the provider keeps trying, and emits Ready once it has one). */
  async initialize(): Promise<void> {
    if (this.#status !== "not-ready") return;
    this.#initializing = true;
    try {
      await this.#fetchSnapshot(false);
      if (this.#engine === undefined) {
        throw new Error("the first snapshot did not compile");
      }
      this.#status = "ready";
    } catch (error) {
      if (error instanceof KeyRefused) {
        this.#status = "fatal";
        throw new ProviderFatalError(error.message);
      }
      this.#status = "error";
      this.#logger.error(`edgeflags: no snapshot yet (${messageOf(error)}); retrying`);
      this.#pollDelayMs = this.#retryMs;
      throw new GeneralError(`edgeflags: no snapshot yet: ${messageOf(error)}`);
    } finally {
      this.#initializing = false;
      this.#follow();
    }
  }

  /** Stops the stream, polling and every timer; the provider answers nothing afterwards. */
  async onClose(): Promise<void> {
    this.#status = "closed";
    this.#abort.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#pollTimer = undefined;
    this.#staleTimer = undefined;
    await this.#streamLoop;
    await this.#inflight?.catch(() => undefined);
    this.#engine?.free();
    this.#engine = undefined;
    for (const context of this.#contexts.values()) context.free();
    this.#contexts.clear();
  }

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, "boolean"));
  }

  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext): Promise<ResolutionDetails<string>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, "string"));
  }

  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext): Promise<ResolutionDetails<number>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, "number"));
  }

  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T, context: EvaluationContext): Promise<ResolutionDetails<T>> {
    return Promise.resolve(this.resolve(flagKey, defaultValue, context, "object"));
  }

  /**
   * The synchronous resolution behind the OpenFeature methods: local, no I/O. An `ERROR`
   * result carries the default value, as OpenFeature expects.
   */
  resolve<T>(flagKey: string, defaultValue: T, context: EvaluationContext, type: ValueType): ResolutionDetails<T> {
    const engine = this.#engine;
    if (engine === undefined) {
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: ErrorCode.PROVIDER_NOT_READY,
        errorMessage: "edgeflags: no snapshot yet",
      };
    }
    let converted: Context;
    try {
      converted = this.#context(context);
    } catch (error) {
      return { value: defaultValue, reason: StandardResolutionReasons.ERROR, errorCode: ErrorCode.INVALID_CONTEXT, errorMessage: messageOf(error) };
    }
    const evaluation = engine.evaluate(flagKey, converted, { type });
    if (evaluation.reason === "ERROR") {
      return {
        value: defaultValue,
        reason: StandardResolutionReasons.ERROR,
        errorCode: (evaluation.errorCode as ErrorCode | null) ?? ErrorCode.GENERAL,
        errorMessage: evaluation.errorMessage ?? "",
        flagMetadata: metadataOf(evaluation),
      };
    }
    return {
      value: evaluation.value as T,
      variant: evaluation.variant ?? undefined,
      reason: evaluation.reason,
      flagMetadata: metadataOf(evaluation),
    };
  }

  /** The converted form of an OpenFeature context, kept for the next evaluation of an equal one. */
  #context(context: EvaluationContext): Context {
    const key = JSON.stringify(context);
    let converted = this.#contexts.get(key);
    if (converted === undefined) {
      converted = new Context(context);
      if (this.#contexts.size >= this.#cacheSize) {
        // The oldest entry goes (insertion order): cheap, and a busy context comes back at once.
        const [oldestKey, oldest] = this.#contexts.entries().next().value as [string, Context];
        this.#contexts.delete(oldestKey);
        oldest.free();
      }
      this.#contexts.set(key, converted);
    }
    return converted;
  }

  // --- keeping the snapshot current -------------------------------------------------------

  /** After initialize: the stream if the server names one, else (and while it is down) polling. */
  #follow(): void {
    if (this.#closed || this.#status === "fatal") return;
    if (this.#followStream && this.#streamUrl !== undefined && this.#streamLoop === undefined) {
      this.#streamLoop = this.#runStream().finally(() => {
        this.#streamLoop = undefined;
      });
    }
    if (!this.#streamConnected) this.#schedulePoll();
  }

  get #closed(): boolean {
    return this.#status === "closed";
  }

  #schedulePoll(): void {
    if (this.#closed || this.#pollTimer !== undefined) return;
    this.#pollTimer = this.#timer(this.#pollDelayMs, () => {
      this.#pollTimer = undefined;
      if (this.#streamConnected) return; // the stream's end schedules the next poll
      this.#refresh().then(
        () => {
          this.#pollDelayMs = this.#pollMs;
          this.#follow();
        },
        (error: unknown) => {
          this.#failure(error);
          this.#pollDelayMs = Math.min(this.#pollDelayMs === this.#pollMs ? this.#retryMs : this.#pollDelayMs * 2, this.#pollMs, this.#maxRetryMs);
          // A 429 or 503 says when to come back; not sooner.
          if (error instanceof SnapshotRefused && error.retryAfterMs !== undefined) {
            this.#pollDelayMs = Math.max(this.#pollDelayMs, error.retryAfterMs);
          }
          this.#follow();
        },
      );
    });
  }

  /**
   * One fetch at a time; a request made meanwhile runs once more after it (unconditionally if
   * any such request asked for that).
   */
  #refresh(conditional = true): Promise<void> {
    if (!conditional) this.#full = true;
    if (this.#inflight !== undefined) {
      this.#again = true;
      return this.#inflight;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.#again = false;
          const full = this.#full;
          this.#full = false;
          await this.#fetchSnapshot(!full);
        } while (this.#again && !this.#closed);
      } finally {
        this.#inflight = undefined;
      }
    };
    this.#inflight = run();
    return this.#inflight;
  }

  async #fetchSnapshot(conditional: boolean): Promise<void> {
    const headers: Record<string, string> = { Accept: "application/json", "Accept-Encoding": "gzip" };
    if (this.#serverKey !== undefined) headers.Authorization = `Bearer ${this.#serverKey}`;
    if (conditional && this.#etag !== undefined) headers["If-None-Match"] = this.#etag;
    const response = await this.#fetch(this.#snapshotUrl, {
      headers,
      signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#timeoutMs)]),
    });
    if (response.status === 304) {
      await response.body?.cancel();
      this.#noteStream(response);
      this.#contact();
      return;
    }
    if (response.status === 401 || response.status === 403) {
      const text = await response.text().catch(() => "");
      throw new KeyRefused(`the snapshot endpoint refused the key (${response.status}) ${text}`.trim());
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new SnapshotRefused(response.status, retryAfter(response));
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    this.#noteStream(response);
    this.#contact();
    const etag = response.headers.get("etag") ?? undefined;
    if (etag !== undefined && (etag === this.#etag || etag === this.#refusedEtag)) return;
    this.#install(bytes, etag);
  }

  #noteStream(response: Response): void {
    const stream = response.headers.get("x-edgeflags-event-stream");
    if (stream !== null && stream !== "") {
      this.#streamUrl = new URL(stream, this.#base).href;
    } else if (response.status === 200) {
      // A 200 without the header: the server has no streams (any more); poll instead.
      this.#streamUrl = undefined;
    }
  }

  #install(bytes: Uint8Array, etag: string | undefined): void {
    let engine: Engine;
    try {
      engine = Engine.load(bytes);
    } catch (error) {
      this.#refuse(etag, messageOf(error));
      return;
    }
    if (this.#keyEnvironment !== undefined && engine.environment !== this.#keyEnvironment) {
      const environment = engine.environment;
      engine.free();
      this.#refuse(etag, `the snapshot is of environment "${environment}", not the key's "${this.#keyEnvironment}"`);
      return;
    }
    const old = this.#engine;
    if (old !== undefined && engine.version <= old.version) {
      // A copy no newer than ours (a cache behind the latest one): keep ours.
      engine.free();
      if (engine.version === old.version) this.#etag = etag;
      return;
    }
    if (engine.warnings.length > 0) {
      this.#logger.warn(
        `edgeflags: snapshot ${engine.environment} v${engine.version} has ${engine.warnings.length} invalid part(s), served as errors; first: ${engine.warnings[0]}`,
      );
    }
    const previous = this.#bytes;
    this.#engine = engine;
    this.#bytes = bytes;
    this.#etag = etag;
    this.#refusedEtag = undefined;
    if (old === undefined) {
      this.#becomeReady();
      return;
    }
    let flagsChanged: string[];
    try {
      const decoder = new TextDecoder();
      flagsChanged = changedFlags(JSON.parse(decoder.decode(previous)), JSON.parse(decoder.decode(bytes)));
    } catch {
      flagsChanged = [...engine.flagKeys];
    }
    old.free();
    this.#becomeReady();
    this.events.emit(ProviderEvents.ConfigurationChanged, {
      flagsChanged,
      metadata: { snapshotVersion: engine.version },
    });
  }

  #refuse(etag: string | undefined, why: string): void {
    this.#refusedEtag = etag;
    const message = `edgeflags: refused a snapshot (${why}); still serving ${this.#engine ? `v${this.#engine.version}` : "nothing"}`;
    this.#logger.error(message);
    if (!this.#initializing) {
      this.#status = "error";
      this.events.emit(ProviderEvents.Error, { message });
    }
  }

  /** A good snapshot is being served: out of Stale or Error (initialize's own success is announced by OpenFeature). */
  #becomeReady(): void {
    if (this.#initializing || this.#closed) return;
    if (this.#status !== "ready") {
      this.#status = "ready";
      this.events.emit(ProviderEvents.Ready, { message: `serving v${this.#engine?.version}` });
    }
  }

  /** The server answered: not stale. */
  #contact(): void {
    this.#lastContact = Date.now();
    if (this.#staleTimer !== undefined) {
      clearTimeout(this.#staleTimer);
      this.#timers.delete(this.#staleTimer);
      this.#staleTimer = undefined;
    }
    if (this.#status === "stale") this.#becomeReady();
  }

  /** Something failed; once nothing has succeeded for staleAfterMs, Stale. */
  #failure(error: unknown): void {
    if (this.#closed) return;
    this.#logger.warn(`edgeflags: ${messageOf(error)}`);
    if (this.#status !== "ready" || this.#staleTimer !== undefined) return;
    const left = Math.max(0, this.#lastContact + this.#staleMs - Date.now());
    this.#staleTimer = this.#timer(left, () => {
      this.#staleTimer = undefined;
      if (this.#status !== "ready") return;
      this.#status = "stale";
      this.events.emit(ProviderEvents.Stale, {
        message: `edgeflags: the server has not been reached for ${Math.round(this.#staleMs / 1000)} s; serving v${this.#engine?.version}`,
      });
    });
  }

  #timer(ms: number, run: () => void): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
    return timer;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) return resolve();
      const timer = this.#timer(ms, resolve);
      this.#abort.signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          this.#timers.delete(timer);
          resolve();
        },
        { once: true },
      );
    });
  }

  // --- the event stream ----------------------------------------------------------------------

  async #runStream(): Promise<void> {
    let delay = this.#retryMs;
    while (!this.#closed && this.#followStream && this.#streamUrl !== undefined) {
      let opened = false;
      let retryAfter: number | undefined;
      try {
        opened = await this.#streamOnce(this.#streamUrl);
      } catch (error) {
        if (this.#closed) break;
        if (error instanceof StreamRefused) {
          retryAfter = error.retryAfterMs;
          if (error.status === 401) {
            // The stream token expired or its key went: a fresh snapshot answer names a new one.
            await this.#refresh(false).catch((e: unknown) => this.#failure(e));
          }
        }
        this.#failure(error);
      }
      this.#streamConnected = false;
      if (this.#closed) break;
      this.#schedulePoll();
      delay = opened ? this.#retryMs : Math.min(delay * 2, this.#maxRetryMs);
      // A little jitter, so that many processes cut off together do not reconnect together.
      await this.#sleep(retryAfter ?? Math.round(delay * (0.8 + Math.random() * 0.4)));
    }
  }

  /** One connection: resolves when the server ends it (true: it was open), throws when it fails. */
  async #streamOnce(url: string): Promise<boolean> {
    const connection = new AbortController();
    const stop = (): void => connection.abort();
    this.#abort.signal.addEventListener("abort", stop, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const resetIdle = (): void => {
      if (idle !== undefined) {
        clearTimeout(idle);
        this.#timers.delete(idle);
      }
      idle = this.#timer(this.#idleMs, () => connection.abort(new Error("the event stream went silent")));
    };
    try {
      resetIdle();
      const headers: Record<string, string> = { Accept: "text/event-stream", "Cache-Control": "no-cache" };
      // The version we hold: the server announces at once a newer one we missed while away.
      if (this.#engine !== undefined) headers["Last-Event-ID"] = String(this.#engine.version);
      const response = await this.#fetch(url, { headers, signal: connection.signal });
      if (response.status !== 200 || !(response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
        await response.body?.cancel();
        throw new StreamRefused(response.status, retryAfter(response));
      }
      if (response.body === null) return false;
      this.#streamConnected = true;
      if (this.#pollTimer !== undefined) {
        clearTimeout(this.#pollTimer);
        this.#timers.delete(this.#pollTimer);
        this.#pollTimer = undefined;
      }
      this.#contact();
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return true;
        resetIdle();
        this.#contact();
        for (const event of parser.push(decoder.decode(value, { stream: true }))) {
          this.#onStreamEvent(event.data, event.lastEventId);
        }
      }
    } finally {
      if (idle !== undefined) {
        clearTimeout(idle);
        this.#timers.delete(idle);
      }
      this.#abort.signal.removeEventListener("abort", stop);
      connection.abort();
    }
  }

  #onStreamEvent(data: string, lastEventId: string): void {
    let message: { type?: unknown; etag?: unknown };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      return;
    }
    if (message.type !== "refetchEvaluation") return;
    const fromTag = typeof message.etag === "string" ? Number(message.etag.replaceAll('"', "")) : NaN;
    const version = Number.isInteger(fromTag) ? fromTag : Number(lastEventId);
    if (Number.isInteger(version)) this.#announced = Math.max(this.#announced, version);
    this.#catchUps = 0;
    this.#refresh().then(
      () => this.#catchUp(),
      (error: unknown) => this.#failure(error),
    );
  }

  /**
   * An event announced a version newer than the one the snapshot endpoint then served (a cache
   * in front of it had not seen it yet): ask again a few times, sooner than the next event.
   */
  #catchUp(): void {
    const held = this.#engine?.version ?? 0;
    const delay = CATCH_UP_DELAYS_MS[this.#catchUps];
    if (held >= this.#announced || delay === undefined || this.#closed) return;
    this.#catchUps++;
    this.#timer(delay, () => {
      this.#refresh().then(
        () => this.#catchUp(),
        (error: unknown) => this.#failure(error),
      );
    });
  }
}

/** A response's `Retry-After` in ms (seconds only, at most 5 minutes), if it has one. */
function retryAfter(response: Response): number | undefined {
  const seconds = Number(response.headers.get("retry-after") ?? "");
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 300) * 1000 : undefined;
}

function metadataOf(evaluation: Evaluation): FlagMetadata {
  // OFREP's metadata for the same answer, so that switching providers changes nothing.
  return evaluation.version === null
    ? { reasonDetail: evaluation.detail }
    : { flagVersion: evaluation.version, reasonDetail: evaluation.detail };
}
