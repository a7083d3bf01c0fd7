//! One transformer block's pieces: grouped-query attention over the KV cache, the SwiGLU MLP,
//! the causal mask and the RoPE tables.
//!
//! Grouped-query attention does not copy K/V per query head (`repeat_kv`): the query heads that
//! share a K/V head are folded into the row axis, `[1, heads, n, d]` → `[1, kv_heads,
//! groups·n, d]`, so one batched matmul per K/V head serves the whole group. The `[n, offset+n]`
//! causal mask is broadcast over the groups by viewing the score rows as `(group, query)`.

use candle_core::{Device, Tensor, D};

use super::config::ModelConfig;
use super::kv_cache::KvCache;
use super::weights::LayerWeights;

/// The attention sub-layer of one block, for one forward call.
pub struct Attention<'a> {
    pub cfg: &'a ModelConfig,
    pub layer: &'a LayerWeights,
    /// Layer index (selects the KV cache slot).
    pub index: usize,
    /// RoPE tables narrowed to the new positions, `[n, head_dim / 2]`.
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
}

impl Attention<'_> {
    /// `x`: normalized hidden states `[1, n, hidden]`; returns the sub-layer output, same shape.
    pub fn forward(
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
            // Split the rows back into (group, query) so the [n, offset + n] mask broadcasts.
            Some(mask) => {
                let total = scores.dim(D::Minus1)?;
                scores
                    .reshape((1, kv_heads, groups, n, total))?
                    .broadcast_add(mask)?
                    .reshape((1, kv_heads, groups * n, total))?
            }
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
pub fn mlp(layer: &LayerWeights, x: &Tensor) -> candle_core::Result<Tensor> {
    let _span = tracing::trace_span!("mlp").entered();
    let gate = layer.gate.forward(x)?.silu()?;
    let up = layer.up.forward(x)?;
    layer.down.forward(&(gate * up)?)
}

/// Additive causal mask `[n, offset + n]` for `n` new queries after `offset` cached
/// positions: query `i` sees columns `0..=offset + i`.
pub fn causal_mask(n: usize, offset: usize, device: &Device) -> candle_core::Result<Tensor> {
    let total = offset + n;
    let mut data = Vec::with_capacity(n * total);
    for i in 0..n {
        let visible = offset + i + 1;
        data.extend((0..total).map(|j| if j < visible { 0f32 } else { f32::NEG_INFINITY }));
    }
    Tensor::from_vec(data, (n, total), device)
}

/// Neox-style RoPE tables: `cos/sin[p, i] = cos/sin(p · theta^(-2i / head_dim))`, computed in
/// f64 so that late positions keep their precision.
pub fn rope_tables(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_mask_layout() {
        let m = causal_mask(2, 1, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(m, vec![vec![0.0, 0.0, inf], vec![0.0, 0.0, 0.0]]);
    }
}
