-- Startup file of the Neovim under test: this plugin and nothing else.
local root = vim.env.INKLING_NVIM_PLUGIN
vim.opt.runtimepath:prepend(root)
vim.opt.swapfile = false
vim.opt.shadafile = "NONE"
vim.cmd("filetype plugin indent on")
vim.cmd("runtime plugin/inkling.lua")

require("inkling").setup({
  cmd = { vim.env.INKLING_BIN, "serve", "--model", vim.env.INKLING_TEST_MODEL },
  settings = { maxNewTokens = 48 },
  mode = vim.env.INKLING_NVIM_MODE or "auto",
})

-- Records what the tests look at: load progress and the messages the server showed.
_G.inkling_test = { progress_done = false, errors = {}, inline_requests = {} }
vim.api.nvim_create_autocmd("LspProgress", {
  callback = function(args)
    local params = args.data and args.data.params or {}
    local value = params.value or {}
    -- Model loading only (the server also reports workspace indexing).
    local token = tostring(params.token or "")
    if value.kind == "end" and token:match("^inkling/load") then
      _G.inkling_test.progress_done = true
      _G.inkling_test.progress_message = value.message
    end
  end,
})
local show = vim.lsp.handlers["window/showMessage"]
vim.lsp.handlers["window/showMessage"] = function(err, result, ctx, config)
  if result and result.type == 1 then
    table.insert(_G.inkling_test.errors, result.message)
  end
  return show(err, result, ctx, config)
end

-- Records the context of each textDocument/inlineCompletion request (Neovim 0.12+), to check
-- that the trigger key sends an invoked one.
local ok, Client = pcall(require, "vim.lsp.client")
if ok and type(Client) == "table" and Client.request then
  local request = Client.request
  Client.request = function(self, method, params, ...)
    if method == "textDocument/inlineCompletion" then
      table.insert(_G.inkling_test.inline_requests, { triggerKind = vim.tbl_get(params or {}, "context", "triggerKind") })
    end
    return request(self, method, params, ...)
  end
end
