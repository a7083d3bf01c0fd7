//! The real backend: Qwen2 with KV-cache reuse, token healing and speculative decoding.
//!
//! It keeps the token sequence whose keys and values sit in the model's KV cache. A new job
//! switches to its file's cache (per-file snapshots), computes the longest common token prefix
//! with the new prompt, truncates the cache there (O(1)), moves cached runs the prompt holds at
//! other positions (`engine::reuse`) and prefills only the rest, in steps of [`PREFILL_STEP`]
//! tokens between which a newer request may cancel it (what ran stays cached and is reused by
//! that request, and so do the runs it was moving). A pre-warm (`GenerateRequest::background`)
//! grows the window read last towards the full prompt in whole stages, stops within one block
//! when a newer job comes, and generates nothing. Decoding is greedy; prompt-lookup drafts are verified in one batched pass and
//! only the tokens greedy decoding would have produced are kept.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use candle_core::{Device, IndexOp, Tensor};
use tokenizers::Tokenizer;

use super::backend::{Backend, EngineOptions};
use super::job::{CancelToken, GenerateRequest, Generated, Signals, StopReason};
use super::model::{KvSpan, Qwen2};
use super::reuse::{self, Step};
use super::slots::Slots;
use super::speculate;
use super::vocab::TokenBytes;
use crate::prompt::{self, Budget, SpecialTokens};

/// Tokens of KV cache allocated per model (prompt + generated).
pub const DEFAULT_MAX_CONTEXT: usize = 4096;
/// Prompt tokens run between two checks for a newer request: a cancelled prefill stops after
/// at most this many (about 1.5 s for the 0.5B on two cores). Smaller steps read prompts more
/// slowly: 64-token steps ran ~30% below 128 in `cargo bench --bench engine`.
pub const PREFILL_STEP: usize = 128;
/// Share of the latency target the prompt's prefill may take (the rest is for the answer).
const PREFILL_SHARE: f64 = 0.7;
/// Budgets are scaled in steps of 1/STEPS of the full ones when the full prompt does not fit
/// the latency target, so that a pre-warm can grow the window a stage at a time.
const STEPS: usize = 32;
/// Tokens of the warm-up prefill at load, which also measures the first prefill rate (about
/// the size of the prompts a latency target allows on a CPU).
const WARM_UP_TOKENS: usize = 64;
/// The smallest budgets a latency target scales a prompt down to, in 1/STEPS of the full ones:
/// below about a sixteenth of the window (some 6 lines above the cursor) suggestions are
/// rarely worth the time saved.
const MIN_STEPS: usize = 2;
/// Positions whose logits are kept (a vocabulary-sized row each: ~0.6 MB).
const MAX_SAVED_LOGITS: usize = 48;

