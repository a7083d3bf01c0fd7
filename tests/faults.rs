//! Faults: the model panicking or failing mid-request, the model file truncated or replaced on
//! disk while serving, the client vanishing while a long completion runs; and resource limits
//! (each one hit gives a clear message, and the server keeps serving).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use inkling::engine::EngineState;

use crate::support::fake::{counting_loader, echo_line_head};
use crate::support::inprocess::TestServer;
use crate::support::proc_client::{inkling_bin, test_model, ProcClient};

const URI: &str = "file:///work/faults.py";

fn inline(uri: &str, line: u32, character: u32) -> Value {
    json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}})
}

/// `PANIC` (FakeBackend panics at once) for `boom`, `FAIL` for `fail-now`, else the echo.
fn script(req: &inkling::engine::GenerateRequest) -> String {
    let head = &req.text.line_head;
    if head.contains("boom") {
        "PANIC".into()
    } else if head.contains("fail-now") {
        "FAIL".into()
    } else {
        echo_line_head(req)
    }
}

const DOC: &str = "x = \nboom = 1 + \npanic_late = 'panic-late' + \nfail_now = 'fail-now' + \nfail_late = 'fail-late' + \n";

/// Waits until a server-to-client message with `method` whose text satisfies `pred` arrives
/// (messages travel through a channel, so they may trail the response that caused them).
async fn wait_message(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, method: &str, pred: impl Fn(&str) -> bool) -> String {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => {
                if m["method"] == method {
                    if let Some(t) = m["params"]["message"].as_str() {
                        if pred(t) {
                            return t.to_string();
                        }
                    }
                }
                seen.push(m);
            }
            _ => panic!("no {method} as expected; got {seen:#?}"),
        }
    }
}

async fn still_completes(s: &mut TestServer) {
    let r = s.request("textDocument/inlineCompletion", inline(URI, 0, 4)).await.expect("ok");
    assert_eq!(r["items"][0]["insertText"], "'x ='", "{r}");
}

