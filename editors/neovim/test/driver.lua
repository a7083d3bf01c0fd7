-- Drives a real headless Neovim (a child started with --embed) like a user: opens a Python file,
-- types in insert mode, asks for a completion, accepts it, and checks the buffer text. The child
-- runs this plugin with the real `inkling serve` and the real small model.
--
-- Run through test/run.sh (it sets INKLING_BIN, INKLING_TEST_MODEL, INKLING_NVIM_PLUGIN).

local plugin = assert(vim.env.INKLING_NVIM_PLUGIN, "INKLING_NVIM_PLUGIN is not set")
local passed, failed = 0, 0

local function say(text)
  io.stdout:write(text, "\n")
  io.stdout:flush()
end

local function check(ok, name, detail)
  if ok then
    passed = passed + 1
    say("ok - " .. name)
  else
    failed = failed + 1
    say("not ok - " .. name .. (detail and ("\n    " .. detail:gsub("\n", "\n    ")) or ""))
  end
  return ok
end

-- The name on the summary line (editors/test.sh runs this for two Neovim versions).
local suite = vim.env.INKLING_NVIM_SUITE or "neovim"

local function finish()
  say(("%s: %d passed, %d failed"):format(suite, passed, failed))
  os.exit(failed == 0 and passed > 0 and 0 or 1)
end

-- An isolated home for the child: no user config, plugins or shada.
local home = vim.fn.tempname()
vim.fn.mkdir(home .. "/work", "p")
local env = {
  XDG_CONFIG_HOME = home .. "/config",
  XDG_DATA_HOME = home .. "/data",
  XDG_STATE_HOME = home .. "/state",
  INKLING_NVIM_PLUGIN = plugin,
  INKLING_NVIM_MODE = vim.env.INKLING_NVIM_MODE or "auto",
}
local chan = vim.fn.jobstart(
  { vim.v.progpath, "--embed", "--headless", "-i", "NONE", "-u", plugin .. "/test/child_init.lua" },
  { rpc = true, env = env }
)
assert(chan > 0, "could not start the child Neovim")

local function rpc(method, ...)
  return vim.rpcrequest(chan, method, ...)
end

-- Runs Lua in the child and returns its result.
local function child(code, ...)
  local value = rpc("nvim_exec_lua", code, { ... })
  if value == vim.NIL then
    return nil
  end
  return value
end

local function wait(ms, cond)
  return vim.wait(ms, function()
    local ok, value = pcall(cond)
    return ok and value
  end, 50)
end

