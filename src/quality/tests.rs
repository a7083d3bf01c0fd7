//! The features' definitions and the filter's arithmetic, against values worked out by hand.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::config::Settings;
use crate::context::{gather, Decision};
use crate::engine::{Generated, Signals, StopReason};
use crate::session::{ByteOffset, Document, DocumentLimits};
use crate::syntax::Language;

#[test]
fn lexical_units_are_words_and_single_symbols() {
    assert_eq!(lexical::units("self.lora_A[name] = x+1  # ok"), ["self", ".", "lora_A", "[", "name", "]", "=", "x", "+", "1", "#", "ok"]);
    assert!(lexical::units("  \n\t").is_empty());
    assert_eq!(lexical::units(&"a ".repeat(1000)).len(), lexical::MAX_UNITS);
}

fn generated(text: &str, logprobs: &[f32], ends: &[usize]) -> Generated {
    Generated {
        text: text.into(),
        stop: StopReason::EndOfLine,
        prompt_tokens: 40,
        reused_tokens: 0,
        moved_tokens: 0,
        new_tokens: logprobs.len(),
        prefill_ms: 0.0,
        decode_ms: 0.0,
        draft_tokens: 0,
        draft_accepted: 0,
        signals: Signals {
            logprobs: logprobs.to_vec(),
            ends: ends.to_vec(),
            prompt_hidden: vec![1.0, 2.0],
            completion_hidden: vec![3.0, 4.0],
        },
    }
}

