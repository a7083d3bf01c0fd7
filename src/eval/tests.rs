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
    let opts = EvalOptions {
        files: SampleFiles::Heldout,
        repo: dir.path().to_path_buf(),
        per_kind: 3,
        seed: 1,
        kinds: SpanKind::EVAL.to_vec(),
        variants,
        comparisons: vec![(0, 1)],
        resamples: 200,
        progress: false,
    };
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
    assert_eq!(report.comparisons.len(), 1);
    let cmp = &report.comparisons[0];
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
    let opts = EvalOptions {
        files: SampleFiles::Heldout,
        repo: dir.path().to_path_buf(),
        per_kind: 2,
        seed: 5,
        kinds: vec![SpanKind::RestOfLine, SpanKind::Node],
        variants,
        comparisons: vec![(0, 1)],
        resamples: 100,
        progress: false,
    };
    let report = run(&opts).unwrap();
    assert_eq!(report.configs[1].model, other.display().to_string());
    assert!(report.samples.iter().all(|s| s.predictions.contains_key(&spec) && s.predictions.contains_key("default")));
    let rows = &report.comparisons[0].rows;
    assert_eq!(
        rows.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["rest_of_line"; 3].into_iter().chain(["node"; 3]).chain(["overall"; 3]).collect::<Vec<_>>()
    );

    // The comparison recorded beside the tuned model, as `--record` does, reads back whole.
    assert_eq!(record::read(&other).unwrap(), None, "no record yet");
    let rec = record::from_comparison(&report, &report.comparisons[0]).unwrap();
    assert_eq!(record::write(&rec, &other).unwrap(), other.with_extension("inkling-eval.json"));
    assert_eq!(record::read(&other).unwrap().as_ref(), Some(&rec));
    assert_eq!((rec.samples, rec.base.as_str()), (4, model.to_str().unwrap()));
    let em = rows.iter().find(|r| r.kind == "overall" && r.metric == "EM").unwrap();
    assert_eq!(
        (rec.metrics[0].metric.as_str(), rec.metrics[0].base, rec.metrics[0].tuned, rec.metrics[0].diff),
        ("EM", record::rounded(em.a), record::rounded(em.b), record::rounded(em.diff.mean))
    );
    let summary = rec.summary();
    assert!(summary.starts_with(&format!("held-out EM {:.3} → {:.3} ({:+.3}, 95% CI", em.a, em.b, em.diff.mean)), "{summary}");
    assert!(summary.ends_with(&format!("on 4 cursors of {}", dir.path().file_name().unwrap().to_string_lossy())), "{summary}");
}

#[test]
fn an_unreadable_evaluation_record_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.gguf");
    let path = record::record_path(&model);
    assert_eq!(path, dir.path().join("model.inkling-eval.json"));
    assert_eq!(record::record_path(dir.path()), dir.path().join("inkling-eval.json"), "a model folder holds its record");
    for bad in ["{not json", r#"{"repo": "r", "base": "b", "samples": 1, "seed": 1, "metrics": []}"#] {
        std::fs::write(&path, bad).unwrap();
        let err = format!("{:#}", record::read(&model).unwrap_err());
        assert!(err.contains("model.inkling-eval.json"), "{err}");
    }
}

