//! Attention of a few new query rows (decoding, a speculative check) over the f32 KV cache, read
//! where it lies: each cached key and value row is read once per query head, with no copy, no
//! mask tensor and no score matrix.
//!
//! For query head `h` (K/V head `h / (heads / kv_heads)`) and new row `i`, which sees the cached
//! positions `0..offset + i + 1`: scores `q·k_j / √d`, a softmax, and the weighted sum of the
//! `v_j`. [`reference::attend_row`] is the plain definition; the AVX2 code (`avx2_attention`)
//! computes the same thing with a vectorized `exp`, and each row's result depends only on that
//! row's query and the positions it sees, never on how many rows were asked at once (so a
//! speculative check agrees with decoding its tokens one by one). Heads are split over rayon's
//! pool. Longer inputs (prefill chunks) keep candle's batched matmuls.

use std::cell::RefCell;

use rayon::prelude::*;

/// Most new rows [`attend`] takes; the model sends longer inputs to candle's matmuls.
pub const MAX_ROWS: usize = 16;

/// The shape of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Query heads.
    pub heads: usize,
    /// K/V heads (`heads` is a multiple of it).
    pub kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
    /// New rows (their keys and values are already in the cache).
    pub rows: usize,
    /// Cached positions before the new rows.
    pub offset: usize,
}

/// One layer's keys or values: position `p` of K/V head `h` is
/// `data[h * head_stride + p * head_dim..][..head_dim]`.
#[derive(Debug, Clone, Copy)]
pub struct KvView<'a> {
    pub data: &'a [f32],
    pub head_stride: usize,
}

impl KvView<'_> {
    fn head(&self, h: usize, len: usize) -> &[f32] {
        &self.data[h * self.head_stride..h * self.head_stride + len]
    }
}

thread_local! {
    /// Scores of one row, reused from call to call.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `out[i * heads * d + h * d..][..d]` = the attention output of query head `h`, new row `i`;
/// `q` holds the queries as `[heads, rows, d]`. On the AVX2 kernels where the CPU has them
/// (and `head_dim` is a multiple of 8), else on the plain definition.
///
/// Fails, reading nothing, if a length does not match the shape.
pub fn attend(shape: Shape, q: &[f32], k: KvView<'_>, v: KvView<'_>, out: &mut [f32]) -> candle_core::Result<()> {
    check(shape, q, k, v, out)?;
    let Shape { heads, kv_heads, head_dim: d, rows, offset } = shape;
    let groups = heads / kv_heads;
    let scale = 1.0 / (d as f32).sqrt();
    let fast = fast_for(d);
    // Per head first ([heads, rows, d]), so that heads can be written in parallel.
    let mut by_head = vec![0f32; heads * rows * d];
    by_head.par_chunks_mut(rows * d).enumerate().for_each(|(h, ys)| {
        let total = offset + rows;
        let (keys, values) = (k.head(h / groups, total * d), v.head(h / groups, total * d));
        SCORES.with(|cell| {
            let mut scores = cell.take();
            for (i, y) in ys.chunks_exact_mut(d).enumerate() {
                let seen = (offset + i + 1) * d;
                let query = &q[(h * rows + i) * d..][..d];
                if fast {
                    row_fast(query, &keys[..seen], &values[..seen], scale, &mut scores, y);
                } else {
                    reference::attend_row(query, &keys[..seen], &values[..seen], scale, &mut scores, y);
                }
            }
            cell.replace(scores);
        });
    });
    for (h, ys) in by_head.chunks_exact(rows * d).enumerate() {
        for (i, y) in ys.chunks_exact(d).enumerate() {
            out[(i * heads + h) * d..][..d].copy_from_slice(y);
        }
    }
    Ok(())
}

fn check(shape: Shape, q: &[f32], k: KvView<'_>, v: KvView<'_>, out: &mut [f32]) -> candle_core::Result<()> {
    let Shape { heads, kv_heads, head_dim: d, rows, offset } = shape;
    if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) || d == 0 || rows == 0 || rows > MAX_ROWS {
        candle_core::bail!("attention kernel: unsupported shape {shape:?}");
    }
    if q.len() != heads * rows * d || out.len() != heads * rows * d {
        candle_core::bail!("attention kernel: {} query and {} output values for {shape:?}", q.len(), out.len());
    }
    let total = offset + rows;
    for (what, view) in [("keys", k), ("values", v)] {
        let needed = (kv_heads - 1) * view.head_stride + total * d;
        if view.head_stride < total * d || view.data.len() < needed {
            candle_core::bail!(
                "attention kernel: {} cached {what} (head stride {}) hold fewer than {total} positions",
                view.data.len(),
                view.head_stride
            );
        }
    }
    Ok(())
}

