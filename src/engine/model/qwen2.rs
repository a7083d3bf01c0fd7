//! The Qwen2 forward pass over a [`KvCache`].
//!
//! Per block: RMSNorm → attention (q/k/v projections with bias, neox-style RoPE, grouped-query
//! attention, output projection without bias) → residual → RMSNorm → SwiGLU MLP → residual;
//! then a final RMSNorm and the LM head. Everything runs in f32.
//!
//! Grouped-query attention does not copy K/V per query head (`repeat_kv`): the query heads that
//! share a K/V head are folded into the row axis, `[1, heads, n, d]` → `[1, kv_heads,
//! groups·n, d]`, so one batched matmul per K/V head serves the whole group. The causal mask is
//! built for that layout (row `r` is query position `r % n`).

use candle_core::{DType, Device, Module, Tensor, D};

use super::config::ModelConfig;
use super::kv_cache::KvCache;
use super::weights::{LayerWeights, Weights};

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
}

impl Model {
    /// Builds the model and allocates a KV cache of `max_ctx` positions.
    pub fn new(
        cfg: ModelConfig,
        weights: Weights,
        max_ctx: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let (cos, sin) = rope_tables(cfg.head_dim, cfg.rope_theta, max_ctx, device)?;
        let cache = KvCache::new(
            cfg.num_layers,
            cfg.num_kv_heads,
            cfg.head_dim,
            max_ctx,
            DType::F32,
            device,
        )?;
        Ok(Self {
            cfg,
            weights,
            cache,
            cos,
            sin,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// Runs `tokens` after the cached positions and appends them to the cache.
    ///
    /// Returns f32 logits `[tokens.len(), vocab]` when `all_positions`, else `[1, vocab]` for the
    /// last token. On error the cache keeps its previous length.
    pub fn forward(&mut self, tokens: &[u32], all_positions: bool) -> candle_core::Result<Tensor> {
        let n = tokens.len();
        let offset = self.cache.len();
        let _span = tracing::trace_span!("qwen2_forward", n, offset).entered();
        if n == 0 {
            candle_core::bail!("forward called with no tokens");
        }
        self.cache.ensure_room(n)?;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            candle_core::bail!(
                "token id {bad} is outside the vocabulary of {}",
                self.cfg.vocab_size
            );
        }

        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = {
            let _span = tracing::trace_span!("embed").entered();
            self.weights.embed.forward(&ids)?.unsqueeze(0)? // [1, n, hidden]
        };
        let groups = self.cfg.num_heads / self.cfg.num_kv_heads;
        let mask = if n > 1 {
            Some(causal_mask(n, offset, groups, &self.device)?)
        } else {
            None
        };
        let cos = self.cos.narrow(0, offset, n)?;
        let sin = self.sin.narrow(0, offset, n)?;
        let eps = self.cfg.rms_norm_eps as f32;

        for (index, layer) in self.weights.layers.iter().enumerate() {
            let _span = tracing::trace_span!("layer", index).entered();
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let attn = Attention {
                cfg: &self.cfg,
                layer,
                index,
                cos: &cos,
                sin: &sin,
            };
            let h = attn.forward(&h, &mut self.cache, mask.as_ref())?;
            x = (x + h)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.ffn_norm, eps)?;
            x = (x + mlp(layer, &h)?)?;
        }
        self.cache.commit(n)?;

        let _span = tracing::trace_span!("lm_head").entered();
        let x = if all_positions {
            x
        } else {
            x.narrow(1, n - 1, 1)?
        };
        let x = candle_nn::ops::rms_norm(&x.contiguous()?, &self.weights.final_norm, eps)?;
        self.weights
            .lm_head
            .forward(&x)?
            .squeeze(0)?
            .to_dtype(DType::F32)
    }
}

/// The attention sub-layer of one block, for one forward call.
struct Attention<'a> {
    cfg: &'a ModelConfig,
    layer: &'a LayerWeights,
    index: usize,
    cos: &'a Tensor,
    sin: &'a Tensor,
}

