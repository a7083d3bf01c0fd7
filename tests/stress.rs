//! Load: thousands of seeded random incremental edits (emoji, CJK, CRLF, lone CR, clamped and
//! mid-character columns) over four documents, interleaved with inline and popup completion
//! requests and `$/cancelRequest`s, sent without waiting, as an editor under a fast typist does.
//!
//! * Against the REAL binary with a tiny random GGUF (it loads through the real loader and runs
//!   the real forward pass, fast): every request gets exactly one answer (no duplicates, no
//!   orphans), the documents' line structure matches the reference (probed through positions),
//!   peak memory stays bounded, and the server then swaps in the real 0.5B model without a
//!   restart and still completes.
//! * The same operation sequence in process (fake model), where the server's text can be read
//!   back: every document equals the reference model exactly, in both position encodings.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::doc_model::{self, Change, Enc, Rng};
use crate::support::fake::echo_line_head;
use crate::support::inprocess::TestServer;
use crate::support::proc_client::{test_model, ProcClient};

const DOCS: [(&str, &str, &str); 4] = [
    ("file:///stress/a.py", "python", "def add(a, b):\r\n    return a + b\r\n\r\nx = \"😀漢字\"\n"),
    ("file:///stress/b.rs", "rust", "fn main() {\n    let s = \"👍🏽 中文\";\n    println!(\"{s}\");\n}\n"),
    ("file:///stress/c.js", "javascript", "function f(x) {\r  return x * 2;\r}\rconst y = f(3); // é\n"),
    ("file:///stress/d.txt", "plaintext", "plain text 漢\u{2028}not a line break\u{85}nor this\n"),
];

#[derive(Clone, Debug)]
enum Op {
    Edit {
        doc: usize,
        version: i32,
        changes: Vec<Change>,
    },
    Inline {
        doc: usize,
        pos: (u32, u32),
    },
    Popup {
        doc: usize,
        pos: (u32, u32),
    },
    /// Cancels the request sent `back` requests ago (0 = the latest).
    Cancel {
        back: usize,
    },
}

struct Plan {
    ops: Vec<Op>,
    /// After op `i`: the text of each document.
    lengths_after: Vec<[usize; 4]>,
    /// The final text of every document after each edit op (doc, text), for early stops.
    text_after: BTreeMap<usize, (usize, String)>,
    edits: usize,
    changes: usize,
}

fn plan(seed: u64, n: usize, enc: Enc) -> Plan {
    let mut rng = Rng::new(seed);
    let mut texts: Vec<String> = DOCS.iter().map(|d| d.2.to_string()).collect();
    let mut versions = [1i32; 4];
    let mut ops = Vec::with_capacity(n);
    let mut lengths_after = Vec::with_capacity(n);
    let mut text_after = BTreeMap::new();
    let (mut edits, mut changes_total) = (0, 0);
    for i in 0..n {
        let doc = rng.below(4);
        let roll = rng.below(100);
        let op = if roll < 75 {
            let k = if rng.chance(15) { 2 + rng.below(3) } else { 1 };
            let mut changes = Vec::new();
            for _ in 0..k {
                let c = doc_model::random_change(&mut rng, &texts[doc], enc, 6000);
                doc_model::apply(&mut texts[doc], &c, enc, usize::MAX).expect("generated changes are valid");
                changes.push(c);
            }
            versions[doc] += 1;
            edits += 1;
            changes_total += changes.len();
            text_after.insert(i, (doc, texts[doc].clone()));
            Op::Edit { doc, version: versions[doc], changes }
        } else if roll < 85 {
            Op::Inline { doc, pos: doc_model::random_position(&mut rng, &texts[doc], enc) }
        } else if roll < 93 {
            Op::Popup { doc, pos: doc_model::random_position(&mut rng, &texts[doc], enc) }
        } else {
            Op::Cancel { back: rng.below(3) }
        };
        ops.push(op);
        lengths_after.push([texts[0].len(), texts[1].len(), texts[2].len(), texts[3].len()]);
    }
    Plan { ops, lengths_after, text_after, edits, changes: changes_total }
}

