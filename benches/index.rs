//! Indexing benchmark for cross-file context: indexes a large real workspace that nobody here
//! wrote (the cargo registry's source cache by default, or `INKLING_BENCH_ROOT`), and reports
//! files, definitions, wall time, peak RSS, and the median latency of `retrieve` while the
//! background indexer runs versus after it finished (typing must never wait on indexing).
//!
//! Run: `cargo bench --bench index` (env: `INKLING_BENCH_ROOT=/some/tree`,
//! `INKLING_BENCH_MAX_FILES=20000`, `INKLING_BENCH_MAX_MB=64` for the index memory cap).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on standard output, and stops on a failed step

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inkling::crossfile::{CrossFile, CrossFileLimits, Query};
use inkling::syntax::Language;

/// The default workspace: the first `~/.cargo/registry/src/*` folder.
fn default_root() -> Option<PathBuf> {
    let home =
        std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(home.join("registry").join("src"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter().next()
}

/// Peak resident set size in KiB (`VmHWM`), or 0 where `/proc` has none.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn median(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn p99(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

/// A typical Rust cursor: a few calls to common names, so lookups hit many definitions.
fn queries() -> Vec<Query> {
    let text = "use serde::de::Deserialize;\nuse std::collections::HashMap;\n\nfn load(path: &str) -> Result<Config, Error> {\n    let text = std::fs::read_to_string(path)?;\n    let value: Value = serde_json::from_str(&text)?;\n    let mut map = HashMap::new();\n    for (key, item) in value.as_object().into_iter().flatten() {\n        map.insert(key.clone(), parse_item(item)?);\n    }\n    let config = Config::deserialize(";
    (0..8)
        .map(|i| {
            let before = format!("{text}{}", &"value"[..i.min(5)]);
            Query::new("/bench/current/src/main.rs", Language::Rust, &before, ")\n}\n", 4 * 1024)
        })
        .collect()
}

fn main() {
    let root = std::env::var_os("INKLING_BENCH_ROOT").map(PathBuf::from).or_else(default_root);
    let Some(root) = root else {
        eprintln!("no workspace to index: set INKLING_BENCH_ROOT");
        return;
    };
    let max_files = std::env::var("INKLING_BENCH_MAX_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let default_mb = CrossFileLimits::default().max_index_bytes / (1024 * 1024);
    let max_mb = std::env::var("INKLING_BENCH_MAX_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(default_mb);
    let limits = CrossFileLimits { max_index_files: max_files, max_index_bytes: max_mb * 1024 * 1024, ..CrossFileLimits::default() };
    let cross = CrossFile::new(limits);
    let queries = queries();
    let rss_before = peak_rss_kib();

    let total = Arc::new(AtomicUsize::new(0));
    let seen = total.clone();
    let started = Instant::now();
    let job = match cross.index_workspace(&root, move |_, t| seen.store(t, Ordering::Relaxed)) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("cannot start the indexer: {e}");
            return;
        }
    };
    let mut during = Vec::new();
    let mut i = 0;
    while !job.is_finished() {
        let t = Instant::now();
        let chunks = cross.retrieve(&queries[i % queries.len()]);
        during.push(t.elapsed());
        std::hint::black_box(chunks);
        i += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = job.join();
    let wall = started.elapsed();

    let mut after = Vec::new();
    let mut returned = 0;
    for i in 0..400 {
        let t = Instant::now();
        let chunks = cross.retrieve(&queries[i % queries.len()]);
        after.push(t.elapsed());
        returned = chunks.len();
    }
    let stats = cross.stats();
    println!("workspace        {}", root.display());
    println!("files found      {} (cap {max_files})", report.found);
    println!("files indexed    {} (skipped {})", report.indexed, report.skipped);
    println!("definitions      {}", stats.definitions);
    println!(
        "index bytes      {:.1} MiB of {max_mb} MiB (truncated: {}, memory cap hit: {})",
        stats.bytes as f64 / (1024.0 * 1024.0),
        stats.truncated,
        report.memory_cap_hit
    );
    println!(
        "window bytes     {:.1} MiB of {} MiB (file text and similar-code windows)",
        stats.window_bytes as f64 / (1024.0 * 1024.0),
        limits.max_window_bytes / (1024 * 1024)
    );
    println!("wall time        {:.2} s ({:.0} files/s)", wall.as_secs_f64(), report.indexed as f64 / wall.as_secs_f64());
    println!("peak RSS         {:.1} MiB (before indexing {:.1} MiB)", peak_rss_kib() as f64 / 1024.0, rss_before as f64 / 1024.0);
    println!("retrieve during  median {:?}, p99 {:?} ({} calls while indexing)", median(&mut during), p99(&mut during), during.len());
    println!(
        "retrieve after   median {:?}, p99 {:?} ({} calls, {returned} chunks returned)",
        median(&mut after),
        p99(&mut after),
        after.len()
    );
}