impl Attention<'_> {
    /// `x`: normalized hidden states `[1, n, hidden]`; returns the sub-layer output, same shape.
    fn forward(
        &self,
        x: &Tensor,
        cache: &mut KvCache,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let _span = tracing::trace_span!("attn").entered();
        let cfg = self.cfg;
        let (_, n, _) = x.dims3()?;
        let (heads, kv_heads, d) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let groups = heads / kv_heads;

        // [1, n, h·d] → [1, h, n, d]; RoPE needs contiguous input.
        let split = |t: Tensor, h: usize| t.reshape((1, n, h, d))?.transpose(1, 2)?.contiguous();
        let q = split(self.layer.q.forward(x)?, heads)?;
        let k = split(self.layer.k.forward(x)?, kv_heads)?;
        let v = split(self.layer.v.forward(x)?, kv_heads)?;
        let q = candle_nn::rotary_emb::rope(&q, self.cos, self.sin)?;
        let k = candle_nn::rotary_emb::rope(&k, self.cos, self.sin)?;
        let (k, v) = cache.append(self.index, &k, &v)?; // [1, kv_heads, offset + n, d]

        // Query head j uses K/V head j / groups, so consecutive query heads share a K/V head
        // and fold into rows: [1, kv_heads, groups·n, d].
        let q = (q * (1.0 / (d as f64).sqrt()))?.reshape((1, kv_heads, groups * n, d))?;
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = probs.matmul(&v)?; // [1, kv_heads, groups·n, d]
        let y = y
            .reshape((1, heads, n, d))?
            .transpose(1, 2)?
            .reshape((1, n, heads * d))?;
        self.layer.o.forward(&y)
    }
}

/// SwiGLU MLP: `down(silu(gate(x)) * up(x))`.
fn mlp(layer: &LayerWeights, x: &Tensor) -> candle_core::Result<Tensor> {
    let _span = tracing::trace_span!("mlp").entered();
    let gate = layer.gate.forward(x)?.silu()?;
    let up = layer.up.forward(x)?;
    layer.down.forward(&(gate * up)?)
}

/// Additive causal mask `[groups·n, offset + n]` for `n` new queries after `offset` cached
/// positions: row `r` is query `i = r % n`, which sees columns `0..=offset + i`.
fn causal_mask(
    n: usize,
    offset: usize,
    groups: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let total = offset + n;
    let mut data = Vec::with_capacity(groups * n * total);
    for r in 0..groups * n {
        let visible = offset + r % n + 1;
        data.extend((0..total).map(|j| if j < visible { 0f32 } else { f32::NEG_INFINITY }));
    }
    Tensor::from_vec(data, (groups * n, total), device)
}

/// Neox-style RoPE tables: `cos/sin[p, i] = cos/sin(p · theta^(-2i / head_dim))`, computed in
/// f64 so that late positions keep their precision.
fn rope_tables(
    head_dim: usize,
    theta: f64,
    max_ctx: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
        .collect();
    let mut cos = Vec::with_capacity(max_ctx * half);
    let mut sin = Vec::with_capacity(max_ctx * half);
    for p in 0..max_ctx {
        for f in &inv_freq {
            let angle = p as f64 * f;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (max_ctx, half), device)?,
        Tensor::from_vec(sin, (max_ctx, half), device)?,
    ))
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

    fn tiny() -> Qwen2 {
        Qwen2::load(&testing::tiny_model_path(), &Device::Cpu, 128)
            .unwrap()
            .0
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// Deterministic token ids inside the tiny vocabulary.
    fn tokens(n: usize, seed: u32) -> Vec<u32> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) % 256)
            .collect()
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
        // Every row equals the last-position logits of the matching prefix.
        model.truncate(5);
        let first = model.forward_last(&all[5..6]).unwrap();
        assert!(max_abs_diff(&rows.narrow(0, 0, 1).unwrap(), &first) < 1e-4);
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

    #[test]
    fn causal_mask_layout() {
        let m = causal_mask(2, 1, 2, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let inf = f32::NEG_INFINITY;
        let rows = [[0.0, 0.0, inf], [0.0, 0.0, 0.0]];
        assert_eq!(
            m,
            vec![
                rows[0].to_vec(),
                rows[1].to_vec(),
                rows[0].to_vec(),
                rows[1].to_vec()
            ]
        );
    }

    /// Greedy FIM completion with a real Qwen2.5-Coder GGUF named by `INKLING_TEST_MODEL`.
    #[test]
    fn real_model_completes_add() {
        let Some(path) = std::env::var_os("INKLING_TEST_MODEL") else {
            eprintln!("INKLING_TEST_MODEL is not set: skipping the real-model test");
            return;
        };
        let (mut model, tokenizer) =
            Qwen2::load(std::path::Path::new(&path), &Device::Cpu, 512).unwrap();
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
        assert!(
            text.starts_with("a + b") || text.starts_with("a+b"),
            "{text:?}"
        );
    }
}
