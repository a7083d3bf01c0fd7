-- :Inkling {enable|disable|restart|log|status}. Nothing starts until require("inkling").setup().
vim.api.nvim_create_user_command("Inkling", function(cmd)
  local inkling = require("inkling")
  local sub = cmd.fargs[1] or "status"
  if sub == "enable" or sub == "disable" then
    inkling.set({ enabled = sub == "enable" })
  elseif sub == "restart" then
    inkling.restart()
  elseif sub == "log" then
    vim.cmd("edit " .. vim.fn.fnameescape(vim.lsp.log.get_filename()))
  else
    vim.cmd("checkhealth inkling")
  end
end, {
  nargs = "?",
  complete = function()
    return { "enable", "disable", "restart", "log", "status" }
  end,
  desc = "inkling: enable, disable, restart, log, status",
})
