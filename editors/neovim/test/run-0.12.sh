#!/usr/bin/env bash
# The Neovim test on Neovim 0.12 (ghost text, `vim.lsp.inline_completion`): installs or reuses the
# cached Neovim 0.12 (install-nvim-0.12.sh), then runs run.sh with it, expecting the inline mode.
# Prints "neovim-0.12: N passed, M failed"; when Neovim 0.12 cannot be installed here it says why
# and prints "neovim-0.12: 0 passed, 0 failed, 1 skipped" (exit 0).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! nvim="$("$here/install-nvim-0.12.sh" | tail -1)" || [[ -z "$nvim" ]]; then
  echo "skipped: Neovim 0.12 could not be installed (above)"
  echo "neovim-0.12: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
NVIM="$nvim" INKLING_NVIM_SUITE=neovim-0.12 INKLING_NVIM_EXPECT_MODE=inline exec "$here/run.sh"
