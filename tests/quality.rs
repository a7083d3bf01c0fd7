//! The quality gate as a user meets it: a filter beside the model keeps low-scoring suggestions
//! back, a broken filter is said once and suggestions flow unfiltered, the suggestion log is
//! written only when asked for (shown, accepted, dismissed, filtered), and the features the
//! server logs are the ones `inkling eval` records for the same cursor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use inkling::engine::testing::tiny_model_path;
use inkling::engine::{load_backend, Loader};
use inkling::server::ServerOptions;

use crate::support::fake::{echo_line_head, loader};
use crate::support::inprocess::TestServer;

const URI: &str = "file:///work/quality.py";
/// The fake model echoes the line head as a string: `'x ='` (5 characters) on line 0,
/// `'long_variable_name ='` (22) on line 1.
const DOC: &str = "x = \nlong_variable_name = \n";

fn inline(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}})
}

/// A filter that likes long suggestions: `p = σ(chars − 10)`, shown from 0.5.
fn long_is_good() -> String {
    json!({
        "format": "inkling-filter/1",
        "intercept": 0.0,
        "numeric": [{"name": "chars", "mean": 10.0, "scale": 1.0, "coef": 1.0}],
        "min_confidence": 0.5,
    })
    .to_string()
}

fn options(loader: Loader, model: &Path, log: &Path) -> ServerOptions {
    ServerOptions { model: Some(model.to_path_buf()), loader, suggestion_log: Some(log.to_path_buf()), ..ServerOptions::default() }
}

/// A folder with a fake model whose filter file beside it holds `filter`; the log's path.
fn with_filter(filter: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fake.gguf");
    std::fs::write(model.with_extension("inkling-filter.json"), filter).unwrap();
    let log = dir.path().join("state/suggestions.jsonl");
    (dir, model, log)
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn items(s: &mut TestServer, line: u32) -> Value {
    let end = DOC.lines().nth(line as usize).unwrap().len() as u32;
    s.request("textDocument/inlineCompletion", inline(URI, line, end)).await.expect("ok")["items"].clone()
}

/// Waits for a server message whose text contains `needle`; returns its method.
async fn message_containing(s: &mut TestServer, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, s.from_server.recv()).await {
            Ok(Some(m)) => {
                if m["params"]["message"].as_str().is_some_and(|t| t.contains(needle)) {
                    return m["method"].as_str().unwrap_or("").to_string();
                }
                seen.push(m);
            }
            _ => panic!("no message containing {needle:?}; got {seen:#?}"),
        }
    }
}

#[tokio::test]
async fn the_filter_beside_the_model_keeps_low_scores_back_and_the_log_says_what_happened() {
    let (_dir, model, log) = with_filter(&long_is_good());
    let mut s = TestServer::ready_options(options(loader(echo_line_head, Duration::ZERO), &model, &log), json!({})).await;
    assert_eq!(message_containing(&mut s, "quality filter").await, "window/logMessage");
    s.open(URI, "python", DOC).await;
    assert_eq!(items(&mut s, 0).await, json!([]), "'x =' scores σ(−5): kept back");
    let shown = items(&mut s, 1).await;
    assert_eq!(shown[0]["insertText"], "'long_variable_name ='");
    assert!(shown[0].get("command").is_none_or(Value::is_null), "no command to run while the log is off: {shown}");
    assert!(!log.exists(), "nothing is logged unless logSuggestions is on");

    // The user's threshold wins over the file's; with the log on, items carry the command.
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"logSuggestions": true, "minConfidence": 0.0}}})).await;
    let first = items(&mut s, 0).await;
    assert_eq!(first[0]["insertText"], "'x ='", "minConfidence 0 shows everything");
    let command = &first[0]["command"];
    assert_eq!(command["command"], "inkling.accepted");
    let id = command["arguments"][0].as_u64().unwrap();
    s.request("workspace/executeCommand", json!({"command": "inkling.accepted", "arguments": [id]})).await.expect("accepted");
    items(&mut s, 1).await; // another suggestion in the same file
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"minConfidence": 0.9}}})).await;
    assert_eq!(items(&mut s, 0).await, json!([]));

    let events: Vec<(String, u64)> =
        log_lines(&log).iter().map(|e| (e["event"].as_str().unwrap().to_string(), e["id"].as_u64().unwrap())).collect();
    let second = id + 1;
    assert_eq!(
        events,
        [
            ("shown".into(), id),
            ("accepted".into(), id),
            ("shown".into(), second),
            ("dismissed".into(), second),
            ("filtered".into(), second + 1)
        ],
        "{events:?}"
    );
    let entries = log_lines(&log);
    let shown = &entries[0];
    assert_eq!(
        (shown["text"].as_str(), shown["line"].as_u64(), shown["path"].as_str()),
        (Some("'x ='"), Some(0), Some("/work/quality.py"))
    );
    let p = shown["confidence"].as_f64().unwrap();
    assert!((p - 1.0 / (1.0 + 5f64.exp())).abs() < 1e-9, "{p}");
    assert_eq!(shown["features"]["numeric"]["chars"], 5.0);
    assert!(shown["features"]["numeric"]["since_edit_ms"].is_number(), "the server knows when the file last changed");
    assert!(entries[4]["confidence"].as_f64().unwrap() < 0.9);

    // Unknown commands and ids are clear errors, not crashes.
    let err = s.request("workspace/executeCommand", json!({"command": "inkling.nope", "arguments": []})).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("unknown command"), "{err}");
}

