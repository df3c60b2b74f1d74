#!/usr/bin/env bash
# Validates the origin's OpenAPI document as OpenAPI 3.1 with openapi-spec-validator, installed
# from PyPI into a project-local venv (.tools/openapi-venv, gitignored).
#
#   scripts/lib/openapi-check.sh            # writes target/openapi.json (`origin openapi`), validates it
#   scripts/lib/openapi-check.sh FILE       # validates FILE
#   scripts/lib/openapi-check.sh install    # idempotent; prints the validator's path
#
# origin/tests/openapi.rs runs it with a FILE it wrote; scripts/test runs it without arguments,
# which also leaves target/openapi.json for client generators.
# shellcheck shell=bash

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Pinned so every machine validates with the same rules.
OPENAPI_CHECK_REQUIREMENTS=("openapi-spec-validator==0.9.0")

openapi_check_install() {
  python_tool_install openapi openapi-spec-validator "${OPENAPI_CHECK_REQUIREMENTS[@]}"
}

# Validates $1; prints the validator's verdict.
openapi_check_file() {
  local file=$1 bin
  [ -s "$file" ] || die "no OpenAPI document at $file"
  bin=$(openapi_check_install) || exit 1
  "$bin" --schema 3.1 "$file"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) openapi_check_install ;;
    "")
      mkdir -p "$ROOT/target"
      (cd "$ROOT" && cargo run --quiet --locked -p origin -- openapi) >"$ROOT/target/openapi.json"
      openapi_check_file "$ROOT/target/openapi.json"
      ;;
    -*) die "usage: $0 [FILE|install]" ;;
    *) openapi_check_file "$1" ;;
  esac
fi
