//! Bad input never crashes the server: each case gets a clear error and the server keeps serving.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake::echo_line_head;
use crate::support::inprocess::TestServer;
use crate::support::proc_client::ProcClient;

const URI: &str = "file:///work/bad.py";

fn inline(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}})
}

async fn ready() -> TestServer {
    TestServer::ready(echo_line_head, Duration::ZERO, "utf-16", Value::Null).await
}

async fn still_serves(s: &mut TestServer) {
    s.open("file:///work/ok.py", "python", "x = \n").await;
    let r = s.request("textDocument/inlineCompletion", inline("file:///work/ok.py", 0, 4)).await.expect("still serving");
    assert_eq!(r["items"][0]["insertText"], "'x ='");
}

fn messages_with(s: &mut TestServer, needle: &str) -> Vec<String> {
    s.drain_messages()
        .into_iter()
        .filter(|m| m["method"] == "window/showMessage")
        .filter_map(|m| m["params"]["message"].as_str().map(str::to_string))
        .filter(|m| m.contains(needle))
        .collect()
}

#[tokio::test]
async fn unknown_uri_is_an_invalid_params_error() {
    let mut s = ready().await;
    let err = s.request("textDocument/inlineCompletion", inline("file:///nowhere.py", 0, 0)).await.unwrap_err();
    assert_eq!(err["code"], -32602);
    assert!(err["message"].as_str().unwrap().contains("not open"), "{err}");
    still_serves(&mut s).await;
}

#[tokio::test]
async fn position_past_the_end_is_an_error() {
    let mut s = ready().await;
    s.open(URI, "python", "x = 1\ny = 2\n").await;
    let err = s.request("textDocument/inlineCompletion", inline(URI, 40, 0)).await.unwrap_err();
    assert_eq!(err["code"], -32602);
    assert!(err["message"].as_str().unwrap().contains("40"), "names the line: {err}");
    // A column past the end of a line is clamped, as LSP says.
    let r = s.request("textDocument/inlineCompletion", inline(URI, 1, 99)).await.unwrap();
    assert!(r["items"].is_array());
    still_serves(&mut s).await;
}

