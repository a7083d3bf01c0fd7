#!/usr/bin/env bash
# Emacs test: a batch Emacs with Debian's lsp-mode, editors/emacs/lsp-inkling.el, the real server
# and the small model (test-lsp-mode.el). Installs emacs-nox and elpa-lsp-mode with apt-get (as
# root) when missing; where they cannot be installed it says why and prints
# "emacs: 0 passed, 0 failed, 1 skipped" (exit 0).
# Usage: editors/emacs/test/run.sh   (env: INKLING_BIN, INKLING_TEST_MODEL, EMACS)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"

export INKLING_BIN="${INKLING_BIN:-$repo/target/release/inkling}"
export INKLING_TEST_MODEL="${INKLING_TEST_MODEL:-$HOME/.cache/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
export INKLING_EMACS_DIR="$(dirname "$here")"
emacs="${EMACS:-emacs}"
lsp_mode=/usr/share/emacs/site-lisp/elpa/lsp-mode-*

skip() {
  echo "skipped: $*"
  echo "emacs: 0 passed, 0 failed, 1 skipped"
  exit 0
}

for f in "$INKLING_BIN" "$INKLING_TEST_MODEL"; do
  [[ -e "$f" ]] || { echo "missing $f"; echo "emacs: 0 passed, 1 failed"; exit 1; }
done

if ! command -v "$emacs" >/dev/null || ! compgen -G "$lsp_mode" >/dev/null; then
  if [[ "$(id -u)" = 0 ]] && command -v apt-get >/dev/null; then
    echo "installing emacs-nox and elpa-lsp-mode (apt-get)"
    { apt-cache show emacs-nox elpa-lsp-mode >/dev/null 2>&1 || apt-get update -qq; } >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends emacs-nox elpa-lsp-mode >/dev/null 2>&1
  fi
  command -v "$emacs" >/dev/null || skip "no emacs, and it could not be installed (apt-get install emacs-nox)"
  compgen -G "$lsp_mode" >/dev/null || skip "no lsp-mode in /usr/share/emacs/site-lisp/elpa (apt-get install elpa-lsp-mode)"
fi

# Emacs's own messages (lsp-mode's "LSP :: ..." lines) go to stderr: kept out of the summary.
messages="$(mktemp)"
timeout 180 "$emacs" -Q --batch -l "$here/test-lsp-mode.el" 2>"$messages"
status=$?
if [[ $status -ne 0 ]]; then
  echo "# Emacs messages:"
  sed 's/^/#   /' "$messages" | tail -30
fi
rm -f "$messages"
exit $status
