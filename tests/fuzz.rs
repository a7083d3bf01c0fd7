//! Bad input, fuzzed (proptest, bounded by a case count AND a time cap per property):
//! (a) the JSON-RPC framing guard over arbitrary byte streams fed in small chunks: no panic, no
//!     hang, every valid frame recovered in order, each bad one reported once;
//! (b) sequences of document edits with arbitrary ranges (out of range, inverted, inside
//!     surrogate pairs and multi-byte characters, past the size limit) and Unicode text: no panic,
//!     the text equals a reference model when an edit is valid and is unchanged when it is not,
//!     and the incrementally edited syntax tree equals a fresh parse;
//! (c) arbitrary JSON as settings: no panic, and accepted settings are always in range.
//!
//! `INKLING_FUZZ_CASES` (default 256) and `INKLING_FUZZ_SECS` (default 20 per property) scale
//! the run, e.g. `INKLING_FUZZ_CASES=100000 INKLING_FUZZ_SECS=300 cargo test --release --test
//! main fuzz:: -- --nocapture` for a soak.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, BufReader, ReadBuf};

use inkling::config::{Options, Settings};
use inkling::server::transport::{encode_frame, read_frame, Frame, MAX_FRAME_BYTES};
use inkling::session::{DocumentLimits, Documents, LineCol, LineColRange, PositionEncoding, TextChange};

use crate::support::doc_model::{self, Change, Enc};

fn cases() -> u32 {
    std::env::var("INKLING_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256)
}

fn time_cap() -> Duration {
    Duration::from_secs(std::env::var("INKLING_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20))
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: cases(), failure_persistence: None, max_shrink_iters: 2048, ..Config::default() })
}

/// Runs `test` over `strategy` until the case count or the time cap; reports how many ran.
fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let started = Instant::now();
    let cap = time_cap();
    let ran = AtomicUsize::new(0);
    let result = runner().run(&strategy, |v| {
        if started.elapsed() > cap {
            return Ok(());
        }
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    eprintln!("{name}: {} inputs in {:.1} s", ran.load(Ordering::Relaxed), started.elapsed().as_secs_f64());
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

// ---------- (a) framing ----------

/// A reader that hands out at most `chunk` bytes per read, to split headers and bodies anywhere.
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = self.chunk.min(self.data.len() - self.pos).min(buf.remaining());
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[derive(Clone, Debug)]
enum Seg {
    /// A well-formed frame: body, header style (0 canonical, 1 lower-case, 2 no space, 3 LF
    /// only, 4 with a Content-Type header first, 5 Content-Type after).
    Valid(String, u8),
    /// Right length, body is not JSON.
    BadJson(Vec<u8>),
    /// Right length, JSON but not an object.
    NotObject(String),
    /// Headers without Content-Length.
    NoLength(String),
    /// A Content-Length that does not parse.
    BadLength(String),
    /// A stray blank line between frames.
    Blank,
}

#[derive(Clone, Debug)]
enum Tail {
    None,
    /// A frame cut inside its body.
    Truncated(usize, Vec<u8>),
    /// A length over the limit (the rest of the input is skipped).
    Huge(u64),
    /// A header line cut before its end of headers.
    CutHeader(String),
    /// Anything at all.
    Garbage(Vec<u8>),
}

fn seg() -> impl Strategy<Value = Seg> {
    prop_oneof![
        4 => (any::<String>(), 0u8..6).prop_map(|(s, style)| Seg::Valid(json!({"jsonrpc": "2.0", "method": "x", "params": s}).to_string(), style)),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| { b.insert(0, b'}'); Seg::BadJson(b) }),
        1 => prop_oneof![Just("[1,2]".to_string()), Just("null".into()), Just("\"s\"".into()), Just("3.5".into())].prop_map(Seg::NotObject),
        1 => "[a-zA-Z0-9 ;=/-]{0,30}".prop_map(Seg::NoLength),
        1 => prop_oneof![Just("-5".to_string()), Just("abc".into()), Just("12x".into()), Just("".into()), Just("99999999999999999999999".into()), "[ 0-9a-z+-]{1,8}".prop_filter("not a number", |s| s.trim().parse::<usize>().is_err())].prop_map(Seg::BadLength),
        1 => Just(Seg::Blank),
    ]
}

fn tail() -> impl Strategy<Value = Tail> {
    prop_oneof![
        3 => Just(Tail::None),
        1 => (1usize..200, proptest::collection::vec(any::<u8>(), 0..50)).prop_map(|(extra, b)| Tail::Truncated(b.len() + extra, b)),
        1 => ((MAX_FRAME_BYTES as u64 + 1)..u64::MAX).prop_map(Tail::Huge),
        1 => "Content-Length: [0-9]{0,4}".prop_map(Tail::CutHeader),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Tail::Garbage),
    ]
}

fn encode(seg: &Seg) -> (Vec<u8>, Option<Frame>) {
    match seg {
        Seg::Valid(body, style) => {
            let n = body.len();
            let head = match style {
                0 => format!("Content-Length: {n}\r\n\r\n"),
                1 => format!("content-length: {n}\r\n\r\n"),
                2 => format!("Content-Length:{n}\r\n\r\n"),
                3 => format!("Content-Length: {n}\n\n"),
                4 => format!("Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {n}\r\n\r\n"),
                _ => format!("Content-Length: {n}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"),
            };
            let mut out = head.into_bytes();
            out.extend_from_slice(body.as_bytes());
            (out, Some(Frame::Message(body.as_bytes().to_vec())))
        }
        Seg::BadJson(b) => (encode_frame(b), Some(Frame::Malformed(String::new()))),
        Seg::NotObject(s) => (encode_frame(s.as_bytes()), Some(Frame::Malformed(String::new()))),
        Seg::NoLength(v) => (format!("X-Header: {v}\r\n\r\n").into_bytes(), Some(Frame::Malformed(String::new()))),
        Seg::BadLength(v) => (format!("Content-Length: {v}\r\n\r\n").into_bytes(), Some(Frame::Malformed(String::new()))),
        Seg::Blank => (b"\r\n".to_vec(), None),
    }
}

fn same_kind(a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Message(x), Frame::Message(y)) => x == y,
        (Frame::Malformed(_), Frame::Malformed(_)) => true,
        _ => false,
    }
}

