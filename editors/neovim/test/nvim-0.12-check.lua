-- Used by install-nvim-0.12.sh: fails unless this Neovim is 0.12+ with LSP inline completion.
local v = vim.version()
assert(vim.fn.has("nvim-0.12") == 1, "older than 0.12")
assert(vim.lsp.inline_completion and vim.lsp.inline_completion.get, "no vim.lsp.inline_completion")
io.stdout:write(("%d.%d.%d"):format(v.major, v.minor, v.patch))
