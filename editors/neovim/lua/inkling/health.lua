-- :checkhealth inkling — the binary, the model file, and which completion mode this Neovim uses.

local M = {}

local health = vim.health

local function default_model()
  local cache = vim.env.XDG_CACHE_HOME or vim.fs.joinpath(vim.env.HOME or "", ".cache")
  return vim.fs.joinpath(cache, "inkling", "models", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
end

function M.check()
  local inkling = require("inkling")
  local config = inkling.config

  health.start("inkling: server")
  local cmd = config.cmd or {}
  local exe = cmd[1] and vim.fn.exepath(cmd[1]) or ""
  if exe == "" then
    health.error(("`%s` not found"):format(tostring(cmd[1])), {
      "Build it (cargo build --release) and put target/release/inkling on PATH,",
      'or pass the full path: require("inkling").setup({ cmd = { "/path/to/inkling", "serve" } })',
    })
  else
    local out = vim.system({ exe, "--version" }, { text = true }):wait(5000)
    if out.code == 0 then
      health.ok(("%s (%s)"):format(vim.trim(out.stdout or ""), exe))
    else
      health.error(("`%s --version` failed: %s"):format(exe, vim.trim(out.stderr or "")))
    end
  end

  health.start("inkling: model")
  local model = (config.settings or {}).modelPath
  if not model or model == "" then
    for i, arg in ipairs(cmd) do
      if arg == "--model" then
        model = cmd[i + 1]
      end
    end
  end
  model = model and model ~= "" and vim.fs.normalize(model) or default_model()
  if vim.uv.fs_stat(model) then
    health.ok("model file: " .. model)
  else
    health.error("no model file at " .. model, {
      "Download it: python3 finetune/fetch_model.py (in the inkling checkout)",
      "or set settings.modelPath to a GGUF file.",
    })
  end

  health.start("inkling: Neovim")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  local mode = inkling.mode()
  if mode == "inline" then
    health.ok(("Neovim %s: ghost text (vim.lsp.inline_completion); accept with %s"):format(version, tostring(config.keys.accept)))
  elseif mode == "popup" then
    health.ok(("Neovim %s: completion popup (vim.lsp.completion); accept with %s or <C-y>"):format(version, tostring(config.keys.accept)))
    if vim.fn.has("nvim-0.12") == 0 then
      health.info("Ghost text needs Neovim 0.12 or newer.")
    end
  else
    health.warn(("Neovim %s: omnifunc only (<C-x><C-o>)"):format(version), { "Neovim 0.11+ gives the popup, 0.12+ ghost text." })
  end

  local clients = vim.lsp.get_clients({ name = "inkling" })
  if #clients == 0 then
    health.info("no inkling client running (open a file of a supported type)")
  else
    for _, client in ipairs(clients) do
      health.ok(("client %d running, position encoding %s"):format(client.id, client.offset_encoding))
    end
  end
end

return M