impl Plan {
    /// Each document's text after the first `done` ops.
    fn texts_after(&self, done: usize) -> Vec<String> {
        let mut texts: Vec<String> = DOCS.iter().map(|d| d.2.to_string()).collect();
        for (_, (doc, text)) in self.text_after.range(..done) {
            texts[*doc] = text.clone();
        }
        texts
    }
}

fn message(op: &Op) -> (&'static str, Value) {
    match op {
        Op::Edit { doc, version, changes } => (
            "textDocument/didChange",
            json!({"textDocument": {"uri": DOCS[*doc].0, "version": version},
                   "contentChanges": changes.iter().map(Change::to_json).collect::<Vec<_>>()}),
        ),
        Op::Inline { doc, pos } => (
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": DOCS[*doc].0}, "position": {"line": pos.0, "character": pos.1}, "context": {"triggerKind": 2}}),
        ),
        Op::Popup { doc, pos } => {
            ("textDocument/completion", json!({"textDocument": {"uri": DOCS[*doc].0}, "position": {"line": pos.0, "character": pos.1}}))
        }
        Op::Cancel { .. } => ("$/cancelRequest", Value::Null),
    }
}

fn budget_secs(default: u64) -> Duration {
    let secs = std::env::var("INKLING_STRESS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    Duration::from_secs(secs)
}

fn ops_count(default: usize) -> usize {
    std::env::var("INKLING_STRESS_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Checks the answers: exactly one per id sent, no answers to ids never sent, and each is a
/// result or a `RequestCancelled`/`ContentModified` error (never an internal error).
fn check_exactly_once(received: &[Value], sent: &[i64], may_be_invalid: &[i64]) -> (usize, usize) {
    let sent_set: HashSet<i64> = sent.iter().copied().collect();
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    let (mut ok, mut cancelled) = (0, 0);
    for m in received.iter().filter(|m| m.get("method").is_none()) {
        let id = m["id"].as_i64().unwrap_or_else(|| panic!("an answer without a numeric id: {m}"));
        *count.entry(id).or_default() += 1;
        if !sent_set.contains(&id) {
            continue; // checked below
        }
        if let Some(err) = m.get("error") {
            let code = err["code"].as_i64().unwrap_or(0);
            if code == -32602 && may_be_invalid.contains(&id) {
                continue;
            }
            assert!(code == -32800 || code == -32801, "request {id} failed: {m}");
            cancelled += 1;
        } else {
            ok += 1;
        }
    }
    let orphans: Vec<_> = count.keys().filter(|id| !sent_set.contains(id)).collect();
    assert!(orphans.is_empty(), "answers to ids never sent: {orphans:?}");
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "answered more than once: {dups:?}");
    let missing: Vec<_> = sent.iter().filter(|id| !count.contains_key(id)).collect();
    assert!(missing.is_empty(), "{} requests never answered: {:?}", missing.len(), &missing[..missing.len().min(20)]);
    (ok, cancelled)
}

#[test]
fn thousands_of_random_edits_and_requests_against_the_real_binary() {
    let tiny = inkling::engine::testing::tiny_model_path();
    let n = ops_count(10_000);
    let budget = budget_secs(60);
    let p = plan(0x5eed_1234, n, Enc::Utf16);
    eprintln!("plan: {} ops, {} didChange with {} changes", p.ops.len(), p.edits, p.changes);
    let mut c = ProcClient::serve(&["--model", tiny.to_str().unwrap()]);
    let caps = json!({"general": {"positionEncodings": ["utf-16"]}, "window": {"workDoneProgress": true}});
    let opts = json!({"maxNewTokens": 8, "timeBudgetMs": 2000, "maxPrefixTokens": 256, "maxSuffixTokens": 64, "completeInComments": true});
    c.initialize(caps, opts);
    c.wait_model_ready(Duration::from_secs(60));
    let (hwm_start, _) = c.memory_kib();
    for (uri, lang, text) in DOCS {
        c.open(uri, lang, text);
    }
    let started = Instant::now();
    let mut sent: Vec<i64> = Vec::new();
    let mut done = 0;
    for op in &p.ops {
        if started.elapsed() > budget {
            eprintln!("time budget reached after {done} ops");
            break;
        }
        match op {
            Op::Cancel { back } => {
                if let Some(id) = sent.len().checked_sub(1 + back).map(|i| sent[i]) {
                    c.notify("$/cancelRequest", json!({"id": id}));
                }
            }
            Op::Edit { .. } => {
                let (m, params) = message(op);
                c.notify(m, params);
            }
            _ => {
                let (m, params) = message(op);
                sent.push(c.request_async(m, params));
            }
        }
        done += 1;
        if done % 256 == 0 {
            c.pump(Duration::ZERO);
        }
    }
    let sent_at = started.elapsed();
    // Probe each document's shape through positions: the line after the last must not exist,
    // and a column past the end of the last line clamps to the reference's end position.
    let expected = p.texts_after(done);
    let mut probes = Vec::new();
    for (d, (uri, _, _)) in DOCS.iter().enumerate() {
        let (line, character) = doc_model::end_position(&expected[d], Enc::Utf16);
        // One at a time: completion requests cancel each other (the newest wins).
        let past = c.request_async(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line + 1, "character": 0}, "context": {"triggerKind": 1}}),
        );
        c.response(past, Duration::from_secs(60));
        let at_end = c.request_async(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character + 100_000}}),
        );
        c.response(at_end, Duration::from_secs(60));
        probes.push((d, past, at_end, (line, character)));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &sent {
        let left = deadline.saturating_duration_since(Instant::now());
        c.response(*id, left);
    }
    let all_answered_at = started.elapsed();
    c.pump(Duration::from_millis(500)); // let any duplicate arrive
    let mut matched_ends = 0;
    for (d, past, at_end, (line, character)) in &probes {
        let r = c.responses_to(*past)[0].clone();
        assert_eq!(r["error"]["code"], -32602, "doc {d}: line {} should not exist: {r}", line + 1);
        let r = c.responses_to(*at_end)[0].clone();
        assert!(r.get("error").is_none(), "doc {d}: the last line {line} should exist: {r}");
        if let Some(end) = r["result"]["items"][0]["textEdit"]["range"]["end"].as_object() {
            assert_eq!(Value::Object(end.clone()), json!({"line": line, "character": character}), "doc {d} end");
            matched_ends += 1;
        }
    }
    let mut all_ids = vec![1]; // initialize
    all_ids.extend(&sent);
    all_ids.extend(probes.iter().flat_map(|(_, a, b, _)| [*a, *b]));
    let past_probes: Vec<i64> = probes.iter().map(|p| p.1).collect();
    let (ok, cancelled) = check_exactly_once(&c.received, &all_ids, &past_probes);
    let warnings: Vec<_> = c.shown_messages().into_iter().filter(|(t, _)| *t <= 2).collect();
    assert!(warnings.is_empty(), "valid edits produced warnings: {warnings:?}");
    let errors: Vec<_> = c.log_messages().into_iter().filter(|m| m.contains("failed") || m.contains("crash")).collect();
    let (hwm_tiny, rss_tiny) = c.memory_kib();
    eprintln!(
        "{done} ops sent in {:.1} s, all {} answered after {:.1} s: {ok} results, {cancelled} cancelled; \
         {matched_ends}/4 end positions checked through ranges; {} engine errors logged; \
         VmHWM {} MiB at start, {} MiB after the load (RSS {} MiB)",
        sent_at.as_secs_f64(),
        all_ids.len(),
        all_answered_at.as_secs_f64(),
        errors.len(),
        hwm_start / 1024,
        hwm_tiny / 1024,
        rss_tiny / 1024
    );
    assert!(errors.is_empty(), "the engine reported errors: {errors:?}");
    assert!(hwm_tiny < 512 * 1024, "peak RSS {} MiB with a tiny model", hwm_tiny / 1024);
    let _ = &p.lengths_after;

    // The same server, now with the real model: it still completes.
    let model = test_model();
    c.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"inkling": {"modelPath": model, "maxNewTokens": 16, "timeBudgetMs": 30000}}}),
    );
    let now_using = c.wait_for(
        |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"].as_str().is_some_and(|s| s.contains("now using") || s.contains("could not"))
        },
        Duration::from_secs(180),
    );
    let msg = now_using.expect("the real model loads");
    assert!(msg["params"]["message"].as_str().unwrap().contains("now using"), "{msg}");
    c.open("file:///stress/final.py", "python", "def add(a, b):\n    return \n");
    let r = c.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": "file:///stress/final.py"}, "position": {"line": 1, "character": 11}, "context": {"triggerKind": 1}}),
        Duration::from_secs(120),
    );
    let text = r["result"]["items"][0]["insertText"].as_str().unwrap_or_default().to_string();
    assert!(text.contains('a') && text.contains('b'), "the real model after the load test: {r}");
    let (hwm_real, _) = c.memory_kib();
    eprintln!("real model completion after the load: {text:?}; VmHWM with the real model {} MiB", hwm_real / 1024);
    assert!(hwm_real < 3 * 1024 * 1024, "peak RSS {} MiB with the 0.5B model", hwm_real / 1024);
    let status = c.shutdown();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

