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

# Installs pinned PyPI packages into the project-local venv .tools/NAME-venv (gitignored) once,
# and prints the path of its executable BIN. Idempotent: a stamp file records what was installed,
# and a lock keeps two test processes installing at once from fighting over the venv.
#   python_tool_install NAME BIN REQUIREMENT...
python_tool_install() {
  local name=$1 bin_name=$2; shift 2
  local venv="$ROOT/.tools/$name-venv"
  local bin="$venv/bin/$bin_name" stamp="$venv/.installed" want="$*"
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "$bin"
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to install $*"
  say "installing $* into $venv"
  mkdir -p "$ROOT/.tools"
  (
    flock 9
    if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
      exit 0
    fi
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || exit 1
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 || exit 1
    echo "$want" >"$stamp"
  ) 9>"$ROOT/.tools/$name-venv.lock" || die "installing $* failed"
  echo "$bin"
}