#[tokio::test]
async fn an_edit_outside_the_document_pauses_that_document_with_a_message() {
    let mut s = ready().await;
    s.open(URI, "python", "x = 1\n").await;
    let bad = json!({"textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"range": {"start": {"line": 9, "character": 0}, "end": {"line": 9, "character": 3}}, "text": "zzz"}]});
    s.notify("textDocument/didChange", bad).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(messages_with(&mut s, "reopened").len(), 1);
    let err = s.request("textDocument/inlineCompletion", inline(URI, 0, 0)).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("not open"));
    // Reopening starts afresh.
    s.open(URI, "python", "y = \n").await;
    let r = s.request("textDocument/inlineCompletion", inline(URI, 0, 4)).await.unwrap();
    assert_eq!(r["items"][0]["insertText"], "'y ='");
}

#[tokio::test]
async fn a_20_mb_file_is_refused_with_a_message() {
    let mut s = ready().await;
    let big = "x = 1\n".repeat(20 * 1024 * 1024 / 6);
    s.open("file:///work/big.py", "python", &big).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shown = messages_with(&mut s, "big.py");
    assert_eq!(shown.len(), 1, "one message naming the file");
    assert!(shown[0].contains("more than"), "{shown:?}");
    let err = s.request("textDocument/inlineCompletion", inline("file:///work/big.py", 0, 0)).await.unwrap_err();
    assert_eq!(err["code"], -32602);
    still_serves(&mut s).await;
}

#[tokio::test]
async fn a_binary_file_is_refused_with_a_message() {
    let mut s = ready().await;
    s.open("file:///work/blob.bin", "plaintext", "\u{0}\u{1}\u{2}ELF\u{0}\u{0}").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shown: Vec<String> = s.drain_messages().into_iter().filter_map(|m| m["params"]["message"].as_str().map(str::to_string)).collect();
    assert!(shown.iter().any(|m| m.to_lowercase().contains("binary")), "{shown:?}");
    still_serves(&mut s).await;
}

#[tokio::test]
async fn settings_with_wrong_types_are_reported_and_the_server_keeps_defaults() {
    let mut s = TestServer::start(echo_line_head, Duration::ZERO).await;
    s.request("initialize", json!({"capabilities": {}, "initializationOptions": {"maxNewTokens": "many"}})).await.unwrap();
    s.notify("initialized", json!({})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(messages_with(&mut s, "invalid type").len(), 1);
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"timeBudgetMs": -5}}})).await;
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"maxNewTokens": 0}}})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let msgs: Vec<String> = s.drain_messages().into_iter().filter_map(|m| m["params"]["message"].as_str().map(str::to_string)).collect();
    assert!(msgs.iter().any(|m| m.contains("maxNewTokens") && m.contains("between 1 and 1024")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("timeBudgetMs") || m.contains("invalid value")), "{msgs:?}");
    for _ in 0..200 {
        if matches!(s.service.inner().engine_state(), inkling::engine::EngineState::Ready { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    still_serves(&mut s).await;
}

#[test]
fn malformed_json_rpc_gets_a_parse_error_and_the_server_goes_on() {
    let mut c = ProcClient::serve_env(&["--model", "/nonexistent/model.gguf"], &[]);
    c.send_raw(b"Content-Length: 12\r\n\r\n{not json!!}");
    let err = c.wait_for(|m| m["error"]["code"] == -32700, Duration::from_secs(10)).expect("a parse error response");
    assert_eq!(err["id"], Value::Null);
    // A request with a wrong shape gets an error too, and then the server still works.
    c.send(&json!({"jsonrpc": "2.0", "id": 77, "method": "initialize", "params": {"capabilities": 5}}));
    let r = c.response(77, Duration::from_secs(10));
    assert!(r["error"]["code"].as_i64().is_some(), "{r}");
    let init = c.initialize(json!({}), Value::Null);
    assert_eq!(init["result"]["serverInfo"]["name"], "inkling");
    c.shutdown();
}

#[test]
fn a_missing_model_is_explained_once_and_completions_are_empty() {
    let mut c = ProcClient::serve_env(&["--model", "/nonexistent/model.gguf"], &[]);
    c.initialize(json!({}), Value::Null);
    let msg = c.notification("window/showMessage", Duration::from_secs(30)).expect("an explanation");
    let text = msg["params"]["message"].as_str().unwrap();
    assert!(text.contains("/nonexistent/model.gguf") && text.contains("fetch_model.py"), "{text}");
    c.open("file:///w/a.py", "python", "x = \n");
    for _ in 0..3 {
        let r = c.request("textDocument/inlineCompletion", inline("file:///w/a.py", 0, 4), Duration::from_secs(10));
        assert_eq!(r["result"]["items"], json!([]), "{r}");
    }
    assert!(c.notification("window/showMessage", Duration::from_millis(300)).is_none(), "said once");
    c.shutdown();
}

#[test]
fn a_truncated_gguf_is_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = inkling::engine::testing::tiny_model_path();
    let bytes = std::fs::read(&tiny).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::File::create(&cut).unwrap().write_all(&bytes[..bytes.len() / 2]).unwrap();
    let mut c = ProcClient::serve_env(&["--model", cut.to_str().unwrap()], &[]);
    c.initialize(json!({}), Value::Null);
    let msg = c.notification("window/showMessage", Duration::from_secs(30)).expect("an explanation");
    let text = msg["params"]["message"].as_str().unwrap().to_lowercase();
    assert!(text.contains("cut.gguf") && (text.contains("truncated") || text.contains("corrupt")), "{text}");
    c.open("file:///w/a.py", "python", "x = \n");
    let r = c.request("textDocument/inlineCompletion", inline("file:///w/a.py", 0, 4), Duration::from_secs(10));
    assert_eq!(r["result"]["items"], json!([]));
    c.shutdown();
}

#[test]
fn closing_stdin_ends_the_server_within_a_second() {
    let mut c = ProcClient::serve_env(&["--model", "/nonexistent/model.gguf"], &[]);
    c.initialize(json!({}), Value::Null);
    let took = c.close_and_wait(Duration::from_secs(5)).expect("the server exits when its input closes");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
