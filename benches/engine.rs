//! Engine benchmark: prefill and decode tokens/s of the real models on this machine, and the
//! end-to-end latency of one completion request through the LSP server over stdio.
//!
//! Run: `cargo bench --bench engine` (models from the cache; `INKLING_BENCH_MODELS=a.gguf,b.gguf`
//! to choose; `INKLING_BENCH_REPS` repetitions, default 5). Prints medians of the repetitions.
//! The prompt is real code nobody here wrote: the start of Python's `json/decoder.py`.
//! `INKLING_CPU_KERNELS=candle` runs the whole benchmark on candle's kernels; either way, a line
//! per model compares the project's CPU kernels with candle's, measured in turns, and one
//! decodes after 0, 1,024 and 2,048 cached tokens, with the attention kernel and without. With
//! `INKLING_LLAMA_BENCH=path/to/llama-bench`, llama.cpp runs on the same GGUFs, threads and depths
//! in the same run, and a line per model gives the ratios.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on standard output, and stops on a failed step

#[path = "../tests/support/proc_client.rs"]
#[allow(dead_code)]
mod proc_client;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;
use inkling::engine::model::Qwen2;
use inkling::models;
use serde_json::json;

const PROMPT_TOKENS: usize = 512;
const DECODE_TOKENS: usize = 64;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn python_source() -> String {
    let out =
        std::process::Command::new("python3").args(["-c", "import json.decoder as m; print(m.__file__)"]).output().expect("python3 runs");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Prefill, decode, step sizes and short steps of one model; returns the prefill rate.
fn bench_model(path: &Path, source: &str, reps: usize) -> Option<f64> {
    let started = Instant::now();
    let (mut model, tokenizer) = match Qwen2::load(path, &Device::Cpu, 4096) {
        Ok(m) => m,
        Err(e) => {
            println!("{}: cannot load: {e}", path.display());
            return None;
        }
    };
    let load_s = started.elapsed().as_secs_f64();
    let ids = tokenizer.encode(source, false).expect("tokenize").get_ids().to_vec();
    let prompt = &ids[..PROMPT_TOKENS.min(ids.len())];

    let mut prefill = Vec::new();
    let mut prefill_quantized = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..reps {
        // The quantized kernels alone first, then the default (dense f32 GEMM for Q8_0 chunks).
        model.set_dense_prefill(false);
        model.truncate(0);
        let t = Instant::now();
        model.forward_last(prompt).expect("prefill");
        prefill_quantized.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
        model.set_dense_prefill(true);
        model.truncate(0);
        let t = Instant::now();
        let mut logits = model.forward_last(prompt).expect("prefill");
        prefill.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..DECODE_TOKENS {
            let next = logits.flatten_all().unwrap().argmax(0).unwrap().to_scalar::<u32>().unwrap();
            logits = model.forward_last(&[next]).expect("decode");
        }
        decode.push(DECODE_TOKENS as f64 / t.elapsed().as_secs_f64());
    }
    // The server reads prompts in steps a newer request can interrupt: what each step size costs.
    let mut stepped = Vec::new();
    for step in [64usize, 128, 256] {
        let mut rates = Vec::new();
        for _ in 0..reps {
            model.truncate(0);
            let t = Instant::now();
            for chunk in prompt.chunks(step) {
                model.extend(chunk).expect("prefill step");
            }
            rates.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
        }
        stepped.push(format!("{step}: {:.1}", median(rates)));
    }
    // A short step after a cached prompt (the next line of a file): the quantized kernels
    // against the dense path, in turns; where the dense path starts to pay.
    let mut short = Vec::new();
    let cached = prompt.len().saturating_sub(64);
    for n in [16usize, 48, 64] {
        let (mut quantized, mut dense) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            for (min_rows, rates) in [(usize::MAX, &mut quantized), (1, &mut dense)] {
                model.set_dense_min_rows(min_rows);
                model.truncate(0);
                model.extend(&prompt[..cached]).expect("prefill");
                let t = Instant::now();
                model.extend(&prompt[cached..(cached + n).min(prompt.len())]).expect("short step");
                rates.push(n as f64 / t.elapsed().as_secs_f64());
            }
        }
        short.push(format!("{n}: {:.1} vs {:.1}", median(quantized), median(dense)));
    }
    model.set_dense_prefill(true);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let prefill = median(prefill);
    println!(
        "{name}: load {load_s:.1} s | prefill {} tokens: {prefill:.1} tok/s (quantized kernels only: {:.1}) | decode {} tokens: {:.1} tok/s  (medians of {reps})",
        prompt.len(),
        median(prefill_quantized),
        DECODE_TOKENS,
        median(decode)
    );
    println!("{name}: prefill {} tokens in steps of {} tok/s", prompt.len(), stepped.join(", "));
    println!("{name}: a step of n tokens after {cached}, quantized kernels vs dense path: {} tok/s", short.join(", "));
    Some(prefill)
}

