//! Tests of the data set: prompts byte-identical to the server's, no held-out file in the
//! training split, a manifest that matches the files, determinism.

use std::collections::BTreeMap;

use candle_core::Device;

use super::*;
use crate::context::{self, Decision};
use crate::corpus::fixture::fixture_copy;
use crate::engine::model::Qwen2;
use crate::session::{ByteOffset, Document, DocumentLimits};

fn tiny_tokenizer() -> Tokenizer {
    Qwen2::load(&crate::engine::testing::tiny_model_path(), &Device::Cpu, 16).unwrap().1
}

fn options(repo: &std::path::Path, out: &std::path::Path) -> DatasetOptions {
    DatasetOptions {
        repo: repo.to_path_buf(),
        out: out.to_path_buf(),
        seed: 3,
        settings: Settings { cross_file_context: false, max_prefix_tokens: 120, max_suffix_tokens: 40, ..Settings::default() },
        lines_per_example: 8,
        max_per_file: 10,
        fim_rate: 0.9,
        tokenizer_source: "tiny".into(),
        progress: false,
    }
}

/// The prompt the server would send for this cursor, built independently of the data set code.
fn server_prompt(sample: &Sample, tokenizer: &Tokenizer, settings: &Settings) -> String {
    let doc = Document::open(&sample.path, sample.language, &sample.document_text(), 1, &DocumentLimits::default()).unwrap();
    let Decision::Complete(ctx) = context::gather(&doc.snapshot(), ByteOffset(sample.cursor()), settings) else { panic!("skipped") };
    let request = pipeline::request_for(&ctx, settings);
    let special = SpecialTokens::from_tokenizer(tokenizer).unwrap();
    let built = prompt::build(tokenizer, &special, &request.text, request.budget).unwrap();
    tokenizer.decode(&built.tokens, false).unwrap() + &built.heal
}

#[test]
fn fim_prompts_are_byte_identical_to_the_servers() {
    let dir = fixture_copy();
    let corpus = Corpus::load(dir.path()).unwrap();
    let tokenizer = tiny_tokenizer();
    let special = SpecialTokens::from_tokenizer(&tokenizer).unwrap();
    let settings = options(dir.path(), dir.path()).settings;
    let mut checked = 0;
    for file in corpus.files.iter().filter(|f| ["py/calc.py", "rs/queue.rs", "js/router.js"].contains(&f.path.as_str())) {
        let parsed = ParsedFile::new(file);
        for kind in [SpanKind::RestOfLine, SpanKind::Lines, SpanKind::Node, SpanKind::RandomSpan] {
            let mut rng = Rng::new(9);
            for span in parsed.candidates(kind, &mut rng).into_iter().rev().take(3) {
                let sample = parsed.sample(kind, span);
                let Some(example) = fim_example(&sample, &tokenizer, &special, &settings).unwrap() else { continue };
                assert_eq!(example.prompt, server_prompt(&sample, &tokenizer, &settings), "{}", sample.id);
                assert!(example.prompt.starts_with("<|fim_prefix|>") && example.prompt.contains("<|fim_suffix|>"));
                let head = sample.prefix.rsplit('\n').next().unwrap();
                assert!(example.prompt.ends_with(&format!("<|fim_middle|>{head}")), "{}", sample.id);
                assert_eq!(example.completion, sample.target);
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} prompts checked");
}

fn read_jsonl(path: &std::path::Path) -> Vec<Example> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn build_keeps_heldout_files_out_of_training_and_the_manifest_matches() {
    let dir = fixture_copy();
    let out = tempfile::tempdir().unwrap();
    let tokenizer = tiny_tokenizer();
    let manifest = build(&options(dir.path(), out.path()), &tokenizer).unwrap();
    let corpus = Corpus::load(dir.path()).unwrap();
    let train = read_jsonl(&out.path().join("train.jsonl"));
    let heldout = read_jsonl(&out.path().join("heldout.jsonl"));
    let held = corpus.heldout_paths();
    assert!(train.iter().all(|e| !held.contains(&e.path)));
    assert!(heldout.iter().all(|e| held.contains(&e.path)));
    // No line of a held-out file shows up in a training prompt or completion.
    for file in corpus.heldout() {
        for line in file.text.lines().filter(|l| l.trim().len() > 25) {
            let unique = corpus.train().all(|t| !t.text.contains(line));
            assert!(!unique || train.iter().all(|e| !e.prompt.contains(line) && !e.completion.contains(line)), "{line}");
        }
    }
    let on_disk: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("manifest.json")).unwrap()).unwrap();
    for (name, examples) in [("train", &train), ("heldout", &heldout)] {
        let stats = &manifest.splits[name];
        assert_eq!(stats.examples, examples.len());
        assert_eq!(on_disk["splits"][name]["examples"].as_u64(), Some(examples.len() as u64));
        let count = |f: fn(&Example) -> &String| {
            examples.iter().fold(BTreeMap::new(), |mut m, e| {
                *m.entry(f(e).clone()).or_insert(0usize) += 1;
                m
            })
        };
        assert_eq!(stats.by_kind, count(|e| &e.kind));
        assert_eq!(stats.by_span, count(|e| &e.span));
        let tokens: usize = examples.iter().map(|e| token_count(&tokenizer, &e.prompt).unwrap()).sum();
        assert_eq!(stats.prompt_tokens, tokens);
    }
    let valid = manifest.splits.get("valid").map(|v| v.files.clone()).unwrap_or_default();
    let mut train_side = manifest.splits["train"].files.clone();
    train_side.extend(valid.iter().cloned());
    train_side.sort();
    assert_eq!(train_side, corpus.train_paths(), "train and valid together are the training-side files");
    assert!(valid.iter().all(|v| !manifest.splits["train"].files.contains(v)));
    assert_eq!(manifest.splits["heldout"].files, held);
    let fim = manifest.splits["train"].by_kind["fim"] as f64 / manifest.splits["train"].examples as f64;
    assert!(fim > 0.75, "FIM share {fim}");
    assert!(manifest.splits["train"].by_span.len() >= 4, "{:?}", manifest.splits["train"].by_span);

    let again = tempfile::tempdir().unwrap();
    build(&options(dir.path(), again.path()), &tokenizer).unwrap();
    for name in ["train.jsonl", "heldout.jsonl"] {
        assert_eq!(std::fs::read(out.path().join(name)).unwrap(), std::fs::read(again.path().join(name)).unwrap(), "{name}");
    }
}

