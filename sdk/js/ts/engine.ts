// The low-level API: a compiled snapshot (Engine) and contexts converted once (Context).
//
// A hot evaluation is one call into wasm with small integers (context handle, flag position,
// expected type, time) that returns one integer (codes.ts); the flag key is resolved here with a
// Map built at load, and each served value is parsed from JSON once per snapshot and then reused
// (frozen, so that no caller can change what the next one gets).
import { Context as WasmContext, Engine as WasmEngine, bucket as wasmBucket } from "#wasm";
import {
  DETAILS,
  ENABLED_BIT,
  ERROR_CODES,
  type EvaluationErrorCode,
  REASON_ERROR,
  REASONS,
  type Reason,
  SLOT_SHIFT,
  SLOW,
  VALUE_TYPES,
  type ValueType,
} from "./codes.js";
import { messageOf } from "./util.js";

export type { EvaluationErrorCode, Reason, ValueType } from "./codes.js";

/** A JSON value, as flags serve them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * An evaluation context as OpenFeature writes it: `targetingKey` (or its alias `userId`) is the
 * user, every other member an attribute. Values travel as JSON: a `Date` becomes its ISO 8601
 * text (which the date operators read), `undefined` members are left out.
 */
export type ContextInput = { targetingKey?: string | null } & Record<string, unknown>;

/**
 * The result of evaluating one flag, field for field what evaluator-core answers natively.
 * Frozen: equal results of one engine are one shared object.
 */
export interface Evaluation {
  readonly flagKey: string;
  /** The served value; `null` for an unknown flag. Frozen: it is shared by every evaluation that serves it. */
  readonly value: JsonValue;
  /** The served variation's key; `null` when no variation was served. */
  readonly variant: string | null;
  readonly reason: Reason;
  /** Which step of the evaluation order decided (`rule-match`, `user-in-segment`, ...). */
  readonly detail: string;
  /** "Is this user in the feature?": a boolean flag's value; for other flags, whether targeting chose them. */
  readonly enabled: boolean;
  /** Set exactly when `reason` is `ERROR`. */
  readonly errorCode: EvaluationErrorCode | null;
  /** Set exactly when `reason` is `ERROR`. */
  readonly errorMessage: string | null;
  /** The flag's version; `null` for an unknown flag. */
  readonly version: number | null;
}

export interface EvaluateOptions {
  /** OpenFeature's typed resolution: a value of another type gives `ERROR` / `TYPE_MISMATCH`. */
  readonly type?: ValueType;
  /**
   * The time of the evaluation, Unix milliseconds; only override expiry reads it. Default: now
   * (read once per synchronous run of evaluations, and at least every 1,024 of them).
   */
  readonly now?: number;
}

// The default time of an evaluation. Date.now() costs about as much as a whole evaluation of a
// simple flag, so it is read once per synchronous run of evaluations (until the next microtask),
// and at least every CLOCK_USES evaluations within a long one: the time an evaluation sees is at
// most that old. Only override expiry reads it, and only snapshots that have one read it at all.
const CLOCK_USES = 1024;
let clockMs = 0;
let clockUses = 0;
let clockFresh = false;

function currentTime(): number {
  if (clockFresh && clockUses < CLOCK_USES) {
    clockUses++;
    return clockMs;
  }
  clockMs = Date.now();
  clockUses = 0;
  if (!clockFresh) {
    clockFresh = true;
    queueMicrotask(() => {
      clockFresh = false;
    });
  }
  return clockMs;
}

/** The text or bytes given to {@link Engine.load} are not a snapshot at all. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SnapshotError";
  }
}

/** An evaluation context converted once into the engine's form; reuse it for many evaluations, with any engine. */
export class Context {
  /** @internal */
  readonly handle: WasmContext;

  /** @throws TypeError when `input` is not an object or its targeting key is not a string. */
  constructor(input: ContextInput) {
    try {
      this.handle = new WasmContext(JSON.stringify(input));
    } catch (error) {
      throw new TypeError(messageOf(error));
    }
  }

  /** Releases the context's memory now instead of when it is garbage-collected. */
  free(): void {
    this.handle.free();
  }
}

interface Slot {
  readonly variant: string | null;
  readonly value: JsonValue;
  /** The version of the flag the slot belongs to. */
  readonly version: number | null;
}

/** One compiled snapshot. Immutable: a new snapshot is a new Engine. */
export class Engine {
  /** The snapshot's environment key. */
  readonly environment: string;
  /** The snapshot version. */
  readonly version: number;
  /** When the origin built the snapshot (RFC 3339). */
  readonly generatedAt: string;
  /** The snapshot's validation problems (`path: message`); such flags evaluate to `ERROR` / `PARSE_ERROR`. */
  readonly warnings: readonly string[];
  /** Flag keys in snapshot order (a flag's position is its index here). */
  readonly flagKeys: readonly string[];

  readonly #wasm: WasmEngine;
  readonly #positions: Map<string, number>;
  readonly #slots: (Slot | undefined)[] = [];
  readonly #results = new Map<number, Evaluation>();
  readonly #clock: boolean;

  private constructor(wasm: WasmEngine) {
    this.#wasm = wasm;
    this.environment = wasm.environment();
    this.version = wasm.version();
    this.generatedAt = wasm.generatedAt();
    this.warnings = Object.freeze(wasm.warnings());
    this.#clock = wasm.needsClock();
    this.flagKeys = Object.freeze(JSON.parse(wasm.flagKeys()) as string[]);
    this.#positions = new Map(this.flagKeys.map((key, position) => [key, position]));
  }

