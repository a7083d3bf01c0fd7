//! The reuse, slot-switching, speculation and cancellation paths must give exactly what a cold,
//! plain greedy run gives (tiny random model; many random edit sequences).

use std::time::Duration;

use super::*;
use crate::config::Settings;
use crate::context::{self, Decision};
use crate::engine::testing::{tiny_model_path, write_tiny_gguf, TinyOptions};
use crate::prompt::{Budget, PromptText};
use crate::rng::Rng;
use crate::session::{ByteOffset, Document, DocumentLimits};
use crate::syntax::Language;

const BUDGET: Budget = Budget { max_prefix_tokens: 400, max_suffix_tokens: 120, max_context_tokens: 200 };

/// The tiny model with exact reuse only (no moved runs, which are approximate in a model of
/// more than one block; they have tests of their own below).
fn backend(reuse: bool, speculate: bool) -> Qwen2Backend {
    let options = EngineOptions { reuse, speculate, min_moved_run: 0, ..EngineOptions::default() };
    Qwen2Backend::load(&tiny_model_path(), &Device::Cpu, options).expect("tiny model")
}

fn request(slot: &str, text: &PromptText, max_new_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        slot: slot.into(),
        kv_cache_bytes: 64 << 20,
        text: text.clone(),
        budget: BUDGET,
        max_new_tokens,
        single_line: false,
        stop_when: None,
        time_budget: Duration::from_secs(60),
        latency_target: Duration::ZERO,
        background: false,
        written: None,
    }
}

const WORDS: &[&str] = &["def ", "return ", "x", " = ", "(a, b)", "\n", "    ", "self.", "total", " + ", "1", ":", "é", "😀"];

/// A random document state: prefix lines, a line head being typed, a suffix.
fn random_text(rng: &mut Rng) -> PromptText {
    let mut prefix = String::new();
    for _ in 0..rng.below(12) {
        for _ in 0..1 + rng.below(6) {
            prefix.push_str(WORDS[rng.below(WORDS.len())]);
        }
        prefix.push('\n');
    }
    let mut suffix = String::new();
    for _ in 0..rng.below(6) {
        suffix.push_str(WORDS[rng.below(WORDS.len())]);
    }
    PromptText { prefix, suffix, line_head: "    ".into(), ..PromptText::default() }
}

#[test]
fn reused_cache_gives_exactly_the_cold_result_over_random_edit_sequences() {
    let mut warm = backend(true, false);
    let mut cold = backend(false, false);
    let mut rng = Rng::new(0x5eed);
    let cancel = CancelToken::new();
    let mut reused_total = 0;
    for _sequence in 0..6 {
        let mut text = random_text(&mut rng);
        for _keystroke in 0..8 {
            // Typing mostly appends to the line head; sometimes an edit above or below.
            match rng.below(10) {
                0 => text.prefix.push_str("y = 2\n"),
                1 => text.suffix.push_str(WORDS[rng.below(WORDS.len())]),
                2 if !text.line_head.is_empty() => {
                    text.line_head.pop();
                }
                _ => text.line_head.push_str(WORDS[rng.below(6)].trim_end_matches('\n')),
            }
            let w = warm.generate(&request("a.py", &text, 8), &cancel).unwrap();
            let c = cold.generate(&request("a.py", &text, 8), &cancel).unwrap();
            assert_eq!(w.text, c.text, "text {text:?}");
            assert_eq!(c.reused_tokens, 0);
            reused_total += w.reused_tokens;
        }
    }
    assert!(reused_total > 0, "the warm backend reused its cache");
}

