//! The LSP contract, in process with a fake model: ordering of edits and requests, cancellation,
//! exactly-once answers, positions in utf-8 and utf-16, settings.

use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};

use crate::support::fake::echo_line_head;
use crate::support::inprocess::TestServer;

const URI: &str = "file:///work/demo.py";

fn inline_params(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}})
}

fn change(uri: &str, version: i32, line: u32, character: u32, text: &str) -> Value {
    json!({"textDocument": {"uri": uri, "version": version},
           "contentChanges": [{"range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character}}, "text": text}]})
}

fn first_item(result: &Value) -> Option<&Value> {
    result["items"].as_array().and_then(|items| items.first())
}

#[tokio::test]
async fn edits_apply_in_arrival_order_before_a_following_request() {
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, "utf-16", Value::Null).await;
    // Plain text: no grammar, so the echo is not checked as code.
    const URI: &str = "file:///work/notes.txt";
    s.open(URI, "plaintext", "x = \n").await;
    // Send 30 keystrokes and a completion request without waiting in between, as the transport
    // does: futures are started in arrival order.
    let word = "compute_total_sum_of_values_ab";
    let mut pending = FuturesUnordered::new();
    for (i, c) in word.chars().enumerate() {
        let req = tower_lsp_server::jsonrpc::Request::build("textDocument/didChange")
            .params(change(URI, 2 + i as i32, 0, 4 + i as u32, &c.to_string()))
            .finish();
        pending.push(s.start_call(req));
    }
    let (_, req) = s.request_message("textDocument/inlineCompletion", inline_params(URI, 0, 4 + word.len() as u32));
    pending.push(s.start_call(req));
    let mut answers = Vec::new();
    while let Some(r) = pending.next().await {
        if let Some(resp) = r {
            answers.push(resp);
        }
    }
    assert_eq!(answers.len(), 1, "only the request is answered");
    let (_, result) = answers.remove(0).into_parts();
    let result = result.expect("ok");
    let item = first_item(&result).expect("an item");
    assert_eq!(item["insertText"], json!(format!("'x = {word}'")));
}

#[tokio::test]
async fn every_request_is_answered_once_and_the_newest_wins() {
    let mut s = TestServer::ready(|_| "abcdefghij".into(), Duration::from_millis(30), "utf-16", Value::Null).await;
    s.open(URI, "python", "x = \n").await;
    let mut pending = FuturesUnordered::new();
    let mut ids = Vec::new();
    for _ in 0..6 {
        let (id, req) = s.request_message("textDocument/inlineCompletion", inline_params(URI, 0, 4));
        ids.push(id);
        pending.push(s.start_call(req));
    }
    let mut answered = Vec::new();
    while let Some(r) = pending.next().await {
        let resp = r.expect("a response");
        let (id, result) = resp.into_parts();
        answered.push((id, result));
    }
    answered.sort_by_key(|(id, _)| format!("{id:?}"));
    assert_eq!(answered.len(), 6);
    let newest = answered.iter().find(|(id, _)| *id == tower_lsp_server::jsonrpc::Id::Number(*ids.last().unwrap())).unwrap();
    let result = newest.1.as_ref().expect("the newest request succeeds");
    assert_eq!(first_item(result).unwrap()["insertText"], "abcdefghij");
    let cancelled = answered.iter().filter(|(_, r)| matches!(r, Err(e) if e.code.code() == -32800)).count();
    assert_eq!(cancelled, 5, "older requests were cancelled: {answered:?}");
}

/// A long answer on `x` lines (200 tokens), a short one elsewhere.
fn long_on_x(req: &inkling::engine::GenerateRequest) -> String {
    if req.text.line_head.starts_with('x') {
        "x".repeat(200)
    } else {
        "ok".into()
    }
}

#[tokio::test]
async fn cancel_request_answers_at_once_and_a_request_elsewhere_stops_the_job() {
    let mut s = TestServer::ready(long_on_x, Duration::from_millis(20), "utf-16", Value::Null).await;
    s.open(URI, "python", "x = \ny = \n").await;
    let (id, req) = s.request_message("textDocument/inlineCompletion", inline_params(URI, 0, 4));
    let started = Instant::now();
    let handle = tokio::spawn(s.start_call(req));
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.notify("$/cancelRequest", json!({"id": id})).await;
    let resp = handle.await.expect("join").expect("a response");
    let (_, result) = resp.into_parts();
    assert_eq!(result.unwrap_err().code.code(), -32800);
    assert!(started.elapsed() < Duration::from_secs(2), "cancelled promptly: {:?}", started.elapsed());
    // The 4 s generation may still serve a keystroke on its line; a request on another line
    // stops it between two tokens and is served at once.
    let started = Instant::now();
    let r = s.request("textDocument/inlineCompletion", inline_params(URI, 1, 4)).await.unwrap();
    assert_eq!(first_item(&r).unwrap()["insertText"], "ok");
    assert!(started.elapsed() < Duration::from_secs(2), "the old job was stopped: {:?}", started.elapsed());
}

static GENERATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn counted(_: &inkling::engine::GenerateRequest) -> String {
    GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    "abcdefghij".into()
}

#[tokio::test]
async fn a_keystroke_on_the_same_line_joins_the_running_generation() {
    // 50 ms a character: the generation takes ~0.5 s, longer than the pause between keys.
    let mut s = TestServer::start_with(counted, Duration::from_millis(50), true).await;
    s.request("initialize", json!({"capabilities": {}})).await.unwrap();
    s.notify("initialized", json!({})).await;
    wait_ready(&s).await;
    s.open(URI, "python", "x = \n").await;
    let (id, req) = s.request_message("textDocument/inlineCompletion", inline_params(URI, 0, 4));
    let first = tokio::spawn(s.start_call(req));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The user types "a" (the editor cancels the request it made before) and asks again.
    s.notify("$/cancelRequest", json!({"id": id})).await;
    s.notify("textDocument/didChange", change(URI, 2, 0, 4, "a")).await;
    let r = s.request("textDocument/inlineCompletion", inline_params(URI, 0, 5)).await.unwrap();
    assert_eq!(first_item(&r).unwrap()["insertText"], "bcdefghij");
    assert_eq!(GENERATIONS.load(std::sync::atomic::Ordering::SeqCst), 1, "one generation served both");
    let (_, cancelled) = first.await.expect("join").expect("a response").into_parts();
    assert!(cancelled.is_err());
    // Typing what the suggestion does not say starts a new generation.
    s.notify("textDocument/didChange", change(URI, 3, 0, 5, "Z")).await;
    let r = s.request("textDocument/inlineCompletion", inline_params(URI, 0, 6)).await.unwrap();
    assert_eq!(first_item(&r).unwrap()["insertText"], "abcdefghij");
    assert_eq!(GENERATIONS.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// Opens `text`, asks at (line, character) in `encoding`, returns the echoed line head and the range start.
async fn echo_at(encoding: &str, text: &str, line: u32, character: u32) -> (String, Value) {
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, encoding, json!({"completeInComments": true})).await;
    s.open(URI, "python", text).await;
    let r = s.request("textDocument/inlineCompletion", inline_params(URI, line, character)).await.expect("ok");
    let item = first_item(&r).unwrap_or_else(|| panic!("no item at {line}:{character} ({encoding}): {r} {:?}", s.drain_messages())).clone();
    (item["insertText"].as_str().unwrap().to_string(), item["range"]["start"].clone())
}

#[tokio::test]
async fn positions_with_emoji_cjk_crlf_and_tabs_in_both_encodings() {
    // "😀" is 4 bytes / 2 utf-16 units; "漢" is 3 bytes / 1 unit.
    let text = "a = 1\r\n\tb = \"😀漢\" + \r\nc = 2\n";
    let head = "\tb = \"😀漢\" + ";
    let utf16 = head.encode_utf16().count() as u32;
    let utf8 = head.len() as u32;
    let (echo, start) = echo_at("utf-16", text, 1, utf16).await;
    assert_eq!(echo, format!("'{}'", head.trim()));
    assert_eq!(start, json!({"line": 1, "character": utf16}));
    let (echo, start) = echo_at("utf-8", text, 1, utf8).await;
    assert_eq!(echo, format!("'{}'", head.trim()));
    assert_eq!(start, json!({"line": 1, "character": utf8}));
    // In utf-16, a column inside the emoji's surrogate pair rounds down to before it (the rest of
    // the line then follows the cursor, so nothing is suggested), and is not an error.
    let before_emoji = "\tb = \"".encode_utf16().count() as u32;
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, "utf-16", Value::Null).await;
    s.open(URI, "python", text).await;
    let r = s.request("textDocument/inlineCompletion", inline_params(URI, 1, before_emoji + 1)).await.expect("ok");
    assert_eq!(r["items"], json!([]));
}

#[tokio::test]
async fn utf8_is_chosen_only_when_offered() {
    let mut s = TestServer::start(echo_line_head, Duration::ZERO).await;
    let r =
        s.request("initialize", json!({"capabilities": {"general": {"positionEncodings": ["utf-32", "utf-8", "utf-16"]}}})).await.unwrap();
    assert_eq!(r["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(r["capabilities"]["inlineCompletionProvider"], true);
    assert_eq!(r["capabilities"]["textDocumentSync"]["change"], 2);
    let mut s = TestServer::start(echo_line_head, Duration::ZERO).await;
    let r = s.request("initialize", json!({"capabilities": {}})).await.unwrap();
    assert_eq!(r["capabilities"]["positionEncoding"], "utf-16");
}

#[tokio::test]
async fn stale_results_for_an_older_version_are_dropped() {
    let mut s = TestServer::ready(|_| "slow answer".into(), Duration::from_millis(20), "utf-16", Value::Null).await;
    s.open(URI, "python", "x = \n").await;
    let (_, req) = s.request_message("textDocument/inlineCompletion", inline_params(URI, 0, 4));
    let handle = tokio::spawn(s.start_call(req));
    tokio::time::sleep(Duration::from_millis(60)).await;
    // An edit elsewhere in the file (no new completion request follows).
    s.notify("textDocument/didChange", change(URI, 2, 1, 0, "y = 1\n")).await;
    let resp = handle.await.unwrap().unwrap();
    let (_, result) = resp.into_parts();
    let result = result.expect("ok");
    assert!(first_item(&result).is_none(), "a result for an older version must be dropped: {result}");
}

#[tokio::test]
async fn popup_completion_replaces_the_typed_word_with_a_snippet_when_supported() {
    let mut s = TestServer::start(|_| "urn a + b".into(), Duration::ZERO).await;
    let caps = json!({"textDocument": {"completion": {"completionItem": {"snippetSupport": true}}}});
    s.request("initialize", json!({"capabilities": caps})).await.unwrap();
    s.notify("initialized", json!({})).await;
    wait_ready(&s).await;
    s.open(URI, "python", "def add(a, b):\n    ret\n").await;
    let r =
        s.request("textDocument/completion", json!({"textDocument": {"uri": URI}, "position": {"line": 1, "character": 7}})).await.unwrap();
    let item = &r["items"][0];
    assert_eq!(item["textEdit"]["newText"], "return a + b");
    assert_eq!(item["textEdit"]["range"]["start"], json!({"line": 1, "character": 4}));
    assert_eq!(item["textEdit"]["range"]["end"], json!({"line": 1, "character": 7}));
    assert_eq!(item["insertTextFormat"], 2);
    assert_eq!(item["label"], "return a + b");
}

async fn wait_ready(s: &TestServer) {
    for _ in 0..200 {
        if matches!(s.service.inner().engine_state(), inkling::engine::EngineState::Ready { .. }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not ready");
}

#[tokio::test]
async fn settings_change_swaps_the_model_without_a_restart() {
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, "utf-16", Value::Null).await;
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"modelPath": "/models/other.gguf"}}})).await;
    for _ in 0..200 {
        if let inkling::engine::EngineState::Ready { path, .. } = s.service.inner().engine_state() {
            if path.ends_with("other.gguf") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("model not swapped: {:?}", s.service.inner().engine_state());
}

#[tokio::test]
async fn typing_through_a_suggestion_answers_without_the_model() {
    // The fake model takes 50 ms a character: a model answer takes ~0.5 s.
    let mut s = TestServer::start_with(|_| "abcdefghij".into(), Duration::from_millis(50), true).await;
    s.request("initialize", json!({"capabilities": {}})).await.unwrap();
    s.notify("initialized", json!({})).await;
    wait_ready(&s).await;
    s.open(URI, "python", "x = \n").await;
    let first = s.request("textDocument/inlineCompletion", inline_params(URI, 0, 4)).await.unwrap();
    assert_eq!(first_item(&first).unwrap()["insertText"], "abcdefghij");
    // The user types "abc": each answer is the rest of the suggestion, at once.
    for (i, c) in "abc".chars().enumerate() {
        s.notify("textDocument/didChange", change(URI, 2 + i as i32, 0, 4 + i as u32, &c.to_string())).await;
        let started = Instant::now();
        let r = s.request("textDocument/inlineCompletion", inline_params(URI, 0, 5 + i as u32)).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(200), "answered from memory: {:?}", started.elapsed());
        assert_eq!(first_item(&r).unwrap()["insertText"], &"abcdefghij"[i + 1..]);
    }
    // Typing something else asks the model again.
    s.notify("textDocument/didChange", change(URI, 9, 0, 7, "Z")).await;
    let started = Instant::now();
    let r = s.request("textDocument/inlineCompletion", inline_params(URI, 0, 8)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(first_item(&r).unwrap()["insertText"], "abcdefghij");
}

#[tokio::test]
async fn a_request_the_user_asked_for_waits_for_a_model_still_loading() {
    use crate::support::fake::FakeBackend;
    use inkling::engine::{Backend, EngineState, Loader};
    // A model that takes 400 ms to load.
    let slow: Loader = Box::new(|_path: &std::path::Path| {
        std::thread::sleep(Duration::from_millis(400));
        Ok(Box::new(FakeBackend { script: echo_line_head, per_token: Duration::ZERO }) as Box<dyn Backend>)
    });
    let mut s = TestServer::start_loader(slow, "slow.gguf").await;
    assert!(s.request("initialize", json!({"capabilities": {}})).await.is_ok());
    s.notify("initialized", json!({})).await;
    s.open(URI, "python", "x = \n").await;
    s.wait_state(|st| matches!(st, EngineState::Loading(_)), Duration::from_secs(5)).await;
    // Typing (automatic trigger): answered at once, empty.
    let started = Instant::now();
    let typed = s.request("textDocument/inlineCompletion", inline_params(URI, 0, 4)).await.expect("ok");
    assert!(first_item(&typed).is_none(), "{typed}");
    assert!(started.elapsed() < Duration::from_millis(300), "an automatic request waited: {:?}", started.elapsed());
    assert!(matches!(s.state(), EngineState::Loading(_)), "the model loaded too soon for this test");
    // Invoked (triggerKind 1): waits for the load and answers.
    let mut invoked = inline_params(URI, 0, 4);
    invoked["context"]["triggerKind"] = json!(1);
    let asked = s.request("textDocument/inlineCompletion", invoked).await.expect("ok");
    assert_eq!(first_item(&asked).map(|i| i["insertText"].clone()), Some(json!("'x ='")), "{asked}");
    // The popup is always asked for.
    s.wait_state(|st| matches!(st, EngineState::Ready { .. }), Duration::from_secs(5)).await;
    let popup = s
        .request("textDocument/completion", json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 4}}))
        .await
        .expect("ok");
    assert!(!popup.is_null(), "{popup}");
}

