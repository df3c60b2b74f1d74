#!/usr/bin/env bash
# A real S3-compatible server on 127.0.0.1 for the origin's publisher tests: moto in server mode,
# installed from PyPI into a project-local venv (.tools/s3-venv, gitignored).
#
#   scripts/lib/s3-server.sh install       # idempotent; prints the moto_server path
#   scripts/lib/s3-server.sh start [PORT]  # idempotent; prints the endpoint URL (free port by default)
#   scripts/lib/s3-server.sh url           # endpoint of the running server (exit 1 if none)
#   scripts/lib/s3-server.sh stop          # stops the server this script started, by its PID
#
# Or source it (after scripts/lib/common.sh) and call s3_server_install / s3_server_start /
# s3_server_stop. Tests that find no EDGEFLAGS_TEST_S3_ENDPOINT run `install` and start moto_server
# themselves on a free port (origin/tests/publish_s3.rs).
#
# Any access key / secret is accepted; buckets are created by the client (CreateBucket).
# shellcheck shell=bash

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Pinned so every machine runs the same server; flask + flask-cors are moto's server-mode
# dependencies (the `server` extra would pull in every AWS service's dependencies, ~2x the install).
S3_SERVER_REQUIREMENTS=("moto[s3]==5.2.5" "flask==3.1.3" "flask-cors==6.0.5")
S3_SERVER_STATE="$ROOT/.dev/s3-server"

s3_server_install() {
  python_tool_install s3 moto_server "${S3_SERVER_REQUIREMENTS[@]}"
}

s3_server_url() {
  local pid port
  pid=$(cat "$S3_SERVER_STATE.pid" 2>/dev/null) || return 1
  port=$(cat "$S3_SERVER_STATE.port" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "http://127.0.0.1:$port"
}

s3_server_start() {
  local port=${1:-} bin
  if s3_server_url; then return 0; fi
  bin=$(s3_server_install) || exit 1
  [ -n "$port" ] || port=$(free_port)
  mkdir -p "$(dirname "$S3_SERVER_STATE")"
  "$bin" -H 127.0.0.1 -p "$port" >"$S3_SERVER_STATE.log" 2>&1 &
  echo $! >"$S3_SERVER_STATE.pid"
  echo "$port" >"$S3_SERVER_STATE.port"
  if ! wait_http "http://127.0.0.1:$port/" 60; then
    s3_server_stop
    die "moto_server did not answer on 127.0.0.1:$port (log: $S3_SERVER_STATE.log)"
  fi
  say "S3 test server (moto) on http://127.0.0.1:$port, pid $(cat "$S3_SERVER_STATE.pid")"
  echo "http://127.0.0.1:$port"
}

s3_server_stop() {
  local pid
  pid=$(cat "$S3_SERVER_STATE.pid" 2>/dev/null) || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    local i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  fi
  rm -f "$S3_SERVER_STATE.pid" "$S3_SERVER_STATE.port"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    install) s3_server_install ;;
    start) s3_server_start "${2:-}" ;;
    url) s3_server_url ;;
    stop) s3_server_stop ;;
    *) die "usage: $0 install|start [PORT]|url|stop" ;;
  esac
fi
