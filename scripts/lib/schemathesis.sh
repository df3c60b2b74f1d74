#!/usr/bin/env bash
# Runs schemathesis (PyPI, pinned, installed into .tools/schemathesis-venv) against the origin's
# own OpenAPI document: every documented operation gets generated requests, valid and invalid,
# and every answer must be no server error and must match what the document says (status code,
# content type, headers, body schema); invalid requests must be refused, and so must requests
# without credentials.
#
#   scripts/lib/schemathesis.sh             # scratch database, origin on a free port, run, clean up
#   scripts/lib/schemathesis.sh install     # idempotent; prints schemathesis' path
#
# The origin runs against a scratch database (dropped on exit) seeded with a few environments,
# segments and flags (scripts/lib/seed-demo.sh), with an admin token, and without the admin rate
# limit (schemathesis sends far more than 20 requests a second). A fixed seed, a bounded number
# of examples per operation and an overall time budget keep the run reproducible and short.
# Per-operation exceptions, each with its reason, are in scripts/lib/schemathesis.toml.
# Ends with "# pass N" / "# fail M" (N, M = operations) so scripts/test counts it.
# shellcheck shell=bash
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

# Pinned so every machine generates the same requests from the same seed.
SCHEMATHESIS_REQUIREMENTS=("schemathesis==4.32.5")
SEED="${EDGEFLAGS_SCHEMATHESIS_SEED:-1100}"
MAX_EXAMPLES="${EDGEFLAGS_SCHEMATHESIS_MAX_EXAMPLES:-100}"
MAX_SECONDS="${EDGEFLAGS_SCHEMATHESIS_MAX_SECONDS:-150}"
# Every check but positive_data_acceptance ("a schema-valid request is accepted"): the document
# cannot say what the handlers check across members and against stored data (copy `from` != `to`,
# a flag cannot be renamed, a segment still referenced cannot be deleted, an override needs
# `variation` or `enabled`, a rollout needs a targeting key), so those 422s are right.
CHECKS="${EDGEFLAGS_SCHEMATHESIS_CHECKS:-all}"
EXCLUDED_CHECKS="${EDGEFLAGS_SCHEMATHESIS_EXCLUDED_CHECKS-positive_data_acceptance}"

schemathesis_install() {
  python_tool_install schemathesis schemathesis "${SCHEMATHESIS_REQUIREMENTS[@]}"
}

if [ "${1:-}" = install ]; then
  schemathesis_install
  exit 0
fi
[ $# -eq 0 ] || die "usage: $0 [install]"

bin=$(schemathesis_install)
ensure_postgres

base_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/edgeflags_test}"
db_admin_url="${base_url%/*}/postgres"
db_name="edgeflags_schemathesis_$$"
work="$ROOT/target/schemathesis"
mkdir -p "$work"
origin_pid=""

cleanup() {
  trap - INT TERM EXIT
  if [ -n "$origin_pid" ]; then
    kill -TERM "$origin_pid" 2>/dev/null || true
    wait "$origin_pid" 2>/dev/null || true
  fi
  psql "$db_admin_url" -qc "drop database if exists \"$db_name\"" >/dev/null 2>&1 || true
}
trap cleanup INT TERM EXIT

psql "$db_admin_url" -qc "create database \"$db_name\""
export DATABASE_URL="${base_url%/*}/$db_name"
export EDGEFLAGS_JWT_SECRET
EDGEFLAGS_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

say "building the origin"
cargo build -p origin --locked --quiet
origin_bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/origin"

port=$(free_port)
url="http://127.0.0.1:$port"
say "starting the origin on $url (log: $work/origin.log)"
EDGEFLAGS_BIND="127.0.0.1:$port" EDGEFLAGS_ADMIN_RATE_PER_SECOND=0 \
  RUST_LOG="${RUST_LOG:-warn}" \
  "$origin_bin" serve </dev/null >"$work/origin.log" 2>&1 &
origin_pid=$!
wait_http "$url/readyz" 60 || { tail -n 40 "$work/origin.log" >&2; die "the origin did not start"; }

export EDGEFLAGS_SCHEMATHESIS_ADMIN_TOKEN EDGEFLAGS_SCHEMATHESIS_CLIENT_KEY
EDGEFLAGS_SCHEMATHESIS_ADMIN_TOKEN="$("$origin_bin" token --sub schemathesis --role admin --ttl 3600)"
scripts/lib/seed-demo.sh "$url" "$EDGEFLAGS_SCHEMATHESIS_ADMIN_TOKEN"
EDGEFLAGS_SCHEMATHESIS_CLIENT_KEY=$(curl -sf -X POST "$url/admin/environments/dev/client-keys" \
  -H "authorization: Bearer $EDGEFLAGS_SCHEMATHESIS_ADMIN_TOKEN" -H 'content-type: application/json' \
  --data-binary '{"name":"schemathesis"}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])') \
  || die "creating a client key failed"

say "schemathesis: seed $SEED, at most $MAX_EXAMPLES examples per operation, ${MAX_SECONDS}s"
started=$SECONDS
status=0
rm -f "$work/junit.xml"
# --max-time is no bound: it makes fuzzing repeat until the time is spent. The examples bound the
# run; `timeout` only stops one that hangs.
timeout --signal=INT --kill-after=10 "$MAX_SECONDS" \
  "$bin" --config-file "$ROOT/scripts/lib/schemathesis.toml" run "$url/openapi.json" \
  --checks "$CHECKS" ${EXCLUDED_CHECKS:+--exclude-checks "$EXCLUDED_CHECKS"} \
  --seed "$SEED" --max-examples "$MAX_EXAMPLES" \
  --generation-database none --workers 2 --request-timeout 10 --no-color \
  --report junit --report-junit-path "$work/junit.xml" || status=$?

# Operations that passed and failed, from the JUnit report (one test case per operation).
read -r total failures errors < <(python3 - "$work/junit.xml" <<'EOF' || echo "0 0 0"
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
total = failures = errors = 0
for case in cases:
    total += 1
    if case.find("failure") is not None:
        failures += 1
    elif case.find("error") is not None:
        errors += 1
print(total, failures, errors)
EOF
)
[ "$status" -ne 124 ] || warn "schemathesis did not finish within ${MAX_SECONDS}s"
failed=$((failures + errors))
passed=$((total - failed))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "schemathesis: $total operations, $passed passed, $failed failed in $((SECONDS - started))s (seed $SEED; log: $work/origin.log)"
echo "# pass $passed"
echo "# fail $failed"
exit "$status"
