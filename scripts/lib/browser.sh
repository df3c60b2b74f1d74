# The browser tests' browser: Debian's chromium, installed with apt when missing (never a browser
# download: playwright-core drives it through EDGEFLAGS_CHROMIUM).
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing chromium (Debian package, about a minute)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || die "could not install Debian's chromium"
  fi
  EDGEFLAGS_CHROMIUM="$(command -v chromium)"
  export EDGEFLAGS_CHROMIUM
}