static FRAMES_SEEN: AtomicUsize = AtomicUsize::new(0);

#[test]
fn framing_guard_over_arbitrary_streams() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let strategy = (proptest::collection::vec(seg(), 0..12), tail(), 1usize..64, 1usize..128);
    run("framing", strategy, |(segs, tail, chunk, capacity)| {
        let mut data = Vec::new();
        let mut expected = Vec::new();
        for s in &segs {
            let (bytes, frame) = encode(s);
            data.extend(bytes);
            expected.extend(frame);
        }
        match &tail {
            Tail::None => {}
            Tail::Truncated(len, b) => {
                data.extend(format!("Content-Length: {len}\r\n\r\n").into_bytes());
                data.extend(b);
            }
            Tail::Huge(len) => {
                data.extend(format!("Content-Length: {len}\r\n\r\n{{\"a\":").into_bytes());
            }
            Tail::CutHeader(h) => data.extend(h.as_bytes()),
            Tail::Garbage(b) => data.extend(b),
        }
        let got = rt.block_on(async {
            let mut reader = BufReader::with_capacity(capacity, Chunked { data: data.clone(), pos: 0, chunk });
            let mut got = Vec::new();
            let all = async {
                loop {
                    match read_frame(&mut reader).await {
                        Ok(Some(f)) => got.push(f),
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                    if got.len() > 10_000 {
                        break Ok(());
                    }
                }
            };
            let r = tokio::time::timeout(Duration::from_secs(10), all).await;
            (r, got)
        });
        let (result, frames) = got;
        let finished = result.map_err(|_| TestCaseError::fail("read_frame hung"))?;
        prop_assert!(finished.is_ok(), "an I/O error from an in-memory reader: {finished:?}");
        FRAMES_SEEN.fetch_add(frames.len(), Ordering::Relaxed);
        prop_assert!(frames.len() >= expected.len(), "lost frames: {} < {}", frames.len(), expected.len());
        for (i, (g, e)) in frames.iter().zip(&expected).enumerate() {
            prop_assert!(same_kind(g, e), "frame {i}: got {g:?}, expected {e:?}");
        }
        let extra = &frames[expected.len()..];
        match tail {
            Tail::None => prop_assert!(extra.is_empty(), "{extra:?}"),
            Tail::Truncated(..) | Tail::Huge(_) => {
                prop_assert_eq!(extra.len(), 1);
                prop_assert!(matches!(&extra[0], Frame::Malformed(w) if w.contains("ended inside")), "{:?}", extra);
            }
            Tail::CutHeader(_) => {
                prop_assert_eq!(extra.len(), 1);
                prop_assert!(matches!(&extra[0], Frame::Malformed(_)), "{:?}", extra);
            }
            Tail::Garbage(_) => {}
        }
        Ok(())
    });
    eprintln!("framing: {} frames decoded in all", FRAMES_SEEN.load(Ordering::Relaxed));
}

