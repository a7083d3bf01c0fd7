;;; lsp-inkling.el --- inkling completions in lsp-mode -*- lexical-binding: t; -*-

;; Registers `inkling serve' as an lsp-mode client that runs beside the language's own server
;; (`:add-on? t'). Suggestions arrive through `textDocument/completion' as one item in the
;; completion-at-point list (and company's popup, when company-mode is on).
;;
;;   (add-to-list 'load-path "/path/to/inkling/editors/emacs")
;;   (require 'lsp-inkling)
;;   (add-hook 'python-mode-hook #'lsp)   ; or lsp-deferred, for each mode you use
;;
;; Tested with Emacs 28.2 and lsp-mode 8.0.0 (Debian 12's emacs-nox and elpa-lsp-mode).

;;; Code:

(require 'lsp-mode)

(defgroup lsp-inkling nil
  "Completions from a local model through the inkling language server."
  :group 'lsp-mode
  :prefix "lsp-inkling-")

(defcustom lsp-inkling-command '("inkling" "serve")
  "The server command: `inkling' on `exec-path', or its full path."
  :type '(repeat string))

(defcustom lsp-inkling-settings nil
  "Server options sent as initializationOptions, a plist such as (:maxNewTokens 64).
`inkling options' lists them. Changes take effect on `lsp-workspace-restart'."
  :type 'plist)

(defcustom lsp-inkling-major-modes
  '(python-mode rust-mode rustic-mode js-mode typescript-mode go-mode c-mode c++-mode java-mode)
  "Major modes in which inkling starts."
  :type '(repeat symbol))

(lsp-register-client
 (make-lsp-client
  :new-connection (lsp-stdio-connection (lambda () lsp-inkling-command))
  :activation-fn (lambda (_file-name _mode) (apply #'derived-mode-p lsp-inkling-major-modes))
  :add-on? t
  :server-id 'inkling
  :initialization-options (lambda () (or lsp-inkling-settings (make-hash-table)))))

(provide 'lsp-inkling)
;;; lsp-inkling.el ends here