pub struct Qwen2Backend {
    model: Qwen2,
    tokenizer: Tokenizer,
    special: SpecialTokens,
    /// Exactly the tokens whose keys/values are in the model's live cache.
    cached: Vec<u32>,
    /// Logits computed at recent cache positions (position → next-token logits, and the hidden
    /// state they came from), so a prompt that ends inside the cached sequence (the user typed
    /// what the model wrote) needs no forward pass at all.
    logits_at: Vec<(usize, Output)>,
    slots: Slots,
    token_bytes: TokenBytes,
    options: EngineOptions,
    description: String,
    /// Prompt tokens read per second, measured (see [`Qwen2Backend::measured_prefill`]).
    prefill_rate: f64,
    /// The budgets of the last prompt, in 1/STEPS of the full ones (see `sized_prompt`).
    window_steps: usize,
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn argmax(logits: &Tensor) -> Result<u32> {
    Ok(logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?)
}

/// The log-probability of `id` under `logits` (a log-softmax at one entry).
fn log_prob(logits: &Tensor, id: u32) -> Result<f32> {
    let scores = logits.flatten_all()?.to_vec1::<f32>()?;
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = scores.iter().map(|&x| (x - max).exp()).sum();
    let chosen = scores.get(id as usize).copied().context("token id outside the logits")?;
    Ok(chosen - max - sum.ln())
}

/// The answer of a job that read (some of) its prompt and wrote nothing: a pre-warm, or one
/// cancelled during its prefill.
fn nothing_generated(stop: StopReason, prompt_tokens: usize, reused_tokens: usize, moved_tokens: usize, started: Instant) -> Generated {
    Generated {
        text: String::new(),
        stop,
        prompt_tokens,
        reused_tokens,
        moved_tokens,
        new_tokens: 0,
        prefill_ms: started.elapsed().as_secs_f64() * 1e3,
        decode_ms: 0.0,
        draft_tokens: 0,
        draft_accepted: 0,
        signals: Signals::default(),
    }
}

/// Whether a multi-line answer should end here: the latency target (counted from the request's
/// start) has passed and the text ends where a line ended, after at least one line with code.
/// On a CPU a block of 24 tokens takes seconds; its first lines shown at the target are worth
/// more than all of it later, and the next request continues from them in the cache.
fn lines_done_past_target(request: &GenerateRequest, started: Instant, text: &str) -> bool {
    let ended = text.rsplit_once('\n').is_some_and(|(lines, last)| last.trim().is_empty() && !lines.trim().is_empty());
    ended && !request.single_line && !request.latency_target.is_zero() && started.elapsed() >= request.latency_target
}

/// The next-token logits at one position and the final hidden state they came from.
#[derive(Clone)]
struct Output {
    logits: Tensor,
    hidden: Tensor,
}

/// How reading a prompt into the cache ended.
enum Read {
    /// Read: `reused` prompt tokens were kept, `moved` moved; the last position's output.
    Done { reused: usize, moved: usize, output: Output },
    /// A newer job stopped it; the first `keep` tokens were kept.
    Stopped { keep: usize },
}

/// Sums the hidden states of the generated tokens' positions, for [`Signals`].
struct HiddenMean {
    sum: Vec<f32>,
    count: usize,
}

impl HiddenMean {
    fn add(&mut self, rows: &Tensor) -> Result<()> {
        for row in rows.to_vec2::<f32>()? {
            if self.sum.is_empty() {
                self.sum = vec![0.0; row.len()];
            }
            self.sum.iter_mut().zip(&row).for_each(|(s, x)| *s += x);
            self.count += 1;
        }
        Ok(())
    }

    fn mean_or(self, fallback: &[f32]) -> Vec<f32> {
        if self.count == 0 {
            return fallback.to_vec();
        }
        self.sum.into_iter().map(|s| s / self.count as f32).collect()
    }
}

/// Decoding state of one job.
struct Decoding<'a> {
    request: &'a GenerateRequest,
    heal: &'a str,
    pending_heal: Vec<u8>,
    generated: Vec<u32>,
    text: String,
    logprobs: Vec<f32>,
    ends: Vec<usize>,
}

impl Qwen2Backend {
    pub fn load(path: &Path, device: &Device, options: EngineOptions) -> Result<Qwen2Backend> {
        let (model, tokenizer) = Qwen2::load(path, device, DEFAULT_MAX_CONTEXT)?;
        let special = SpecialTokens::from_tokenizer(&tokenizer)?;
        let cfg = model.config();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let place = match device {
            Device::Cpu => format!("CPU, {} threads", candle_core::utils::get_num_threads()),
            other => format!("{:?}", other.location()),
        };
        let description = format!("{name} (Qwen2, {} layers, hidden {}, {place})", cfg.num_layers, cfg.hidden_size);
        let token_bytes = TokenBytes::from_tokenizer(&tokenizer);
        let mut backend = Qwen2Backend {
            model,
            tokenizer,
            special,
            cached: Vec::new(),
            logits_at: Vec::new(),
            slots: Slots::default(),
            token_bytes,
            options,
            description,
            prefill_rate: 0.0,
            window_steps: STEPS,
        };
        backend.warm_up()?;
        Ok(backend)
    }

