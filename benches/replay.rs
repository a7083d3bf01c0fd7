//! Keystroke replay: the latency a user feels while typing, measured through the real server.
//!
//! Opens a real source file nobody here wrote (Python's `json/decoder.py`), cuts chosen lines
//! after a few characters, re-types them one character at a time through LSP over stdio, and
//! asks for an inline completion after every keystroke (waiting for each answer). Runs:
//!   (a) the server with cache reuse, speculation and type-through off,
//!   (b) the server with everything on,
//!   (c) llama.cpp (llama-cpp-python, prefix caching on) fed the identical prompt tokens,
//!   (d) (b) again, but with the file in its real folder opened as the workspace and two sibling
//!       files open first, so the prompt carries cross-file context as it would in an editor,
//! plus an in-process engine pass over the same prompts for warm-prefill and decode figures.
//!
//! `cargo bench --bench replay` — env: `INKLING_BENCH_MODEL` (default: the small model),
//! `INKLING_REPLAY_LINES` (4), `INKLING_REPLAY_BASELINE` (keystrokes replayed in (a), 12),
//! `INKLING_REPLAY_WORKSPACE` (`0` skips (d)), `INKLING_LLAMA_PYTHON` (default `~/.cache/inkling/bench-venv/bin/python`; (c) is skipped
//! with a message when it is missing), `INKLING_BENCH_THREADS` (2).

#[path = "../tests/support/lsp_client.rs"]
#[allow(dead_code)]
mod lsp_client;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};


use inkling::config::Settings;
use inkling::context::{self, Decision};
use inkling::engine::{default_device, Backend, CancelToken, EngineOptions, Qwen2Backend};
use inkling::pipeline::request_for;
use inkling::prompt::{self, SpecialTokens};
use inkling::session::{ByteOffset, Document, DocumentLimits};
use inkling::syntax::Language;
use serde_json::{json, Value};

const HEAD_CHARS: usize = 4;
const MAX_NEW_TOKENS: usize = 24;
/// A keystroke answered slower than this is one the user waits for.
const SLOW_MS: f64 = 100.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

struct Stats {
    name: String,
    latencies: Vec<f64>,
    exact: usize,
}

impl Stats {
    fn row(&self) -> String {
        let mut l = self.latencies.clone();
        l.sort_by(f64::total_cmp);
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {:.1} | {:.0}% |",
            self.name,
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.9),
            percentile(&l, 0.99),
            l.iter().filter(|&&ms| ms > SLOW_MS).count(),
            self.total_s(),
            100.0 * self.exact as f64 / l.len().max(1) as f64
        )
    }
    fn total_s(&self) -> f64 {
        self.latencies.iter().sum::<f64>() / 1e3
    }
    fn p50(&self) -> f64 {
        let mut l = self.latencies.clone();
        l.sort_by(f64::total_cmp);
        percentile(&l, 0.5)
    }
}

/// One keystroke: the document text after it, the cursor, and the rest of the real line.
struct Keystroke {
    text: String,
    line: usize,
    col_utf16: usize,
    byte_offset: usize,
    rest: String,
    edit: Value,
}

/// Chooses lines worth typing and lists every keystroke of re-typing them.
fn keystrokes(source: &str, lines_wanted: usize) -> Vec<Keystroke> {
    let lines: Vec<&str> = source.split('\n').collect();
    let candidates: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let t = lines[i].trim();
            t.len() >= 24 && t.len() <= 80 && !t.starts_with('#') && !t.starts_with('"') && lines[i].is_ascii()
        })
        .collect();
    let step = (candidates.len() / lines_wanted.max(1)).max(1);
    let chosen: Vec<usize> = candidates.iter().step_by(step).take(lines_wanted).copied().collect();
    let mut doc: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    for &l in &chosen {
        let full = lines[l].to_string();
        let indent = full.len() - full.trim_start().len();
        let cut = indent + HEAD_CHARS;
        // The cut itself is one edit; then one keystroke per character.
        doc[l] = full[..cut].to_string();
        let cut_edit = json!({"range": {"start": {"line": l, "character": 0}, "end": {"line": l, "character": full.len()}}, "text": full[..cut]});
        let mut pending_cut = Some(cut_edit);
        for k in cut..full.len() {
            let c = &full[k..k + 1];
            let insert = json!({"range": {"start": {"line": l, "character": k}, "end": {"line": l, "character": k}}, "text": c});
            doc[l] = full[..k + 1].to_string();
            let text = doc.join("\n");
            let byte_offset = doc[..l].iter().map(|s| s.len() + 1).sum::<usize>() + k + 1;
            let edit = match pending_cut.take() {
                Some(cut) => json!([cut, insert]),
                None => json!([insert]),
            };
            out.push(Keystroke { text, line: l, col_utf16: k + 1, byte_offset, rest: full[k + 1..].to_string(), edit });
        }
        doc[l] = full;
    }
    out
}

fn is_exact(suggestion: &str, rest: &str) -> bool {
    !rest.trim().is_empty() && suggestion.trim_end() == rest.trim_end()
}