#[test]
fn speculative_decoding_gives_exactly_the_greedy_result() {
    let mut spec = backend(true, true);
    let mut plain = backend(true, false);
    let cancel = CancelToken::new();
    let mut drafted = 0;
    let mut rng = Rng::new(42);
    for _ in 0..10 {
        let mut text = random_text(&mut rng);
        // Repetitive code makes drafts likely.
        text.prefix = text.prefix.repeat(3);
        let s = spec.generate(&request("b.py", &text, 24), &cancel).unwrap();
        let p = plain.generate(&request("b.py", &text, 24), &cancel).unwrap();
        assert_eq!(s.text, p.text);
        assert_eq!(s.new_tokens, p.new_tokens);
        assert_eq!(p.draft_tokens, 0);
        drafted += s.draft_tokens;
    }
    assert!(drafted > 0, "drafts were verified");
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The model's signals (log-probabilities, hidden states) do not depend on how the tokens got
/// into the cache: speculative and cached runs give what a cold greedy run gives.
#[test]
fn signals_are_the_same_whether_tokens_were_drafted_cached_or_run_cold() {
    let mut spec = backend(true, true);
    let mut cold = backend(false, false);
    let cancel = CancelToken::new();
    let mut rng = Rng::new(42);
    let mut drafted = 0;
    for _ in 0..6 {
        let mut text = random_text(&mut rng);
        text.prefix = text.prefix.repeat(3);
        // Twice: the second request finds the whole prompt in the cache.
        for _ in 0..2 {
            let s = spec.generate(&request("s.py", &text, 16), &cancel).unwrap();
            let c = cold.generate(&request("s.py", &text, 16), &cancel).unwrap();
            assert_eq!(s.text, c.text);
            let (a, b) = (&s.signals, &c.signals);
            assert_eq!(a.ends, b.ends);
            assert_eq!(a.logprobs.len(), s.new_tokens.min(a.ends.len()));
            assert!(max_diff(&a.logprobs, &b.logprobs) < 1e-3, "{:?} vs {:?}", a.logprobs, b.logprobs);
            // The prompt's tail may run as a short step (quantized activations) here and inside a
            // long one (the dense f32 path) there: equal to within what that costs (see
            // `dense_prefill_agrees_with_the_quantized_kernel`).
            let scale = b.prompt_hidden.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert!(max_diff(&a.prompt_hidden, &b.prompt_hidden) < 0.05 * scale, "{}", max_diff(&a.prompt_hidden, &b.prompt_hidden));
            assert!(max_diff(&a.completion_hidden, &b.completion_hidden) < 0.05 * scale);
            assert!(a.logprobs.iter().all(|&l| l <= 0.0 && l.is_finite()));
            assert_eq!(a.prompt_hidden.len(), spec.model.config().hidden_size);
            drafted += s.draft_tokens;
        }
    }
    assert!(drafted > 0, "drafts were verified");
}

#[test]
fn switching_files_restores_the_saved_cache() {
    let mut b = backend(true, false);
    let cancel = CancelToken::new();
    let mut rng = Rng::new(7);
    let a = random_text(&mut rng);
    let bb = random_text(&mut rng);
    let first = b.generate(&request("a.py", &a, 6), &cancel).unwrap();
    b.generate(&request("b.py", &bb, 6), &cancel).unwrap();
    let again = b.generate(&request("a.py", &a, 6), &cancel).unwrap();
    assert_eq!(again.text, first.text);
    assert_eq!(again.reused_tokens, again.prompt_tokens - 1, "a.py's cache came back whole");
    // With no memory for snapshots, nothing is saved.
    let mut none = request("b.py", &bb, 6);
    none.kv_cache_bytes = 0;
    b.generate(&none, &cancel).unwrap();
    assert_eq!(b.slots.saved_count(), 0);
}

#[test]
fn a_cancelled_job_leaves_the_cache_consistent() {
    let mut b = backend(true, true);
    let mut cold = backend(false, false);
    let mut rng = Rng::new(99);
    let text = random_text(&mut rng);
    let cancelled = CancelToken::new();
    cancelled.cancel();
    // Stops after the first token, with a half-used cache.
    let partial = b.generate(&request("c.py", &text, 30), &cancelled).unwrap();
    assert!(partial.new_tokens <= 1);
    let fresh = CancelToken::new();
    let after = b.generate(&request("c.py", &text, 12), &fresh).unwrap();
    let reference = cold.generate(&request("c.py", &text, 12), &fresh).unwrap();
    assert_eq!(after.text, reference.text);
}

#[test]
fn a_prompt_inside_the_cached_sequence_needs_no_forward_pass() {
    let mut b = backend(true, false);
    let mut cold = backend(false, false);
    let cancel = CancelToken::new();
    let mut text =
        PromptText { prefix: "def add(a, b):\n".into(), suffix: "\n".into(), line_head: "    return ".into(), ..PromptText::default() };
    let first = b.generate(&request("d.py", &text, 8), &cancel).unwrap();
    // The user types the first characters the model wrote.
    let typed: String = first.text.chars().take(3).collect();
    text.line_head.push_str(&typed);
    let again = b.generate(&request("d.py", &text, 8), &cancel).unwrap();
    let reference = cold.generate(&request("d.py", &text, 8), &cancel).unwrap();
    assert_eq!(again.text, reference.text);
    if again.reused_tokens == again.prompt_tokens {
        assert!(again.prefill_ms < reference.prefill_ms, "no forward pass when the prompt is fully cached");
    }
}

#[test]
fn moved_runs_give_exactly_the_cold_result_in_a_one_block_model() {
    // With one block, a position's keys and values depend only on its token and its position,
    // so moving them (and turning the keys) must give what a cold prefill computes.
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_gguf(dir.path(), 5, TinyOptions { layers: 1, ..TinyOptions::default() }).unwrap();
    let options = EngineOptions { speculate: false, min_moved_run: 8, ..EngineOptions::default() };
    let mut warm = Qwen2Backend::load(&path, &Device::Cpu, options).unwrap();
    let mut cold = Qwen2Backend::load(&path, &Device::Cpu, EngineOptions { reuse: false, ..options }).unwrap();
    let cancel = CancelToken::new();
    let below = "\n    total = total + self.x(a, b)\n    return total\n\ndef other(a, b):\n    return a\n";
    let mut text =
        PromptText { prefix: "def f(a, b):\n".into(), suffix: below.into(), line_head: "    x = ".into(), ..PromptText::default() };
    let mut moved = 0;
    for line in ["    x = a + 1\n", "    y = x * 2\n", "    self.z = y\n"] {
        let w = warm.generate(&request("m.py", &text, 6), &cancel).unwrap();
        let c = cold.generate(&request("m.py", &text, 6), &cancel).unwrap();
        assert_eq!(w.text, c.text, "{text:?}");
        // The user finishes the line and starts the next: the lines below move down.
        text.prefix.push_str(line);
        text.line_head = "    ".into();
        moved += w.moved_tokens;
    }
    // Lines deleted above the cursor: everything after them moves up.
    text.prefix = text.prefix.replacen("    x = a + 1\n", "", 1);
    let w = warm.generate(&request("m.py", &text, 6), &cancel).unwrap();
    let c = cold.generate(&request("m.py", &text, 6), &cancel).unwrap();
    assert_eq!(w.text, c.text);
    // Only the part before <|fim_suffix|> moves: new lines move nothing, the deletion does.
    assert_eq!(moved, 0);
    assert!(w.moved_tokens > 0, "runs were moved");
}

#[test]
fn moving_to_the_next_line_reuses_most_of_the_prompt() {
    // A 300-line file; the user finishes a line and presses Enter, thirty times.
    let mut b =
        Qwen2Backend::load(&tiny_model_path(), &Device::Cpu, EngineOptions { speculate: false, ..EngineOptions::default() }).unwrap();
    let settings = Settings { max_prefix_tokens: 600, max_suffix_tokens: 200, max_new_tokens: 4, ..Settings::default() };
    let lines: Vec<String> = (0..300).map(|i| format!("    v{i} = f(v{})", i / 2)).collect();
    let cancel = CancelToken::new();
    let mut ran = Vec::new();
    let mut first_lines = std::collections::BTreeSet::new();
    for line in 150..180 {
        // The cursor on a fresh, indented line after `line`.
        let mut doc_lines = lines.clone();
        doc_lines.insert(line + 1, "    ".into());
        let text = format!("def f():\n{}\n", doc_lines.join("\n"));
        let offset = text.find(&format!("{}\n    \n", lines[line])).unwrap() + lines[line].len() + 5;
        let doc = Document::open("/w/big.py", Language::Python, &text, 1, &DocumentLimits::default()).unwrap();
        let Decision::Complete(ctx) = context::gather(&doc.snapshot(), ByteOffset(offset), &settings) else { panic!("skipped") };
        let request = crate::pipeline::request_for(&ctx, &settings);
        let shown = prompt::render(&b.tokenizer, &b.special, &request.text, request.budget).unwrap();
        first_lines.insert(shown.lines().next().unwrap_or_default().to_string());
        let tokens = prompt::build(&b.tokenizer, &b.special, &request.text, request.budget).unwrap().tokens;
        let from_suffix = tokens.len() - tokens.iter().position(|&t| t == b.special.fim_suffix).unwrap();
        let g = b.generate(&request, &cancel).unwrap();
        ran.push((g.prompt_tokens - g.reused_tokens - g.moved_tokens, from_suffix, g.prompt_tokens));
    }
    // The window's first line moved on the grid (not with every line), and each next line
    // re-read only the line typed (about 17 tokens here) and the part from <|fim_suffix|> on
    // (the suffix window is read again: moving it changed the real model's answers); when the
    // window stepped down, the lines it kept were moved, not read again.
    assert!((2..=4).contains(&first_lines.len()), "{first_lines:?}");
    assert_eq!(ran[0].0, ran[0].2, "the first request reads everything");
    for &(read, from_suffix, _) in &ran[1..] {
        assert!(read <= from_suffix + 24, "{ran:?}");
    }
    // All of the window above was kept or moved: with these budgets (600 above, 200 below)
    // that is at least 60% of each prompt.
    let kept: usize = ran[1..].iter().map(|(read, _, len)| len - read).sum();
    let total: usize = ran[1..].iter().map(|(_, _, len)| len).sum();
    assert!(kept * 10 >= total * 6, "{ran:?}");
}

#[test]
fn a_cancelled_prefill_keeps_what_it_ran_for_the_next_request() {
    let mut b = backend(true, false);
    let mut cold = backend(false, false);
    let text =
        PromptText { prefix: "    total = total + 1\n".repeat(12), suffix: "\n".into(), line_head: "    ".into(), ..PromptText::default() };
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let stopped = b.generate(&request("p.py", &text, 8), &cancelled).unwrap();
    assert_eq!(stopped.stop, StopReason::Cancelled);
    assert!(stopped.prompt_tokens > PREFILL_STEP, "a prompt of more than one step");
    assert_eq!(stopped.new_tokens, 0);
    // The next request runs only what the cancelled one did not.
    let fresh = CancelToken::new();
    let next = b.generate(&request("p.py", &text, 8), &fresh).unwrap();
    assert_eq!(next.reused_tokens, PREFILL_STEP);
    assert_eq!(next.text, cold.generate(&request("p.py", &text, 8), &fresh).unwrap().text);
}

#[test]
fn an_interrupted_prefill_keeps_the_runs_it_was_moving() {
    // One block, so moved runs are exact: the request after the interruption must give the
    // cold result while moving, not running, what the interrupted one had not placed yet.
    let dir = tempfile::tempdir().unwrap();
    let path = write_tiny_gguf(dir.path(), 9, TinyOptions { layers: 1, ..TinyOptions::default() }).unwrap();
    let options = EngineOptions { speculate: false, min_moved_run: 8, ..EngineOptions::default() };
    let mut warm = Qwen2Backend::load(&path, &Device::Cpu, options).unwrap();
    let mut cold = Qwen2Backend::load(&path, &Device::Cpu, EngineOptions { reuse: false, ..options }).unwrap();
    let near = "def near(a, b):\n    total = a + b\n    return total * 2\n";
    let text = PromptText { prefix: near.into(), suffix: "\n".into(), line_head: "x = ".into(), ..PromptText::default() };
    let fresh = CancelToken::new();
    warm.generate(&request("i.py", &text, 4), &fresh).unwrap();
    // Lines above `near` appear: the first step (new lines only) runs, then a key cancels it.
    let above: String = (0..30).map(|i| format!("v{i} = w{i}\n")).collect();
    let longer = PromptText { prefix: format!("{above}{near}"), ..text.clone() };
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let stopped = warm.generate(&request("i.py", &longer, 4), &cancelled).unwrap();
    assert_eq!(stopped.stop, StopReason::Cancelled);
    // The user goes back to the first text: `near` is moved from where the interruption kept
    // it, and the answer is the cold one.
    let back = warm.generate(&request("i.py", &text, 4), &fresh).unwrap();
    assert!(back.moved_tokens >= 16, "{back:?}");
    assert_eq!(back.text, cold.generate(&request("i.py", &text, 4), &fresh).unwrap().text);
}

/// A pre-warm job for `text`: the full prompt, nothing generated (as the pipeline builds it).
fn prewarm(slot: &str, text: &PromptText) -> GenerateRequest {
    GenerateRequest { background: true, ..request(slot, text, 0) }
}

#[test]
fn a_pre_warm_reads_the_full_prompt_and_the_request_after_it_uses_the_full_context() {
    let mut b = backend(true, false);
    let mut cold = backend(false, false);
    let prefix: String = (0..60).map(|i| format!("x{i} = f(x{})\n", i / 3)).collect();
    let text = PromptText { prefix, suffix: "\ny = 2\n".into(), line_head: "z = ".into(), ..PromptText::default() };
    let full = prompt::build(&b.tokenizer, &b.special, &text, BUDGET).unwrap().tokens.len();
    let mut req = request("w.py", &text, 6);
    req.latency_target = Duration::from_secs(1);
    let cancel = CancelToken::new();
    // So slow a machine that a cold request reads a scaled-down prompt...
    b.prefill_rate = 40.0 / PREFILL_SHARE;
    let first = b.generate(&req, &cancel).unwrap();
    assert!(first.prompt_tokens < full, "{first:?}");
    // ...the user pauses, the server pre-warms the full prompt...
    let warmed = b.generate(&prewarm("w.py", &text), &cancel).unwrap();
    assert_eq!((warmed.prompt_tokens, warmed.new_tokens, warmed.text.as_str()), (full, 0, ""));
    // ...and the next request reads nothing: the full prompt and its logits are cached.
    b.prefill_rate = 40.0 / PREFILL_SHARE;
    let next = b.generate(&req, &cancel).unwrap();
    assert_eq!((next.prompt_tokens, next.reused_tokens), (full, full), "{next:?}");
    req.latency_target = Duration::ZERO;
    assert_eq!(next.text, cold.generate(&req, &cancel).unwrap().text);
    // A pre-warm of a prompt already read changes nothing, not even what was generated after it.
    let cached = b.cached.clone();
    let again = b.generate(&prewarm("w.py", &text), &cancel).unwrap();
    assert_eq!(again.reused_tokens, full);
    assert_eq!(b.cached, cached);
}

#[test]
fn a_pre_warm_interrupted_before_it_began_leaves_the_cache_as_it_was() {
    let mut b = backend(true, false);
    let text = PromptText { prefix: "def f(a):\n".into(), suffix: "\n".into(), line_head: "    ".into(), ..PromptText::default() };
    let fresh = CancelToken::new();
    b.generate(&request("q.py", &text, 4), &fresh).unwrap();
    let cached = b.cached.clone();
    let other = PromptText { prefix: "class G:\n".repeat(20), ..text.clone() };
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let stopped = b.generate(&prewarm("q.py", &other), &cancelled).unwrap();
    assert_eq!(stopped.stop, StopReason::Cancelled);
    assert_eq!(b.cached, cached);
}

#[test]
fn past_the_latency_target_a_multi_line_answer_ends_where_a_line_with_code_ended() {
    let mut req = request("t.py", &PromptText::default(), 40);
    req.latency_target = Duration::from_nanos(1);
    let long_ago = Instant::now() - Duration::from_millis(5);
    assert!(lines_done_past_target(&req, long_ago, "x = 1\n"));
    assert!(lines_done_past_target(&req, long_ago, "x = 1\n    "), "the next line's indentation only");
    assert!(!lines_done_past_target(&req, long_ago, "x = 1\n    y"), "inside the second line");
    assert!(!lines_done_past_target(&req, long_ago, "x = 1"), "inside the first line");
    assert!(!lines_done_past_target(&req, long_ago, "\n\n"), "no code yet");
    req.latency_target = Duration::from_secs(60);
    assert!(!lines_done_past_target(&req, long_ago, "x = 1\n"), "before the target");
    req.latency_target = Duration::ZERO;
    assert!(!lines_done_past_target(&req, long_ago, "x = 1\n"), "no target");
    req.latency_target = Duration::from_nanos(1);
    req.single_line = true;
    assert!(!lines_done_past_target(&req, long_ago, "x = 1\n"), "single-line answers end at their line anyway");
}

/// The real model (`INKLING_TEST_MODEL`): a block answer past the latency target is its first
/// line, the start of the answer without a target.
#[test]
fn real_model_a_block_answer_past_the_latency_target_is_its_first_line() {
    let Some(path) = crate::engine::testing::real_model() else { return };
    let mut b = Qwen2Backend::load(&path, &Device::Cpu, EngineOptions::default()).unwrap();
    let text = PromptText {
        prefix: "def fibonacci(n):\n".into(),
        suffix: "\n\nprint(fibonacci(10))\n".into(),
        line_head: "    ".into(),
        ..PromptText::default()
    };
    let cancel = CancelToken::new();
    let full = b.generate(&request("fib.py", &text, 40), &cancel).unwrap();
    assert!(full.text.trim_end().contains('\n'), "a block of more than one line: {:?}", full.text);
    b.reset();
    let mut req = request("fib.py", &text, 40);
    req.latency_target = Duration::from_nanos(1);
    let early = b.generate(&req, &cancel).unwrap();
    assert_eq!(early.stop, StopReason::LatencyTarget, "{early:?}");
    assert!(full.text.starts_with(&early.text), "{:?} is not the start of {:?}", early.text, full.text);
    assert!(!early.text.trim_end().contains('\n'), "one line: {:?}", early.text);
}

#[test]
fn a_cold_prompt_is_sized_to_the_latency_target_kept_while_typing_and_grown_by_a_pre_warm() {
    let mut b =
        Qwen2Backend::load(&tiny_model_path(), &Device::Cpu, EngineOptions { speculate: false, ..EngineOptions::default() }).unwrap();
    let prefix: String = (0..80).map(|i| format!("x{i} = f(x{})\n", i / 3)).collect();
    let suffix: String = (80..120).map(|i| format!("y{i} = g(y{})\n", i / 3)).collect();
    let mut text = PromptText { prefix, suffix, line_head: "z = ".into(), ..PromptText::default() };
    let full = prompt::build(&b.tokenizer, &b.special, &text, BUDGET).unwrap().tokens.len();
    let cancel = CancelToken::new();
    let limit = 200;
    let ask = |b: &mut Qwen2Backend, text: &PromptText| {
        let mut req = request("s.py", text, 2);
        req.latency_target = Duration::from_secs(1);
        b.prefill_rate = limit as f64 / PREFILL_SHARE; // as if measured: `limit` tokens fit
        let g = b.generate(&req, &cancel).unwrap();
        let ran = g.prompt_tokens - g.reused_tokens - g.moved_tokens;
        assert!(ran <= limit + 1, "ran {ran} of {} tokens", g.prompt_tokens);
        (g.prompt_tokens, ran)
    };
    let (cold, _) = ask(&mut b, &text);
    assert!(cold < full / 2, "a cold prompt of {cold} tokens (full {full})");
    // Typing on that line keeps the window: only the typed characters are read.
    for typed in ["f", "(", "x"] {
        text.line_head.push_str(typed);
        let (size, ran) = ask(&mut b, &text);
        assert!(size <= cold + 3 && ran <= 3, "typing {typed:?} read {ran} of {size} tokens (cold {cold})");
    }
    // A pre-warm grows it to the full budgets; the next request reads only its last token.
    let full = prompt::build(&b.tokenizer, &b.special, &text, BUDGET).unwrap().tokens.len();
    let grown = b.generate(&prewarm("s.py", &text), &cancel).unwrap();
    assert_eq!(grown.prompt_tokens, full, "{grown:?}");
    let (size, ran) = ask(&mut b, &text);
    assert_eq!((size, ran), (full, 0), "the pre-warm kept the last position's logits");
    // Without a target the full prompt is read at once.
    let mut req = request("s.py", &text, 2);
    req.latency_target = Duration::ZERO;
    let mut fresh = backend(true, false);
    assert_eq!(fresh.generate(&req, &cancel).unwrap().prompt_tokens, full);
}

/// The real model (`INKLING_TEST_MODEL`): while the user writes line after line, and when the
/// window's first lines go, the warm cache (kept prefix, moved runs) gives the same greedy
/// suggestions as a cold prefill.
#[test]
fn real_model_moved_runs_give_the_cold_suggestions() {
    let Some(path) = crate::engine::testing::real_model() else { return };
    let path = path.as_path();
    let options = EngineOptions { speculate: false, ..EngineOptions::default() };
    let mut warm = Qwen2Backend::load(path, &Device::Cpu, options).unwrap();
    let mut cold = Qwen2Backend::load(path, &Device::Cpu, EngineOptions { reuse: false, ..options }).unwrap();
    let budget = Budget { max_prefix_tokens: 256, max_suffix_tokens: 96, max_context_tokens: 0 };
    let below = "\n        return total\n\n    def mean(self):\n        if not self.items:\n            return 0.0\n        return self.total() / len(self.items)\n\n    def clear(self):\n        self.items = []\n";
    let lines = ["        total = 0\n", "        for item in self.items:\n", "            total += item.price * item.quantity\n"];
    let mut text = PromptText {
        prefix: "class Cart:\n    def __init__(self):\n        self.items = []\n\n    def add(self, item):\n        self.items.append(item)\n\n    def total(self):\n".into(),
        suffix: below.into(),
        line_head: "        ".into(),
        ..PromptText::default()
    };
    let cancel = CancelToken::new();
    let ask = |warm: &mut Qwen2Backend, cold: &mut Qwen2Backend, text: &PromptText, what: &str| {
        let mut req = request("cart.py", text, 12);
        req.budget = budget;
        let w = warm.generate(&req, &cancel).unwrap();
        let c = cold.generate(&req, &cancel).unwrap();
        assert_eq!(w.text, c.text, "{what}: {text:?}");
        w.moved_tokens
    };
    for (i, line) in lines.iter().enumerate() {
        ask(&mut warm, &mut cold, &text, &format!("line {i}"));
        text.prefix.push_str(line);
        text.line_head = line[..line.len() - line.trim_start().len()].to_string();
    }
    // The window's first lines go (as when it steps down): the rest of it moves up.
    text.prefix = text.prefix.replacen("class Cart:\n    def __init__(self):\n", "", 1);
    let moved = ask(&mut warm, &mut cold, &text, "first lines gone");
    assert!(moved > 0, "the lines above the cursor were moved");
}