    /// Runs a short prompt twice and forgets it: the first run pays the one-time costs of the
    /// kernels (weights repacked on first use), so the first request does not; the second
    /// measures the prefill rate the latency target starts from.
    fn warm_up(&mut self) -> Result<()> {
        let text = "def add(a, b):\n    return a + b\n\n".repeat(WARM_UP_TOKENS);
        let ids = self.tokenizer.encode_fast(text.as_str(), false).map_err(anyhow::Error::msg)?;
        let tokens: Vec<u32> = ids.get_ids().iter().copied().take(WARM_UP_TOKENS).collect();
        if tokens.len() < WARM_UP_TOKENS || tokens.len() + 1 > self.model.max_ctx() {
            self.prefill_rate = 100.0;
            return Ok(());
        }
        self.model.extend(&tokens)?;
        self.model.truncate(0);
        let started = Instant::now();
        self.model.extend(&tokens)?;
        self.model.truncate(0);
        self.prefill_rate = tokens.len() as f64 / started.elapsed().as_secs_f64().max(1e-6);
        tracing::info!(tokens_per_s = format!("{:.0}", self.prefill_rate), "prefill rate measured at load");
        Ok(())
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The most likely token that spells (part of) the `pending` healing bytes.
    fn healing_argmax(&self, logits: &Tensor, pending: &[u8]) -> Result<u32> {
        let scores = logits.flatten_all()?.to_vec1::<f32>()?;
        let best = (0..scores.len() as u32)
            .filter(|&id| self.token_bytes.fits(id, pending))
            .max_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
        match best {
            Some(id) => Ok(id),
            None => argmax(logits),
        }
    }

    /// Runs `tokens` after the live cache and records them as cached (and their logits).
    /// Returns the logits and the final hidden states, one row per new position when `all`,
    /// else of the last one.
    fn run(&mut self, tokens: &[u32], all: bool) -> Result<Output> {
        let start = self.cached.len();
        let logits = if all { self.model.forward_all(tokens)? } else { self.model.forward_last(tokens)? };
        let hidden = self.model.last_hidden().context("the model gave no hidden state")?.clone();
        self.cached.extend_from_slice(tokens);
        if all {
            for i in 0..tokens.len() {
                self.remember_logits(start + i, Output { logits: logits.i(i)?, hidden: hidden.narrow(0, i, 1)? });
            }
        } else {
            self.remember_logits(self.cached.len() - 1, Output { logits: logits.clone(), hidden: hidden.clone() });
        }
        Ok(Output { logits, hidden })
    }

    /// Runs `tokens` after the live cache without computing logits.
    fn extend(&mut self, tokens: &[u32]) -> Result<()> {
        self.model.extend(tokens)?;
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// Folds a prefill of `tokens` that took `took` into the prefill rate (short runs say more
    /// about overheads than about the rate, and are left out).
    fn measured_prefill(&mut self, tokens: usize, took: Duration) {
        if tokens >= 16 && !took.is_zero() {
            let rate = tokens as f64 / took.as_secs_f64();
            self.prefill_rate = 0.7 * self.prefill_rate + 0.3 * rate;
            tracing::debug!(tokens, rate = format!("{rate:.0}"), average = format!("{:.0}", self.prefill_rate), "prefill rate");
        }
    }

    /// Prompt tokens a request for `tokens` would run (not kept, not moved from the cache).
    fn cost(&self, tokens: &[u32]) -> usize {
        let common = common_prefix(&self.cached, tokens);
        if common == tokens.len() && self.saved_logits(tokens.len() - 1).is_some() {
            return 0;
        }
        let keep = common.min(tokens.len() - 1);
        tokens.len() - keep - reuse::moved(&self.plan(tokens, keep))
    }

    /// How to rebuild the cache for `tokens` after keeping `keep` (see [`reuse::plan`]). Only
    /// the part before `<|fim_suffix|>` moves: a moved suffix keeps what it computed after the
    /// old prefix, and on the real model that made it repeat the line just written (the test
    /// `real_model_moved_runs_give_the_cold_suggestions` keeps this honest).
    fn plan(&self, tokens: &[u32], keep: usize) -> Vec<Step> {
        let min_run = if self.options.reuse { self.options.min_moved_run } else { 0 };
        let movable = tokens.iter().position(|&t| t == self.special.fim_suffix).unwrap_or(0);
        reuse::plan(&self.cached, tokens, keep, min_run, movable)
    }

    /// The prompt for `request`: with its full budgets when running its uncached part fits the
    /// latency target at the measured prefill rate; else with the window read last when that
    /// still fits (typing on the line it was read for costs a few tokens; a larger window would
    /// read the suffix again and cost the whole target each keystroke); else with the largest
    /// scaled-down budgets that fit (no code from other files), but never below [`MIN_STEPS`] /
    /// [`STEPS`]. A pre-warm grows the window in the pauses ([`Qwen2Backend::prewarm`]).
    fn sized_prompt(&mut self, request: &GenerateRequest) -> Result<prompt::Prompt> {
        let full = prompt::build(&self.tokenizer, &self.special, &request.text, request.budget)?;
        let limit = (request.latency_target.as_secs_f64() * PREFILL_SHARE * self.prefill_rate) as usize;
        if request.latency_target.is_zero() || self.cost(&full.tokens) <= limit {
            self.window_steps = STEPS;
            return Ok(full);
        }
        let at = |k: usize| self.scaled(request, k);
        let last = self.window_steps.clamp(MIN_STEPS, STEPS - 1);
        let kept = at(last)?;
        if self.cost(&kept.tokens) <= limit {
            tracing::debug!(fraction = format!("{last}/{STEPS}"), limit, "the window read last kept");
            self.window_steps = last;
            return Ok(kept);
        }
        // The largest fraction k / STEPS of the budgets that fits, found by bisection (a few
        // prompt builds of a few milliseconds each).
        let (mut lo, mut hi, mut best) = (MIN_STEPS, last - 1, None);
        while lo <= hi {
            let mid = (lo + hi) / 2;
            let prompt = at(mid)?;
            if self.cost(&prompt.tokens) <= limit {
                best = Some((mid, prompt));
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        let (k, prompt) = match best {
            Some(found) => found,
            None => (MIN_STEPS, at(MIN_STEPS)?),
        };
        tracing::debug!(fraction = format!("{k}/{STEPS}"), limit, "prompt scaled to the latency target");
        self.window_steps = k;
        Ok(prompt)
    }

    /// `request`'s prompt with its budgets scaled to `k` / [`STEPS`] (no code from other files
    /// below the full budgets).
    fn scaled(&self, request: &GenerateRequest, k: usize) -> Result<prompt::Prompt> {
        let b = request.budget;
        let budget = if k >= STEPS {
            b
        } else {
            Budget {
                max_prefix_tokens: b.max_prefix_tokens * k / STEPS,
                max_suffix_tokens: b.max_suffix_tokens * k / STEPS,
                max_context_tokens: 0,
            }
        };
        prompt::build(&self.tokenizer, &self.special, &request.text, budget)
    }

    /// A pre-warm: grows the window from the one read last, doubling it each stage up to the
    /// full budgets, each stage a whole prompt a request can use at once (the next request's
    /// latency-target search starts from the last stage finished). Reading the full prompt in
    /// one go would leave nothing usable when it is interrupted: its first tokens are the lines
    /// farthest from the cursor, which no smaller window holds.
    fn prewarm(&mut self, request: &GenerateRequest, cancel: &CancelToken, started: Instant) -> Result<Generated> {
        let mut k = self.window_steps.max(1);
        loop {
            k = (k * 2).min(STEPS);
            let prompt = self.scaled(request, k)?;
            let tokens = &prompt.tokens;
            self.check_fits(tokens.len())?;
            // Read already: what was generated after it stays (the user may type it).
            let (reused, moved) = if common_prefix(&self.cached, tokens) == tokens.len() {
                (tokens.len(), 0)
            } else {
                match self.read(tokens, cancel, true)? {
                    Read::Done { reused, moved, .. } => (reused, moved),
                    Read::Stopped { keep } => return Ok(nothing_generated(StopReason::Cancelled, tokens.len(), keep, 0, started)),
                }
            };
            self.window_steps = k;
            if k == STEPS {
                return Ok(nothing_generated(StopReason::MaxTokens, tokens.len(), reused, moved, started));
            }
        }
    }

    fn check_fits(&self, tokens: usize) -> Result<()> {
        if tokens + 1 > self.model.max_ctx() {
            anyhow::bail!(
                "the prompt has {tokens} tokens but the model's cache holds {}: lower maxPrefixTokens, maxSuffixTokens or maxContextTokens",
                self.model.max_ctx()
            );
        }
        Ok(())
    }

    /// Brings the cache to `tokens`, reusing the cached prefix. When the whole prompt is cached
    /// and its last position's logits were kept, nothing needs computing; otherwise at least
    /// the last token runs.
    fn read(&mut self, tokens: &[u32], cancel: &CancelToken, background: bool) -> Result<Read> {
        let common = common_prefix(&self.cached, tokens);
        if let Some(output) = (common == tokens.len()).then(|| self.saved_logits(tokens.len() - 1)).flatten() {
            self.truncate(tokens.len());
            return Ok(Read::Done { reused: tokens.len(), moved: 0, output });
        }
        let keep = common.min(tokens.len() - 1);
        let steps = self.plan(tokens, keep);
        Ok(match self.rebuild(tokens, keep, &steps, cancel, background).context("prefill")? {
            Some(output) => Read::Done { reused: keep, moved: reuse::moved(&steps), output },
            None => Read::Stopped { keep },
        })
    }

    /// Brings the cache from `self.cached` to `tokens`: keeps the first `keep`, then follows
    /// `steps` (from [`reuse::plan`]), running the model [`PREFILL_STEP`] tokens at a time.
    /// Returns the logits after the last token, or `None` when `cancel` fired: at the end of a
    /// step, or, when `background`, before any block (the step under way is then dropped).
    /// What ran stays cached, and so do the moved runs not yet placed (appended after it, where
    /// the next prompt can move them from): an interrupted rebuild loses only what it
    /// truncated and had not moved.
    fn rebuild(&mut self, tokens: &[u32], keep: usize, steps: &[Step], cancel: &CancelToken, background: bool) -> Result<Option<Output>> {
        if background && cancel.is_cancelled() {
            return Ok(None); // a pre-warm given way before it began leaves the cache as it was
        }
        // Copy the moved runs out first: the steps before them overwrite their old positions.
        let mut spans = Vec::new();
        for step in steps {
            if let Step::Move { from, to, len } = *step {
                spans.push((self.model.span(from, len)?, to));
            }
        }
        self.truncate(keep);
        let mut spans = spans.into_iter();
        let mut logits = None;
        let (started, mut ran) = (Instant::now(), 0usize);
        let stop = || cancel.is_cancelled();
        for step in steps {
            match *step {
                Step::Move { to, len, .. } => {
                    let (span, _) = spans.next().context("a moved run without its copy")?;
                    self.model.append_span(&span)?;
                    self.cached.extend_from_slice(&tokens[to..to + len]);
                }
                Step::Run { start, end } => {
                    let mut at = start;
                    while at < end {
                        let next = (at + PREFILL_STEP).min(end);
                        let last = next == tokens.len();
                        if background {
                            // Interruptible within a block; the prompt's last token runs on its
                            // own, for the logits a request for exactly this prompt will use.
                            let upto = if last { next - 1 } else { next };
                            let done = if upto > at { self.model.extend_unless(&tokens[at..upto], &stop)? } else { 0 };
                            self.cached.extend_from_slice(&tokens[at..at + done]);
                            ran += done;
                            if at + done < upto || (last && cancel.is_cancelled()) {
                                self.keep_unplaced(spans, tokens);
                                return Ok(None);
                            }
                            if last {
                                logits = Some(self.run(&tokens[upto..next], false)?);
                                self.measured_prefill(ran, started.elapsed());
                            }
                        } else if last {
                            ran += next - at;
                            logits = Some(self.run(&tokens[at..next], false)?);
                            self.measured_prefill(ran, started.elapsed());
                        } else {
                            ran += next - at;
                            self.extend(&tokens[at..next])?;
                        }
                        if !last && cancel.is_cancelled() {
                            self.keep_unplaced(spans, tokens);
                            return Ok(None);
                        }
                        at = next;
                    }
                }
            }
        }
        logits.context("the prompt's last token was not run").map(Some)
    }

    /// After an interrupted rebuild: appends the moved runs it had not placed yet at the end of
    /// the cache, so the next prompt can still move them instead of running them again. Stops
    /// quietly where the cache is full (they are then read again, as without this).
    fn keep_unplaced(&mut self, spans: impl Iterator<Item = (KvSpan, usize)>, tokens: &[u32]) {
        for (span, to) in spans {
            if self.cached.len() + span.len() > self.model.max_ctx() || self.model.append_span(&span).is_err() {
                tracing::debug!("a moved run was dropped: the cache is full");
                break;
            }
            self.cached.extend_from_slice(&tokens[to..to + span.len()]);
        }
    }

    fn remember_logits(&mut self, position: usize, output: Output) {
        self.logits_at.retain(|(p, _)| *p != position);
        if self.logits_at.len() >= MAX_SAVED_LOGITS {
            self.logits_at.remove(0);
        }
        self.logits_at.push((position, output));
    }

    fn saved_logits(&self, position: usize) -> Option<Output> {
        self.logits_at.iter().find(|(p, _)| *p == position).map(|(_, l)| l.clone())
    }

    /// Drops cached positions past `len` (both the model's and our record of them).
    fn truncate(&mut self, len: usize) {
        self.model.truncate(len);
        self.cached.truncate(len);
        self.logits_at.retain(|(p, _)| *p < len);
    }
}

impl Decoding<'_> {
    /// Accepts one generated token; returns why to stop, if it is time.
    fn accept(
        &mut self,
        tokenizer: &Tokenizer,
        token_bytes: &TokenBytes,
        special: &SpecialTokens,
        next: u32,
        logprob: f32,
    ) -> Result<Option<StopReason>> {
        if special.is_stop(next) {
            return Ok(Some(StopReason::EndOfText));
        }
        if !self.pending_heal.is_empty() {
            let spelled = token_bytes.get(next).map_or(self.pending_heal.len(), <[u8]>::len);
            self.pending_heal.drain(..spelled.min(self.pending_heal.len()));
        }
        self.generated.push(next);
        let decoded = tokenizer.decode(&self.generated, false).map_err(anyhow::Error::msg)?;
        // The healed text was already on the line: only what follows it is new.
        self.text = decoded.strip_prefix(self.heal).map(str::to_string).unwrap_or_default();
        self.logprobs.push(logprob);
        self.ends.push(self.text.len());
        let req = self.request;
        if let Some(written) = &req.written {
            written.set(&self.text);
        }
        Ok(if req.single_line && self.text.contains('\n') {
            Some(StopReason::EndOfLine)
        } else if req.stop_when.as_ref().is_some_and(|f| f(&self.text)) {
            Some(StopReason::EndOfBlock)
        } else if self.generated.len() >= req.max_new_tokens {
            Some(StopReason::MaxTokens)
        } else {
            None
        })
    }
}

impl Backend for Qwen2Backend {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn reset(&mut self) {
        self.truncate(0);
        self.logits_at.clear();
        self.slots.clear();
    }

    fn generate(&mut self, request: &GenerateRequest, cancel: &CancelToken) -> Result<Generated> {
        let _span = tracing::debug_span!("generate").entered();
        let started = Instant::now();
        if self.options.reuse {
            if self.slots.switch_to(&request.slot, &mut self.model, &mut self.cached, request.kv_cache_bytes)? {
                self.logits_at.clear(); // the cache now holds another file's tokens
            }
        } else {
            self.truncate(0);
        }
        if request.background {
            return self.prewarm(request, cancel, started);
        }
        let prompt = self.sized_prompt(request)?;
        let tokens = &prompt.tokens;
        self.check_fits(tokens.len())?;
        let (reused, moved, first) = match self.read(tokens, cancel, false)? {
            Read::Done { reused, moved, output } => (reused, moved, output),
            Read::Stopped { keep } => return Ok(nothing_generated(StopReason::Cancelled, tokens.len(), keep, 0, started)),
        };
        let prefill_ms = started.elapsed().as_secs_f64() * 1e3;

        let decode_started = Instant::now();
        let mut state = Decoding {
            request,
            heal: &prompt.heal,
            pending_heal: prompt.heal.as_bytes().to_vec(),
            generated: Vec::new(),
            text: String::new(),
            logprobs: Vec::new(),
            ends: Vec::new(),
        };
        let prompt_hidden = first.hidden.flatten_all()?.to_vec1::<f32>()?;
        let mut hidden = HiddenMean { sum: Vec::new(), count: 0 };
        let mut logits = first.logits;
        let mut drafted = 0usize;
        let mut accepted_drafts = 0usize;
        let mut drafting = true;
        let stop = 'decode: loop {
            let next = if state.pending_heal.is_empty() { argmax(&logits)? } else { self.healing_argmax(&logits, &state.pending_heal)? };
            let logprob = log_prob(&logits, next)?;
            if let Some(stop) = state.accept(&self.tokenizer, &self.token_bytes, &self.special, next, logprob)? {
                break stop;
            }
            if decode_started.elapsed() >= request.time_budget {
                break StopReason::TimeBudget;
            }
            if lines_done_past_target(request, started, &state.text) {
                break StopReason::LatencyTarget;
            }
            if cancel.is_cancelled() {
                break StopReason::Cancelled;
            }
            let room = self.model.max_ctx().saturating_sub(self.cached.len() + 1);
            if room == 0 {
                break StopReason::ContextFull;
            }
            // Draft only once healing is done (drafts are unconstrained greedy guesses), and not
            // after a draft that was mostly wrong: verifying costs more than the tokens it saves.
            let draft = if self.options.speculate && state.pending_heal.is_empty() && drafting {
                let mut history = self.cached.clone();
                history.push(next);
                let left = request.max_new_tokens.saturating_sub(state.generated.len());
                speculate::draft(&history, self.options.max_draft.min(left).min(room.saturating_sub(1)))
            } else {
                Vec::new()
            };
            if draft.is_empty() {
                let out = self.run(&[next], false).context("decode")?;
                hidden.add(&out.hidden)?;
                logits = out.logits;
                continue;
            }
            // Verify: row i of the batch predicts the token after draft position i.
            let base = self.cached.len();
            let mut batch = vec![next];
            batch.extend_from_slice(&draft);
            let Output { logits: all, hidden: rows } = self.run(&batch, true).context("verify")?;
            drafted += draft.len();
            let mut kept = 0usize;
            for (i, &guess) in draft.iter().enumerate() {
                let row = all.i(i)?;
                if argmax(&row)? != guess {
                    break;
                }
                kept += 1;
                if let Some(stop) = state.accept(&self.tokenizer, &self.token_bytes, &self.special, guess, log_prob(&row, guess)?)? {
                    self.truncate(base + 1 + kept);
                    hidden.add(&rows.narrow(0, 0, kept + 1)?)?;
                    accepted_drafts += kept;
                    break 'decode stop;
                }
            }
            accepted_drafts += kept;
            drafting = 2 * kept >= draft.len();
            self.truncate(base + 1 + kept);
            hidden.add(&rows.narrow(0, 0, kept + 1)?)?;
            logits = all.i(kept)?;
        };
        if drafted > 0 {
            tracing::debug!(drafted, accepted = accepted_drafts, "speculation");
        }
        Ok(Generated {
            text: state.text,
            stop,
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
            moved_tokens: moved,
            new_tokens: state.generated.len(),
            prefill_ms,
            decode_ms: decode_started.elapsed().as_secs_f64() * 1e3,
            draft_tokens: drafted,
            draft_accepted: accepted_drafts,
            signals: Signals {
                logprobs: state.logprobs,
                ends: state.ends,
                completion_hidden: hidden.mean_or(&prompt_hidden),
                prompt_hidden,
            },
        })
    }
}

#[cfg(test)]
mod tests;