/// Where a replay's file lives: nowhere (no other files, so no cross-file context), or in its
/// real package folder opened as the workspace, with two sibling files open first.
enum Workspace<'a> {
    None,
    Package { decoder: &'a Path },
}

fn replay_lsp(name: &str, model: &str, flags: &[&str], workspace: Workspace<'_>, source: &str, keys: &[Keystroke], threads: usize) -> Stats {
    let mut args = vec!["--model", model];
    args.extend_from_slice(flags);
    let threads = threads.to_string();
    let mut c = lsp_client::LspClient::start(&args, &[("RAYON_NUM_THREADS", &threads), ("CANDLE_NUM_THREADS", &threads)]);
    let options = json!({"maxNewTokens": MAX_NEW_TOKENS});
    let uri = match workspace {
        Workspace::None => {
            c.initialize(json!({"window": {"workDoneProgress": true}}), options);
            c.wait_model_ready(Duration::from_secs(300));
            "file:///bench/json/decoder.py".to_string()
        }
        Workspace::Package { decoder } => {
            let folder = decoder.parent().expect("decoder.py has a folder");
            let file_uri = |p: &Path| format!("file://{}", p.display());
            c.request(
                "initialize",
                json!({"processId": null, "rootUri": file_uri(folder), "capabilities": {"window": {"workDoneProgress": true}}, "initializationOptions": options}),
                Duration::from_secs(30),
            );
            c.notify("initialized", json!({}));
            let ended = |m: &Value, what: &str| {
                m["method"] == "$/progress" && m["params"]["value"]["kind"] == "end" && m["params"]["token"].as_str().is_some_and(|t| t.contains(what))
            };
            c.wait_for(|m| ended(m, "/load/"), Duration::from_secs(300)).expect("the model loads");
            c.wait_for(|m| ended(m, "/index/"), Duration::from_secs(60)).expect("the workspace is indexed");
            for sibling in ["encoder.py", "scanner.py"] {
                let path = folder.join(sibling);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    c.open(&file_uri(&path), "python", &text);
                }
            }
            file_uri(decoder)
        }
    };
    let uri = uri.as_str();
    c.open(uri, "python", source);
    let mut stats = Stats { name: name.to_string(), latencies: Vec::new(), exact: 0 };
    for (version, k) in keys.iter().enumerate() {
        c.notify("textDocument/didChange", json!({"textDocument": {"uri": uri, "version": version + 2}, "contentChanges": k.edit}));
        let started = Instant::now();
        let r = c.request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": uri}, "position": {"line": k.line, "character": k.col_utf16}, "context": {"triggerKind": 2}}),
            Duration::from_secs(300),
        );
        stats.latencies.push(started.elapsed().as_secs_f64() * 1e3);
        let text = r["result"]["items"][0]["insertText"].as_str().unwrap_or("");
        if is_exact(text, &k.rest) {
            stats.exact += 1;
        }
    }
    c.shutdown();
    stats
}