/// The project's CPU kernels against candle's, on two copies of the model loaded each way and
/// measured in turns (this machine's speed drifts over minutes; turns keep the comparison fair):
/// prefill in the server's 128-token steps, then greedy decoding after the 512-token prompt.
fn bench_kernels(path: &Path, source: &str, reps: usize) {
    std::env::set_var("INKLING_CPU_KERNELS", "candle");
    let candle = Qwen2::load(path, &Device::Cpu, 4096);
    std::env::remove_var("INKLING_CPU_KERNELS");
    let (Ok((candle, tokenizer)), Ok((own, _))) = (candle, Qwen2::load(path, &Device::Cpu, 4096)) else {
        println!("{}: cannot load", path.display());
        return;
    };
    let ids = tokenizer.encode(source, false).expect("tokenize").get_ids().to_vec();
    let prompt = &ids[..PROMPT_TOKENS.min(ids.len())];
    let mut models = [(candle, Vec::new(), Vec::new()), (own, Vec::new(), Vec::new())];
    for _ in 0..reps {
        for (model, prefill, decode) in &mut models {
            model.truncate(0);
            let t = Instant::now();
            for chunk in prompt.chunks(128) {
                model.extend(chunk).expect("prefill step");
            }
            prefill.push(prompt.len() as f64 / t.elapsed().as_secs_f64());
            let mut logits = model.forward_last(&prompt[..1]).expect("prefill");
            let t = Instant::now();
            for _ in 0..DECODE_TOKENS {
                let next = logits.flatten_all().unwrap().argmax(0).unwrap().to_scalar::<u32>().unwrap();
                logits = model.forward_last(&[next]).expect("decode");
            }
            decode.push(DECODE_TOKENS as f64 / t.elapsed().as_secs_f64());
        }
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let [(_, cp, cd), (_, op, od)] = models;
    let (cp, cd, op, od) = (median(cp), median(cd), median(op), median(od));
    println!(
        "{name}: kernels, in turns — prefill in 128-token steps: candle {cp:.1}, own {op:.1} tok/s ({:.2}x) | decode: candle {cd:.1}, own {od:.1} tok/s ({:.2}x)  (medians of {reps})",
        op / cp,
        od / cd
    );
}

/// Greedy decoding after 0, 1,024 and 2,048 cached tokens: each depth is read once, then the
/// decode runs in turns with the attention kernel and with candle's matmuls (the cache cut back
/// to the depth between runs).
fn bench_depths(path: &Path, source: &str, reps: usize) -> Option<Vec<f64>> {
    let Ok((mut model, tokenizer)) = Qwen2::load(path, &Device::Cpu, 4096) else {
        println!("{}: cannot load", path.display());
        return None;
    };
    let ids = tokenizer.encode(source, false).expect("tokenize").get_ids().to_vec();
    let text: Vec<u32> = ids.iter().copied().cycle().take(DEPTHS[DEPTHS.len() - 1] + 1).collect();
    let mut own = Vec::new();
    let mut candle = Vec::new();
    for depth in DEPTHS {
        model.truncate(0);
        model.extend(&text[..depth + 1]).expect("prefill");
        let (mut with_kernel, mut with_candle) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            for (on, rates) in [(true, &mut with_kernel), (false, &mut with_candle)] {
                model.set_own_attention(on);
                model.truncate(depth);
                let mut logits = model.forward_last(&text[depth..depth + 1]).expect("decode");
                let t = Instant::now();
                for _ in 0..DEPTH_DECODE_TOKENS {
                    let next = logits.flatten_all().unwrap().argmax(0).unwrap().to_scalar::<u32>().unwrap();
                    logits = model.forward_last(&[next]).expect("decode");
                }
                rates.push(DEPTH_DECODE_TOKENS as f64 / t.elapsed().as_secs_f64());
            }
        }
        own.push(median(with_kernel));
        candle.push(median(with_candle));
    }
    model.set_own_attention(true);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let list = |xs: &[f64]| xs.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(" / ");
    let depths = DEPTHS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" / ");
    println!(
        "{name}: decode {DEPTH_DECODE_TOKENS} tokens at depth {depths}: {} tok/s (deepest {:.2}x of depth 0) | candle's attention: {} tok/s  (medians of {reps})",
        list(&own),
        own[own.len() - 1] / own[0],
        list(&candle)
    );
    Some(own)
}

