//! AVX2 + FMA + F16C dot products of quantized weight rows with 8-bit activations, with AVX-512
//! VNNI's byte dot product for Q8_0/Q5_0 weights where the CPU has it.
//!
//! Each kernel computes exactly what its scalar definition in [`super::formats::reference`]
//! computes: the same integer sums per block, scaled in f32 (only the order of the f32 additions
//! differs). The entry points, [`rows`] and [`rows_on`], are safe: they check every length
//! against the format and refuse to run unless the CPU has the features ([`detected`],
//! [`vnni_detected`]).
//!
//! Products of 8-bit values use `maddubs` (unsigned × signed bytes, pairs summed to i16):
//! K-quant weights are unsigned already (their offsets are paid with the activations' sums of
//! 16); signed Q8_0/Q5_0 weights lend their sign to the activation (`sign`) first, or, with
//! VNNI, one `vpdpbusd` takes the activations shifted to unsigned ([`block32`]). With several
//! activation rows (a short prefill, a speculative check) a Q8_0/Q5_0 block is decoded once for
//! a tile of rows ([`dot32_tile`]), with each row's sum in the one-row order.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::formats::Format;
use super::Acts;

/// Whether this CPU runs these kernels (AVX2, FMA and F16C; checked once, then cached by std).
pub fn detected() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

/// Dot products of the weight rows in `w` (whole rows of `cols` weights in `format`) with each
/// of the `m` activation rows in `acts`: `out[r * m + i]` = row `r` · activation row `i`.
///
/// Panics (rather than reading out of bounds) if the lengths do not match or the CPU lacks the
/// features; callers check [`detected`] and build `w` and `acts` from the same shapes.
pub fn rows(format: Format, w: &[u8], cols: usize, acts: Acts<'_>, m: usize, out: &mut [f32]) {
    rows_on(use_vnni(), format, w, cols, acts, m, out)
}

/// [`rows`], with `vpdpbusd` for Q8_0/Q5_0 weights only if `vnni` (tests compare the two).
pub fn rows_on(vnni: bool, format: Format, w: &[u8], cols: usize, acts: Acts<'_>, m: usize, out: &mut [f32]) {
    assert!(detected(), "AVX2/FMA/F16C kernels called on a CPU without them");
    assert!(!vnni || vnni_detected(), "VNNI kernels called on a CPU without them");
    assert!(cols.is_multiple_of(format.block()), "{cols} columns are not whole {format:?} blocks");
    let blocks = cols / format.block();
    let row_bytes = blocks * format.block_bytes();
    assert!(row_bytes > 0 && w.len().is_multiple_of(row_bytes), "weight bytes {} are not whole rows of {row_bytes}", w.len());
    let n = w.len() / row_bytes;
    assert_eq!(out.len(), n * m, "output holds {} values for {n} rows × {m}", out.len());
    let (d, qs, sums) = match acts {
        Acts::A32(a) => (&a.d[..], &a.qs[..], &[][..]),
        Acts::A256(a) => (&a.d[..], &a.qs[..], &a.sums[..]),
    };
    assert_eq!(format.wide_activations(), matches!(acts, Acts::A256(_)), "{format:?} weights with the wrong activation layout");
    assert!(d.len() >= m * blocks && qs.len() >= m * cols, "activations hold fewer than {m} rows of {cols}");
    assert!(!format.wide_activations() || sums.len() >= m * cols / 16, "activation sums are missing");

    for (r, o) in out.chunks_exact_mut(m).enumerate() {
        let row = &w[r * row_bytes..(r + 1) * row_bytes];
        if matches!(format, Format::Q8_0 | Format::Q5_0) {
            // SAFETY: the features were checked above (VNNI by `vnni_detected`); `row` holds
            // `blocks` whole blocks, and `d`, `qs` hold `m` rows of `blocks` blocks.
            unsafe {
                match (format, vnni) {
                    (Format::Q8_0, false) => dot32_rows_avx2::<false>(row.as_ptr(), blocks, d.as_ptr(), qs.as_ptr(), o),
                    (Format::Q8_0, true) => dot32_rows_vnni::<false>(row.as_ptr(), blocks, d.as_ptr(), qs.as_ptr(), o),
                    (_, false) => dot32_rows_avx2::<true>(row.as_ptr(), blocks, d.as_ptr(), qs.as_ptr(), o),
                    (_, true) => dot32_rows_vnni::<true>(row.as_ptr(), blocks, d.as_ptr(), qs.as_ptr(), o),
                }
            }
            continue;
        }
        for (i, y) in o.iter_mut().enumerate() {
            let (d, qs) = (&d[i * blocks..], &qs[i * cols..]);
            // SAFETY: the features were checked above; `row` holds `blocks` whole blocks, and
            // `d`, `qs` and `sums` hold at least `blocks` blocks of activations from `i` on.
            *y = unsafe {
                match format {
                    Format::Q4K => dot_q4k(row.as_ptr(), blocks, d.as_ptr(), qs.as_ptr(), sums[i * cols / 16..].as_ptr()),
                    _ => dot_q6k(row.as_ptr(), blocks, d.as_ptr(), qs.as_ptr(), sums[i * cols / 16..].as_ptr()),
                }
            };
        }
    }
}