#[tokio::test]
async fn a_model_panic_gives_an_empty_answer_and_the_model_is_reloaded() {
    let (loader, loads) = counting_loader(script, Duration::ZERO);
    let mut s = TestServer::ready_loader(loader, "fake.gguf", json!({"completeInComments": true})).await;
    s.open(URI, "python", DOC).await;
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // Line 1: FakeBackend panics at once ("PANIC"); line 2: a panic after a few tokens.
    for (round, line) in [(1usize, 1u32), (2, 2)] {
        let end = DOC.lines().nth(line as usize).unwrap().len() as u32;
        let started = Instant::now();
        let r = s.request("textDocument/inlineCompletion", inline(URI, line, end)).await.expect("an answer, not an error");
        assert_eq!(r["items"], json!([]), "{r}");
        wait_message(&mut s.from_server, "window/logMessage", |t| t.contains("crashed") && t.contains("reloaded")).await;
        // The engine reloads the model from the same path and serves again.
        s.wait_state(|st| matches!(st, EngineState::Ready { .. }), Duration::from_secs(10)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while loads.load(Ordering::SeqCst) < 1 + round {
            assert!(Instant::now() < deadline, "the model was not reloaded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        s.wait_state(|st| matches!(st, EngineState::Ready { path, .. } if path.ends_with("fake.gguf")), Duration::from_secs(10)).await;
        still_completes(&mut s).await;
        eprintln!("panic on line {line}: answered, reloaded and serving again in {:?}", started.elapsed());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_model_failure_gives_an_empty_answer_and_the_server_keeps_serving() {
    let (loader, loads) = counting_loader(script, Duration::ZERO);
    let mut s = TestServer::ready_loader(loader, "fake.gguf", json!({"completeInComments": true})).await;
    s.open(URI, "python", DOC).await;
    for line in [3u32, 4] {
        let end = DOC.lines().nth(line as usize).unwrap().len() as u32;
        let r = s.request("textDocument/inlineCompletion", inline(URI, line, end)).await.expect("an answer, not an error");
        assert_eq!(r["items"], json!([]), "{r}");
        wait_message(&mut s.from_server, "window/logMessage", |t| t.contains("the model failed")).await;
        still_completes(&mut s).await;
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "a failure (not a panic) needs no reload");
    assert!(matches!(s.state(), EngineState::Ready { .. }));
}

#[tokio::test]
async fn a_panic_whose_reload_also_crashes_leaves_a_failed_state_and_a_new_model_path_recovers() {
    let (loader, loads) = counting_loader(script, Duration::ZERO);
    let mut s = TestServer::ready_loader(loader, "explode.gguf", json!({"completeInComments": true})).await;
    s.open(URI, "python", DOC).await;
    let r = s.request("textDocument/inlineCompletion", inline(URI, 1, 11)).await.expect("an answer");
    assert_eq!(r["items"], json!([]));
    let st = s.wait_state(|st| matches!(st, EngineState::Failed { .. }), Duration::from_secs(10)).await;
    let EngineState::Failed { message, .. } = st else { unreachable!() };
    assert!(message.contains("loading crashed") && message.contains("exploded"), "{message}");
    // Completions stay empty answers (never errors) while there is no model.
    for _ in 0..3 {
        let r = s.request("textDocument/inlineCompletion", inline(URI, 0, 4)).await.expect("an answer");
        assert_eq!(r["items"], json!([]));
    }
    s.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"modelPath": "/models/good.gguf"}}})).await;
    s.wait_state(|st| matches!(st, EngineState::Ready { path, .. } if path.ends_with("good.gguf")), Duration::from_secs(10)).await;
    still_completes(&mut s).await;
    assert_eq!(loads.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_scripted_fake_panic_and_failure_through_the_shared_test_server() {
    let mut s = TestServer::ready(script, Duration::ZERO, "utf-16", json!({"completeInComments": true})).await;
    s.open(URI, "python", DOC).await;
    let r = s.request("textDocument/inlineCompletion", inline(URI, 1, 11)).await.expect("answer");
    assert_eq!(r["items"], json!([]));
    for _ in 0..400 {
        if matches!(s.service.inner().engine_state(), EngineState::Ready { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = s.request("textDocument/inlineCompletion", inline(URI, 3, 24)).await.expect("answer");
    assert_eq!(r["items"], json!([]));
    let r = s.request("textDocument/inlineCompletion", inline(URI, 0, 4)).await.expect("answer");
    assert_eq!(r["items"][0]["insertText"], "'x ='");
}

fn caps() -> Value {
    json!({"general": {"positionEncodings": ["utf-16"]}, "window": {"workDoneProgress": true}})
}

fn tiny_copy(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::copy(inkling::engine::testing::tiny_model_path(), &path).expect("copy the tiny model");
    path
}

const PY: &str = "def add(a, b):\n    return \n\nx = add(1, \n";

fn ask(c: &mut ProcClient) -> Value {
    let r = c.request("textDocument/inlineCompletion", inline("file:///w/t.py", 3, 11), Duration::from_secs(30));
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

#[test]
fn a_model_file_truncated_or_replaced_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_copy(dir.path(), "model.gguf");
    let mut c = ProcClient::serve(&["--model", model.to_str().unwrap()]);
    c.initialize(caps(), json!({"maxNewTokens": 8, "timeBudgetMs": 20000, "completeInComments": true}));
    c.wait_model_ready(Duration::from_secs(60));
    c.open("file:///w/t.py", "python", PY);
    let before = ask(&mut c);

    // Truncated on disk while serving: the weights were read into memory at load (no mmap), so
    // the loaded model answers exactly as before.
    let len = std::fs::metadata(&model).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&model).unwrap().set_len(len / 3).unwrap();
    for _ in 0..3 {
        assert_eq!(ask(&mut c), before, "the loaded model is unaffected by the truncation");
    }
    // A reload of the truncated file: a clear error; completions are empty, the server lives.
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"modelPath": model.to_str().unwrap()}}}));
    let msg = c
        .wait_for(|m| m["method"] == "window/showMessage" && m["params"]["type"] == 1, Duration::from_secs(30))
        .expect("a showMessage error about the truncated model");
    let text = msg["params"]["message"].as_str().unwrap().to_lowercase();
    assert!(text.contains("model.gguf") && (text.contains("truncated") || text.contains("corrupt")), "{text}");
    for _ in 0..3 {
        assert_eq!(ask(&mut c)["items"], json!([]));
    }

    // Replaced on disk (atomically, by a different model) and reloaded: serving again.
    let other = inkling::engine::testing::write_tiny_model(dir.path(), 7).unwrap();
    std::fs::rename(&other, &model).unwrap();
    // The same modelPath again is "no change"; clearing it falls back to --model (the same file).
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"inkling": {"modelPath": ""}}}));
    let msg = c
        .wait_for(
            |m| {
                m["method"] == "window/showMessage"
                    && m["params"]["message"].as_str().is_some_and(|s| s.contains("now using") || s.contains("could not"))
            },
            Duration::from_secs(30),
        )
        .expect("a message about the reload");
    assert!(msg["params"]["message"].as_str().unwrap().contains("now using model.gguf"), "{msg}");
    let after = ask(&mut c);
    assert!(after["items"].is_array(), "{after}");
    let status = c.shutdown();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn closing_stdin_during_a_long_real_model_completion_ends_the_server_within_a_second() {
    let model = test_model();
    let mut c = ProcClient::serve(&["--model", &model]);
    c.initialize(caps(), json!({"maxNewTokens": 1024, "timeBudgetMs": 120000, "latencyTargetMs": 0, "multiline": "always"}));
    c.wait_model_ready(Duration::from_secs(180));
    let long = "# A long list of the first hundred prime numbers, one per line, in a Python list.\nPRIMES = [\n";
    c.open("file:///w/long.py", "python", long);
    let id = c.request_async("textDocument/inlineCompletion", inline("file:///w/long.py", 2, 0));
    // Let the model get going (prefill done, decoding).
    std::thread::sleep(Duration::from_millis(1500));
    c.pump(Duration::ZERO);
    assert!(c.responses_to(id).is_empty(), "the completion finished too early to test this");
    let took = c.close_and_wait(Duration::from_secs(5)).expect("the server exits when its input closes");
    eprintln!("exited {took:?} after stdin closed, mid-completion");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

// ---- resource limits ----

#[tokio::test]
async fn max_document_bytes_refuses_large_documents_and_growing_edits_with_a_message() {
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, "utf-16", json!({"maxDocumentBytes": 2048})).await;
    s.open("file:///w/big.py", "python", &"x = 1\n".repeat(1000)).await;
    wait_message(&mut s.from_server, "window/showMessage", |t| t.contains("big.py") && t.contains("6000 bytes") && t.contains("2048"))
        .await;
    let err = s.request("textDocument/inlineCompletion", inline("file:///w/big.py", 0, 0)).await.unwrap_err();
    assert!(err["message"].as_str().unwrap().contains("not open"), "{err}");
    // An edit that would grow an open document past the limit is refused as a whole.
    s.open(URI, "python", "x = \n").await;
    let grow = json!({"textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 4}}, "text": "y".repeat(3000)}]});
    s.notify("textDocument/didChange", grow).await;
    wait_message(&mut s.from_server, "window/showMessage", |t| t.contains("2048") && t.contains("reopened")).await;
    assert!(s.service.inner().document_text(URI).is_none(), "the document is paused until reopened");
    s.open(URI, "python", "x = \n").await;
    let r = s.request("textDocument/inlineCompletion", inline(URI, 0, 4)).await.unwrap();
    assert_eq!(r["items"][0]["insertText"], "'x ='");
}

/// Echoes the token budgets and text windows the engine was given, as one identifier (which
/// every shaping and parse check accepts): `p16s8c0w120v64`.
fn budget_echo(req: &inkling::engine::GenerateRequest) -> String {
    format!(
        "p{}s{}c{}w{}v{}",
        req.budget.max_prefix_tokens,
        req.budget.max_suffix_tokens,
        req.budget.max_context_tokens,
        req.text.prefix.len(),
        req.text.suffix.len()
    )
}

#[tokio::test]
async fn prefix_suffix_and_context_token_limits_reach_the_engine() {
    let opts = json!({"maxPrefixTokens": 16, "maxSuffixTokens": 8, "maxContextTokens": 0, "completeInComments": true});
    let mut s = TestServer::ready(budget_echo, Duration::ZERO, "utf-16", opts).await;
    let before = "a = 1\n".repeat(500);
    let after = "b = 2\n".repeat(500);
    s.open(URI, "python", &format!("{before}x = \n{after}")).await;
    let r = s.request("textDocument/inlineCompletion", inline(URI, 500, 4)).await.unwrap();
    let echo = r["items"][0]["insertText"].as_str().unwrap_or_else(|| panic!("an echo: {r}")).to_string();
    let numbers: Vec<usize> = echo.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()).map(|t| t.parse().unwrap()).collect();
    assert_eq!(numbers.len(), 5, "{echo}");
    assert_eq!(&numbers[..3], &[16, 8, 0], "{echo}");
    let (p, q) = (numbers[3], numbers[4]);
    // The context module cuts byte windows of a few bytes per token; the tokenizer trims exactly.
    assert!(p > 0 && p <= 16 * 8 + 8, "prefix window {p} bytes for 16 tokens");
    assert!(q <= 8 * 8 + 8, "suffix window {q} bytes for 8 tokens");
}

#[test]
fn serve_accepts_the_stdio_flag_lsp_clients_pass() {
    // vscode-languageclient appends `--stdio` with a stdio transport; the server must not exit.
    let tiny = inkling::engine::testing::tiny_model_path();
    let mut c = ProcClient::serve(&["--stdio", "--model", tiny.to_str().unwrap()]);
    let r = c.initialize(caps(), json!({}));
    assert!(r["result"]["capabilities"].is_object(), "{r}");
}

#[test]
fn a_prompt_larger_than_the_model_cache_is_a_clear_error_and_an_empty_answer() {
    // The tiny model's cache holds 1024 positions; its tokenizer is byte level.
    let tiny = inkling::engine::testing::tiny_model_path();
    let mut c = ProcClient::serve(&["--model", tiny.to_str().unwrap()]);
    // Within the settings limits, but beyond the tiny model's 1024-position cache.
    c.initialize(
        caps(),
        json!({"maxPrefixTokens": 3000, "maxSuffixTokens": 0, "maxContextTokens": 0, "maxNewTokens": 4, "completeInComments": true}),
    );
    c.wait_model_ready(Duration::from_secs(60));
    let text = format!("{}x = \n", "value_number = 12345\n".repeat(400));
    c.open("file:///w/long.py", "python", &text);
    let r = c.request("textDocument/inlineCompletion", inline("file:///w/long.py", 400, 4), Duration::from_secs(60));
    assert_eq!(r["result"]["items"], json!([]), "{r}");
    let msg = c
        .wait_for(
            |m| m["method"] == "window/logMessage" && m["params"]["message"].as_str().is_some_and(|t| t.contains("cache")),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("no logMessage about the cache: {:?}", c.log_messages()));
    let why = msg["params"]["message"].as_str().unwrap().to_string();
    assert!(why.contains("maxPrefixTokens"), "the message names the setting to lower: {why}");
    eprintln!("prompt too large: {why}");
    // Lowering the setting fixes it without a restart.
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"maxPrefixTokens": 512}}));
    let n_logs = c.log_messages().len();
    let r = c.request("textDocument/inlineCompletion", inline("file:///w/long.py", 400, 4), Duration::from_secs(60));
    assert!(r.get("error").is_none(), "{r}");
    c.pump(Duration::from_millis(200));
    let new_logs: Vec<_> = c.log_messages().into_iter().skip(n_logs).filter(|m| m.contains("cache")).collect();
    assert!(new_logs.is_empty(), "{new_logs:?}");
    c.shutdown();
}

