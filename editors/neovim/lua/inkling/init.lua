-- inkling for Neovim: completions from a local model through the inkling language server.
--
--   require("inkling").setup({ settings = { maxNewTokens = 64 } })
--
-- Neovim 0.12+: ghost text (LSP inline completion), accepted with `keys.accept`.
-- Neovim 0.11:  one item in the completion popup (`vim.lsp.completion`), shown after trigger
--               characters or on `keys.trigger`, accepted with `keys.accept` or <C-y>.
-- Older:        the server is started with `vim.lsp.start`; use <C-x><C-o> (omnifunc).

local M = {}

---@class inkling.Config
M.defaults = {
  -- The server command. `inkling` must be on PATH, or give the full path.
  cmd = { "inkling", "serve" },
  filetypes = { "rust", "python", "javascript", "javascriptreact", "typescript", "typescriptreact", "go", "c", "cpp", "java" },
  -- Server options (`inkling options` lists them), e.g. { maxNewTokens = 64, modelPath = "..." }.
  settings = {},
  -- "auto": ghost text on 0.12+, the popup on 0.11. "inline" or "popup" to choose.
  mode = "auto",
  -- Popup mode: 'completeopt' for the buffers inkling attaches to (buffer-local; false to leave
  -- it alone). With Neovim's default (no "menuone") a single item is inserted without asking.
  completeopt = "menuone,noselect,popup",
  -- Insert-mode keys; false to leave a key unmapped. <Tab> is never mapped.
  keys = {
    accept = "<M-l>", -- accept the ghost text / the inkling item in the popup
    trigger = "<M-i>", -- ask for a completion now
  },
}

M.config = vim.deepcopy(M.defaults)

local function has_inline()
  return vim.lsp.inline_completion ~= nil and vim.fn.has("nvim-0.12") == 1
end

--- The completion mode this Neovim and configuration give: "inline", "popup" or "omnifunc".
function M.mode()
  if vim.fn.has("nvim-0.11") == 0 then
    return "omnifunc"
  end
  local wanted = M.config.mode
  if wanted == "inline" or (wanted == "auto" and has_inline()) then
    return has_inline() and "inline" or "popup"
  end
  return "popup"
end

--- The inkling client attached to a buffer, if any.
function M.client(bufnr)
  return vim.lsp.get_clients({ bufnr = bufnr or 0, name = "inkling" })[1]
end

-- Feeds keys as if typed, without mappings: an unmapped ALT chord then keeps its own meaning
-- (in insert mode, <Esc> and the key).
local function feed(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), "nt", false)
end

--- Accepts the suggestion: the ghost text (inline mode) or the inkling item of the popup.
--- Returns false when there was nothing to accept (the key then does what it did before).
function M.accept()
  if M.mode() == "inline" then
    return vim.lsp.inline_completion.get() -- false when no ghost text is shown
  end
  if vim.fn.pumvisible() == 0 then
    return false
  end
  local info = vim.fn.complete_info({ "selected", "items" })
  for i, item in ipairs(info.items or {}) do
    local lsp_item = vim.tbl_get(item, "user_data", "nvim", "lsp", "completion_item")
    if lsp_item and lsp_item.detail == "inkling" then
      -- Select the item (0-based) and confirm it; Neovim then applies its text edit.
      vim.api.nvim_select_popupmenu_item(i - 1, true, true, {})
      return true
    end
  end
  return false
end

-- Neovim 0.12 requests ghost text by itself as you type, and has no public call to ask now:
-- this sends an "invoked" request through the buffer's inline-completion state (the server then
-- waits for a model still loading), else replays what typing does.
local function request_inline(bufnr)
  local ok = pcall(function()
    local completor = require("vim.lsp._capability").all.inline_completion.active[bufnr]
    completor:request(vim.lsp.protocol.InlineCompletionTriggerKind.Invoked)
  end)
  if not ok then
    pcall(vim.api.nvim_exec_autocmds, "CursorMovedI", {
      group = ("nvim.lsp.inline_completion:%d"):format(bufnr),
      buffer = bufnr,
    })
  end
end

--- Asks the server for a suggestion at the cursor (insert mode).
function M.trigger()
  if M.mode() == "inline" then
    request_inline(vim.api.nvim_get_current_buf())
  elseif M.mode() == "popup" then
    vim.lsp.completion.get()
  else
    feed("<C-x><C-o>")
  end
end

local function map_keys(bufnr)
  local keys = M.config.keys or {}
  if keys.accept then
    vim.keymap.set("i", keys.accept, function()
      if not M.accept() then
        feed(keys.accept)
      end
    end, { buffer = bufnr, desc = "inkling: accept the suggestion" })
  end
  if keys.trigger then
    vim.keymap.set("i", keys.trigger, M.trigger, { buffer = bufnr, desc = "inkling: suggest now" })
  end
end

local function on_attach(client, bufnr)
  local mode = M.mode()
  if mode == "inline" then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr, client_id = client.id })
  elseif mode == "popup" then
    if M.config.completeopt then
      vim.bo[bufnr].completeopt = M.config.completeopt
    end
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  else
    vim.bo[bufnr].omnifunc = "v:lua.vim.lsp.omnifunc"
  end
  map_keys(bufnr)
end

local function root_of(bufnr)
  return vim.fs.root(bufnr, { ".git" }) or vim.fs.dirname(vim.api.nvim_buf_get_name(bufnr))
end

local function client_config()
  local settings = M.config.settings or {}
  return {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    -- Completion works in loose files too: fall back to the file's folder.
    root_dir = function(bufnr, done)
      done(root_of(bufnr))
    end,
    init_options = settings,
    -- Sent in workspace/didChangeConfiguration after initialization and on `M.set()`.
    settings = { inkling = settings },
  }
end

--- Changes server options at run time, e.g. require("inkling").set({ enabled = false }).
function M.set(options)
  M.config.settings = vim.tbl_extend("force", M.config.settings or {}, options)
  for _, client in ipairs(vim.lsp.get_clients({ name = "inkling" })) do
    client.settings = { inkling = M.config.settings }
    client:notify("workspace/didChangeConfiguration", { settings = client.settings })
  end
end

--- Starts the client for one buffer (used by `restart` and on Neovim < 0.11).
local function start(bufnr)
  local config = client_config()
  config.name = "inkling"
  config.root_dir = root_of(bufnr)
  config.on_attach = on_attach
  return vim.lsp.start(config, { bufnr = bufnr })
end

--- Stops the server and starts it again for every open buffer of a supported filetype.
function M.restart()
  local clients = vim.lsp.get_clients({ name = "inkling" })
  for _, client in ipairs(clients) do
    client:stop()
  end
  vim.wait(3000, function()
    return #vim.lsp.get_clients({ name = "inkling" }) == 0
  end, 50)
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      start(bufnr)
    end
  end
end

---@param opts? inkling.Config
function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  if opts and opts.filetypes then
    M.config.filetypes = opts.filetypes -- a list replaces, it does not merge
  end
  if opts and opts.cmd then
    M.config.cmd = opts.cmd
  end

  local group = vim.api.nvim_create_augroup("inkling", { clear = true })
  if vim.lsp.config and vim.lsp.enable then
    local config = client_config()
    config.on_attach = on_attach
    vim.lsp.config("inkling", config)
    vim.lsp.enable("inkling")
  else
    -- Neovim < 0.11: start (or reuse) the client for each matching buffer.
    vim.api.nvim_create_autocmd("FileType", {
      group = group,
      pattern = M.config.filetypes,
      callback = function(args)
        start(args.buf)
      end,
    })
  end
end

return M
