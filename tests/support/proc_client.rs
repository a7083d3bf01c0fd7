//! The stdio LSP client for the real binary: it runs any command that ends up running the
//! server (`inkling serve`, or the binary under `strace`/`unshare`), answers the server's own
//! requests (`window/workDoneProgress/create`) at once, and keeps EVERY message it receives, so
//! a test can wait for one, count answers per request id, and read the child's `/proc` status.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct ProcClient {
    pub child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Every message received, in order (server requests included).
    pub received: Vec<Value>,
    /// `taken[i]`: `received[i]` was already returned by `wait_for`.
    taken: Vec<bool>,
}

/// The server binary: `$INKLING_BIN` (a binary built elsewhere), else the one cargo built.
pub fn inkling_bin() -> String {
    std::env::var("INKLING_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_inkling").to_string())
}

/// The real model (see `inkling::engine::testing::real_model`); these tests need it.
pub fn test_model() -> String {
    let path = inkling::engine::testing::real_model()
        .expect("the real-model tests need the small model: run `python3 finetune/fetch_model.py --small` (or set INKLING_TEST_MODEL)");
    path.to_string_lossy().into_owned()
}

/// One `Content-Length` frame holding `msg`.
pub fn frame(msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Reads one `Content-Length` frame; `None` at end of input or on a malformed frame.
pub fn read_frame(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            length = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0u8; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl ProcClient {
    /// Spawns `cmd` with piped stdin/stdout (stderr inherited).
    pub fn spawn(mut cmd: Command) -> ProcClient {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = mpsc::channel();
        let reply_to = stdin.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(msg) = read_frame(&mut reader) {
                if msg.get("method").is_some() && msg.get("id").is_some() {
                    // A request from the server: accept it.
                    let reply = json!({"jsonrpc": "2.0", "id": msg["id"], "result": null});
                    if let Ok(mut guard) = reply_to.lock() {
                        if let Some(w) = guard.as_mut() {
                            let _ = w.write_all(&frame(&reply));
                            let _ = w.flush();
                        }
                    }
                }
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        ProcClient { child, stdin, incoming, next_id: 0, received: Vec::new(), taken: Vec::new() }
    }

    /// `inkling serve ARGS`.
    pub fn serve(args: &[&str]) -> ProcClient {
        Self::serve_env(args, &[])
    }

    /// `inkling serve ARGS` with extra environment variables.
    pub fn serve_env(args: &[&str], env: &[(&str, &str)]) -> ProcClient {
        let mut cmd = Command::new(inkling_bin());
        cmd.arg("serve").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        ProcClient::spawn(cmd)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&frame(msg));
    }

    /// Writes bytes as they are (a malformed frame, a frame in pieces).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let mut guard = self.stdin.lock().expect("stdin lock");
        let w = guard.as_mut().expect("stdin already closed");
        w.write_all(bytes).expect("write to server");
        w.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its id without waiting.
    pub fn request_async(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Moves what has arrived into `received` (waiting at most `wait` for the first message).
    pub fn pump(&mut self, wait: Duration) {
        if let Ok(m) = self.incoming.recv_timeout(wait) {
            self.received.push(m);
        }
        while let Ok(m) = self.incoming.try_recv() {
            self.received.push(m);
        }
        self.taken.resize(self.received.len(), false);
    }

    /// The responses (not server requests) to `id` received so far.
    pub fn responses_to(&self, id: i64) -> Vec<&Value> {
        self.received.iter().filter(|m| m.get("method").is_none() && m.get("id") == Some(&json!(id))).collect()
    }

    /// Waits for the first response to `id`.
    pub fn response(&mut self, id: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.responses_to(id).first() {
                return (*r).clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no response to request {id} within {timeout:?}; got {:#?}", self.received);
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    pub fn request(&mut self, method: &str, params: Value, timeout: Duration) -> Value {
        let id = self.request_async(method, params);
        self.response(id, timeout)
    }

    /// Waits for the first message matching `pred` that no earlier `wait_for` returned.
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = (0..self.received.len()).find(|&i| !self.taken[i] && pred(&self.received[i]));
            if let Some(i) = found {
                self.taken[i] = true;
                return Some(self.received[i].clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.pump(left.min(Duration::from_millis(50)));
        }
    }

    /// Waits for a notification `method` that no earlier `wait_for` returned.
    pub fn notification(&mut self, method: &str, timeout: Duration) -> Option<Value> {
        self.wait_for(|m| m["method"] == method && m.get("id").is_none(), timeout)
    }

    /// `window/showMessage` texts received so far.
    pub fn shown_messages(&self) -> Vec<(i64, String)> {
        self.received
            .iter()
            .filter(|m| m["method"] == "window/showMessage")
            .map(|m| (m["params"]["type"].as_i64().unwrap_or(0), m["params"]["message"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    /// `window/logMessage` texts received so far.
    pub fn log_messages(&self) -> Vec<String> {
        self.received
            .iter()
            .filter(|m| m["method"] == "window/logMessage")
            .map(|m| m["params"]["message"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Sends `initialize` + `initialized` with the given capabilities and options.
    pub fn initialize(&mut self, capabilities: Value, options: Value) -> Value {
        let r = self.request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": capabilities, "initializationOptions": options}),
            Duration::from_secs(30),
        );
        self.notify("initialized", json!({}));
        r
    }

    /// Waits for the end of a model load: `$/progress` end (with progress support) or the
    /// "ready with"/"now using" message; panics on a load error.
    pub fn wait_model_ready(&mut self, timeout: Duration) {
        let found = self.wait_for(
            |m| {
                (m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end")
                    || (m["method"] == "window/showMessage" && m["params"]["type"] == 1)
                    || ((m["method"] == "window/logMessage" || m["method"] == "window/showMessage")
                        && m["params"]["message"].as_str().is_some_and(|s| s.contains("ready with") || s.contains("now using")))
            },
            timeout,
        );
        let msg = found.unwrap_or_else(|| panic!("model not ready within {timeout:?}"));
        assert!(msg["params"]["type"] != 1 || msg["method"] != "window/showMessage", "model failed to load: {msg}");
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}));
    }

    /// The peak resident set size (VmHWM) and current RSS (VmRSS) in KiB, from /proc.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// Closes stdin; waits for the process to exit. Returns how long it took, or `None` (killed).
    pub fn close_and_wait(&mut self, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        if let Ok(mut guard) = self.stdin.lock() {
            guard.take();
        }
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(started.elapsed());
            }
            if started.elapsed() > timeout {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `shutdown` + `exit`; returns the exit status (None when it had to be killed).
    pub fn shutdown(&mut self) -> Option<std::process::ExitStatus> {
        let r = self.request("shutdown", Value::Null, Duration::from_secs(20));
        assert!(r.get("error").is_none(), "shutdown failed: {r}");
        self.notify("exit", Value::Null);
        self.close_and_wait(Duration::from_secs(10))?;
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ProcClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
