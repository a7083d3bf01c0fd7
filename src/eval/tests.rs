//! Tests of the evaluation: metrics on known inputs, bootstrap intervals, configurations, and
//! an end-to-end run on the fixture repository with the tiny random model.

use super::metrics::*;
use super::*;
use crate::corpus::fixture::fixture_copy;
use crate::syntax::Language;

fn sample(kind: SpanKind, prefix: &str, target: &str, suffix: &str) -> Sample {
    Sample {
        id: "t".into(),
        path: "t.py".into(),
        language: Language::Python,
        kind,
        prefix: prefix.into(),
        suffix: suffix.into(),
        target: target.into(),
    }
}

#[test]
fn levenshtein_and_edit_similarity() {
    assert_eq!(levenshtein("kitten", "sitting"), 3);
    assert_eq!(levenshtein("", "abc"), 3);
    assert_eq!(levenshtein("é1", "e1"), 1, "characters, not bytes");
    assert!((edit_similarity("abc", "abd") - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(edit_similarity("", ""), 1.0);
    assert_eq!(edit_similarity("x", ""), 0.0);
}

#[test]
fn exact_match_compares_the_first_line_or_the_whole_block() {
    let s = sample(SpanKind::RestOfLine, "x = ", "foo(1)", "\n");
    assert_eq!(score(&s, "  foo(1)  \nmore").em, 1.0);
    assert_eq!(score(&s, "foo(2)").em, 0.0);
    assert!((score(&s, "foo(2)").es - 5.0 / 6.0).abs() < 1e-12);
    let b = sample(SpanKind::Block, "if x:\n    ", "a = 1\n    b = 2", "\n");
    assert_eq!(score(&b, "a = 1\n    b = 2\n").em, 1.0);
    assert_eq!(score(&b, "a = 1").em, 0.0, "a block must match as a whole");
    let e = sample(SpanKind::Empty, "x = 1", "", "\ny = 2\n");
    assert_eq!((score(&e, "").em, score(&e, "  ").em, score(&e, " + 1").em), (1.0, 1.0, 0.0));
}

#[test]
fn parse_validity_counts_new_syntax_errors() {
    let s = sample(SpanKind::RestOfLine, "def f(a):\n    return ", "a + 1", "\n\nprint(f(2))\n");
    assert_eq!(score(&s, "a + 1").parse, Some(1.0));
    assert_eq!(score(&s, "a * 2").parse, Some(1.0));
    assert_eq!(score(&s, "a +").parse, Some(0.0));
}

#[test]
fn bootstrap_intervals_are_seeded_and_sensible() {
    let same = bootstrap(&[0.5; 20], 1000, 1);
    assert_eq!((same.mean, same.lo, same.hi, same.n), (0.5, 0.5, 0.5, 20));
    let coin: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect();
    let i = bootstrap(&coin, 1000, 7);
    assert_eq!(i.mean, 0.5);
    assert!(i.lo < 0.45 && i.lo > 0.3 && i.hi > 0.55 && i.hi < 0.7, "{i:?}");
    assert_eq!(i, bootstrap(&coin, 1000, 7));
    assert!(bootstrap(&[], 1000, 7).mean.is_nan());
    let a: Vec<Option<f64>> = coin.iter().map(|v| Some(*v)).collect();
    let b: Vec<Option<f64>> = coin.iter().map(|v| Some(v + 0.1)).collect();
    let d = paired(&a, &b, 1000, 3);
    assert!((d.mean - 0.1).abs() < 1e-9 && (d.lo - 0.1).abs() < 1e-9 && (d.hi - 0.1).abs() < 1e-9);
    let mut missing = b.clone();
    missing[0] = None;
    assert_eq!(paired(&a, &missing, 10, 3).n, 99);
}

#[test]
fn configurations_parse() {
    let base = Settings::default();
    let m = Path::new("m.gguf");
    assert!(!Variant::parse("no-crossfile", m, &base).unwrap().settings.cross_file_context);
    assert!(!Variant::parse("no-shaping", m, &base).unwrap().shaping);
    assert_eq!(Variant::parse("model=/x/y.gguf", m, &base).unwrap().model, Path::new("/x/y.gguf"));
    assert_eq!(Variant::parse("default", m, &base).unwrap().settings, base);
    assert!(Variant::parse("fast", m, &base).is_err());
}

pub(crate) fn tiny_settings() -> Settings {
    Settings { max_prefix_tokens: 200, max_suffix_tokens: 60, max_new_tokens: 8, time_budget_ms: 60_000, ..Settings::default() }
}

#[test]
fn end_to_end_with_the_tiny_model_writes_table_json_and_png() {
    let dir = fixture_copy();
    let model = crate::engine::testing::tiny_model_path();
    let variants = ["default", "no-shaping"].map(|s| Variant::parse(s, &model, &tiny_settings()).unwrap()).to_vec();
    let opts = EvalOptions { repo: dir.path().to_path_buf(), per_kind: 3, seed: 1, kinds: SpanKind::EVAL.to_vec(), variants, resamples: 200, progress: false };
    let report = run(&opts).unwrap();
    assert_eq!(report.samples.len(), 15);
    assert!(report.samples.iter().all(|s| report.heldout_files.contains(&s.path)));
    let errors: Vec<&String> = report.samples.iter().flat_map(|s| s.predictions.values().filter_map(|p| p.error.as_ref())).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(report.samples.iter().all(|s| s.predictions.len() == 2));
    let text = table(&report);
    for needle in ["rest_of_line", "node", "block", "random_span", "empty", "overall", "B−A", "[default]", "[no-shaping]"] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let cmp = report.comparison.as_ref().unwrap();
    assert_eq!(cmp.rows.len(), 6 * 3);

    let out = tempfile::tempdir().unwrap();
    let (json, png) = write_outputs(&report, out.path()).unwrap();
    let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(value["samples"].as_array().unwrap().len(), 15);
    assert_eq!(value["summary"]["default"].as_array().unwrap().len(), 6);
    assert!(value["samples"][0]["predictions"]["no-shaping"]["scores"]["es"].is_number());
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (1000, 800));
}

#[test]
fn two_models_are_compared_on_the_same_samples() {
    let dir = fixture_copy();
    let models = tempfile::tempdir().unwrap();
    let other = crate::engine::testing::write_tiny_model(models.path(), 43).unwrap();
    let model = crate::engine::testing::tiny_model_path();
    let spec = format!("model={}", other.display());
    let variants = ["default", spec.as_str()].map(|s| Variant::parse(s, &model, &tiny_settings()).unwrap()).to_vec();
    let opts = EvalOptions { repo: dir.path().to_path_buf(), per_kind: 2, seed: 5, kinds: vec![SpanKind::RestOfLine, SpanKind::Node], variants, resamples: 100, progress: false };
    let report = run(&opts).unwrap();
    assert_eq!(report.configs[1].model, other.display().to_string());
    assert!(report.samples.iter().all(|s| s.predictions.contains_key(&spec) && s.predictions.contains_key("default")));
    let rows = &report.comparison.as_ref().unwrap().rows;
    assert_eq!(rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(), ["rest_of_line"; 3].into_iter().chain(["node"; 3]).chain(["overall"; 3]).collect::<Vec<_>>());
}

#[test]
fn retrieval_never_sees_heldout_files() {
    let dir = fixture_copy();
    let corpus = Corpus::load(dir.path()).unwrap();
    let runner = Runner::new(&crate::engine::testing::tiny_model_path(), &corpus, &tiny_settings()).unwrap();
    let indexed = runner.indexed_files();
    assert!(indexed.iter().any(|p| p.ends_with("py/calc.py")), "{indexed:?}");
    for held in corpus.heldout_paths() {
        assert!(indexed.iter().all(|p| !p.ends_with(&held)), "{held} is indexed");
    }
}