/// Whether rows of `head_dim` values run on the AVX2 kernels here.
pub fn fast_for(head_dim: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        head_dim.is_multiple_of(8) && super::avx2::detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = head_dim;
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn row_fast(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    super::avx2_attention::attend_row(q, keys, values, scale, scores, out)
}

#[cfg(not(target_arch = "x86_64"))]
fn row_fast(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    reference::attend_row(q, keys, values, scale, scores, out)
}

/// The plain definition the AVX2 code is tested against (and the path on other CPUs).
pub mod reference {
    /// One query row `q` (`d` values) over the `keys.len() / d` positions it sees.
    pub fn attend_row(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
        let d = q.len();
        scores.clear();
        scores.extend(keys.chunks_exact(d).map(|k| q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale));
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        out.fill(0.0);
        for (p, v) in scores.iter().zip(values.chunks_exact(d)) {
            for (y, x) in out.iter_mut().zip(v) {
                *y += p * x;
            }
        }
        for y in out.iter_mut() {
            *y /= sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.signed_unit_f32() * 2.0).collect()
    }

    /// `attend` on the plain definition, row by row, for comparison.
    fn expected(shape: Shape, q: &[f32], k: KvView<'_>, v: KvView<'_>) -> Vec<f32> {
        let Shape { heads, kv_heads, head_dim: d, rows, offset } = shape;
        let mut out = vec![0f32; heads * rows * d];
        let mut scores = Vec::new();
        for h in 0..heads {
            let kvh = h / (heads / kv_heads);
            for i in 0..rows {
                let seen = (offset + i + 1) * d;
                let (keys, values) = (&k.data[kvh * k.head_stride..][..seen], &v.data[kvh * v.head_stride..][..seen]);
                let y = &mut out[(i * heads + h) * d..][..d];
                reference::attend_row(&q[(h * rows + i) * d..][..d], keys, values, 1.0 / (d as f32).sqrt(), &mut scores, y);
            }
        }
        out
    }

    #[test]
    fn the_kernel_computes_the_definition_for_every_shape() {
        let mut rng = Rng::new(7);
        for (heads, kv_heads, d, rows, offset) in [
            (14, 2, 64, 1, 0),
            (14, 2, 64, 1, 700),
            (14, 2, 64, 6, 333),
            (4, 2, 16, 3, 40),
            (12, 2, 128, 2, 129),
            (2, 1, 24, 1, 9),
            (3, 3, 20, 2, 5),
        ] {
            let shape = Shape { heads, kv_heads, head_dim: d, rows, offset };
            let stride = (offset + rows + 11) * d; // room after the last position, as in the cache
            let (kd, vd) = (random(kv_heads * stride, &mut rng), random(kv_heads * stride, &mut rng));
            let (k, v) = (KvView { data: &kd, head_stride: stride }, KvView { data: &vd, head_stride: stride });
            let q = random(heads * rows * d, &mut rng);
            let mut out = vec![0f32; q.len()];
            attend(shape, &q, k, v, &mut out).unwrap();
            let want = expected(shape, &q, k, v);
            for (j, (a, b)) in out.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{shape:?} value {j}: kernel {a}, definition {b}");
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_rows_asked_with_it() {
        // Row i of a call with several rows equals a call of one row at offset + i, bit for bit.
        let mut rng = Rng::new(3);
        let (heads, kv_heads, d, offset, rows) = (14, 2, 64, 200, 5);
        let stride = (offset + rows) * d;
        let (kd, vd) = (random(kv_heads * stride, &mut rng), random(kv_heads * stride, &mut rng));
        let (k, v) = (KvView { data: &kd, head_stride: stride }, KvView { data: &vd, head_stride: stride });
        let q = random(heads * rows * d, &mut rng);
        let mut all = vec![0f32; q.len()];
        attend(Shape { heads, kv_heads, head_dim: d, rows, offset }, &q, k, v, &mut all).unwrap();
        for i in 0..rows {
            let qi: Vec<f32> = (0..heads).flat_map(|h| q[(h * rows + i) * d..][..d].to_vec()).collect();
            let mut one = vec![0f32; heads * d];
            attend(Shape { heads, kv_heads, head_dim: d, rows: 1, offset: offset + i }, &qi, k, v, &mut one).unwrap();
            assert_eq!(one[..], all[i * heads * d..][..heads * d], "row {i}");
        }
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let data = vec![0f32; 2 * 10 * 8];
        let view = KvView { data: &data, head_stride: 80 };
        let shape = Shape { heads: 4, kv_heads: 2, head_dim: 8, rows: 1, offset: 9 };
        let (q, mut out) = (vec![0f32; 32], vec![0f32; 32]);
        assert!(attend(shape, &q, view, view, &mut out).is_ok());
        assert!(attend(Shape { offset: 10, ..shape }, &q, view, view, &mut out).is_err(), "past the cache");
        assert!(attend(shape, &q[..31], view, view, &mut out).is_err(), "short query");
        assert!(attend(Shape { kv_heads: 3, ..shape }, &q, view, view, &mut out).is_err(), "heads not grouped");
        assert!(attend(Shape { rows: MAX_ROWS + 1, ..shape }, &q, view, view, &mut out).is_err(), "too many rows");
    }
}
