//! One transformer block's pieces: grouped-query attention over the KV cache, the SwiGLU MLP,
//! the causal mask, the RoPE tables and the turn that moves cached keys to other positions.
//!
//! Grouped-query attention does not copy K/V per query head (`repeat_kv`): the query heads that
//! share a K/V head are folded into the row axis, `[1, heads, n, d]` → `[1, kv_heads,
//! groups·n, d]`, so one batched matmul per K/V head serves the whole group. The `[n, offset+n]`
//! causal mask is broadcast over the groups by viewing the score rows as `(group, query)`.
//! Short steps on the CPU (decoding, a speculative check: up to
//! [`kernels::attention::MAX_ROWS`] rows) skip all of that: the project's kernel reads the
//! cache where it lies and builds no mask or score tensor.

use candle_core::{CpuStorage, DType, Device, Layout, Storage, Tensor, D};

use super::config::ModelConfig;
use super::kv_cache::KvCache;
use super::weights::LayerWeights;
use crate::engine::kernels;

/// The attention sub-layer of one block, for one forward call.
pub struct Attention<'a> {
    pub cfg: &'a ModelConfig,
    pub layer: &'a LayerWeights,
    /// Layer index (selects the KV cache slot).
    pub index: usize,
    /// RoPE tables narrowed to the new positions, `[n, head_dim / 2]`.
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    /// Whether short steps attend on the project's kernel ([`kernels::attention`]) rather than
    /// candle's matmuls.
    pub own_kernel: bool,
}

impl Attention<'_> {
    /// `x`: normalized hidden states `[1, n, hidden]`; returns the sub-layer output, same shape.
    pub fn forward(&self, x: &Tensor, cache: &mut KvCache, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
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
        if self.own_kernel && n <= kernels::attention::MAX_ROWS && x.device().is_cpu() && k.dtype() == DType::F32 {
            let y = self.attend_on_kernel(&q, &k, &v)?;
            return self.layer.o.forward(&y);
        }

        // Query head j uses K/V head j / groups, so consecutive query heads share a K/V head
        // and fold into rows: [1, kv_heads, groups·n, d].
        let q = (q * (1.0 / (d as f64).sqrt()))?.reshape((1, kv_heads, groups * n, d))?;
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            // Split the rows back into (group, query) so the [n, offset + n] mask broadcasts.
            Some(mask) => {
                let total = scores.dim(D::Minus1)?;
                scores.reshape((1, kv_heads, groups, n, total))?.broadcast_add(mask)?.reshape((1, kv_heads, groups * n, total))?
            }
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let y = probs.matmul(&v)?; // [1, kv_heads, groups·n, d]
        let y = y.reshape((1, heads, n, d))?.transpose(1, 2)?.reshape((1, n, heads * d))?;
        self.layer.o.forward(&y)
    }
}

impl Attention<'_> {
    /// Attention of the new rows on [`kernels::attention`], reading the cache in place. `q` is
    /// `[1, heads, n, d]` (rotated), `k`/`v` the cache's views of `[1, kv_heads, offset + n, d]`.
    fn attend_on_kernel(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
        let _span = tracing::trace_span!("own_attention").entered();
        let (_, heads, n, d) = q.dims4()?;
        let (_, kv_heads, total, _) = k.dims4()?;
        let shape = kernels::attention::Shape { heads, kv_heads, head_dim: d, rows: n, offset: total - n };
        let q = q.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; q.len()];
        let (k_storage, k_layout) = k.storage_and_layout();
        let (v_storage, v_layout) = v.storage_and_layout();
        let keys = kv_view(&k_storage, k_layout, d)?;
        let values = kv_view(&v_storage, v_layout, d)?;
        kernels::attention::attend(shape, &q, keys, values, &mut out)?;
        Tensor::from_vec(out, (1, n, heads * d), k.device())
    }
}

/// The cache's f32 storage behind a `[1, kv_heads, len, d]` view whose rows of `d` values lie
/// one after the other within each head (as [`KvCache`] keeps them).
fn kv_view<'a>(storage: &'a Storage, layout: &Layout, d: usize) -> candle_core::Result<kernels::attention::KvView<'a>> {
    let stride = layout.stride();
    let (Storage::Cpu(CpuStorage::F32(data)), [_, head_stride, row, 1]) = (storage, stride) else {
        candle_core::bail!("the KV cache is not f32 rows on the CPU (strides {stride:?})");
    };
    if *row != d {
        candle_core::bail!("KV cache rows of stride {row} for heads of {d} values");
    }
    Ok(kernels::attention::KvView { data: &data[layout.start_offset()..], head_stride: *head_stride })
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

/// RoPE frequencies `theta^(-2i / head_dim)` for `i < head_dim / 2`.
fn inv_freq(head_dim: usize, theta: f64) -> Vec<f64> {
    (0..head_dim / 2).map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64)).collect()
}

/// `[rows, head_dim / 2]` cos/sin tables, row `r` for the angles `angle(r) · inv_freq`.
fn tables(
    head_dim: usize,
    theta: f64,
    rows: usize,
    angle: impl Fn(usize) -> f64,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inv_freq = inv_freq(head_dim, theta);
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(rows * half);
    let mut sin = Vec::with_capacity(rows * half);
    for r in 0..rows {
        for f in &inv_freq {
            let a = angle(r) * f;
            cos.push(a.cos() as f32);
            sin.push(a.sin() as f32);
        }
    }
    Ok((Tensor::from_vec(cos, (rows, half), device)?, Tensor::from_vec(sin, (rows, half), device)?))
}

/// Neox-style RoPE tables: `cos/sin[p, i] = cos/sin(p · theta^(-2i / head_dim))`, computed in
/// f64 so that late positions keep their precision.
pub fn rope_tables(head_dim: usize, theta: f64, max_ctx: usize, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    tables(head_dim, theta, max_ctx, |p| p as f64, device)
}

/// Tables that turn `n` keys already rotated for their positions by `delta` more positions
/// (negative: back): RoPE rotates each pair of a key by an angle proportional to its position,
/// so a rotation by `delta · freq` on top of the one for `p` is the rotation for `p + delta`.
pub fn rope_turn(head_dim: usize, theta: f64, delta: i64, n: usize, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    tables(head_dim, theta, n, |_| delta as f64, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_rotated_keys_equals_rotating_them_at_the_new_position() {
        let (d, theta, n) = (8, 10_000.0, 5);
        let k = Tensor::randn(0f32, 1.0, (1, 2, n, d), &Device::Cpu).unwrap();
        let (cos, sin) = rope_tables(d, theta, 64, &Device::Cpu).unwrap();
        let at = |p: usize| {
            let (c, s) = (cos.narrow(0, p, n).unwrap(), sin.narrow(0, p, n).unwrap());
            candle_nn::rotary_emb::rope(&k, &c, &s).unwrap()
        };
        for (from, to) in [(3usize, 40usize), (40, 3), (0, 0), (17, 18)] {
            let (c, s) = rope_turn(d, theta, to as i64 - from as i64, n, &Device::Cpu).unwrap();
            let turned = candle_nn::rotary_emb::rope(&at(from), &c, &s).unwrap();
            let diff: f32 = (turned - at(to)).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(diff < 1e-5, "{from} -> {to}: {diff}");
        }
    }

    #[test]
    fn causal_mask_layout() {
        let m = causal_mask(2, 1, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        let inf = f32::NEG_INFINITY;
        assert_eq!(m, vec![vec![0.0, 0.0, inf], vec![0.0, 0.0, 0.0]]);
    }
}