/// llama.cpp's `llama-bench` on the same GGUF, threads and depths: (prefill 512 tok/s, decode
/// tok/s at each of [`DEPTHS`]), or why not.
fn llama_bench(bin: &str, path: &Path, threads: usize, reps: usize) -> Result<(f64, Vec<f64>), String> {
    let depths = DEPTHS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(",");
    let out = std::process::Command::new(bin)
        .arg("-m")
        .arg(path)
        .args(["-t", &threads.to_string(), "-p", &PROMPT_TOKENS.to_string(), "-n", &DEPTH_DECODE_TOKENS.to_string()])
        .args(["-d", &depths, "-r", &reps.to_string(), "-o", "json"])
        .output()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{bin} failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()));
    }
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).map_err(|e| format!("{bin} wrote no JSON list: {e}"))?;
    let rate = |prompt: usize, gen: usize, depth: usize| {
        runs.iter()
            .find(|r| r["n_prompt"] == prompt && r["n_gen"] == gen && r["n_depth"].as_u64().unwrap_or(0) == depth as u64)
            .and_then(|r| r["avg_ts"].as_f64())
            .ok_or_else(|| format!("{bin} reported no run of {prompt} prompt + {gen} generated tokens at depth {depth}"))
    };
    let prefill = rate(PROMPT_TOKENS, 0, 0)?;
    let decode = DEPTHS.iter().map(|&d| rate(0, DEPTH_DECODE_TOKENS, d)).collect::<Result<Vec<_>, _>>()?;
    Ok((prefill, decode))
}

/// The cached depths [`bench_depths`] decodes after.
const DEPTHS: [usize; 3] = [0, 1024, 2048];
const DEPTH_DECODE_TOKENS: usize = 32;

/// One inline-completion request through the real server over stdio, cold (first request after
/// opening the file) and warm (same position again: the KV prefix is reused).
fn bench_lsp(path: &Path, source: &str, reps: usize) {
    let mut c = proc_client::ProcClient::serve_env(&["--model", &path.to_string_lossy()], &[]);
    c.initialize(json!({"window": {"workDoneProgress": true}}), json!({"maxNewTokens": 24}));
    c.wait_model_ready(Duration::from_secs(300));
    // Cut a line in the middle of the file after a few characters.
    let lines: Vec<&str> = source.lines().collect();
    let target = lines.iter().position(|l| l.trim_start().starts_with("return ")).unwrap_or(lines.len() / 2);
    let head = &lines[target][..lines[target].find("return ").map(|i| i + 7).unwrap_or(0)];
    let mut text: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    text[target] = head.to_string();
    let doc = text.join("\n");
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for rep in 0..reps {
        let uri = format!("file:///bench/decoder_{rep}.py");
        c.open(&uri, "python", &doc);
        let params =
            json!({"textDocument": {"uri": uri}, "position": {"line": target, "character": head.len()}, "context": {"triggerKind": 1}});
        let t = Instant::now();
        c.request("textDocument/inlineCompletion", params.clone(), Duration::from_secs(300));
        cold.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        c.request("textDocument/inlineCompletion", params, Duration::from_secs(300));
        warm.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    println!(
        "{name}: LSP inlineCompletion end to end (≤24 new tokens): first request {:.0} ms, repeated {:.0} ms  (medians of {reps})",
        median(cold),
        median(warm)
    );
    c.shutdown();
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let models: Vec<PathBuf> = match std::env::var("INKLING_BENCH_MODELS") {
        Ok(list) => list.split(',').map(PathBuf::from).collect(),
        Err(_) => {
            [models::SMALL_MODEL, models::DEFAULT_MODEL].iter().filter_map(|m| models::cached_model(m)).filter(|p| p.exists()).collect()
        }
    };
    if models.is_empty() {
        println!("no models found: run `python3 finetune/fetch_model.py` (and `--small`)");
        return;
    }
    let reps: usize = std::env::var("INKLING_BENCH_REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    let threads = candle_core::utils::get_num_threads();
    println!("inkling engine benchmark — {threads} threads, CPU, {}", std::env::consts::ARCH);
    let source = python_source();
    let llama = std::env::var("INKLING_LLAMA_BENCH").ok();
    for m in &models {
        let prefill = bench_model(m, &source, reps);
        bench_kernels(m, &source, reps);
        let decode = bench_depths(m, &source, reps);
        let Some(bin) = &llama else { continue };
        let name = m.file_name().unwrap_or_default().to_string_lossy();
        match (llama_bench(bin, m, threads, reps), prefill, decode) {
            (Ok((lp, ld)), Some(p), Some(d)) => {
                let ratios = d.iter().zip(&ld).map(|(a, b)| format!("{:.2}x", a / b)).collect::<Vec<_>>().join(" / ");
                let rates = ld.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(" / ");
                println!(
                    "{name}: llama.cpp in the same run: prefill {PROMPT_TOKENS} {lp:.1} tok/s (inkling {:.2}x) | decode {DEPTH_DECODE_TOKENS} at depth {}: {rates} tok/s (inkling {ratios})",
                    p / lp,
                    DEPTHS.map(|d| d.to_string()).join(" / ")
                );
            }
            (Err(e), _, _) => println!("{name}: llama.cpp: {e}"),
            _ => {}
        }
    }
    for m in &models {
        bench_lsp(m, &source, reps);
    }
}
