#!/usr/bin/env python3
"""Writes ../21-budgets.json and ../22-nesting.json: the resource budgets of docs/flag-model.md
("Validation" and "Resource budgets"), each at the budget (valid) and one past it (invalid), and
nesting that costs exponential time unless an evaluator works out each segment and prerequisite
once per evaluation. Generated because the inputs are large and mechanical.

Not covered here: the 25 MiB snapshot byte budget (a 25 MiB fixture); it is checked on the
snapshot text (`validate_snapshot_bytes`), see evaluator-core's tests.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PREREQUISITES, PREREQUISITE_DEPTH, SEGMENT_DEPTH = 100, 16, 32
REGEXES_PER_FLAG, REGEXES, REGEX_STATES = 100, 1000, 100_000
# `\w{20}` plus one letter: 6,332 Thompson NFA states each (regex-automata 0.4; about the largest
# pattern the per-pattern compiled-size limit admits), so 15 fit in REGEX_STATES and the 16th does not.
BIG_PATTERN = "\\w{20}"


def snapshot(flags, segments=()):
    return {"environment": "conformance", "version": 1, "generatedAt": "2026-11-24T10:00:00Z",
            "flags": list(flags), "segments": list(segments)}


def matches(patterns):
    return {"attribute": "email", "operator": "matches", "values": list(patterns)}


def regex_flag(key, patterns):
    return {"flagKey": key, "enabled": True,
            "targetingRules": {"rules": [{"clauses": [matches(patterns)], "variation": "on"}]}}


def prerequisites_flag(n):
    return [{"flagKey": "f", "enabled": True, "prerequisites": [{"flagKey": "p", "variation": "on"}] * n},
            {"flagKey": "p", "enabled": True}]


def prerequisite_chain(levels, width=1):
    """Flag `top` needs every flag of level 0, each flag of level i every flag of level i + 1."""
    def needs(level):
        return [] if level >= levels else [{"flagKey": f"l{level}-{i}", "variation": "on"} for i in range(width)]
    flags = [{"flagKey": "top", "enabled": True, "prerequisites": needs(0)}]
    flags += [{"flagKey": f"l{level}-{i}", "enabled": True, "prerequisites": needs(level + 1)}
              for level in range(levels) for i in range(width)]
    return flags


def segment_chain(n):
    """s0 … s{n-1}: each matches the next twice (fan-out 2); the last matches plan = gold."""
    segments = []
    for i in range(n):
        if i + 1 < n:
            nxt = {"operator": "segmentMatch", "values": [f"s{i + 1}"]}
            rules = [{"clauses": [nxt]},
                     {"clauses": [nxt, {"attribute": "country", "operator": "in", "values": ["US"]}]}]
        else:
            rules = [{"clauses": [{"attribute": "plan", "operator": "in", "values": ["gold"]}]}]
        segments.append({"segmentKey": f"s{i}", "rules": rules})
    return segments


def case(name, snap, expected):
    return {"name": name, "snapshot": snap, "expectedErrors": expected}


def budgets():
    distinct = [regex_flag(f"r{k}", [f"^p{k}-{i}$" for i in range(REGEXES_PER_FLAG)])
                for k in range(REGEXES // REGEXES_PER_FLAG)]
    big = [f"{BIG_PATTERN}{chr(ord('a') + i)}" for i in range(16)]
    segment_regexes = lambda n: {"segmentKey": "s", "rules": [{"clauses": [matches(["^a$"] * n)]}]}
    return [
        case("100 prerequisites per flag are allowed", snapshot(prerequisites_flag(PREREQUISITES)), []),
        case("101 prerequisites per flag are rejected", snapshot(prerequisites_flag(PREREQUISITES + 1)),
             ["flags[0].prerequisites: 101 prerequisites exceed the limit of 100"]),
        case("prerequisites 16 levels deep are allowed", snapshot(prerequisite_chain(PREREQUISITE_DEPTH)), []),
        case("prerequisites 17 levels deep are rejected", snapshot(prerequisite_chain(PREREQUISITE_DEPTH + 1)),
             ["flags[0].prerequisites: prerequisites nest 17 levels deep, beyond the limit of 16"]),
        case("a segmentMatch chain of 32 segments is allowed", snapshot([], segment_chain(SEGMENT_DEPTH)), []),
        case("a segmentMatch chain of 33 segments is rejected", snapshot([], segment_chain(SEGMENT_DEPTH + 1)),
             ["segments[0].rules: segmentMatch nests 33 segments deep, beyond the limit of 32"]),
        case("a segmentMatch chain of 64 segments is rejected, and every flag using it",
             snapshot([{"flagKey": "f", "enabled": True, "targetingRules": {"segments": ["s0"]}}],
                      segment_chain(64)),
             [f"segments[{i}].rules: segmentMatch nests {64 - i} segments deep" for i in range(32)]
             + ["flags[0].targetingRules: uses segment \"s0\", which is invalid"]),
        case("100 regular expressions per flag are allowed",
             snapshot([regex_flag("f", ["^a$"] * REGEXES_PER_FLAG)]), []),
        case("101 regular expressions per flag are rejected",
             snapshot([regex_flag("f", ["^a$"] * (REGEXES_PER_FLAG + 1))]),
             ["flags[0].targetingRules.rules: 101 regular expressions exceed the limit of 100"]),
        case("101 regular expressions per segment are rejected",
             snapshot([], [segment_regexes(REGEXES_PER_FLAG + 1)]),
             ["segments[0].rules: 101 regular expressions exceed the limit of 100"]),
        case("1,000 distinct regular expressions per snapshot are allowed", snapshot(distinct), []),
        case("the 1,001st distinct regular expression of a snapshot is rejected",
             snapshot(distinct + [regex_flag("one-more", ["^p0-0$", "^new$"])]),
             ["flags[10].targetingRules.rules[0].clauses[0].values[1]: the snapshot's distinct regular expressions exceed the limit of 1000"]),
        case("15 regular expressions of 6,332 automaton states each are allowed",
             snapshot([regex_flag("f", big[:15])]), []),
        case("the regular expression that takes a snapshot past 100,000 automaton states is rejected",
             snapshot([regex_flag("f", big)]),
             ["flags[0].targetingRules.rules[0].clauses[0].values[15]: the snapshot's regular expressions compile to more than 100000 automaton states"]),
    ]


def nesting():
    member = {"targetingKey": "u1", "plan": "gold", "country": "US"}
    outsider = {"targetingKey": "u2", "plan": "bronze", "country": "US"}
    flags = ([{"flagKey": "in-chain", "enabled": True, "version": 1, "targetingRules": {"segments": ["s0"]}}]
             + prerequisite_chain(PREREQUISITE_DEPTH, 4))
    expected_static = {"value": True, "variant": "on", "reason": "STATIC", "detail": "static", "enabled": True}
    return {
        "description": "Nesting at the depth limits with fan-out: a segmentMatch chain of 32 segments that each "
                       "match the next twice, and 16 levels of 4 prerequisites that each need all 4 of the level "
                       "below. Naive evaluation takes 2^32 and 4^16 steps; every evaluator must work out each "
                       "segment and prerequisite once per evaluation. Generated by tools/gen_budgets.py.",
        "now": "2026-11-24T10:00:00Z",
        "snapshot": snapshot(flags, segment_chain(SEGMENT_DEPTH)),
        "cases": [
            {"name": "a user matched at the end of the chain is in its first segment", "flagKey": "in-chain",
             "context": member,
             "expected": {"value": True, "variant": "on", "reason": "TARGETING_MATCH", "detail": "user-in-segment"}},
            {"name": "a user matched nowhere in the chain is not, after trying every rule", "flagKey": "in-chain",
             "context": outsider,
             "expected": {"value": False, "variant": "off", "reason": "DEFAULT", "detail": "default"}},
            {"name": "a flag whose 16 levels of prerequisites all pass is served", "flagKey": "top",
             "context": outsider, "expected": expected_static},
        ],
    }


def write(name, doc, cases_key):
    with open(os.path.join(HERE, "..", name), "w") as f:
        if cases_key:
            # One case per line keeps the file diffable despite its size.
            f.write('{\n  "description": ' + json.dumps(doc["description"]) + f',\n  "{cases_key}": [\n')
            f.write(",\n".join("    " + json.dumps(c, separators=(",", ":")) for c in doc[cases_key]))
            f.write("\n  ]\n}\n")
        else:
            f.write(json.dumps(doc, separators=(",", ":")) + "\n")


def main():
    write("21-budgets.json", {"description": "Resource budgets of docs/flag-model.md, at and one past each budget. "
                                             "Generated by tools/gen_budgets.py.",
                              "validationCases": budgets()}, "validationCases")
    write("22-nesting.json", nesting(), None)


if __name__ == "__main__":
    main()