// ---------- (b) document edits ----------

const FUZZ_PIECES: &[&str] = &[
    "a",
    "bc",
    " ",
    "\t",
    "(",
    ")",
    "{",
    "}",
    ":",
    "def f",
    "fn g",
    "\"",
    "😀",
    "👨‍👩‍👧",
    "漢",
    "é",
    "e\u{301}",
    "\n",
    "\r\n",
    "\r",
    "\u{2028}",
    "\u{85}",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
];

fn text_strategy(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0..FUZZ_PIECES.len(), 0..max).prop_map(|ix| ix.into_iter().map(|i| FUZZ_PIECES[i]).collect())
}

fn line() -> impl Strategy<Value = u32> {
    prop_oneof![40 => 0u32..3, 3 => 3u32..8, 1 => Just(u32::MAX), 1 => any::<u32>()]
}

fn character() -> impl Strategy<Value = u32> {
    prop_oneof![16 => 0u32..12, 2 => 12u32..64, 1 => Just(u32::MAX), 1 => any::<u32>()]
}

#[derive(Clone, Debug)]
struct RawChange {
    full: bool,
    start: (u32, u32),
    end: (u32, u32),
    text: String,
}

fn raw_change() -> impl Strategy<Value = RawChange> {
    (proptest::bool::weighted(0.03), (line(), character()), (line(), character()), proptest::bool::weighted(0.8), text_strategy(6))
        .prop_map(|(full, a, b, ordered, text)| {
            // Mostly ordered ranges (they may still invert after clamping and rounding).
            let (start, end) = if ordered && b < a { (b, a) } else { (a, b) };
            RawChange { full, start, end, text }
        })
}

fn to_model(c: &RawChange) -> Change {
    Change { range: if c.full { None } else { Some((c.start, c.end)) }, text: c.text.clone() }
}

fn to_session(c: &RawChange) -> TextChange {
    TextChange {
        range: if c.full { None } else { Some(LineColRange::new(LineCol::new(c.start.0, c.start.1), LineCol::new(c.end.0, c.end.1))) },
        text: c.text.clone(),
    }
}

static EDITS_APPLIED: AtomicUsize = AtomicUsize::new(0);
static EDITS_REFUSED: AtomicUsize = AtomicUsize::new(0);

fn sexp(docs: &Documents, uri: &str) -> Option<String> {
    docs.snapshot(uri).and_then(|s| s.tree).map(|t| t.root_node().to_sexp())
}

#[test]
fn document_edits_with_arbitrary_ranges() {
    let strategy = (
        text_strategy(30),
        proptest::collection::vec(
            prop_oneof![4 => proptest::collection::vec(raw_change(), 1..2), 1 => proptest::collection::vec(raw_change(), 2..4)],
            1..24,
        ),
        any::<bool>(),
        0usize..4,
        prop_oneof![3 => Just(usize::MAX), 1 => 16usize..400],
    );
    run("edits", strategy, |(initial, edits, utf8, lang, max_bytes)| {
        let (language, uri) =
            [("python", "file:///f/a.py"), ("rust", "file:///f/a.rs"), ("javascript", "file:///f/a.js"), ("plaintext", "file:///f/a.txt")]
                [lang];
        let enc = if utf8 { Enc::Utf8 } else { Enc::Utf16 };
        let penc = if utf8 { PositionEncoding::Utf8 } else { PositionEncoding::Utf16 };
        let limits = DocumentLimits { max_bytes: max_bytes.min(1 << 30), ..DocumentLimits::default() };
        let docs = Documents::with_limits(limits);
        // NUL bytes only come in through edits (an initial NUL makes the document "binary").
        let initial = if initial.len() % 4 == 0 { initial } else { initial.replace('\0', "") };
        let opened = docs.open(uri, language, &initial, 1);
        let should_open = initial.len() <= limits.max_bytes && !initial.as_bytes()[..initial.len().min(8192)].contains(&0);
        prop_assert_eq!(opened.is_ok(), should_open, "open {:?}: {:?}", initial, opened);
        if !should_open {
            return Ok(());
        }
        let mut reference = initial.clone();
        let mut version = 1;
        for (i, edit) in edits.iter().enumerate() {
            let model: Vec<Change> = edit.iter().map(to_model).collect();
            let session: Vec<TextChange> = edit.iter().map(to_session).collect();
            let expected = doc_model::apply_all(&mut reference, &model, enc, limits.max_bytes);
            let got = docs.change(uri, version + 1, &session, penc);
            prop_assert_eq!(got.is_ok(), expected.is_ok(), "edit {}: {:?} -> server {:?}, reference {:?}", i, edit, got, expected);
            if got.is_ok() {
                version += 1;
                EDITS_APPLIED.fetch_add(1, Ordering::Relaxed);
            } else {
                EDITS_REFUSED.fetch_add(1, Ordering::Relaxed);
            }
            let snap = docs.snapshot(uri).expect("still open");
            prop_assert_eq!(snap.version, version);
            prop_assert_eq!(snap.text.to_string(), reference.clone(), "text after edit {}: {:?}", i, edit);
        }
        // The incrementally maintained tree equals a fresh parse of the same text.
        let inc = sexp(&docs, uri);
        let lang = inkling::syntax::Language::detect(language, uri);
        let new = match inkling::syntax::Parser::new(lang) {
            Ok(mut parser) if lang.ts_language().is_some() => {
                parser.try_parse(&ropey::Rope::from_str(&reference), None).ok().map(|t| t.root_node().to_sexp())
            }
            _ => None,
        };
        if let (Some(inc), Some(new)) = (&inc, &new) {
            prop_assert_eq!(inc, new, "incremental tree differs from a fresh parse of {:?}", reference);
        }
        prop_assert_eq!(inc.is_some(), new.is_some(), "tree presence differs for {:?}", reference);
        Ok(())
    });
    eprintln!(
        "edits: {} applied, {} refused (out of range, inverted or over the size limit)",
        EDITS_APPLIED.load(Ordering::Relaxed),
        EDITS_REFUSED.load(Ordering::Relaxed)
    );
}

