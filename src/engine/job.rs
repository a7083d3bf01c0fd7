//! What a generation job carries in and out, and its cancellation token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::prompt::{Budget, PromptText};

/// A cheap, shareable "stop now" flag, checked between tokens.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The text a running job has generated so far, rewritten after each token it accepts: a caller
/// can tell before the job ends that its answer no longer fits what the user typed since.
#[derive(Debug, Default)]
pub struct Written(Mutex<String>);

impl Written {
    pub fn set(&self, text: &str) {
        let mut guard = crate::sync::lock(&self.0);
        guard.clear();
        guard.push_str(text);
    }
    pub fn get(&self) -> String {
        crate::sync::lock(&self.0).clone()
    }
}

/// Decides from the text generated so far whether to stop (e.g. the block ended).
pub type StopWhen = Box<dyn Fn(&str) -> bool + Send>;

/// One completion to generate.
pub struct GenerateRequest {
    /// Which KV-cache slot (normally the file's path) this request belongs to.
    pub slot: String,
    /// Memory allowed for saved KV caches of other slots.
    pub kv_cache_bytes: usize,
    pub text: PromptText,
    pub budget: Budget,
    pub max_new_tokens: usize,
    /// Stop at the first line break.
    pub single_line: bool,
    /// Stop when this returns true for the text so far.
    pub stop_when: Option<StopWhen>,
    /// Stop generating after this long (counted from the end of the prompt's prefill) and
    /// answer with what is there.
    pub time_budget: Duration,
    /// When the prompt's uncached part would take longer than about this to read, a prompt
    /// with smaller budgets is read instead; once it has passed, a multi-line answer ends at
    /// the next line break (`Duration::ZERO`: always the full budgets, no such end).
    pub latency_target: Duration,
    /// A pre-warm: read the prompt into the cache and generate nothing. A newer job interrupts
    /// it within one block of the model (the pass under way is dropped; the passes before it
    /// stay cached), so it never holds a real request up by more than that.
    pub background: bool,
    /// Where the text generated so far is kept up to date, if anyone watches it.
    pub written: Option<Arc<Written>>,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// An end-of-text or FIM marker.
    EndOfText,
    /// A line break in single-line mode.
    EndOfLine,
    /// The stop predicate (end of block) fired.
    EndOfBlock,
    MaxTokens,
    TimeBudget,
    /// A multi-line answer ran past the latency target and a line had just ended: the whole
    /// lines written so far are the answer (the cache holds them for the request after it).
    LatencyTarget,
    /// A newer request cancelled this one (what was computed stays cached for it).
    Cancelled,
    /// The context window is full.
    ContextFull,
}

/// The raw output of one job, with its timings.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Generated {
    pub text: String,
    pub stop: StopReason,
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused from the previous job: the common prefix.
    pub reused_tokens: usize,
    /// Prompt tokens after the common prefix whose KV entries were moved from other cached
    /// positions instead of being computed.
    pub moved_tokens: usize,
    pub new_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Speculative draft tokens verified, and how many of them were kept.
    pub draft_tokens: usize,
    pub draft_accepted: usize,
    /// What the model's own numbers said while it wrote `text` (for the quality filter).
    #[serde(skip)]
    pub signals: Signals,
}

/// The model's view of one generation: how sure it was of each token, and its final hidden
/// states (after the last norm) where the prompt ended and while it wrote. Empty for backends
/// that do not compute them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signals {
    /// Log-probability of each generated token under the model's distribution (the end token
    /// excluded), in order.
    pub logprobs: Vec<f32>,
    /// Bytes of [`Generated::text`] written once each of those tokens was accepted.
    pub ends: Vec<usize>,
    /// The hidden state at the prompt's last position (the one that predicts the first token).
    pub prompt_hidden: Vec<f32>,
    /// The mean hidden state over the positions of the generated tokens that ran through the
    /// model (the prompt's last position's when none did).
    pub completion_hidden: Vec<f32>,
}
