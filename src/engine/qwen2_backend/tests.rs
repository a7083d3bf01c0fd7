//! The reuse, slot-switching, speculation and cancellation paths must give exactly what a cold,
//! plain greedy run gives (tiny random model; many random edit sequences).

use std::time::Duration;

use super::*;
use crate::engine::testing::tiny_model_path;
use crate::prompt::{Budget, PromptText};

const BUDGET: Budget = Budget { max_prefix_tokens: 400, max_suffix_tokens: 120, max_context_tokens: 200 };

fn backend(reuse: bool, speculate: bool) -> Qwen2Backend {
    let options = EngineOptions { reuse, speculate, max_draft: 6 };
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
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
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
    let mut rng = Rng(0x5eed);
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
    let mut rng = Rng(42);
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

#[test]
fn switching_files_restores_the_saved_cache() {
    let mut b = backend(true, false);
    let cancel = CancelToken::new();
    let mut rng = Rng(7);
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
    let mut rng = Rng(99);
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
    let mut text = PromptText { prefix: "def add(a, b):\n".into(), suffix: "\n".into(), line_head: "    return ".into(), ..PromptText::default() };
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