async fn replay_in_process(seed: u64, n: usize, enc: Enc) {
    let p = plan(seed, n, enc);
    let encoding = if enc == Enc::Utf16 { "utf-16" } else { "utf-8" };
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, encoding, json!({"completeInComments": true})).await;
    for (uri, lang, text) in DOCS {
        s.open(uri, lang, text).await;
    }
    let started = Instant::now();
    let mut handles = Vec::new();
    let mut sent: Vec<i64> = Vec::new();
    for (i, op) in p.ops.iter().enumerate() {
        match op {
            Op::Edit { .. } => {
                let (m, params) = message(op);
                s.notify(m, params).await;
                // Check the text every 97 ops, and the length after every edit.
                let lens: Vec<usize> = DOCS.iter().map(|d| s.service.inner().document_text(d.0).expect("open").len()).collect();
                assert_eq!(lens, p.lengths_after[i].to_vec(), "lengths after op {i} ({op:?})");
                if i % 97 == 0 {
                    let expected = p.texts_after(i + 1);
                    for (d, doc) in DOCS.iter().enumerate() {
                        assert_eq!(s.service.inner().document_text(doc.0).unwrap(), expected[d], "doc {d} after op {i}");
                    }
                }
            }
            Op::Cancel { back } => {
                if let Some(id) = sent.len().checked_sub(1 + back).map(|i| sent[i]) {
                    s.notify("$/cancelRequest", json!({"id": id})).await;
                }
            }
            _ => {
                let (m, params) = message(op);
                let (id, req) = s.request_message(m, params);
                sent.push(id);
                // Poll once now, as the stdio transport does when the request arrives: the
                // handler takes its document snapshot before its first `.await`.
                let mut fut = s.start_call(req);
                match futures::poll!(&mut fut) {
                    std::task::Poll::Ready(resp) => handles.push((id, tokio::spawn(async move { resp }))),
                    std::task::Poll::Pending => handles.push((id, tokio::spawn(fut))),
                }
            }
        }
    }
    let expected = p.texts_after(p.ops.len());
    for (d, doc) in DOCS.iter().enumerate() {
        assert_eq!(s.service.inner().document_text(doc.0).unwrap(), expected[d], "final text of doc {d}");
    }
    let mut answered = Vec::new();
    for (id, h) in handles {
        let resp = tokio::time::timeout(Duration::from_secs(30), h).await.expect("answered in time").expect("join");
        let resp = resp.unwrap_or_else(|| panic!("request {id} got no response"));
        answered.push(serde_json::to_value(&resp).unwrap());
    }
    let (ok, cancelled) = check_exactly_once(&answered, &sent, &[]);
    let warnings: Vec<_> = s.drain_messages().into_iter().filter(|m| m["method"] == "window/showMessage").collect();
    assert!(warnings.is_empty(), "{warnings:?}");
    eprintln!(
        "in process ({encoding}): {} ops ({} didChange, {} changes) in {:.1} s; {ok} results, {cancelled} cancelled; texts equal the reference",
        p.ops.len(),
        p.edits,
        p.changes,
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_text_equals_the_reference_after_thousands_of_edits_utf16() {
    replay_in_process(0x5eed_1234, ops_count(4000), Enc::Utf16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_text_equals_the_reference_after_thousands_of_edits_utf8() {
    replay_in_process(0xC0FFEE, ops_count(4000), Enc::Utf8).await;
}
