//! The Qwen2 forward pass over a [`KvCache`].
//!
//! Per block: RMSNorm → attention (q/k/v projections with bias, neox-style RoPE, grouped-query
//! attention, output projection without bias) → residual → RMSNorm → SwiGLU MLP → residual;
//! then a final RMSNorm and the LM head. Everything runs in f32.
//!
//! The block's pieces (attention, MLP, mask, RoPE tables) live in [`super::attention`].

use candle_core::{DType, Device, Tensor, D};

use super::attention::{causal_mask, mlp, rope_tables, rope_turn, Attention};
use super::config::ModelConfig;
use super::kv_cache::{KvCache, KvSpan};
use super::weights::Weights;

/// A Qwen2 model bound to its KV cache.
#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    weights: Weights,
    cache: KvCache,
    /// RoPE tables, `[max_ctx, head_dim / 2]`.
    cos: Tensor,
    sin: Tensor,
    device: Device,
    /// The final hidden states (after the last norm, `[rows, hidden]`) of the positions whose
    /// logits the last pass with logits returned, in the same order.
    last_hidden: Option<Tensor>,
    /// Whether short steps attend on the project's kernel (see [`super::attention`]).
    own_attention: bool,
}

impl Model {
    /// Builds the model and allocates a KV cache of `max_ctx` positions.
    pub fn new(cfg: ModelConfig, weights: Weights, max_ctx: usize, device: &Device) -> candle_core::Result<Self> {
        let (cos, sin) = rope_tables(cfg.head_dim, cfg.rope_theta, max_ctx, device)?;
        let cache = KvCache::new(cfg.num_layers, cfg.num_kv_heads, cfg.head_dim, max_ctx, DType::F32, device)?;
        let own_attention = device.is_cpu() && crate::engine::kernels::own_kernels_allowed();
        Ok(Self { cfg, weights, cache, cos, sin, device: device.clone(), last_hidden: None, own_attention })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    pub fn weights_mut(&mut self) -> &mut Weights {
        &mut self.weights
    }

    /// Turns the attention kernel off (candle's matmuls for every step) or back to the choice
    /// made at load.
    pub fn set_own_attention(&mut self, on: bool) {
        self.own_attention = on && self.device.is_cpu() && crate::engine::kernels::own_kernels_allowed();
    }

    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// The final hidden states of the rows the last pass with logits returned.
    pub fn last_hidden(&self) -> Option<&Tensor> {
        self.last_hidden.as_ref()
    }

    /// Runs `tokens` after the cached positions and appends them to the cache.
    ///
    /// Returns f32 logits `[tokens.len(), vocab]` when `all_positions`, else `[1, vocab]` for the
    /// last token. Long inputs run in chunks of [`PREFILL_CHUNK`] positions, which bounds the
    /// memory of the attention scores. On error the cache keeps its previous length.
    pub fn forward(&mut self, tokens: &[u32], all_positions: bool) -> candle_core::Result<Tensor> {
        let want = if all_positions { Logits::All } else { Logits::Last };
        let mut logits = self.forward_checked(tokens, want, None)?;
        match logits.len() {
            1 => Ok(logits.remove(0)),
            _ => Tensor::cat(&logits, 0),
        }
    }

    /// Runs `tokens` after the cached positions into the cache, computing no logits.
    pub fn extend(&mut self, tokens: &[u32]) -> candle_core::Result<()> {
        self.forward_checked(tokens, Logits::None, None).map(drop)
    }

    /// [`Model::extend`] that asks `stop` before each block of each pass: once it says yes, the
    /// pass under way is dropped (nothing of it is committed; the keys and values it wrote lie
    /// past the cache's length and are overwritten later). Returns how many of `tokens` were
    /// committed: all, or the passes of [`PREFILL_CHUNK`] finished before the stop.
    pub fn extend_unless(&mut self, tokens: &[u32], stop: &(dyn Fn() -> bool + Sync)) -> candle_core::Result<usize> {
        let start = self.cache.len();
        self.forward_checked(tokens, Logits::None, Some(stop))?;
        Ok(self.cache.len() - start)
    }

    /// Appends a span copied out of this model's cache at the end of the cache, its keys
    /// turned from the positions they were computed at to their new ones.
    pub fn append_span(&mut self, span: &KvSpan) -> candle_core::Result<()> {
        let delta = self.cache.len() as i64 - span.start() as i64;
        if delta == 0 {
            return self.cache.append_span(span, |k| Ok(k.clone()));
        }
        let (cos, sin) = rope_turn(self.cfg.head_dim, self.cfg.rope_theta, delta, span.len(), &self.device)?;
        self.cache.append_span(span, |k| candle_nn::rotary_emb::rope(k, &cos, &sin))
    }

    /// Validates `tokens` and runs them (until `stop` says so); returns the logits wanted.
    fn forward_checked(&mut self, tokens: &[u32], want: Logits, stop: Stop<'_>) -> candle_core::Result<Vec<Tensor>> {
        let _span = tracing::trace_span!("qwen2_forward", n = tokens.len()).entered();
        if tokens.is_empty() {
            candle_core::bail!("forward called with no tokens");
        }
        self.cache.ensure_room(tokens.len())?;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            candle_core::bail!("token id {bad} is outside the vocabulary of {}", self.cfg.vocab_size);
        }
        let start = self.cache.len();
        // On the CPU the pass runs on a thread of rayon's pool, the one the kernels split their
        // work over: the calling thread hands over once per pass instead of once per product.
        // (A GPU pass stays on the engine thread, which owns the device's context.)
        let result = if self.device.is_cpu() {
            rayon::scope(|_| self.forward_chunks(tokens, want, stop))
        } else {
            self.forward_chunks(tokens, want, stop)
        };
        if result.is_err() {
            self.cache.truncate(start);
        }
        result
    }