/// The server's "ready with …" log message (the model loaded), waited for.
fn ready_message(c: &mut ProcClient) -> String {
    c.wait_for(
        |m| m["method"] == "window/logMessage" && m["params"]["message"].as_str().is_some_and(|t| t.contains("ready with")),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|| panic!("no ready message: {:?}", c.log_messages()))["params"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// A tuned model's evaluation record (`inkling eval --record`) is said with the model's name
/// when it loads; a record that cannot be read is left out and the model loads all the same.
#[test]
fn a_tuned_models_evaluation_record_is_shown_when_it_loads() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_copy(dir.path(), "tuned.gguf");
    let record = inkling::eval::record::EvalRecord {
        repo: "/src/peft".into(),
        base: "base.gguf".into(),
        samples: 120,
        seed: 1,
        metrics: vec![inkling::eval::record::RecordedMetric {
            metric: "EM".into(),
            base: 0.25,
            tuned: 0.4,
            diff: 0.15,
            lo: 0.05,
            hi: 0.25,
        }],
    };
    inkling::eval::record::write(&record, &model).unwrap();
    let mut c = ProcClient::serve(&["--model", model.to_str().unwrap()]);
    c.initialize(caps(), json!({}));
    let message = ready_message(&mut c);
    assert!(
        message.contains("tuned.gguf")
            && message.contains("fine-tuned, held-out EM 0.250 → 0.400 (+0.150, 95% CI +0.050…+0.250) on 120 cursors of peft"),
        "{message}"
    );
    c.shutdown();

    std::fs::write(inkling::eval::record::record_path(&model), "{broken").unwrap();
    let mut c = ProcClient::serve(&["--model", model.to_str().unwrap()]);
    c.initialize(caps(), json!({}));
    let message = ready_message(&mut c);
    assert!(message.contains("tuned.gguf") && !message.contains("fine-tuned"), "{message}");
    assert!(c.shown_messages().is_empty(), "{:?}", c.shown_messages());
    c.shutdown();
}

/// The model's thread pools are sized once, before the server's runtime starts: `threads` in
/// `initialize` is read then (the process reads that first message before anything else), and
/// `--threads` on the command line wins over it.
#[test]
fn the_threads_setting_in_initialize_sizes_the_model_and_the_flag_wins() {
    let tiny = inkling::engine::testing::tiny_model_path();
    let tiny = tiny.to_str().unwrap();
    // Without the variables the test runner may have set, so only the setting decides.
    let clean = |mut cmd: std::process::Command| {
        cmd.env_remove("RAYON_NUM_THREADS").env_remove("CANDLE_NUM_THREADS");
        ProcClient::spawn(cmd)
    };
    let serve = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(inkling_bin());
        cmd.args(extra).args(["serve", "--model", tiny]);
        cmd
    };
    let mut c = clean(serve(&[]));
    c.initialize(caps(), json!({"threads": 3}));
    let ready = ready_message(&mut c);
    assert!(ready.contains("CPU, 3 threads"), "{ready}");
    // A later change is accepted, and applies at the next start.
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"threads": 1}}));
    let r = c.request("shutdown", Value::Null, Duration::from_secs(20));
    assert!(r.get("error").is_none(), "{r}");
    assert!(c.shown_messages().is_empty(), "{:?}", c.shown_messages());

    let mut c = clean(serve(&["--threads", "5"]));
    c.initialize(caps(), json!({"threads": 3}));
    let ready = ready_message(&mut c);
    assert!(ready.contains("CPU, 5 threads"), "{ready}");
    c.shutdown();
}