#[test]
fn a_few_training_side_files_become_the_validation_split() {
    let repo = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let body: String = (0..30).map(|j| format!("def f{i}_{j}(a, b):\n    return a * {j} + b - {i}\n\n")).collect();
        std::fs::write(repo.path().join(format!("m{i:02}.py")), body).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let tokenizer = tiny_tokenizer();
    let manifest = build(&options(repo.path(), out.path()), &tokenizer).unwrap();
    let corpus = Corpus::load(repo.path()).unwrap();
    let valid = &manifest.splits["valid"].files;
    // 5% of the 35 training-side files (5 of 40 are held out: at least 5), rounded up.
    assert_eq!((corpus.train_paths().len(), valid.len()), (35, 2), "{valid:?}");
    let (train, valid_ex, heldout) = (
        read_jsonl(&out.path().join("train.jsonl")),
        read_jsonl(&out.path().join("valid.jsonl")),
        read_jsonl(&out.path().join("heldout.jsonl")),
    );
    assert!(!valid_ex.is_empty() && valid_ex.iter().all(|e| valid.contains(&e.path)));
    assert!(train.iter().all(|e| !valid.contains(&e.path)), "no validation file in training");
    let held = corpus.heldout_paths();
    assert!(valid.iter().all(|v| !held.contains(v)), "validation files are never held-out files");
    assert!(heldout.iter().all(|e| held.contains(&e.path)));
    // Another seed chooses other files; the same seed the same ones.
    let other = tempfile::tempdir().unwrap();
    let again = build(&DatasetOptions { seed: 99, ..options(repo.path(), other.path()) }, &tokenizer).unwrap();
    assert_ne!(&again.splits["valid"].files, valid);
    let same = tempfile::tempdir().unwrap();
    assert_eq!(&build(&options(repo.path(), same.path()), &tokenizer).unwrap().splits["valid"].files, valid);

    // A repository too small for a validation split writes none, and a stale one is removed.
    let small = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(small.path().join(format!("s{i}.py")), format!("def g{i}(x):\n    return x + {i}\n")).unwrap();
    }
    let manifest = build(&options(small.path(), out.path()), &tokenizer).unwrap();
    assert!(!manifest.splits.contains_key("valid") && !out.path().join("valid.jsonl").exists());
}