    fn forward_chunks(&mut self, tokens: &[u32], want: Logits, stop: Stop<'_>) -> candle_core::Result<Vec<Tensor>> {
        let chunks: Vec<&[u32]> = tokens.chunks(PREFILL_CHUNK).collect();
        let (mut logits, mut hidden) = (Vec::new(), Vec::new());
        for (i, chunk) in chunks.iter().enumerate() {
            let wanted = match (want, i + 1 == chunks.len()) {
                (Logits::Last, false) => Logits::None,
                (want, _) => want,
            };
            match self.forward_chunk(chunk, wanted, stop)? {
                Pass::Stopped => break,
                Pass::Done(Some(l)) => {
                    logits.push(l);
                    hidden.extend(self.last_hidden.take());
                }
                Pass::Done(None) => {}
            }
        }
        if !hidden.is_empty() {
            self.last_hidden = Some(if hidden.len() == 1 { hidden.remove(0) } else { Tensor::cat(&hidden, 0)? });
        }
        Ok(logits)
    }

    /// One forward pass over `tokens` (already validated to fit), committing them to the cache.
    /// When `stop` says yes before a block, the pass ends there uncommitted.
    fn forward_chunk(&mut self, tokens: &[u32], wanted: Logits, stop: Stop<'_>) -> candle_core::Result<Pass> {
        let n = tokens.len();
        let offset = self.cache.len();
        let _span = tracing::trace_span!("chunk", n, offset).entered();
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = {
            let _span = tracing::trace_span!("embed").entered();
            self.weights.embed.forward(&ids)?.unsqueeze(0)? // [1, n, hidden]
        };
        let mask = if n > 1 { Some(causal_mask(n, offset, &self.device)?) } else { None };
        let cos = self.cos.narrow(0, offset, n)?;
        let sin = self.sin.narrow(0, offset, n)?;
        let eps = self.cfg.rms_norm_eps as f32;

        for (index, layer) in self.weights.layers.iter().enumerate() {
            if stop.is_some_and(|stop| stop()) {
                return Ok(Pass::Stopped);
            }
            let _span = tracing::trace_span!("layer", index).entered();
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let attn = Attention { cfg: &self.cfg, layer, index, cos: &cos, sin: &sin, own_kernel: self.own_attention };
            let h = attn.forward(&h, &mut self.cache, mask.as_ref())?;
            x = (x + h)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
            x = (x + mlp(layer, &h)?)?;
        }
        self.cache.commit(n)?;

        let _span = tracing::trace_span!("lm_head").entered();
        let x = match wanted {
            Logits::None => return Ok(Pass::Done(None)),
            Logits::Last => x.narrow(1, n - 1, 1)?,
            Logits::All => x,
        };
        let x = candle_nn::ops::rms_norm(&x.contiguous()?, &self.weights.final_norm, eps)?;
        let logits = self.weights.lm_head.forward(&x)?.squeeze(0)?;
        self.last_hidden = Some(x.squeeze(0)?.to_dtype(DType::F32)?);
        Ok(Pass::Done(Some(logits.to_dtype(DType::F32)?)))
    }
}

/// Asked before each block of a pass that may be interrupted (see [`Model::extend_unless`]).
type Stop<'a> = Option<&'a (dyn Fn() -> bool + Sync)>;