#[test]
fn shaping_a_shared_generation_gives_what_the_server_gives() {
    // `default` + `no-shaping` run the model once without the early stop; the shaped answers
    // must equal the server path's (which stops early), and `no-crossfile` runs on its own.
    let dir = fixture_copy();
    let model = crate::engine::testing::tiny_model_path();
    let settings = Settings { max_new_tokens: 24, ..tiny_settings() };
    let variants: Vec<Variant> =
        ["default", "no-shaping", "no-crossfile"].iter().map(|s| Variant::parse(s, &model, &settings).unwrap()).collect();
    let opts = EvalOptions {
        files: SampleFiles::Heldout,
        repo: dir.path().to_path_buf(),
        per_kind: 3,
        seed: 3,
        kinds: SpanKind::EVAL.to_vec(),
        variants: variants.clone(),
        comparisons: vec![(1, 0), (2, 0)],
        resamples: 100,
        progress: false,
    };
    let shared = run(&opts).unwrap();
    assert_eq!(shared.configs[0].generation_shared_with, ["no-shaping"]);
    assert!(shared.configs[2].generation_shared_with.is_empty());
    assert_eq!(
        shared.comparisons.iter().map(|c| (c.a.as_str(), c.b.as_str())).collect::<Vec<_>>(),
        [("no-shaping", "default"), ("no-crossfile", "default")]
    );
    let alone = run(&EvalOptions { variants: vec![variants[0].clone()], comparisons: vec![], ..opts.clone() }).unwrap();
    assert_eq!(shared.samples.len(), alone.samples.len());
    for (s, a) in shared.samples.iter().zip(&alone.samples) {
        assert_eq!(s.id, a.id);
        let (shaped, server) = (&s.predictions["default"], &a.predictions["default"]);
        assert_eq!((&shaped.text, &shaped.skipped, &shaped.error), (&server.text, &server.skipped, &server.error), "sample {}", s.id);
    }
    let text = table(&shared);
    assert!(text.contains("A = no-shaping, B = default") && text.contains("A = no-crossfile, B = default"), "{text}");
    // Each prediction records the code from other files its prompt held: none without
    // cross-file context, never a held-out file, and the same for the server path and the
    // shared generation.
    let held_out = &shared.heldout_files;
    assert!(shared.samples.iter().all(|s| s.predictions["no-crossfile"].context.is_empty()));
    assert!(shared.samples.iter().any(|s| !s.predictions["default"].context.is_empty()), "the fixture's other files are shown somewhere");
    for (s, a) in shared.samples.iter().zip(&alone.samples) {
        let shown = &s.predictions["default"].context;
        assert!(shown.iter().all(|c| !held_out.iter().any(|h| c.starts_with(&format!("{h}:")))), "{shown:?}");
        assert_eq!(shown, &s.predictions["no-shaping"].context);
        assert_eq!(shown, &a.predictions["default"].context, "sample {}", s.id);
    }
}

/// A model that answers and then keeps writing, like the real ones: a body, blank lines, the
/// next function. One character per token; it honours single-line mode and the stop rule.
struct Rambling;

impl crate::engine::Backend for Rambling {
    fn describe(&self) -> String {
        "rambling model".into()
    }

    fn reset(&mut self) {}

    fn generate(
        &mut self,
        req: &crate::engine::GenerateRequest,
        _cancel: &crate::engine::CancelToken,
    ) -> anyhow::Result<crate::engine::Generated> {
        use crate::engine::StopReason;
        let script = "value = compute(a, b)\n    check(value)\n    return value\n\n\ndef other(x):\n    return x\n}\nfn more() {}\n";
        let (mut text, mut stop) = (String::new(), StopReason::MaxTokens);
        for c in script.chars().take(req.max_new_tokens) {
            text.push(c);
            if req.single_line && c == '\n' {
                stop = StopReason::EndOfLine;
                break;
            }
            if req.stop_when.as_ref().is_some_and(|f| f(&text)) {
                stop = StopReason::EndOfBlock;
                break;
            }
        }
        let new_tokens = text.chars().count();
        Ok(crate::engine::Generated {
            text,
            stop,
            prompt_tokens: 1,
            reused_tokens: 0,
            moved_tokens: 0,
            new_tokens,
            prefill_ms: 0.0,
            decode_ms: 0.0,
            draft_tokens: 0,
            draft_accepted: 0,
            signals: Default::default(),
        })
    }
}

#[test]
fn shaped_answers_from_a_shared_generation_equal_the_early_stopped_ones() {
    let dir = fixture_copy();
    let corpus = Corpus::load(dir.path()).unwrap();
    let settings = Settings { max_new_tokens: 200, ..tiny_settings() };
    let model = Path::new("rambling");
    let runner =
        Runner::with_loader(model, &corpus, &settings, Box::new(|_: &Path| Ok(Box::new(Rambling) as Box<dyn crate::engine::Backend>)))
            .unwrap();
    let [shaped, raw] = ["default", "no-shaping"].map(|s| Variant::parse(s, model, &settings).unwrap());
    let samples = held_out_samples(&corpus, &SpanKind::EVAL, 6, 11, &settings);
    let (mut multi_line, mut cut) = (0, 0);
    for sample in &samples {
        let server = runner.predict(&shaped, sample);
        let both = runner.predict_shared(&[&shaped, &raw], sample);
        assert_eq!((&both[0].text, &both[0].skipped, &both[0].error), (&server.text, &server.skipped, &server.error), "{}", sample.id);
        assert_eq!(both[1].skipped, server.skipped);
        multi_line += usize::from(both[1].text.contains('\n'));
        cut += usize::from(both[1].text != both[0].text);
    }
    assert!(multi_line > 0 && cut > 0, "shaping never applied: {multi_line} multi-line raw answers, {cut} cut");
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