fn main() {
    let model = std::env::var("INKLING_BENCH_MODEL").unwrap_or_else(|_| lsp_client::test_model());
    let lines = env_usize("INKLING_REPLAY_LINES", 4);
    let baseline_keys = env_usize("INKLING_REPLAY_BASELINE", 12);
    let threads = env_usize("INKLING_BENCH_THREADS", 2);
    let py = String::from_utf8_lossy(
        &std::process::Command::new("python3").args(["-c", "import json.decoder as m; print(m.__file__)"]).output().expect("python3").stdout,
    )
    .trim()
    .to_string();
    let source = std::fs::read_to_string(&py).expect("read json/decoder.py");
    let keys = keystrokes(&source, lines);
    println!("keystroke replay: {py}, {} lines re-typed, {} keystrokes, model {model}, {threads} threads", lines, keys.len());

    // In-process engine over the same prompts: prompts for llama.cpp, warm prefill, decode speed.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    let settings = Settings { max_new_tokens: MAX_NEW_TOKENS, ..Settings::default() };
    let mut engine = Qwen2Backend::load(std::path::Path::new(&model), &default_device(), EngineOptions::default()).expect("load model");
    let tokenizer = engine.tokenizer().clone();
    let special = SpecialTokens::from_tokenizer(&tokenizer).expect("FIM tokens");
    let mut prompts = Vec::new();
    let mut warm_prefill = Vec::new();
    let mut decode_rate = Vec::new();
    for k in &keys {
        let doc = Document::open("json/decoder.py", Language::Python, &k.text, 1, &DocumentLimits::default()).expect("open");
        let Decision::Complete(ctx) = context::gather(&doc.snapshot(), ByteOffset(k.byte_offset), &settings) else {
            prompts.push(None);
            continue;
        };
        let req = request_for(&ctx, &settings);
        let p = prompt::build(&tokenizer, &special, &req.text, req.budget).expect("prompt");
        let mut full = p.tokens.clone();
        full.extend(tokenizer.encode_fast(p.heal.as_str(), false).map(|e| e.get_ids().to_vec()).unwrap_or_default());
        prompts.push(Some(full));
        let g = engine.generate(&req, &CancelToken::new()).expect("generate");
        if g.reused_tokens > 0 {
            warm_prefill.push(g.prefill_ms);
        }
        if g.new_tokens > 1 {
            decode_rate.push((g.new_tokens - 1) as f64 / (g.decode_ms / 1e3));
        }
    }
    warm_prefill.sort_by(f64::total_cmp);
    decode_rate.sort_by(f64::total_cmp);

    let all_on = replay_lsp("(b) inkling, all on", &model, &[], Workspace::None, &source, &keys, threads);
    let with_workspace = (std::env::var("INKLING_REPLAY_WORKSPACE").as_deref() != Ok("0"))
        .then(|| replay_lsp("(d) (b) in its package, cross-file on", &model, &[], Workspace::Package { decoder: Path::new(&py) }, &source, &keys, threads));
    let base_keys = &keys[..baseline_keys.min(keys.len())];
    let baseline = replay_lsp("(a) inkling, no reuse", &model, &["--no-reuse", "--no-speculation", "--no-type-through"], Workspace::None, &source, base_keys, threads);

    // (c) llama.cpp on the identical prompts.
    let llama_py = std::env::var("INKLING_LLAMA_PYTHON").map(PathBuf::from).unwrap_or_else(|_| {
        inkling::models::cache_dir().unwrap_or_default().join("bench-venv/bin/python")
    });
    let mut llama: Option<(Stats, Value)> = None;
    if llama_py.exists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("prompts.jsonl");
        let output = dir.path().join("answers.jsonl");
        let mut lines_out = String::new();
        for p in prompts.iter().flatten() {
            lines_out.push_str(&json!({"tokens": p, "max_new_tokens": MAX_NEW_TOKENS}).to_string());
            lines_out.push('\n');
        }
        let bench_tokens: Vec<u32> = tokenizer.encode_fast(source.as_str(), false).expect("tokenize").get_ids()[..512].to_vec();
        lines_out.push_str(&json!({"bench": bench_tokens, "decode_tokens": 64}).to_string());
        lines_out.push('\n');
        std::fs::write(&input, lines_out).expect("write prompts");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/llama_replay.py");
        let status = std::process::Command::new(&llama_py)
            .args([script, &model, input.to_str().unwrap_or_default(), output.to_str().unwrap_or_default(), &threads.to_string()])
            .status();
        match status {
            Ok(s) if s.success() => {
                let answers: Vec<Value> = std::fs::read_to_string(&output)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                let mut stats = Stats { name: "(c) llama.cpp, same prompts".into(), latencies: Vec::new(), exact: 0 };
                let mut speed = Value::Null;
                let mut answers_iter = answers.iter();
                for (k, p) in keys.iter().zip(&prompts) {
                    if p.is_none() {
                        continue;
                    }
                    if let Some(a) = answers_iter.next() {
                        stats.latencies.push(a["ms"].as_f64().unwrap_or(f64::NAN));
                        if is_exact(a["text"].as_str().unwrap_or(""), &k.rest) {
                            stats.exact += 1;
                        }
                    }
                }
                if let Some(last) = answers_iter.next() {
                    speed = last.clone();
                }
                llama = Some((stats, speed));
            }
            other => println!("llama.cpp run failed: {other:?}"),
        }
    } else {
        println!("(c) skipped: no llama-cpp-python at {} (see README, Performance)", llama_py.display());
    }

    println!("\n| run | requests | p50 ms | p90 ms | p99 ms | over {SLOW_MS:.0} ms | total s | suggestion = rest of line |");
    println!("|---|---|---|---|---|---|---|---|");
    println!("{}", baseline.row());
    println!("{}", all_on.row());
    if let Some((stats, _)) = &llama {
        println!("{}", stats.row());
    }
    if let Some(stats) = &with_workspace {
        println!("{}", stats.row());
    }
    println!();
    println!("p50 ratio (b)/(a): {:.2}", all_on.p50() / baseline.p50());
    if let Some(stats) = &with_workspace {
        // Both medians are type-through answers (about a millisecond): compare the waiting.
        println!("total wait ratio (d)/(b), cross-file context on in a real package: {:.2}", stats.total_s() / all_on.total_s());
    }
    if let Some((stats, speed)) = &llama {
        println!("p50 ratio (b)/(c) llama.cpp: {:.2}", all_on.p50() / stats.p50());
        println!(
            "llama.cpp raw speed: prefill {:.1} tok/s, decode {:.1} tok/s",
            speed["prefill_tok_s"].as_f64().unwrap_or(f64::NAN),
            speed["decode_tok_s"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "inkling engine on the same prompts: warm keystroke prefill p50 {:.1} ms (p90 {:.1}) over {} warm requests; decode p50 {:.1} tok/s (speculation on)",
        percentile(&warm_prefill, 0.5),
        percentile(&warm_prefill, 0.9),
        warm_prefill.len(),
        percentile(&decode_rate, 0.5)
    );
}