#[tokio::test]
async fn a_broken_filter_is_said_once_and_suggestions_are_shown_unfiltered() {
    let (dir, model, log) = with_filter("{broken");
    let mut s = TestServer::ready_options(options(loader(echo_line_head, Duration::ZERO), &model, &log), json!({})).await;
    assert_eq!(message_containing(&mut s, "shown unfiltered").await, "window/showMessage");
    s.open(URI, "python", DOC).await;
    for _ in 0..2 {
        assert_eq!(items(&mut s, 0).await[0]["insertText"], "'x ='");
    }
    // A filterPath that does not exist is said too; fixing the setting brings the filter in.
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"filterPath": dir.path().join("nope.json")}})).await;
    assert_eq!(message_containing(&mut s, "nope.json").await, "window/showMessage");
    let good = dir.path().join("good.json");
    std::fs::write(&good, long_is_good()).unwrap();
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"filterPath": good}})).await;
    message_containing(&mut s, "quality filter").await;
    // (A new file: in the old one, `'x ='` is the suggestion already shown, which typing
    // through answers from memory.)
    let other = "file:///work/other.py";
    s.open(other, "python", DOC).await;
    let r = s.request("textDocument/inlineCompletion", inline(other, 0, 4)).await.expect("ok");
    assert_eq!(r["items"], json!([]), "{r}");
}

/// A small repository whose one held-out cursor `inkling eval` and the server both answer.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        let body: String = (0..8).map(|j| format!("def f{i}_{j}(a, b):\n    total = a * {j} + b\n    return total - {i}\n\n")).collect();
        std::fs::write(dir.path().join(format!("m{i}.py")), body).unwrap();
    }
    dir
}

/// Line and UTF-16 column of byte `offset` in `text` (ASCII here).
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let col = before.rsplit('\n').next().unwrap_or("").len() as u32;
    (line, col)
}

#[tokio::test]
async fn the_server_logs_the_features_inkling_eval_records_for_the_same_cursor() {
    let repo = repo();
    let model = tiny_model_path();
    let (root, model_for_eval) = (repo.path().to_path_buf(), model.clone());
    // The evaluation blocks on its own runtime: off this one.
    let (sample, recorded) = tokio::task::spawn_blocking(move || {
        let settings =
            inkling::config::Settings { cross_file_context: false, latency_target_ms: 0, ..inkling::config::Settings::default() };
        let corpus = inkling::corpus::Corpus::load(&root).unwrap();
        let samples = inkling::eval::held_out_samples(&corpus, &[inkling::corpus::SpanKind::RestOfLine], 6, 3, &settings);
        let variant = inkling::eval::Variant::parse("default", &model_for_eval, &settings).unwrap();
        // The first cursor where the tiny model suggests something, each read cold (as the
        // server's one request will be).
        samples
            .iter()
            .find_map(|s| {
                let runner = inkling::eval::Runner::new(&model_for_eval, &corpus, &settings).unwrap();
                runner.predict(&variant, s).features.map(|f| (s.clone(), f))
            })
            .expect("the tiny model suggests something at one of the cursors")
    })
    .await
    .unwrap();

    let log = repo.path().join("log.jsonl");
    let client_settings = json!({"crossFileContext": false, "latencyTargetMs": 0, "logSuggestions": true});
    let mut s = TestServer::ready_options(options(Box::new(load_backend), &model, &log), client_settings).await;
    let root = std::fs::canonicalize(repo.path()).unwrap();
    let uri = format!("file://{}", root.join(&sample.path).display());
    let text = sample.document_text();
    s.open(&uri, "python", &text).await;
    let (line, character) = line_col(&text, sample.cursor());
    let answer = s.request("textDocument/inlineCompletion", inline(&uri, line, character)).await.expect("ok");
    assert!(answer["items"][0]["insertText"].is_string(), "{answer}");
    let entries = log_lines(&log);
    let logged: inkling::quality::Features = serde_json::from_value(entries[0]["features"].clone()).unwrap();
    assert!(logged.numeric.since_edit_ms.is_some() && recorded.numeric.since_edit_ms.is_none());
    let mut logged = logged;
    logged.numeric.since_edit_ms = None;
    assert!(!recorded.dense.is_empty());
    assert_eq!(logged, recorded, "the same features for the same cursor");
}

/// The router model's fake answer.
fn big_model(_: &inkling::engine::GenerateRequest) -> String {
    "'from the big model'".into()
}

#[tokio::test]
async fn a_suggestion_that_scores_low_goes_to_the_router_model() {
    let (dir, model, log) = with_filter(&long_is_good());
    let options =
        ServerOptions { router_loader: loader(big_model, Duration::ZERO), ..options(loader(echo_line_head, Duration::ZERO), &model, &log) };
    let settings = json!({"routerModelPath": dir.path().join("big.gguf"), "logSuggestions": true});
    let mut s = TestServer::ready_options(options, settings).await;
    message_containing(&mut s, "router model ready").await;
    s.open(URI, "python", DOC).await;
    // 'x =' scores low: the big model answers instead; the long one is the first model's.
    assert_eq!(items(&mut s, 0).await[0]["insertText"], "'from the big model'");
    assert_eq!(items(&mut s, 1).await[0]["insertText"], "'long_variable_name ='");
    let entries = log_lines(&log);
    assert_eq!(entries[0]["routed"], true);
    assert!(entries[0]["confidence"].as_f64().unwrap() < 0.5, "the first model's score: {}", entries[0]);
    assert_eq!(entries[1]["routed"], false);

    // A router model that cannot load is said, and low scores are kept back again.
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"routerModelPath": dir.path().join("missing.gguf")}})).await;
    assert_eq!(message_containing(&mut s, "could not load the router model").await, "window/showMessage");
    let other = "file:///work/other.py";
    s.open(other, "python", DOC).await;
    let r = s.request("textDocument/inlineCompletion", inline(other, 0, 4)).await.expect("ok");
    assert_eq!(r["items"], json!([]), "{r}");
}
