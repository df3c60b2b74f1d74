# Shared shell helpers for scripts/*. Source it; it sets ROOT and a few functions.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mwarning: %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (the kernel picks it; racy in theory, fine for local tests).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until an HTTP URL answers (any status), at most $2 seconds (default 60).
wait_http() {
  local url=$1 limit=${2:-60} i=0
  while ! curl -s -o /dev/null --max-time 2 "$url"; do
    i=$((i + 1))
    [ "$i" -ge $((limit * 2)) ] && return 1
    sleep 0.5
  done
}

# PostgreSQL: use the one on 127.0.0.1:5432 if it answers; else start the machine's cluster
# (Debian's pg_ctlcluster), installing the server from apt when it is missing altogether.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    say "installing PostgreSQL from Debian packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  local i=0
  until pg_isready -q -h 127.0.0.1 -p 5432; do
    i=$((i + 1)); [ "$i" -gt 60 ] && die "PostgreSQL did not come up on 127.0.0.1:5432"
    sleep 0.5
  done
}
