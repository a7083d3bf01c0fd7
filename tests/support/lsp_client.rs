//! A small LSP client that drives the real `inkling` binary over stdio.
//!
//! A reader thread parses `Content-Length` frames from the server's stdout; server-to-client
//! requests (`window/workDoneProgress/create`) are answered at once; everything else is kept for
//! the test to inspect.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct LspClient {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Notifications and responses received but not yet taken.
    pub backlog: Vec<Value>,
}

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

impl LspClient {
    /// Starts `inkling serve` with extra arguments and environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> LspClient {
        // INKLING_BIN lets a carried benchmark binary find a server built elsewhere.
        let bin = std::env::var("INKLING_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_inkling").to_string());
        let mut cmd = Command::new(bin);
        cmd.arg("serve").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start inkling");
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
        LspClient { child, stdin, incoming, next_id: 0, backlog: Vec::new() }
    }

    pub fn send(&mut self, msg: &Value) {
        self.send_raw(&frame(msg));
    }

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

    /// Waits for the response to `id`.
    pub fn response(&mut self, id: i64, timeout: Duration) -> Value {
        if let Some(pos) = self.backlog.iter().position(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none()) {
            return self.backlog.remove(pos);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(msg) if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() => return msg,
                Ok(msg) => self.backlog.push(msg),
                Err(RecvTimeoutError::Timeout) => panic!("no response to request {id} within {timeout:?}; got {:#?}", self.backlog),
                Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output before answering {id}"),
            }
        }
    }

    pub fn request(&mut self, method: &str, params: Value, timeout: Duration) -> Value {
        let id = self.request_async(method, params);
        self.response(id, timeout)
    }

    /// Waits for a notification with `method` (from the backlog or new messages).
    pub fn notification(&mut self, method: &str, timeout: Duration) -> Option<Value> {
        if let Some(pos) = self.backlog.iter().position(|m| m["method"] == method && m.get("id").is_none()) {
            return Some(self.backlog.remove(pos));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(msg) if msg["method"] == method && msg.get("id").is_none() => return Some(msg),
                Ok(msg) => self.backlog.push(msg),
                Err(_) => return None,
            }
        }
    }

    /// Waits for any message matching `pred` (from the backlog or new messages).
    pub fn wait_for(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        if let Some(pos) = self.backlog.iter().position(&pred) {
            return Some(self.backlog.remove(pos));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(msg) if pred(&msg) => return Some(msg),
                Ok(msg) => self.backlog.push(msg),
                Err(_) => return None,
            }
        }
    }

    /// Sends `initialize` + `initialized` with the given capabilities and options.
    pub fn initialize(&mut self, capabilities: Value, options: Value) -> Value {
        let resp = self.request(
            "initialize",
            json!({"processId": null, "rootUri": null, "capabilities": capabilities, "initializationOptions": options}),
            Duration::from_secs(30),
        );
        self.notify("initialized", json!({}));
        resp
    }

    /// Waits until `$/progress` reports the end of model loading, or a load error message.
    pub fn wait_model_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(msg) => {
                    let done = msg["method"] == "$/progress" && msg["params"]["value"]["kind"] == "end";
                    let failed = msg["method"] == "window/showMessage" && msg["params"]["type"] == 1;
                    if failed {
                        panic!("model failed to load: {}", msg["params"]["message"]);
                    }
                    self.backlog.push(msg);
                    if done {
                        return;
                    }
                }
                Err(_) => panic!("model not ready within {timeout:?}"),
            }
        }
    }

    pub fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}));
    }

    /// Closes stdin and waits for the process; returns how long it took to exit.
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
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn shutdown(mut self) {
        let _ = self.request("shutdown", Value::Null, Duration::from_secs(10));
        self.notify("exit", Value::Null);
        let _ = self.close_and_wait(Duration::from_secs(5));
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real model tests use: `$INKLING_TEST_MODEL`, else the small model in the cache.
pub fn test_model() -> String {
    if let Ok(p) = std::env::var("INKLING_TEST_MODEL") {
        return p;
    }
    let path = inkling::models::cached_model(inkling::models::SMALL_MODEL).expect("a cache folder ($HOME)");
    assert!(
        Path::new(&path).exists(),
        "the real-model tests need {}: run `python3 finetune/fetch_model.py --small` (or set INKLING_TEST_MODEL)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}