// ---------- (c) settings ----------

const NAMES: &[&str] = &[
    "enabled",
    "modelPath",
    "maxPrefixTokens",
    "maxSuffixTokens",
    "maxNewTokens",
    "timeBudgetMs",
    "latencyTargetMs",
    "multiline",
    "completeInComments",
    "threads",
    "maxDocumentBytes",
    "crossFileContext",
    "maxContextTokens",
    "maxIndexFiles",
    "kvCacheMb",
    "inkling",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..20_000).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![Just("auto".to_string()), Just("never".into()), Just("always".into()), Just("".into()), any::<String>()]
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(
                (prop_oneof![4 => proptest::sample::select(NAMES).prop_map(str::to_string), 1 => any::<String>()], inner),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

#[test]
fn arbitrary_json_settings() {
    let accepted = AtomicUsize::new(0);
    run("settings", json_value(), |v| {
        let Ok((options, _unknown)) = Options::from_json_lenient(&v) else {
            return Ok(());
        };
        match options.validate(&Settings::default()) {
            Ok(s) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                prop_assert!((16..=16_384).contains(&s.max_prefix_tokens));
                prop_assert!(s.max_suffix_tokens <= 8_192);
                prop_assert!((1..=1_024).contains(&s.max_new_tokens));
                prop_assert!((10..=120_000).contains(&s.time_budget_ms));
                prop_assert!((1024..=256 * 1024 * 1024).contains(&s.max_document_bytes));
                prop_assert!(s.threads.is_none_or(|t| (1..=256).contains(&t)));
                prop_assert!(s.max_context_tokens <= 16_384 && s.max_index_files <= 1_000_000 && s.kv_cache_mb <= 65_536);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
    eprintln!("settings: {} accepted", accepted.load(Ordering::Relaxed));
}

#[tokio::test]
async fn arbitrary_settings_through_the_server_never_break_it() {
    use crate::support::fake::echo_line_head;
    use crate::support::inprocess::TestServer;
    let mut s = TestServer::ready(echo_line_head, Duration::ZERO, "utf-16", Value::Null).await;
    s.open("file:///w/s.py", "python", "x = \n").await;
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    let strategy = json_value();
    for _ in 0..64 {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        s.notify("workspace/didChangeConfiguration", json!({"settings": v})).await;
    }
    // Whatever was accepted, a known-good configuration brings it back.
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"enabled": true, "modelPath": "fake-model", "completeInComments": false,
        "maxNewTokens": 96, "timeBudgetMs": 3000, "multiline": "auto", "maxPrefixTokens": 1024, "maxSuffixTokens": 256}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s
            .request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": "file:///w/s.py"}, "position": {"line": 0, "character": 4}, "context": {"triggerKind": 2}}),
            )
            .await
            .expect("an answer");
        if r["items"][0]["insertText"] == "'x ='" {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