/// How one pass ended: its logits when it produced some, or stopped before its end.
enum Pass {
    Done(Option<Tensor>),
    Stopped,
}

/// Longest run of positions processed in one pass (attention scores take
/// `num_heads × PREFILL_CHUNK × context × 4` bytes).
pub const PREFILL_CHUNK: usize = 512;

/// Which logits a chunk must produce.
#[derive(Debug, Clone, Copy)]
enum Logits {
    None,
    Last,
    All,
}

/// Index of the largest logit in a `[1, vocab]` or `[vocab]` tensor (greedy decoding helper
/// for tests and diagnostics).
pub fn argmax(logits: &Tensor) -> candle_core::Result<u32> {
    logits.flatten_all()?.argmax(D::Minus1)?.to_scalar::<u32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::Qwen2;
    use crate::engine::testing;

    /// The tiny model on the quantized kernels only: these tests check cache mechanics, which
    /// must be exact, and the dense prefill path rounds differently (tested on its own below).
    fn tiny() -> Qwen2 {
        let mut model = Qwen2::load(&testing::tiny_model_path(), &Device::Cpu, 128).unwrap().0;
        model.set_dense_prefill(false);
        model
    }

    /// The tiny model with f32 weights (no 8-bit rounding of activations), context 1,024.
    fn tiny_f32(dir: &std::path::Path) -> Qwen2 {
        let opts = testing::TinyOptions { quantized: false, ..testing::TinyOptions::default() };
        Qwen2::load(&testing::write_tiny_gguf(dir, 42, opts).unwrap(), &Device::Cpu, 1024).unwrap().0
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap()
    }

    /// Deterministic token ids inside the tiny vocabulary.
    fn tokens(n: usize, seed: u32) -> Vec<u32> {
        (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) % 256).collect()
    }

    #[test]
    fn cached_prefix_gives_the_same_logits_as_a_fresh_run() {
        let mut model = tiny();
        let all = tokens(40, 7);
        let reference = model.forward_last(&all).unwrap();
        assert_eq!(reference.dims(), &[1, model.config().vocab_size]);
        assert_eq!(model.cached_len(), 40);

        // (prefix length run first, length truncated to) — including one token at a time.
        for (prefix, keep) in [(40, 20), (25, 25), (33, 1), (10, 0), (39, 39), (40, 5)] {
            model.truncate(0);
            model.forward_last(&all[..prefix]).unwrap();
            model.truncate(keep);
            assert_eq!(model.cached_len(), keep.min(prefix));
            let logits = model.forward_last(&all[keep..]).unwrap();
            let diff = max_abs_diff(&reference, &logits);
            assert!(diff < 1e-4, "prefix {prefix}, keep {keep}: diff {diff}");
        }

        // Token by token decode matches too.
        model.truncate(30);
        let mut last = None;
        for &t in &all[30..] {
            last = Some(model.forward_last(&[t]).unwrap());
        }
        let diff = max_abs_diff(&reference, &last.unwrap());
        assert!(diff < 1e-4, "token by token: diff {diff}");
    }

    #[test]
    fn an_interrupted_pass_commits_nothing_and_leaves_no_trace() {
        let mut model = tiny();
        let all = tokens(40, 3);
        let reference = model.forward_last(&all).unwrap();
        model.truncate(0);
        model.forward_last(&all[..12]).unwrap();
        // Stopped before its second block: the pass is dropped, the cache keeps its 12 tokens.
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let stop = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1;
        let other: Vec<u32> = all[12..].iter().map(|t| (t + 5) % 256).collect();
        assert_eq!(model.extend_unless(&other, &stop).unwrap(), 0);
        assert_eq!(model.cached_len(), 12);
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2, "asked before each block, up to the stop");
        // What the dropped pass wrote past the cache's end does not leak into the next pass.
        let logits = model.forward_last(&all[12..]).unwrap();
        let diff = max_abs_diff(&reference, &logits);
        assert!(diff < 1e-4, "after an interrupted pass: diff {diff}");
        // Never stopped: everything is committed, as `extend` would.
        model.truncate(12);
        assert_eq!(model.extend_unless(&all[12..], &|| false).unwrap(), 28);
        assert_eq!(model.cached_len(), 40);
    }

    #[test]
    fn stale_cache_entries_do_not_leak() {
        // Fill positions with one continuation, rewind, and run a different one.
        let mut model = tiny();
        let a = tokens(30, 1);
        let mut b = a.clone();
        for t in &mut b[12..] {
            *t = (*t + 17) % 256;
        }
        let fresh = model.forward_last(&b).unwrap();
        model.truncate(0);
        model.forward_last(&a).unwrap();
        model.truncate(12);
        let reused = model.forward_last(&b[12..]).unwrap();
        assert!(max_abs_diff(&fresh, &reused) < 1e-4);
    }

    #[test]
    fn forward_all_last_row_equals_forward_last() {
        let mut model = tiny();
        let all = tokens(17, 3);
        model.forward_last(&all[..5]).unwrap();
        let rows = model.forward_all(&all[5..]).unwrap();
        assert_eq!(rows.dims(), &[12, model.config().vocab_size]);
        model.truncate(5);
        let last = model.forward_last(&all[5..]).unwrap();
        assert!(max_abs_diff(&rows.narrow(0, 11, 1).unwrap(), &last) < 1e-5);
        // The rows really depend on the position (so the comparisons above mean something).
        let spread = max_abs_diff(&rows.narrow(0, 10, 1).unwrap(), &last);
        assert!(spread > 1e-2, "rows 10 and 11 are nearly equal: {spread}");
        // Every row equals the last-position logits of the matching prefix.
        model.truncate(5);
        let first = model.forward_last(&all[5..6]).unwrap();
        assert!(max_abs_diff(&rows.narrow(0, 0, 1).unwrap(), &first) < 1e-4);
    }

    #[test]
    fn long_inputs_run_in_chunks_with_the_same_result() {
        // f32 weights: this checks the chunks' offsets, masks and cache, not the kernels. With
        // 8-bit activations, the float rounding of attention (which differs with the number of
        // rows in a pass) can move a value across a quantization step, and the jump then grows
        // through the layers: after a few hundred positions the quantized tiny model's logits
        // differ by up to 0.2 between chunkings.
        let dir = tempfile::tempdir().unwrap();
        let mut model = tiny_f32(dir.path());
        let n = PREFILL_CHUNK + 150;
        let all = tokens(n, 9);
        let rows = model.forward_all(&all).unwrap();
        assert_eq!(rows.dims(), &[n, model.config().vocab_size]);
        // Row i must equal the last-position logits of a run that stops after token i. Stops
        // decrease so that the cache always holds the `stop / 2` tokens kept by `truncate`.
        for stop in [n, PREFILL_CHUNK + 1, PREFILL_CHUNK, 300, 1] {
            model.truncate(stop / 2);
            assert_eq!(model.cached_len(), stop / 2);
            let last = model.forward_last(&all[stop / 2..stop]).unwrap();
            let diff = max_abs_diff(&rows.narrow(0, stop - 1, 1).unwrap(), &last);
            assert!(diff < 1e-4, "row {}: diff {diff}", stop - 1);
        }
        model.truncate(0);
        let last = model.forward_last(&all).unwrap();
        assert!(max_abs_diff(&rows.narrow(0, n - 1, 1).unwrap(), &last) < 1e-4);
    }

    #[test]
    fn the_attention_kernel_agrees_with_candles_matmuls() {
        let dir = tempfile::tempdir().unwrap();
        let (mut own, mut candle) = (tiny_f32(dir.path()), tiny_f32(dir.path()));
        candle.set_own_attention(false);
        let all = tokens(320, 5);
        // A prefill (candle's matmuls on both), then decoding steps and a speculative check of
        // several rows on the kernel.
        own.forward_last(&all[..300]).unwrap();
        candle.forward_last(&all[..300]).unwrap();
        for range in [300..301, 301..307, 307..308, 308..320] {
            let (a, b) = (own.forward_all(&all[range.clone()]).unwrap(), candle.forward_all(&all[range.clone()]).unwrap());
            let diff = max_abs_diff(&a, &b);
            assert!(diff < 1e-4, "{range:?}: diff {diff}");
            if crate::engine::kernels::own_kernels_allowed() {
                assert!(diff > 0.0, "{range:?}: the kernel was not used");
            }
        }
    }

    #[test]
    fn dense_prefill_agrees_with_the_quantized_kernel() {
        // Same weights, two kernels: the dense f32 GEMM (prefill chunks) and candle's Q8_0 dot
        // products on 8-bit activations. They must agree up to that rounding, and short inputs
        // (decoding) must not take the dense path at all.
        let mut model = Qwen2::load(&testing::tiny_model_path(), &Device::Cpu, 128).unwrap().0;
        let all = tokens(super::super::weights::DENSE_PREFILL_MIN_ROWS + 8, 3);
        let dense = model.forward_all(&all).unwrap();
        model.truncate(0);
        model.set_dense_prefill(false);
        let quantized = model.forward_all(&all).unwrap();
        let scale: f32 = quantized.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        let diff = max_abs_diff(&dense, &quantized);
        assert!(diff > 0.0, "the dense path was not taken");
        assert!(diff < 0.1 * scale, "diff {diff} against logits up to {scale}");
        let (d, q) =
            (dense.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap(), quantized.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap());
        let same = d.iter().zip(&q).filter(|(a, b)| a == b).count();
        assert!(same * 10 >= all.len() * 9, "argmax agrees at only {same} of {} positions", all.len());

        let short = &all[..super::super::weights::DENSE_PREFILL_MIN_ROWS - 1];
        model.truncate(0);
        let quantized = model.forward_all(short).unwrap();
        model.truncate(0);
        model.set_dense_prefill(true);
        assert_eq!(max_abs_diff(&model.forward_all(short).unwrap(), &quantized), 0.0);
    }

    #[test]
    fn a_moved_span_equals_a_cold_run_in_a_one_block_model() {
        // One block: keys and values depend only on each token and its position, so a span
        // moved and turned must hold what a cold run computes at the new positions.
        let dir = tempfile::tempdir().unwrap();
        let opts = testing::TinyOptions { layers: 1, ..testing::TinyOptions::default() };
        let path = testing::write_tiny_gguf(dir.path(), 3, opts).unwrap();
        let mut model = Qwen2::load(&path, &Device::Cpu, 256).unwrap().0;
        model.set_dense_prefill(false);
        let (a, b, c) = (tokens(20, 1), tokens(30, 2), tokens(9, 3));
        for inserted in [c.clone(), Vec::new(), c[..2].to_vec()] {
            // Cached: a b. Wanted: a (inserted) b, then one more token. `b` moves by |inserted|,
            // or back by 5 when the last 5 tokens of `a` are dropped instead.
            let (kept, wanted): (Vec<u32>, Vec<u32>) = if inserted.is_empty() {
                (a[..15].to_vec(), [&a[..15], &b[..], &[5]].concat())
            } else {
                (a.clone(), [&a[..], &inserted[..], &b[..], &[5]].concat())
            };
            model.truncate(0);
            let cold = model.forward_last(&wanted).unwrap();
            model.truncate(0);
            model.extend(&[a.clone(), b.clone()].concat()).unwrap();
            let span = model.span(a.len(), b.len()).unwrap();
            model.truncate(kept.len());
            if !inserted.is_empty() {
                model.extend(&inserted).unwrap();
            }
            model.append_span(&span).unwrap();
            let warm = model.forward_last(&[5]).unwrap();
            assert_eq!(model.cached_len(), wanted.len());
            let diff = max_abs_diff(&cold, &warm);
            assert!(diff < 1e-4, "inserted {}: diff {diff}", inserted.len());
        }
    }

    #[test]
    fn errors_leave_the_cache_usable() {
        let mut model = tiny();
        assert!(model.forward_last(&[]).is_err());
        assert!(model.forward_last(&[1, 2, 100_000]).is_err());
        assert_eq!(model.cached_len(), 0);
        model.forward_last(&tokens(120, 5)).unwrap();
        let err = model.forward_last(&tokens(9, 6)).unwrap_err();
        assert!(err.to_string().contains("KV cache"), "{err}");
        assert_eq!(model.cached_len(), 120);
        model.forward_last(&tokens(8, 6)).unwrap();
        assert_eq!(model.cached_len(), 128);
    }

    /// Greedy FIM completion with a real Qwen2.5-Coder GGUF named by `INKLING_TEST_MODEL`.
    #[test]
    fn real_model_completes_add() {
        let Some(path) = crate::engine::testing::real_model() else { return };
        let (mut model, tokenizer) = Qwen2::load(&path, &Device::Cpu, 512).unwrap();
        let prompt = "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>";
        let ids = tokenizer.encode(prompt, false).unwrap().get_ids().to_vec();
        let eos = tokenizer.token_to_id("<|endoftext|>").unwrap();
        let mut out = Vec::new();
        let mut next = argmax(&model.forward_last(&ids).unwrap()).unwrap();
        while out.len() < 8 && next != eos {
            out.push(next);
            next = argmax(&model.forward_last(&[next]).unwrap()).unwrap();
        }
        let text = tokenizer.decode(&out, true).unwrap();
        eprintln!("completion: {text:?}");
        assert!(text.starts_with("a + b") || text.starts_with("a+b"), "{text:?}");
    }
}