local function lsp_log()
  local path = home .. "/state/nvim/lsp.log"
  local lines = vim.fn.filereadable(path) == 1 and vim.fn.readfile(path) or {}
  return table.concat(vim.list_slice(lines, math.max(1, #lines - 30)), "\n")
end

local version = child("local v = vim.version() return ('%d.%d.%d'):format(v.major, v.minor, v.patch)")
say(("# Neovim %s, completion mode %s"):format(version, child("return require('inkling').mode()")))

-- 1. Open a Python file: the client attaches and the model loads.
local file = home .. "/work/add.py"
vim.fn.writefile({ "def add(a, b):", "    ", "" }, file)
rpc("nvim_command", "edit " .. vim.fn.fnameescape(file))
local attached = wait(30000, function()
  return child("return #vim.lsp.get_clients({ bufnr = 0, name = 'inkling' })") > 0
end)
if not check(attached, "the inkling client attaches to a Python buffer", lsp_log()) then
  finish()
end
local loaded = wait(120000, function()
  return child("return _G.inkling_test.progress_done")
end)
check(loaded, "the model loads ($/progress ends)", lsp_log())
check(
  (child("return _G.inkling_test.progress_message") or ""):match("^ready") ~= nil,
  "the load ends with 'ready'",
  tostring(child("return _G.inkling_test.progress_message"))
)

--- The ghost text shown in the current buffer (Neovim 0.12+'s inline completion), or nil.
local function ghost_text()
  return child([[
    local ns = vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
    if not ns then return nil end
    local text = {}
    for _, mark in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })) do
      for _, chunk in ipairs(mark[4].virt_text or {}) do table.insert(text, chunk[1]) end
      for _, line in ipairs(mark[4].virt_lines or {}) do
        table.insert(text, '\n')
        for _, chunk in ipairs(line) do table.insert(text, chunk[1]) end
      end
    end
    return #text > 0 and table.concat(text) or nil
  ]])
end

--- Types `typed` at the end of line 2, asks for a completion with the trigger key (when
--- `trigger`), waits for the suggestion, accepts it with the accept key; returns
--- (what was suggested or nil, the buffer's line 2 afterwards).
--- Popup mode: the suggestion is { word, lsp = the completion item }. Inline mode: { ghost =
--- the ghost text }.
local function complete_and_accept(typed, trigger)
  rpc("nvim_buf_set_lines", 0, 1, 2, false, { "    " })
  rpc("nvim_win_set_cursor", 0, { 2, 4 })
  child("_G.inkling_test.inline_requests = {}")
  rpc("nvim_input", "A" .. typed)
  wait(1000, function()
    return rpc("nvim_get_mode").mode == "i" and rpc("nvim_get_current_line") == "    " .. typed
  end)
  if trigger then
    rpc("nvim_input", "<M-i>") -- keys.trigger
  end
  local mode = child("return require('inkling').mode()")
  local item
  if mode == "popup" then
    wait(60000, function()
      item = child([[
        if vim.fn.pumvisible() == 0 then return nil end
        for _, it in ipairs(vim.fn.complete_info({ 'items' }).items) do
          local lsp = vim.tbl_get(it, 'user_data', 'nvim', 'lsp', 'completion_item')
          if lsp and lsp.detail == 'inkling' then return { word = it.word, lsp = lsp } end
        end
      ]])
      return item ~= nil
    end)
  else -- inline (Neovim 0.12+): the ghost text appears by itself as the user types
    wait(60000, function()
      local ghost = ghost_text()
      item = ghost and { ghost = ghost } or nil
      return item ~= nil
    end)
    if item then
      item.requests = child("return _G.inkling_test.inline_requests")
    end
  end
  if item then
    item.line_before_accept = rpc("nvim_get_current_line")
    rpc("nvim_input", "<M-l>") -- keys.accept
    wait(5000, function()
      return rpc("nvim_get_current_line") ~= "    " .. typed
    end)
    vim.wait(300)
    item.mode_after_accept = rpc("nvim_get_mode").mode
  end
  rpc("nvim_input", "<Esc>")
  wait(1000, function()
    return rpc("nvim_get_mode").mode == "n"
  end)
  return item, rpc("nvim_buf_get_lines", 0, 1, 2, false)[1]
end

local mode = child("return require('inkling').mode()")
if vim.env.INKLING_NVIM_EXPECT_MODE then
  check(mode == vim.env.INKLING_NVIM_EXPECT_MODE, ("Neovim %s uses the %s mode"):format(version, vim.env.INKLING_NVIM_EXPECT_MODE), "mode: " .. tostring(mode))
end

-- 2. The user types `return`, asks for a completion, accepts the suggestion.
local item, line = complete_and_accept("return", true)
if mode == "popup" then
  if check(item ~= nil, "a completion item from inkling arrives in the popup", lsp_log()) then
    local edit = item.lsp.textEdit or {}
    say(("# item: label %q, newText %q, insertTextFormat %s"):format(item.lsp.label, tostring(edit.newText), tostring(item.lsp.insertTextFormat)))
    check(item.lsp.insertTextFormat == 2, "sent as a snippet (Neovim declares snippetSupport)")
  end
else
  if check(item ~= nil, "ghost text from inkling appears after typing", lsp_log()) then
    say(("# ghost text: %q"):format(item.ghost))
    local kinds = vim.tbl_map(function(r) return r.triggerKind end, item.requests or {})
    check(vim.tbl_contains(kinds, 1), "the trigger key sends an invoked textDocument/inlineCompletion request",
      "trigger kinds sent: " .. vim.inspect(kinds))
  end
end
if item then
  check(item.line_before_accept == "    return", "nothing is inserted before the user accepts", item.line_before_accept)
  check(item.mode_after_accept == "i", "accepting leaves the user in insert mode", tostring(item.mode_after_accept))
end
check(line and line:match("^%s*return a %+ b%s*$") ~= nil, "after accepting, the buffer reads `return a + b`", ("line 2: %q"):format(tostring(line)))

-- 2b. Completing after `return ` (the space is also a trigger character): the suggestion must
-- not start with another space (regression: `return  a + b`). Inline mode: nothing but typing.
local item2, line2 = complete_and_accept("return ", mode == "popup")
check(item2 ~= nil and line2 ~= nil and line2:match("^%s*return a %+ b%s*$") ~= nil,
  (mode == "popup" and "after a space" or "ghost text while typing, after a space") .. ": the buffer reads `return a + b`",
  ("line 2: %q, suggestion: %s"):format(tostring(line2), vim.inspect(item2)))

-- 2c. With nothing to accept, the accept key does what it did before (unmapped <M-l> in insert
-- mode: leave it and move right), and the buffer is unchanged.
rpc("nvim_buf_set_lines", 0, 1, 2, false, { "    pass" })
rpc("nvim_win_set_cursor", 0, { 2, 4 })
rpc("nvim_input", "i<M-l>")
local fell_through = wait(2000, function()
  return rpc("nvim_get_mode").mode == "n"
end)
check(fell_through and rpc("nvim_get_current_line") == "    pass",
  "with nothing to accept, <M-l> keeps its own meaning",
  ("mode %s, line %q"):format(rpc("nvim_get_mode").mode, rpc("nvim_get_current_line")))
rpc("nvim_input", "<Esc>")

-- 3. The typed text reached the server intact (no error about out-of-sync documents).
local errors = child("return _G.inkling_test.errors")
check(#errors == 0, "the server showed no error message", vim.inspect(errors))

-- 4. :checkhealth inkling reports the binary, the model and the mode.
rpc("nvim_command", "checkhealth inkling")
local report = table.concat(rpc("nvim_buf_get_lines", 0, 0, -1, false), "\n")
check(report:find("inkling 0") ~= nil and report:find("model file:") ~= nil and report:find("ERROR") == nil, ":checkhealth inkling is all OK", report)

vim.fn.jobstop(chan)
finish()