/// Whether this CPU also has 256-bit AVX-512 VNNI (`vpdpbusd`), which multiplies and sums four
/// byte pairs in one instruction where AVX2 takes three.
pub fn vnni_detected() -> bool {
    detected() && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl")
}

/// Whether [`rows`] uses VNNI: where the CPU has it, unless `INKLING_CPU_KERNELS=avx2` (read
/// once) asks for AVX2 alone.
fn use_vnni() -> bool {
    static CHOICE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| vnni_detected() && std::env::var("INKLING_CPU_KERNELS").map_or(true, |v| v != "avx2"))
}

/// Dequantizes whole Q5_0 blocks `w` into `out` (32 values per block). Panics (rather than
/// writing out of bounds) if the lengths do not match or the CPU lacks the features.
pub fn dequantize_q5_0(w: &[u8], out: &mut [f32]) {
    assert!(detected(), "AVX2/FMA/F16C kernels called on a CPU without them");
    assert!(w.len().is_multiple_of(22) && out.len() == w.len() / 22 * 32, "{} Q5_0 bytes into {} values", w.len(), out.len());
    for (blk, o) in w.chunks_exact(22).zip(out.chunks_exact_mut(32)) {
        // SAFETY: features checked above; `blk` is one whole block and `o` holds 32 values.
        unsafe { dequantize_q5_0_block(blk.as_ptr(), o.as_mut_ptr()) }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dequantize_q5_0_block(blk: *const u8, out: *mut f32) {
    let v = q5_0_values(blk);
    let d = _mm256_set1_ps(f16_at(blk));
    let (lo, hi) = (_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    for (k, part) in [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)].into_iter().enumerate() {
        let f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part));
        _mm256_storeu_ps(out.add(8 * k), _mm256_mul_ps(f, d));
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = (p as *const u16).read_unaligned();
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// The sum of the eight lanes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// The 32 signed weights of a Q5_0 (`Q5`) or Q8_0 block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn values32<const Q5: bool>(blk: *const u8) -> __m256i {
    if Q5 {
        q5_0_values(blk)
    } else {
        load(blk.add(2))
    }
}

/// Activation rows one pass over a row of 32-weight blocks serves at most.
const TILE: usize = 4;

/// `out[i]` = the row of Q5_0 (`Q5`) or Q8_0 blocks at `row` · activation row `i` (`d`, `qs`
/// hold `out.len()` rows of `blocks` blocks), on VNNI or AVX2 alone. Every row's sum is formed
/// in one order whatever the number of rows (even and odd blocks apart, added last), and both
/// instruction sets form the same exact integer sums, so the results are bit for bit the same:
/// a speculative check over several tokens agrees exactly with decoding them one at a time.
///
/// The loops are inlined into the two entry points below, each compiled for its instruction
/// set (a kernel with more features than its caller would not be inlined into it).
#[inline(always)]
unsafe fn dot32_rows<const Q5: bool, const VNNI: bool>(row: *const u8, blocks: usize, d: *const f32, qs: *const i8, out: &mut [f32]) {
    let mut i = 0;
    while i + TILE <= out.len() {
        let ys = dot32_tile::<Q5, VNNI, TILE>(row, blocks, d.add(i * blocks), qs.add(i * 32 * blocks));
        out[i..i + TILE].copy_from_slice(&ys);
        i += TILE;
    }
    // The last rows in one smaller tile (a speculative check of 6 drafted tokens is 4 + 3).
    let (d, qs) = (d.add(i * blocks), qs.add(i * 32 * blocks));
    match out.len() - i {
        3 => out[i..].copy_from_slice(&dot32_tile::<Q5, VNNI, 3>(row, blocks, d, qs)),
        2 => out[i..].copy_from_slice(&dot32_tile::<Q5, VNNI, 2>(row, blocks, d, qs)),
        1 => out[i..].copy_from_slice(&dot32_tile::<Q5, VNNI, 1>(row, blocks, d, qs)),
        _ => {}
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot32_rows_avx2<const Q5: bool>(row: *const u8, blocks: usize, d: *const f32, qs: *const i8, out: &mut [f32]) {
    dot32_rows::<Q5, false>(row, blocks, d, qs, out)
}

#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
unsafe fn dot32_rows_vnni<const Q5: bool>(row: *const u8, blocks: usize, d: *const f32, qs: *const i8, out: &mut [f32]) {
    dot32_rows::<Q5, true>(row, blocks, d, qs, out)
}

/// [`dot32_rows`] for `N` activation rows at once: each block's weights are decoded once for all.
#[inline(always)]
unsafe fn dot32_tile<const Q5: bool, const VNNI: bool, const N: usize>(
    row: *const u8,
    blocks: usize,
    d: *const f32,
    qs: *const i8,
) -> [f32; N] {
    let bytes = if Q5 { 22 } else { 34 };
    let block = |blk: *const u8, b: usize, acc: &mut [__m256; N]| block32::<Q5, VNNI, N>(blk, b, blocks, d, qs, acc);
    let (mut even, mut odd) = ([_mm256_setzero_ps(); N], [_mm256_setzero_ps(); N]);
    let mut b = 0;
    while b + 1 < blocks {
        block(row.add(bytes * b), b, &mut even);
        block(row.add(bytes * (b + 1)), b + 1, &mut odd);
        b += 2;
    }
    if b < blocks {
        block(row.add(bytes * b), b, &mut even);
    }
    let mut out = [0f32; N];
    for ((y, e), o) in out.iter_mut().zip(even).zip(odd) {
        *y = hsum(_mm256_add_ps(e, o));
    }
    out
}

/// `acc[i]` plus block `b` (at `blk`) times block `b` of activation row `i`, for `N` rows.
///
/// Four products of bytes are summed per i32 lane, both ways by unsigned × signed bytes. AVX2:
/// `maddubs` and `madd`, the weights lending their sign to the activations. VNNI: one
/// `vpdpbusd`, the activations read as `a + 128` (top bit flipped) and each sum started at
/// `−128 × Σ w` (one product per block for all rows). The lanes hold the same exact sums.
#[inline(always)]
unsafe fn block32<const Q5: bool, const VNNI: bool, const N: usize>(
    blk: *const u8,
    b: usize,
    blocks: usize,
    d: *const f32,
    qs: *const i8,
    acc: &mut [__m256; N],
) {
    let w = values32::<Q5>(blk);
    let dw = f16_at(blk);
    let (flip, zero) = (_mm256_set1_epi8(-128), _mm256_setzero_si256());
    // Per block, for all rows: |w| (AVX2) or the starting sums (VNNI).
    let shared = if VNNI { _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, flip, w)) } else { _mm256_sign_epi8(w, w) };
    for (i, acc) in acc.iter_mut().enumerate() {
        let a = load(qs.add(32 * (i * blocks + b)) as *const u8);
        let p = if VNNI {
            _mm256_dpbusd_epi32(shared, _mm256_xor_si256(a, flip), w)
        } else {
            _mm256_madd_epi16(_mm256_maddubs_epi16(shared, _mm256_sign_epi8(a, w)), _mm256_set1_epi16(1))
        };
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * *d.add(i * blocks + b)), *acc);
    }
}

