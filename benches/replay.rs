//! Keystroke replay with a user model: how long a user waits for a suggestion on a new line, and
//! how many characters suggestions save, through the real server, side by side with llama.cpp's
//! server in the same run.
//!
//! Files nobody here wrote, each opened with its real folder as the workspace: Python's
//! `email/feedparser.py`, `dashmap`'s `src/set.rs` (from the cargo registry) and `rxjs`'s
//! `src/internal/Observable.ts` (from npm, unpacked into the cache folder on first use). In each,
//! chosen lines are re-typed by a user who:
//! - empties the line down to its indentation (as Enter with auto-indent leaves a new line) and
//!   asks for a suggestion at once;
//! - thinks for `INKLING_REPLAY_THINK_MS` (0) before the line's first character, then
//! - types one character every `INKLING_REPLAY_PACE_MS` (150) without waiting for answers; each
//!   keystroke asks again and cancels the request before it if still open, as an editor does;
//! - accepts a suggestion the moment one shows exactly the rest of the line (the line is done).
//!
//! Per line: the time to the first suggestion shown, the characters saved, the time the line
//! took. "Wait" sums, over lines, the time to the first suggestion (the whole line when none
//! came). The peer is `llama-server` (`INKLING_LLAMA_SERVER`, default
//! `<cache>/bench/llama-server`; skipped with a message when missing) with `--cache-reuse 256`,
//! asked as llama.vscode asks it: `/infill` with 256 lines before and 64 after, the cursor line
//! after `<|fim_middle|>`, prompt cache on, greedy.
//!
//! `cargo bench --bench replay` — env: `INKLING_BENCH_MODEL` (default: the small model),
//! `INKLING_REPLAY_LINES` (lines per file, 7), `INKLING_REPLAY_PACE_MS` (150), `INKLING_REPLAY_THINK_MS` (0),
//! `INKLING_BENCH_THREADS` (2), `INKLING_REPLAY_PEERS` (`inkling,llama`), `INKLING_REPLAY_FLAGS`
//! (extra `inkling serve` flags, e.g. `--no-reuse`), `INKLING_REPLAY_OPTIONS` (settings JSON
//! merged into inkling's, e.g. `{"latencyTargetMs": 0}`).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on standard output, and stops on a failed step

#[path = "../tests/support/proc_client.rs"]
#[allow(dead_code)]
mod proc_client;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const MAX_NEW_TOKENS: usize = 24;
/// Lines llama.vscode sends before and after the cursor line.
const LLAMA_PREFIX_LINES: usize = 256;
const LLAMA_SUFFIX_LINES: usize = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One file to type in.
struct Case {
    language: &'static str,
    path: PathBuf,
    workspace: PathBuf,
    text: String,
    lines: Vec<usize>,
}

/// Lines worth typing: code (no comments), 16–80 characters, ASCII, spread over the file after
/// its first eighth (so there is code above them).
fn choose_lines(text: &str, wanted: usize) -> Vec<usize> {
    let lines: Vec<&str> = text.split('\n').collect();
    let candidates: Vec<usize> = (lines.len() / 8..lines.len())
        .filter(|&i| {
            let t = lines[i].trim();
            let comment = ["#", "//", "/*", "*", "\"\"\"", "'''"].iter().any(|c| t.starts_with(c));
            (16..=80).contains(&t.len()) && lines[i].is_ascii() && !comment && t.chars().filter(|c| c.is_alphanumeric()).count() >= 8
        })
        .collect();
    let step = (candidates.len() / wanted.max(1)).max(1);
    candidates.into_iter().step_by(step).take(wanted).collect()
}

fn cache_dir() -> PathBuf {
    inkling::models::cache_dir().unwrap_or_else(std::env::temp_dir).join("bench")
}

fn python_case(wanted: usize) -> Option<Case> {
    let out = Command::new("python3").args(["-c", "import email.feedparser as m; print(m.__file__)"]).output().ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    case("python", path, wanted)
}

fn rust_case(wanted: usize) -> Option<Case> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let registry = std::fs::read_dir(home.join("registry/src")).ok()?;
    let path = registry.flatten().map(|d| d.path().join("dashmap-6.2.1/src/set.rs")).find(|p| p.exists())?;
    case("rust", path, wanted)
}

fn typescript_case(wanted: usize) -> Option<Case> {
    let dir = cache_dir().join("rxjs-7.8.2");
    let path = dir.join("package/src/internal/Observable.ts");
    if !path.exists() {
        std::fs::create_dir_all(&dir).ok()?;
        let packed = Command::new("npm").args(["pack", "rxjs@7.8.2", "--silent"]).current_dir(&dir).status().ok()?;
        let unpacked = packed.success() && Command::new("tar").args(["xzf", "rxjs-7.8.2.tgz"]).current_dir(&dir).status().ok()?.success();
        if !unpacked {
            return None;
        }
    }
    case("typescript", path, wanted)
}