/// What the pre-warm test's engine was asked: (pre-warm?, line head, latency target in ms).
static ASKED: std::sync::Mutex<Vec<(bool, String, u128)>> = std::sync::Mutex::new(Vec::new());

fn recording(req: &inkling::engine::GenerateRequest) -> String {
    ASKED.lock().unwrap().push((req.background, req.text.line_head.clone(), req.latency_target.as_millis()));
    echo_line_head(req)
}

fn prewarms_asked() -> Vec<String> {
    ASKED.lock().unwrap().iter().filter(|(background, _, _)| *background).map(|(_, head, target)| format!("{head}|{target}")).collect()
}

#[tokio::test]
async fn a_pause_pre_warms_the_full_prompt_after_an_answer_and_at_the_end_of_an_edit() {
    let mut s = TestServer::ready(recording, Duration::ZERO, "utf-16", json!({"latencyTargetMs": 800})).await;
    const URI: &str = "file:///work/warm.py";
    s.open(URI, "python", "def f(a):\n    return a\n\nx = \n").await;
    let answer = s.request("textDocument/inlineCompletion", inline_params(URI, 3, 4)).await.unwrap();
    assert!(first_item(&answer).is_some(), "{answer:?}");
    // Keys typed faster than the pause schedule nothing; the request itself was not a pre-warm.
    assert!(prewarms_asked().is_empty());
    tokio::time::sleep(Duration::from_millis(700)).await;
    // After the pause: the same cursor, the full prompt (no latency target).
    assert_eq!(prewarms_asked(), ["x = |0"]);
    // A new line typed and no request (a client that waits before asking): the cursor is taken
    // to be where the inserted text ends.
    s.notify("textDocument/didChange", change(URI, 2, 3, 4, "1\ny = ")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.notify("textDocument/didChange", change(URI, 3, 4, 4, "2")).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(prewarms_asked(), ["x = |0", "y = 2|0"], "only the edit followed by a pause");
    // Turned off: nothing in the background.
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"prewarm": false}}})).await;
    s.notify("textDocument/didChange", change(URI, 4, 4, 5, "3")).await;
    s.request("textDocument/inlineCompletion", inline_params(URI, 4, 6)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(prewarms_asked().len(), 2, "{:?}", prewarms_asked());
}
