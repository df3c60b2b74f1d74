#!/usr/bin/env bash
# Seeds demo environments, segments and flags through the origin's admin API (so they are
# validated, audited and published like any change). Idempotent: what exists is left alone.
#   scripts/lib/seed-demo.sh ORIGIN_URL ADMIN_TOKEN
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
origin=$1 token=$2
demo="$ROOT/scripts/demo"

# POSTs one JSON document; 201 = created, 409 = already there (a second run). Anything else stops.
post() {
  local path=$1 body=$2 status
  status=$(curl -s -o /tmp/edgeflags-seed.$$ -w '%{http_code}' -X POST "$origin$path" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' --data-binary "$body")
  case "$status" in
    200 | 201 | 409) ;;
    *) cat /tmp/edgeflags-seed.$$ >&2; rm -f /tmp/edgeflags-seed.$$; die "POST $path answered $status" ;;
  esac
  rm -f /tmp/edgeflags-seed.$$
}

say "seeding demo data"
for env in dev staging production; do
  post /admin/environments "{\"key\":\"$env\",\"name\":\"${env^}\"}"
  for segment in "$demo"/segments/*.json; do
    post "/admin/segments?environment=$env" "$(cat "$segment")"
  done
  for flag in "$demo"/flags/*.json; do
    post "/admin/flags?environment=$env" "$(sed "s/\"environment\": *\"[a-z]*\"/\"environment\": \"$env\"/" "$flag")"
  done
done