fn case(language: &'static str, path: PathBuf, wanted: usize) -> Option<Case> {
    let text = std::fs::read_to_string(&path).ok()?;
    let workspace = path.parent()?.to_path_buf();
    let lines = choose_lines(&text, wanted);
    Some(Case { language, path, workspace, text, lines })
}

/// A completion server the user types into.
trait Peer {
    /// The line `line` changed from `old` to `new` (`lines` is the document after the edit).
    fn edit(&mut self, lines: &[String], line: usize, old: &str, new: &str);
    /// Asks for a suggestion at (`line`, `col`), cancelling the request before it if still open.
    fn ask(&mut self, lines: &[String], line: usize, col: usize);
    /// The answer to the latest request, if it comes before `until` (stale answers are dropped);
    /// with no request open, returns `None` at `until`, so that keys keep their pace.
    fn answer(&mut self, until: Instant) -> Option<String>;
}

/// Sleeps until `until` (the next key), if it is still ahead.
fn wait_until(until: Instant) {
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
}

struct Inkling {
    client: proc_client::ProcClient,
    uri: String,
    version: i64,
    open_request: Option<i64>,
}

impl Inkling {
    fn start(model: &str, case: &Case, threads: usize) -> Inkling {
        let flags = std::env::var("INKLING_REPLAY_FLAGS").unwrap_or_default();
        let mut args = vec!["--model", model];
        args.extend(flags.split_whitespace());
        let threads = threads.to_string();
        let mut client = proc_client::ProcClient::serve_env(&args, &[("RAYON_NUM_THREADS", &threads), ("CANDLE_NUM_THREADS", &threads)]);
        let file_uri = |p: &Path| format!("file://{}", p.display());
        let mut options = json!({"maxNewTokens": MAX_NEW_TOKENS});
        if let Ok(Value::Object(extra)) = std::env::var("INKLING_REPLAY_OPTIONS").map(|o| serde_json::from_str(&o).unwrap_or(Value::Null)) {
            options.as_object_mut().expect("an object").extend(extra);
        }
        client.request(
            "initialize",
            json!({"processId": null, "rootUri": file_uri(&case.workspace), "capabilities": {"window": {"workDoneProgress": true}},
                   "initializationOptions": options}),
            Duration::from_secs(30),
        );
        client.notify("initialized", json!({}));
        let ended = |m: &Value, what: &str| {
            m["method"] == "$/progress"
                && m["params"]["value"]["kind"] == "end"
                && m["params"]["token"].as_str().is_some_and(|t| t.contains(what))
        };
        client.wait_for(|m| ended(m, "/load/"), Duration::from_secs(300)).expect("the model loads");
        client.wait_for(|m| ended(m, "/index/"), Duration::from_secs(120)).expect("the workspace is indexed");
        let uri = file_uri(&case.path);
        client.open(&uri, case.language, &case.text);
        Inkling { client, uri, version: 1, open_request: None }
    }
}

impl Peer for Inkling {
    fn edit(&mut self, _lines: &[String], line: usize, old: &str, new: &str) {
        self.version += 1;
        let change =
            json!({"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": old.len()}}, "text": new});
        self.client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": self.uri, "version": self.version}, "contentChanges": [change]}),
        );
    }

    fn ask(&mut self, _lines: &[String], line: usize, col: usize) {
        if let Some(id) = self.open_request.take() {
            self.client.notify("$/cancelRequest", json!({"id": id}));
        }
        let params =
            json!({"textDocument": {"uri": self.uri}, "position": {"line": line, "character": col}, "context": {"triggerKind": 2}});
        self.open_request = Some(self.client.request_async("textDocument/inlineCompletion", params));
    }

    fn answer(&mut self, until: Instant) -> Option<String> {
        let Some(id) = self.open_request else {
            wait_until(until);
            return None;
        };
        let left = until.saturating_duration_since(Instant::now());
        let msg = self.client.wait_for(|m| m.get("method").is_none() && m["id"] == json!(id), left)?;
        self.open_request = None;
        msg["result"]["items"][0]["insertText"].as_str().map(str::to_string)
    }
}

struct Llama {
    server: Child,
    port: u16,
    next_id: u64,
    open_request: Option<(u64, TcpStream)>,
    answers: mpsc::Receiver<(u64, Option<String>)>,
    send: mpsc::Sender<(u64, Option<String>)>,
}