/// 0xFF in byte `j` where bit `j` of `bits` is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn spread_bits(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    let pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    // Byte k of each 8 keeps every bit but bit k set: OR-ing leaves all ones exactly when bit k is.
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
    _mm256_cmpeq_epi8(_mm256_or_si256(_mm256_shuffle_epi8(v, pick), others), _mm256_set1_epi8(-1))
}

/// The 32 signed weights of the Q5_0 block at `blk`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_values(blk: *const u8) -> __m256i {
    let high = spread_bits((blk.add(2) as *const u32).read_unaligned());
    let nibbles = _mm_loadu_si128(blk.add(6) as *const __m128i);
    let low4 = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(nibbles, 4), nibbles), _mm256_set1_epi8(0x0F));
    // q - 16 with q = low4 | high << 4, that is low4 - 16 where the high bit is clear.
    _mm256_sub_epi8(low4, _mm256_andnot_si256(high, _mm256_set1_epi8(0x10)))
}

/// Shuffle masks that broadcast 16-bit lane `i` (of a 128-bit half) to a whole 128-bit half:
/// `LANE[i]` for both halves alike, `PAIR[k]` picks lane `2k` in the low half, `2k + 1` in the high.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn lane_mask(low: usize, high: usize) -> __m256i {
    let (l, h) = ((2 * low) as i8, (2 * high) as i8);
    _mm256_setr_epi8(
        l,
        l + 1,
        l,
        l + 1,
        l,
        l + 1,
        l,
        l + 1,
        l,
        l + 1,
        l,
        l + 1,
        l,
        l + 1,
        l,
        l + 1,
        h,
        h + 1,
        h,
        h + 1,
        h,
        h + 1,
        h,
        h + 1,
        h,
        h + 1,
        h,
        h + 1,
        h,
        h + 1,
        h,
        h + 1,
    )
}

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K block, one per byte, from its 12
/// scale bytes (see [`super::formats::q4k_scale_min`] for the layout).
#[inline]
fn q4k_scales_mins(s: &[u8]) -> (u64, u64) {
    let word = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let (a, b, c) = (word(0), word(4), word(8));
    let scales_lo = a & 0x3f3f_3f3f;
    let mins_lo = b & 0x3f3f_3f3f;
    let scales_hi = (c & 0x0f0f_0f0f) | (((a >> 6) & 0x0303_0303) << 4);
    let mins_hi = ((c >> 4) & 0x0f0f_0f0f) | (((b >> 6) & 0x0303_0303) << 4);
    (scales_lo as u64 | (scales_hi as u64) << 32, mins_lo as u64 | (mins_hi as u64) << 32)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4k(row: *const u8, blocks: usize, d: *const f32, qs: *const i8, sums: *const i16) -> f32 {
    let (mut acc, mut acc_min) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let low = _mm256_set1_epi8(0x0F);
    let masks = [
        lane_mask(0, 0),
        lane_mask(1, 1),
        lane_mask(2, 2),
        lane_mask(3, 3),
        lane_mask(4, 4),
        lane_mask(5, 5),
        lane_mask(6, 6),
        lane_mask(7, 7),
    ];
    for b in 0..blocks {
        let blk = row.add(144 * b);
        let da = *d.add(b);
        let (scales, mins) = q4k_scales_mins(std::slice::from_raw_parts(blk.add(4), 12));
        let ys = qs.add(256 * b) as *const u8;
        // Each min applies to 32 activations: two sums of 16.
        let mins = _mm_cvtsi64_si128(mins as i64);
        let mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins, mins));
        let sum_min = _mm256_madd_epi16(_mm256_loadu_si256(sums.add(16 * b) as *const __m256i), mins);
        let scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(scales as i64)));
        let mut sum = _mm256_setzero_si256();
        for j in 0..4 {
            let q = load(blk.add(16 + 32 * j));
            let p0 = _mm256_maddubs_epi16(_mm256_and_si256(q, low), load(ys.add(64 * j)));
            let p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), low), load(ys.add(64 * j + 32)));
            let p0 = _mm256_madd_epi16(p0, _mm256_shuffle_epi8(scales, masks[2 * j]));
            let p1 = _mm256_madd_epi16(p1, _mm256_shuffle_epi8(scales, masks[2 * j + 1]));
            sum = _mm256_add_epi32(sum, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(f16_at(blk) * da), acc);
        acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_min), _mm256_set1_ps(f16_at(blk.add(2)) * da), acc_min);
    }
    hsum(acc) - hsum(acc_min)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q6k(row: *const u8, blocks: usize, d: *const f32, qs: *const i8, sums: *const i16) -> f32 {
    let (mut acc, mut acc_offset) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let (low, two) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(3));
    let masks = [lane_mask(0, 1), lane_mask(2, 3), lane_mask(4, 5), lane_mask(6, 7)];
    for b in 0..blocks {
        let blk = row.add(210 * b);
        let ys = qs.add(256 * b) as *const u8;
        let all_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const __m128i));
        // The weights are stored as q + 32: take 32 × scale × (sum of 16 activations) back.
        let offset = _mm256_madd_epi16(_mm256_loadu_si256(sums.add(16 * b) as *const __m256i), all_scales);
        let mut sum = _mm256_setzero_si256();
        for half in 0..2 {
            let (ql, qh) = (blk.add(64 * half), load(blk.add(128 + 32 * half)));
            let (ql0, ql1) = (load(ql), load(ql.add(32)));
            let scales = _mm256_broadcastsi128_si256(if half == 0 {
                _mm256_castsi256_si128(all_scales)
            } else {
                _mm256_extracti128_si256(all_scales, 1)
            });
            let values = [
                _mm256_or_si256(_mm256_and_si256(ql0, low), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4)),
                _mm256_or_si256(_mm256_and_si256(ql1, low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4)),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4),
                ),
            ];
            for (k, q) in values.into_iter().enumerate() {
                let p = _mm256_maddubs_epi16(q, load(ys.add(128 * half + 32 * k)));
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, masks[k])));
            }
        }
        let dd = _mm256_set1_ps(f16_at(blk.add(208)) * *d.add(b));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), dd, acc);
        acc_offset = _mm256_fmadd_ps(_mm256_cvtepi32_ps(offset), dd, acc_offset);
    }
    hsum(acc) - 32.0 * hsum(acc_offset)
}
