//! AVX2 + FMA code for [`super::attention`]: one query row over the positions it sees, and the
//! vectorized `exp` its softmax needs.
//!
//! `exp` is the classic range reduction `x = n·ln 2 + r` (`|r| ≤ ln 2 / 2`, `ln 2` in two parts),
//! a degree-5 polynomial for `e^r` and `2^n` built in the exponent bits; inputs are clamped to
//! `[-87, 88]`, which only softmax's `s - max ≤ 0` reaches from below (where `e^x` < 2⁻¹²⁵). Its
//! relative error is a few ulp ([`exp_in_place`] is tested against `f32::exp`).
//!
//! The entry points are safe: they check the lengths and refuse to run without the features.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::avx2::hsum;

/// [`super::attention::reference::attend_row`] on AVX2: `q` (`d` values, `d` a multiple of 8)
/// over the `keys.len() / d` positions in `keys` and `values`; `scores` is scratch.
pub fn attend_row(q: &[f32], keys: &[f32], values: &[f32], scale: f32, scores: &mut Vec<f32>, out: &mut [f32]) {
    let d = q.len();
    assert!(super::avx2::detected(), "AVX2/FMA kernels called on a CPU without them");
    assert!(d > 0 && d.is_multiple_of(8), "a head of {d} values is not whole vectors of 8");
    assert!(keys.len().is_multiple_of(d) && keys.len() == values.len() && !keys.is_empty(), "keys and values do not match");
    assert_eq!(out.len(), d, "the output holds {} values for a head of {d}", out.len());
    let n = keys.len() / d;
    scores.clear();
    scores.resize(n, 0.0);
    // SAFETY: the features were checked above; `keys` and `values` hold `n` rows of `d` values
    // (a multiple of 8), `scores` holds `n` and `out` `d`.
    unsafe {
        let max = dot_rows(q.as_ptr(), d, keys.as_ptr(), n, scale, scores.as_mut_ptr());
        let sum = exp_minus(scores.as_mut_ptr(), n, max);
        weighted_sum(scores.as_ptr(), n, values.as_ptr(), d, 1.0 / sum, out.as_mut_ptr());
    }
}

/// `e^x` for every value of `xs`, as the softmax computes it (tests compare it with `f32::exp`).
#[cfg(test)]
pub fn exp_in_place(xs: &mut [f32]) {
    assert!(super::avx2::detected(), "AVX2/FMA kernels called on a CPU without them");
    // SAFETY: features checked above; `exp_minus` reads and writes `xs.len()` values.
    unsafe {
        exp_minus(xs.as_mut_ptr(), xs.len(), 0.0);
    }
}

/// `scores[j] = (q · row j) · scale` for the `n` rows of `d` values at `keys`; returns the largest.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_rows(q: *const f32, d: usize, keys: *const f32, n: usize, scale: f32, scores: *mut f32) -> f32 {
    let mut max = f32::NEG_INFINITY;
    for j in 0..n {
        let k = keys.add(j * d);
        let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c + 16 <= d {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(c)), _mm256_loadu_ps(k.add(c)), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(c + 8)), _mm256_loadu_ps(k.add(c + 8)), b);
            c += 16;
        }
        if c < d {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q.add(c)), _mm256_loadu_ps(k.add(c)), a);
        }
        let s = hsum(_mm256_add_ps(a, b)) * scale;
        *scores.add(j) = s;
        max = max.max(s);
    }
    max
}

/// `xs[j] = e^(xs[j] - max)` for `j < n`; returns their sum.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exp_minus(xs: *mut f32, n: usize, max: f32) -> f32 {
    let m = _mm256_set1_ps(max);
    let mut total = _mm256_setzero_ps();
    let mut j = 0;
    while j + 8 <= n {
        let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(xs.add(j)), m));
        _mm256_storeu_ps(xs.add(j), e);
        total = _mm256_add_ps(total, e);
        j += 8;
    }
    let mut sum = hsum(total);
    if j < n {
        // The last values through the same vector code, the unused lanes discarded.
        let mut tail = [max; 8];
        std::ptr::copy_nonoverlapping(xs.add(j), tail.as_mut_ptr(), n - j);
        let mut e = [0f32; 8];
        _mm256_storeu_ps(e.as_mut_ptr(), exp256(_mm256_sub_ps(_mm256_loadu_ps(tail.as_ptr()), m)));
        for (t, x) in e.iter().take(n - j).enumerate() {
            *xs.add(j + t) = *x;
            sum += x;
        }
    }
    sum
}

/// `e^x` per lane (see the module doc).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn exp256(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0)), _mm256_set1_ps(88.0));
    let n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x - n·ln 2, with ln 2 split so that n·LN2_HI is exact.
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    // e^r = 1 + r + r²·p(r)
    let er = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r), _mm256_set1_ps(1.0));
    let pow2n = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
    _mm256_mul_ps(er, pow2n)
}

/// `out = (Σ_j weights[j] · row j) · norm` over the `n` rows of `d` values at `values`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn weighted_sum(weights: *const f32, n: usize, values: *const f32, d: usize, norm: f32, out: *mut f32) {
    // Columns in blocks of up to 64 (eight registers), each block over all rows.
    let mut c0 = 0;
    while c0 < d {
        let width = ((d - c0) / 8).min(8);
        let mut acc = [_mm256_setzero_ps(); 8];
        for j in 0..n {
            let p = _mm256_set1_ps(*weights.add(j));
            let v = values.add(j * d + c0);
            for (c, a) in acc.iter_mut().enumerate().take(width) {
                *a = _mm256_fmadd_ps(p, _mm256_loadu_ps(v.add(8 * c)), *a);
            }
        }
        let norm = _mm256_set1_ps(norm);
        for (c, a) in acc.iter().enumerate().take(width) {
            _mm256_storeu_ps(out.add(c0 + 8 * c), _mm256_mul_ps(*a, norm));
        }
        c0 += 8 * width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library() {
        if !super::super::avx2::detected() {
            return;
        }
        let mut xs: Vec<f32> = (0..20_000).map(|i| -90.0 + i as f32 * 0.0049).collect();
        xs.extend([0.0, -0.0, 1.0, -1.0, 0.346_573_6, -0.346_573_6, 5.5, -86.9]);
        let mut got = xs.clone();
        exp_in_place(&mut got);
        for (x, e) in xs.iter().zip(&got) {
            let want = x.max(-87.0).exp();
            assert!((e - want).abs() <= 4.0 * f32::EPSILON * want, "exp({x}) = {e}, want {want}");
        }
    }
}
