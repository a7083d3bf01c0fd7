//! The product working end to end: the real `inkling` binary over stdio with the real
//! Qwen2.5-Coder-0.5B model, on cases whose answer is obvious.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::proc_client::{test_model, ProcClient};

const LOAD: Duration = Duration::from_secs(120);
const ANSWER: Duration = Duration::from_secs(120);

fn client_caps(snippets: bool) -> Value {
    json!({
        "general": {"positionEncodings": ["utf-16"]},
        "window": {"workDoneProgress": true},
        "textDocument": {"completion": {"completionItem": {"snippetSupport": snippets}}}
    })
}

fn start() -> ProcClient {
    let model = test_model();
    let mut c = ProcClient::serve_env(&["--model", &model], &[]);
    // A generous time budget: a loaded CI machine must not cut the answer short.
    c.initialize(client_caps(true), json!({"maxNewTokens": 48, "timeBudgetMs": 120000}));
    c.wait_model_ready(LOAD);
    c
}

const PY_ADD: &str = "def add(a, b):\n    \n\n\nprint(add(2, 3))\n";

#[test]
fn inline_completion_writes_the_sum_function_body() {
    let mut c = start();
    c.open("file:///tmp/demo/add.py", "python", PY_ADD);
    let r = c.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": "file:///tmp/demo/add.py"}, "position": {"line": 1, "character": 4}, "context": {"triggerKind": 1}}),
        ANSWER,
    );
    let item = &r["result"]["items"][0];
    let text = item["insertText"].as_str().unwrap_or_else(|| panic!("no item: {r}"));
    assert!(text.contains("return a + b"), "got {text:?}");
    assert!(!text.contains("print("), "stopped at the end of the function: {text:?}");
    assert_eq!(item["range"]["start"], json!({"line": 1, "character": 4}));
    c.shutdown();
}

#[test]
fn popup_completion_writes_the_sum_function_body() {
    let mut c = start();
    c.open("file:///tmp/demo/add.py", "python", "def add(a, b):\n    return \n\n\nprint(add(2, 3))\n");
    let r = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": "file:///tmp/demo/add.py"}, "position": {"line": 1, "character": 11}}),
        ANSWER,
    );
    let item = &r["result"]["items"][0];
    let edit = &item["textEdit"];
    let new_text = edit["newText"].as_str().unwrap_or_else(|| panic!("no item: {r}"));
    assert!(new_text.replace(' ', "").starts_with("a+b"), "got {new_text:?}");
    assert_eq!(edit["range"]["end"], json!({"line": 1, "character": 11}));
    c.shutdown();
}

#[test]
fn closes_a_rust_match_arm() {
    let src = "fn describe(n: Option<u32>) -> u32 {\n    match n {\n        Some(v) => v,\n        None => \n    }\n}\n";
    let mut c = start();
    c.open("file:///tmp/demo/lib.rs", "rust", src);
    let r = c.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": "file:///tmp/demo/lib.rs"}, "position": {"line": 3, "character": 16}, "context": {"triggerKind": 1}}),
        ANSWER,
    );
    let text = r["result"]["items"][0]["insertText"].as_str().unwrap_or_else(|| panic!("no item: {r}")).to_string();
    assert!(!text.contains('\n'), "one line after `=>`: {text:?}");
    // Inserted, the function parses cleanly.
    let completed = src.replacen("None => \n", &format!("None => {text}\n"), 1);
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&tree_sitter_rust::LANGUAGE.into()).unwrap();
    let tree = parser.parse(&completed, None).unwrap();
    assert!(!tree.root_node().has_error(), "completion {text:?} breaks the parse:\n{completed}");
    assert!(text.trim_end_matches(',').trim() == "0" || text.contains('0'), "an obvious default: {text:?}");
    c.shutdown();
}
