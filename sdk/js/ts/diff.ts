// Which flags a new snapshot may answer differently for: OpenFeature's `flagsChanged` of a
// ConfigurationChanged event.
//
// A flag changed when it was added, removed or rewritten, or when something it depends on
// changed: a segment (its rules, lists or the segments it matches) or a prerequisite flag. The
// dependencies are found without a schema: any string inside a flag's or segment's definition
// that is the key of a changed flag or segment counts as a reference. That is a superset of the
// real references (`prerequisites[].flagKey`, `targetingRules.segments`, `segmentMatch` values),
// so no flag whose answers may change is left out; at worst an unrelated flag that happens to
// contain such a string is listed too.

interface Definitions {
  readonly flags: Map<string, string>;
  readonly segments: Map<string, string>;
  /** Flag and segment definitions, parsed, for the reference scan. */
  readonly parsed: Map<string, unknown>;
}

function definitions(snapshot: unknown): Definitions {
  const flags = new Map<string, string>();
  const segments = new Map<string, string>();
  const parsed = new Map<string, unknown>();
  const doc = snapshot as { flags?: unknown; segments?: unknown };
  for (const flag of Array.isArray(doc.flags) ? doc.flags : []) {
    const key = (flag as { flagKey?: unknown } | null)?.flagKey;
    // Of duplicate keys the first is the one evaluated (evaluator-core's rule).
    if (typeof key === "string" && !flags.has(key)) {
      flags.set(key, JSON.stringify(flag));
      parsed.set(`f:${key}`, flag);
    }
  }
  for (const segment of Array.isArray(doc.segments) ? doc.segments : []) {
    const key = (segment as { segmentKey?: unknown } | null)?.segmentKey;
    if (typeof key === "string" && !segments.has(key)) {
      segments.set(key, JSON.stringify(segment));
      parsed.set(`s:${key}`, segment);
    }
  }
  return { flags, segments, parsed };
}

function strings(value: unknown, into: Set<string>): Set<string> {
  if (typeof value === "string") {
    into.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) strings(item, into);
  } else if (value !== null && typeof value === "object") {
    for (const item of Object.values(value)) strings(item, into);
  }
  return into;
}

/** The keys of the flags whose answers may differ between two snapshot documents, sorted. */
export function changedFlags(before: unknown, after: unknown): string[] {
  const old = definitions(before);
  const now = definitions(after);
  const changedFlagKeys = new Set<string>();
  const changedSegmentKeys = new Set<string>();
  for (const key of new Set([...old.flags.keys(), ...now.flags.keys()])) {
    if (old.flags.get(key) !== now.flags.get(key)) changedFlagKeys.add(key);
  }
  for (const key of new Set([...old.segments.keys(), ...now.segments.keys()])) {
    if (old.segments.get(key) !== now.segments.get(key)) changedSegmentKeys.add(key);
  }
  if (changedFlagKeys.size > 0 || changedSegmentKeys.size > 0) {
    // Unchanged definitions that reference a changed one change too, until nothing new does.
    const references = new Map<string, Set<string>>();
    for (const [node, definition] of now.parsed) {
      references.set(node, strings(definition, new Set()));
    }
    let grew = true;
    while (grew) {
      grew = false;
      for (const [node, refs] of references) {
        const isFlag = node.startsWith("f:");
        const key = node.slice(2);
        if ((isFlag ? changedFlagKeys : changedSegmentKeys).has(key)) continue;
        for (const ref of refs) {
          if (changedFlagKeys.has(ref) || changedSegmentKeys.has(ref)) {
            (isFlag ? changedFlagKeys : changedSegmentKeys).add(key);
            grew = true;
            break;
          }
        }
      }
    }
  }
  return [...changedFlagKeys].sort();
}
