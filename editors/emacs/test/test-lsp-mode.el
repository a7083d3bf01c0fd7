;;; test-lsp-mode.el --- lsp-inkling.el with the real server, in a batch Emacs -*- lexical-binding: t; -*-

;; Run through editors/emacs/test/run.sh (it sets INKLING_BIN, INKLING_TEST_MODEL,
;; INKLING_EMACS_DIR). Opens a Python file, lets lsp-mode start inkling through lsp-inkling.el,
;; types `return', asks for completions at point (lsp-mode's completion-at-point function, what
;; company and the *Completions* list use), picks the inkling item as a completion UI does, and
;; checks the buffer reads `return a + b'. Prints "emacs: N passed, M failed".

;;; Code:

(require 'package)
(setq package-directory-list (list "/usr/share/emacs/site-lisp/elpa")
      package-user-dir (make-temp-file "inkling-emacs-elpa" t))
(package-initialize)

(defvar inkling-test-passed 0)
(defvar inkling-test-failed 0)

(defun inkling-test-say (format-string &rest args)
  (princ (concat (apply #'format format-string args) "\n")))

(defun inkling-test-check (ok name &optional detail)
  (if ok
      (progn (setq inkling-test-passed (1+ inkling-test-passed))
             (inkling-test-say "ok - %s" name))
    (setq inkling-test-failed (1+ inkling-test-failed))
    (inkling-test-say "not ok - %s%s" name (if detail (format "\n    %s" detail) "")))
  ok)

(defun inkling-test-finish ()
  (inkling-test-say "emacs: %d passed, %d failed" inkling-test-passed inkling-test-failed)
  (kill-emacs (if (and (= inkling-test-failed 0) (> inkling-test-passed 0)) 0 1)))

(defun inkling-test-wait (seconds predicate)
  "Runs the event loop until PREDICATE is true or SECONDS pass; returns PREDICATE's value."
  (let ((deadline (+ (float-time) seconds)) value)
    (while (and (not (setq value (ignore-errors (funcall predicate))))
                (< (float-time) deadline))
      (accept-process-output nil 0.1))
    value))

(defun inkling-test-stderr ()
  "The server's stderr so far (its last lines), for failure details."
  (let ((buffer (seq-find (lambda (b) (string-match-p "inkling.*::stderr" (buffer-name b))) (buffer-list))))
    (if buffer
        (with-current-buffer buffer
          (string-join (last (split-string (buffer-string) "\n" t) 15) "\n    "))
      "(no stderr buffer)")))

(condition-case err
    (progn
      (require 'lsp-mode)
      (add-to-list 'load-path (getenv "INKLING_EMACS_DIR"))
      (require 'lsp-inkling)
      (inkling-test-say "# %s" (lsp-version)))
  (error (inkling-test-check nil "lsp-mode and lsp-inkling.el load" (error-message-string err))
         (inkling-test-finish)))

(let* ((home (make-temp-file "inkling-emacs" t))
       (file (expand-file-name "add.py" home)))
  (setq lsp-session-file (expand-file-name "lsp-session" home)
        lsp-inkling-command (list (getenv "INKLING_BIN") "serve" "--model" (getenv "INKLING_TEST_MODEL"))
        lsp-inkling-settings '(:maxNewTokens 48)
        lsp-enable-snippet nil           ; no yasnippet here: inkling then sends plain text
        lsp-log-io nil
        lsp-restart 'ignore)
  (with-temp-file file (insert "def add(a, b):\n    \n"))
  (lsp-workspace-folders-add home)

  ;; 1. Open the file: lsp-mode starts inkling beside (here: instead of) a Python server.
  (find-file file)
  (python-mode)
  (lsp)
  (let ((workspace (inkling-test-wait 30 (lambda ()
                                           (seq-find (lambda (w) (eq (lsp--workspace-status w) 'initialized))
                                                     (lsp-workspaces))))))
    (unless (inkling-test-check workspace "lsp-mode starts inkling for a Python buffer" (inkling-test-stderr))
      (inkling-test-finish))
    (inkling-test-check (eq (lsp--client-server-id (lsp--workspace-client workspace)) 'inkling)
                        "the workspace is inkling's (an add-on client)"))

  ;; 2. Type `return' at the end of line 2 and ask for completions at point until the model has
  ;; loaded and the inkling item is among them.
  (goto-char (point-min))
  (forward-line 1)
  (end-of-line)
  (insert "return")
  (let (capf item candidate)
    (inkling-test-wait
     120
     (lambda ()
       (setq lsp-completion--cache nil)
       (setq capf (lsp-completion-at-point))
       (setq candidate
             (seq-find (lambda (c)
                         (let ((it (get-text-property 0 'lsp-completion-item c)))
                           (and it (equal (lsp:completion-item-detail? it) "inkling"))))
                       (all-completions (buffer-substring-no-properties (nth 0 capf) (nth 1 capf))
                                        (nth 2 capf))))
       (unless candidate (sleep-for 0.5))
       candidate))
    (when (inkling-test-check candidate "an inkling item arrives through completion-at-point" (inkling-test-stderr))
      (setq item (get-text-property 0 'lsp-completion-item candidate))
      (inkling-test-say "# item: label %S, annotation %S" (lsp:completion-item-label item)
                        (funcall (plist-get (nthcdr 3 capf) :annotation-function) candidate))
      (inkling-test-check (equal (buffer-substring-no-properties (line-beginning-position) (line-end-position)) "    return")
                          "nothing is inserted before the item is chosen")
      ;; 3. Choose it as a completion UI does (company, *Completions*): replace the prefix with
      ;; the candidate, then run the exit function, which applies the item's text edit.
      (delete-region (nth 0 capf) (nth 1 capf))
      (insert candidate)
      (funcall (plist-get (nthcdr 3 capf) :exit-function) candidate 'finished)
      (let ((line (buffer-substring-no-properties (line-beginning-position) (line-end-position))))
        (inkling-test-check (string-match-p "\\`[ \t]*return a \\+ b[ \t]*\\'" line)
                            "after choosing it, the buffer reads `return a + b'" (format "line 2: %S" line)))

      ;; 4. The command itself (C-M-i): with inkling's item the only candidate it completes the
      ;; line at once.
      (delete-region (line-beginning-position) (line-end-position))
      (insert "    return")
      (setq lsp-completion--cache nil)
      (completion-at-point)
      (let ((line (buffer-substring-no-properties (line-beginning-position) (line-end-position))))
        (inkling-test-check (string-match-p "\\`[ \t]*return a \\+ b[ \t]*\\'" line)
                            "M-x completion-at-point completes the line to `return a + b'" (format "line 2: %S" line))))))

(inkling-test-finish)
;;; test-lsp-mode.el ends here
