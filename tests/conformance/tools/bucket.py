#!/usr/bin/env python3
"""Independent reimplementation of the bucketing algorithm of docs/flag-model.md ("Bucketing").

It exists for two reasons: the conformance cases that depend on a user's bucket were designed
with it (never with the Rust implementation), and it shows that another language can reproduce
edgeflags' bucketing from the specification alone.

    bucket(salt, value) = fmix64(fnv1a64(utf8(salt) ++ "." ++ utf8(value))) mod 100000

Usage:
    bucket.py SALT VALUE...                 print the bucket of each VALUE
    bucket.py --find SALT PREFIX N BUCKET...  scan PREFIX0..PREFIX{N-1}, print ids whose bucket
                                            is one of BUCKET (exact boundary users)
    bucket.py --self-test                   check the hash primitives against known vectors
"""
import sys

MASK = (1 << 64) - 1
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
BUCKETS = 100_000


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & MASK
    return h


def fmix64(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB93FE53EC963) & MASK
    h ^= h >> 33
    return h


def bucket(salt: str, value: str) -> int:
    return fmix64(fnv1a64(salt.encode("utf-8") + b"." + value.encode("utf-8"))) % BUCKETS


def units(percentage: float) -> int:
    """A percentage (0-100, 3 decimals) as units out of 100,000."""
    return round(percentage * 1000)


def rollout(salt: str, value: str, weights):
    """Variation of a weighted rollout: the first whose cumulative units exceed the bucket."""
    b = bucket(salt, value)
    total = 0
    for variation, weight in weights:
        total += units(weight)
        if total > b:
            return variation
    return None


def self_test() -> None:
    # Published FNV-1a 64 vectors (IETF draft-eastlake-fnv test suite).
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    # fmix64 maps 0 to 0 and is a bijection on 64-bit values.
    assert fmix64(0) == 0
    assert len({fmix64(i) for i in range(1000)}) == 1000
    print("ok")


def main(argv) -> int:
    if argv[:1] == ["--self-test"]:
        self_test()
        return 0
    if argv[:1] == ["--find"] and len(argv) >= 5:
        salt, prefix, count = argv[1], argv[2], int(argv[3])
        wanted = {int(b) for b in argv[4:]}
        for i in range(count):
            value = f"{prefix}{i}"
            b = bucket(salt, value)
            if b in wanted:
                print(f"{b}\t{value}")
        return 0
    if len(argv) >= 2 and not argv[0].startswith("--"):
        for value in argv[1:]:
            print(f"{bucket(argv[0], value)}\t{value}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