#[test]
fn features_describe_the_shown_part_of_what_the_model_wrote() {
    let text = "def area(w, h):\n    # width times height\n    return ";
    let doc = Document::open("/r/geo.py", Language::Python, text, 1, &DocumentLimits::default()).unwrap();
    let Decision::Complete(ctx) = gather(&doc.snapshot(), ByteOffset(text.len()), &Settings::default()) else { panic!("skipped") };
    // The model wrote "w * h\nprint" in three tokens and a fourth; shaping kept "w * h".
    let g = generated("w * h\nprint", &[-0.5, -1.5, -0.25, -3.0], &[1, 3, 5, 11]);
    let f = features(&ctx, &g, "w * h", Some(120.0));
    assert_eq!(f.dense, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(f.completion_units, ["w", "*", "h"]);
    // The last lines above the cursor line, then the cursor line up to the cursor.
    assert_eq!(f.context_units, ["def", "area", "(", "w", ",", "h", ")", ":", "#", "width", "times", "height", "return"]);
    let n = &f.numeric;
    // The three tokens that wrote "w * h", not the one after the line break.
    assert_eq!((n.shown_tokens, n.generated_tokens), (3.0, 4.0));
    assert!((n.mean_logprob - (-0.75)).abs() < 1e-9 && n.min_logprob == -1.5 && n.first_logprob == -0.5, "{n:?}");
    assert_eq!((n.chars, n.lines, n.shaped_cut, n.multiline), (5.0, 1.0, 1.0, 0.0));
    assert_eq!((n.blank_line_head, n.line_head_chars, n.prompt_tokens), (0.0, 11.0, 40.0));
    assert_eq!(n.since_edit_ms, Some(120.0));
    assert_eq!(f.categorical.values(), [("language", "python"), ("cursor_node", "return_statement"), ("stop", "end_of_line")]);
    // Nothing cut: shaped_cut is 0 and every token counts.
    let whole = features(&ctx, &generated("w * h", &[-0.5, -1.5, -0.25], &[1, 3, 5]), "w * h", None);
    assert_eq!((whole.numeric.shaped_cut, whole.numeric.shown_tokens), (0.0, 3.0));
}

fn example() -> Features {
    let mut f = Features {
        dense: vec![2.0, -1.0],
        completion_units: ["a", "+", "a", "zzz"].map(String::from).to_vec(),
        context_units: vec!["return".into()],
        ..Features::default()
    };
    f.numeric.mean_logprob = -1.0;
    f.categorical.language = "python".into();
    f
}

/// A filter file with every branch; its score for [`example`] is worked out below.
fn filter_json(checks: serde_json::Value) -> String {
    json!({
        "format": filter::FORMAT,
        "intercept": 0.5,
        "dense": {"mean": [1.0, 0.0], "scale": [2.0, 0.0], "coef": [1.0, 0.5]},
        "completion_units": {"terms": {"a": [2.0, 1.0], "+": [1.0, -1.0]}},
        "context_units": {"terms": {"return": [1.5, 0.25]}},
        "numeric": [{"name": "mean_logprob", "mean": -2.0, "scale": 0.5, "coef": 0.1}, {"name": "since_edit_ms", "mean": 100.0, "scale": 1.0, "coef": 9.0}],
        "categorical": [{"name": "language", "coef": {"python": -0.2, "rust": 3.0}}],
        "min_confidence": 0.4,
        "checks": checks,
    })
    .to_string()
}

fn expected_probability() -> f64 {
    let dense = 1.0 * (2.0 - 1.0) / 2.0 + 0.5 * (-1.0 - 0.0) / 1.0; // scale 0 counts as 1
                                                                    // "a" twice (1 + ln 2) · 2, "+" once 1 · 1; "zzz" is not in the vocabulary.
    let (va, vp) = ((1.0 + 2f64.ln()) * 2.0, 1.0);
    let completion = (1.0 * va - 1.0 * vp) / (va * va + vp * vp).sqrt();
    let context = 0.25; // one unit: v / ‖v‖ = 1
    let numeric = 0.1 * (-1.0 - -2.0) / 0.5; // since_edit_ms is missing: no part
    let z = 0.5 + dense + completion + context + numeric - 0.2;
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn the_filter_scores_as_its_definition_says() {
    let filter = Filter::parse(&filter_json(json!([])), Path::new("f.json")).unwrap();
    let p = filter.score(&example()).unwrap();
    assert!((p - expected_probability()).abs() < 1e-12, "{p} vs {}", expected_probability());
    assert_eq!(filter.min_confidence(), 0.4);
    // A present value counts.
    let mut edited = example();
    edited.numeric.since_edit_ms = Some(101.0);
    assert!(filter.score(&edited).unwrap() > p);
    // Dense features of another model's size are refused, not scored.
    let other = Features { dense: vec![1.0; 3], ..example() };
    assert!(matches!(filter.score(&other), Err(FilterError::OtherModel { want: 2, got: 3 })));
}

#[test]
fn a_filter_file_that_does_not_reproduce_its_checks_is_refused() {
    let good = json!([{"features": example(), "probability": expected_probability()}]);
    assert!(Filter::parse(&filter_json(good), Path::new("f.json")).is_ok());
    let bad = json!([{"features": example(), "probability": expected_probability() + 0.01}]);
    let err = Filter::parse(&filter_json(bad), Path::new("f.json")).unwrap_err();
    assert!(matches!(err, FilterError::Inconsistent { index: 0, .. }), "{err}");
    assert!(err.to_string().contains("f.json"), "{err}");
}

#[test]
fn broken_filter_files_are_clear_errors() {
    let path = Path::new("/tmp/missing-filter-file.json");
    assert!(matches!(Filter::load(path), Err(FilterError::Io { .. })));
    for (text, says) in [
        ("{not json", "not a filter file"),
        (r#"{"format": "other/1", "intercept": 0, "min_confidence": 0.5}"#, "format `other/1`"),
        (r#"{"format": "inkling-filter/1", "intercept": 0, "min_confidence": 1.5}"#, "not a probability"),
        (
            r#"{"format": "inkling-filter/1", "intercept": 0, "min_confidence": 0.5, "numeric": [{"name": "speed", "mean": 0, "scale": 1, "coef": 1}]}"#,
            "unknown feature `speed`",
        ),
    ] {
        let err = Filter::parse(text, Path::new("f.json")).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("f.json"), "{err}");
    }
}