  /**
   * Compiles a snapshot document (`GET /sdk/v1/snapshot`'s body), as text or UTF-8 bytes.
   * Invalid flags do not fail the load (see {@link Engine.warnings}).
   * @throws SnapshotError when it is not a snapshot at all.
   */
  static load(json: string | Uint8Array): Engine {
    let wasm: WasmEngine;
    try {
      wasm = typeof json === "string" ? WasmEngine.fromString(json) : WasmEngine.fromBytes(json);
    } catch (error) {
      throw new SnapshotError(messageOf(error));
    }
    return new Engine(wasm);
  }

  /** The position of a flag (for {@link Engine.evaluate}), or -1 when the snapshot has none of that key. */
  indexOf(flagKey: string): number {
    return this.#positions.get(flagKey) ?? -1;
  }

  /** Whether the snapshot has a flag of that key. */
  has(flagKey: string): boolean {
    return this.#positions.has(flagKey);
  }

  /**
   * Evaluates one flag, by key or by position ({@link Engine.indexOf}). Never throws for an
   * unknown key: that is an `ERROR` / `FLAG_NOT_FOUND` result.
   */
  evaluate(flag: string | number, context: Context, options?: EvaluateOptions): Evaluation {
    const position = typeof flag === "number" ? flag : this.#positions.get(flag);
    const type = options?.type === undefined ? 0 : VALUE_TYPES[options.type];
    const now = options?.now ?? (this.#clock ? currentTime() : 0);
    if (position === undefined) {
      return this.#slow(context, flag as string, type, now);
    }
    const key = this.flagKeys[position];
    if (key === undefined) {
      throw new RangeError(`no flag at position ${position}`);
    }
    return this.#decode(this.#wasm.evaluate(context.handle, position, type, now), key, context, type, now);
  }

  /** Evaluates every flag for one context, in snapshot order. */
  evaluateAll(context: Context, options?: { readonly now?: number }): Evaluation[] {
    const now = options?.now ?? (this.#clock ? currentTime() : 0);
    const packed = this.#wasm.evaluateAll(context.handle, now);
    const keys = this.flagKeys;
    const results = new Array<Evaluation>(packed.length);
    for (let position = 0; position < packed.length; position++) {
      results[position] = this.#decode(packed[position] as number, keys[position] as string, context, 0, now);
    }
    return results;
  }

  /** Releases the engine's memory now instead of when it is garbage-collected; it cannot evaluate afterwards. */
  free(): void {
    this.#wasm.free();
  }

  #decode(packed: number, key: string, context: Context, type: number, now: number): Evaluation {
    // A packed answer names its slot, and a slot belongs to one flag: equal integers are equal
    // results, so each is built once and then shared (frozen) by every evaluation that gives it.
    const known = this.#results.get(packed);
    if (known !== undefined) {
      return known;
    }
    const slotNumber = packed >>> SLOT_SHIFT;
    if (slotNumber === SLOW) {
      return this.#slow(context, key, type, now);
    }
    const slot = this.#slots[slotNumber] ?? this.#fetchSlot(slotNumber);
    const reasonCode = packed & 7;
    const result: Evaluation = {
      flagKey: key,
      value: slot.value,
      variant: slot.variant,
      reason: REASONS[reasonCode] as Reason,
      detail: DETAILS[(packed >>> 3) & 15] as string,
      enabled: (packed & ENABLED_BIT) !== 0,
      errorCode: ERROR_CODES[(packed >>> 7) & 7] ?? null,
      // Messages are built only for errors, and only on request: the one evaluation again. They
      // depend on more than the integer says (the type asked for), so errors are not shared.
      errorMessage: reasonCode === REASON_ERROR ? this.#slow(context, key, type, now).errorMessage : null,
      version: slot.version,
    };
    if (reasonCode !== REASON_ERROR) {
      this.#results.set(packed, Object.freeze(result));
    }
    return result;
  }

  #fetchSlot(slotNumber: number): Slot {
    const [variant, value, version] = JSON.parse(this.#wasm.slot(slotNumber)) as [string | null, JsonValue, number | null];
    const slot = { variant, value: deepFreeze(value), version };
    this.#slots[slotNumber] = slot;
    return slot;
  }

  /** The whole evaluation as the engine's JSON: unknown keys, error messages, codes newer than this layer. */
  #slow(context: Context, key: string, type: number, now: number): Evaluation {
    const result = JSON.parse(this.#wasm.evaluateJson(context.handle, key, type, now)) as {
      flagKey: string;
      enabled: boolean;
      value: JsonValue;
      variant?: string;
      reason: string;
      version?: number;
      openFeatureReason: Reason;
      errorCode?: EvaluationErrorCode;
      errorMessage?: string;
    };
    return {
      flagKey: result.flagKey,
      value: deepFreeze(result.value),
      variant: result.variant ?? null,
      reason: result.openFeatureReason,
      detail: result.reason,
      enabled: result.enabled,
      errorCode: result.errorCode ?? null,
      errorMessage: result.errorMessage ?? null,
      version: result.version ?? null,
    };
  }
}

/** The bucket (0 to 99 999) of `value` under `salt`, as percentage and weighted rollouts compute it. */
export function bucket(salt: string, value: string): number {
  return wasmBucket(salt, value);
}

function deepFreeze<T extends JsonValue>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const member of Object.values(value)) {
      deepFreeze(member as JsonValue);
    }
    Object.freeze(value);
  }
  return value;
}