/// One HTTP/1.1 request to the local llama-server; `None` on any failure.
fn http(stream: &mut TcpStream, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

impl Llama {
    fn start(binary: &Path, model: &str, threads: usize, port: u16) -> Option<Llama> {
        let server = Command::new(binary)
            .args([
                "-m",
                model,
                "-t",
                &threads.to_string(),
                "-c",
                "4096",
                "--parallel",
                "1",
                "--cache-reuse",
                "256",
                "--port",
                &port.to_string(),
                "--host",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let (send, answers) = mpsc::channel();
        let mut llama = Llama { server, port, next_id: 0, open_request: None, answers, send };
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                if matches!(http(&mut s, "GET", "/health", ""), Some((200, _))) {
                    return Some(llama);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = llama.server.kill();
        None
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Peer for Llama {
    fn edit(&mut self, _lines: &[String], _line: usize, _old: &str, _new: &str) {}

    fn ask(&mut self, lines: &[String], line: usize, col: usize) {
        if let Some((_, stream)) = self.open_request.take() {
            let _ = stream.shutdown(Shutdown::Both); // llama.vscode aborts the previous request
        }
        let first = line.saturating_sub(LLAMA_PREFIX_LINES);
        let last = (line + 1 + LLAMA_SUFFIX_LINES).min(lines.len());
        let mut prefix: String = lines[first..line].iter().map(|l| format!("{l}\n")).collect();
        if first == line {
            prefix.clear();
        }
        let (head, tail) = lines[line].split_at(col.min(lines[line].len()));
        let suffix = format!("{tail}\n{}", lines[line + 1..last].join("\n"));
        let indent = head.len() - head.trim_start().len();
        let body = json!({
            "input_prefix": prefix, "input_suffix": suffix, "input_extra": [], "prompt": head,
            "n_predict": MAX_NEW_TOKENS, "n_indent": indent, "top_k": 1, "samplers": ["top_k"],
            "stream": false, "cache_prompt": true, "t_max_predict_ms": 1000,
        })
        .to_string();
        self.next_id += 1;
        let id = self.next_id;
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return };
        let Ok(mut worker) = stream.try_clone() else { return };
        let send = self.send.clone();
        std::thread::spawn(move || {
            let content = http(&mut worker, "POST", "/infill", &body)
                .filter(|(status, _)| *status == 200)
                .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
                .and_then(|v| v["content"].as_str().map(str::to_string));
            let _ = send.send((id, content));
        });
        self.open_request = Some((id, stream));
    }

    fn answer(&mut self, until: Instant) -> Option<String> {
        let Some((id, _)) = self.open_request.as_ref() else {
            wait_until(until);
            return None;
        };
        let id = *id;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.answers.recv_timeout(left) {
                Ok((got, content)) if got == id => {
                    self.open_request = None;
                    return content;
                }
                Ok(_) => continue, // a cancelled request's late answer
                Err(_) => return None,
            }
        }
    }
}

/// What one re-typed line came to.
struct LineResult {
    /// Milliseconds from the new line to the first suggestion shown (None: none came).
    first_ms: Option<f64>,
    /// Characters the accepted suggestion typed (0: typed by hand).
    saved: usize,
    /// Characters of the line after its indentation.
    chars: usize,
    total_ms: f64,
}

fn is_exact(suggestion: &str, rest: &str) -> bool {
    let first_line = suggestion.split('\n').next().unwrap_or_default();
    !rest.trim().is_empty() && first_line.trim_end() == rest.trim_end()
}

/// The user re-types `case.lines` in `peer`.
fn type_lines(peer: &mut dyn Peer, case: &Case, pace: Duration, think: Duration) -> Vec<LineResult> {
    let mut doc: Vec<String> = case.text.split('\n').map(str::to_string).collect();
    // The user looks at the file for a moment before typing.
    std::thread::sleep(Duration::from_secs(1));
    let mut results = Vec::new();
    for &line in &case.lines {
        let full = doc[line].clone();
        let indent = full.len() - full.trim_start().len();
        let mut typed = indent;
        doc[line] = full[..typed].to_string();
        peer.edit(&doc, line, &full, &doc[line].clone());
        let started = Instant::now();
        peer.ask(&doc, line, typed);
        let mut next_key = started + think + pace;
        let mut result = LineResult { first_ms: None, saved: 0, chars: full.len() - indent, total_ms: 0.0 };
        loop {
            if let Some(suggestion) = peer.answer(next_key) {
                if !suggestion.trim().is_empty() && result.first_ms.is_none() {
                    result.first_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                }
                if is_exact(&suggestion, &full[typed..]) {
                    result.saved = full.len() - typed;
                    let old = doc[line].clone();
                    doc[line] = full.clone();
                    peer.edit(&doc, line, &old, &full);
                    break;
                }
                continue;
            }
            if typed == full.len() {
                break;
            }
            let old = doc[line].clone();
            typed += 1;
            doc[line] = full[..typed].to_string();
            peer.edit(&doc, line, &old, &doc[line].clone());
            peer.ask(&doc, line, typed);
            next_key += pace;
            let now = Instant::now();
            if next_key < now {
                next_key = now; // never type faster than the answers can be read
            }
        }
        result.total_ms = started.elapsed().as_secs_f64() * 1e3;
        results.push(result);
        doc[line] = full;
        std::thread::sleep(pace * 3); // the user moves to the next line
    }
    results
}

fn report(name: &str, results: &[LineResult]) -> (f64, f64, f64) {
    let firsts: Vec<f64> = results.iter().map(|r| r.first_ms.unwrap_or(r.total_ms)).collect();
    let shown = results.iter().filter(|r| r.first_ms.is_some()).count();
    let saved: usize = results.iter().map(|r| r.saved).sum();
    let chars: usize = results.iter().map(|r| r.chars).sum();
    let wait_s = firsts.iter().sum::<f64>() / 1e3;
    let total_s = results.iter().map(|r| r.total_ms).sum::<f64>() / 1e3;
    let saved_pct = 100.0 * saved as f64 / chars.max(1) as f64;
    println!(
        "| {name} | {} | {shown} | {:.0} | {:.0} | {} of {chars} ({saved_pct:.1}%) | {} | {wait_s:.1} | {total_s:.1} |",
        results.len(),
        percentile(&firsts, 0.5),
        percentile(&firsts, 0.9),
        saved,
        results.iter().filter(|r| r.saved > 0).count(),
    );
    (wait_s, saved_pct, percentile(&firsts, 0.5))
}

fn main() {
    let model = std::env::var("INKLING_BENCH_MODEL").unwrap_or_else(|_| proc_client::test_model());
    let per_file = env_usize("INKLING_REPLAY_LINES", 7);
    let pace = Duration::from_millis(env_usize("INKLING_REPLAY_PACE_MS", 150) as u64);
    let think = Duration::from_millis(env_usize("INKLING_REPLAY_THINK_MS", 0) as u64);
    let threads = env_usize("INKLING_BENCH_THREADS", 2);
    let peers = std::env::var("INKLING_REPLAY_PEERS").unwrap_or_else(|_| "inkling,llama".into());
    let llama_bin = std::env::var("INKLING_LLAMA_SERVER").map(PathBuf::from).unwrap_or_else(|_| cache_dir().join("llama-server"));
    let mut cases = Vec::new();
    for (name, found) in [("python", python_case(per_file)), ("rust", rust_case(per_file)), ("typescript", typescript_case(per_file))] {
        match found {
            Some(c) => cases.push(c),
            None => println!("{name}: no file found, skipped"),
        }
    }
    println!(
        "keystroke replay with a user model: model {model}, {threads} threads, one key every {} ms after {} ms of thought",
        pace.as_millis(),
        think.as_millis()
    );
    for c in &cases {
        println!(
            "  {} ({} lines): lines {:?}",
            c.path.display(),
            c.text.lines().count(),
            c.lines.iter().map(|l| l + 1).collect::<Vec<_>>()
        );
    }

    let mut all: Vec<(String, Vec<LineResult>)> = Vec::new();
    if peers.contains("inkling") {
        let mut results = Vec::new();
        for c in &cases {
            let mut peer = Inkling::start(&model, c, threads);
            results.extend(type_lines(&mut peer, c, pace, think));
            peer.client.shutdown();
        }
        all.push(("inkling".into(), results));
    }
    if peers.contains("llama") {
        if llama_bin.exists() {
            let mut results = Vec::new();
            for (i, c) in cases.iter().enumerate() {
                let Some(mut peer) = Llama::start(&llama_bin, &model, threads, 18_080 + i as u16) else {
                    println!("llama-server did not start");
                    break;
                };
                results.extend(type_lines(&mut peer, c, pace, think));
            }
            all.push(("llama.cpp server (--cache-reuse 256)".into(), results));
        } else {
            println!("llama.cpp skipped: no llama-server at {} (see docs/performance.md)", llama_bin.display());
        }
    }

    println!("\n| peer | lines | lines with a suggestion | first suggestion p50 ms | p90 ms | characters saved | lines accepted | wait s | total s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let summary: Vec<(f64, f64, f64)> = all.iter().map(|(name, r)| report(name, r)).collect();
    if let [ink, llama] = summary.as_slice() {
        println!(
            "\nwait ratio inkling/llama.cpp: {:.2}; first-suggestion p50 ratio: {:.2}; characters saved: {:.1}% vs {:.1}%",
            ink.0 / llama.0,
            ink.2 / llama.2,
            ink.1,
            llama.1
        );
    }
    for (name, results) in &all {
        let per_line: Vec<String> =
            results.iter().map(|r| format!("{}:{}", r.first_ms.map_or("-".into(), |ms| format!("{ms:.0}")), r.saved)).collect();
        println!("{name} per line (first ms:saved): {}", per_line.join(" "));
    }
}
