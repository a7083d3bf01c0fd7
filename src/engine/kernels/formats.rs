//! The block layouts the kernels read, the 8-bit activations they multiply with, and plain
//! scalar dot products that define what every SIMD kernel must compute.
//!
//! Weight blocks are GGUF's, byte for byte (little-endian, scale first except in Q6_K):
//!
//! | format | weights per block | bytes | a weight is |
//! |---|---|---|---|
//! | Q8_0 | 32 | 34: f16 `d`, 32 × i8 | `d · q` |
//! | Q5_0 | 32 | 22: f16 `d`, u32 high bits, 16 bytes of nibbles | `d · (q - 16)`, `q` in `0..32` |
//! | Q4_K | 256 | 144: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles | `d · sc · q - dmin · m` per 32 |
//! | Q6_K | 256 | 210: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 × i8 scales, f16 `d` | `d · sc · (q - 32)` per 16 |
//!
//! Activations are quantized once per matrix product, to 8 bits with an f32 scale: per 32 values
//! for Q8_0/Q5_0 weights ([`Act32`]), per 256 values with the sums of each 16 for K-quants
//! ([`Act256`], the sums pay for the K-quants' offsets in one multiply per 16 weights).

/// A weight format the kernels handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Q8_0,
    Q5_0,
    Q4K,
    Q6K,
}

impl Format {
    /// Weights per block.
    pub const fn block(self) -> usize {
        match self {
            Format::Q8_0 | Format::Q5_0 => 32,
            Format::Q4K | Format::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            Format::Q8_0 => 34,
            Format::Q5_0 => 22,
            Format::Q4K => 144,
            Format::Q6K => 210,
        }
    }

    /// Whether activations for this format are quantized per 256 ([`Act256`]) rather than per 32.
    pub const fn wide_activations(self) -> bool {
        matches!(self, Format::Q4K | Format::Q6K)
    }
}

/// `f16` bits to `f32` (the scales of weight blocks).
pub fn f16(bits: [u8; 2]) -> f32 {
    half::f16::from_bits(u16::from_le_bytes(bits)).to_f32()
}

/// Rows of activations quantized per 32 values: `x ≈ d[b] · qs[32 b + i]`.
#[derive(Debug, Default, Clone)]
pub struct Act32 {
    pub d: Vec<f32>,
    pub qs: Vec<i8>,
}

/// Rows of activations quantized per 256 values, with the sum of each 16 quantized values.
#[derive(Debug, Default, Clone)]
pub struct Act256 {
    pub d: Vec<f32>,
    pub qs: Vec<i8>,
    pub sums: Vec<i16>,
}

/// Symmetric 8-bit quantization of `x` into `qs` (same length); returns the scale.
fn quantize_block(x: &[f32], qs: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        qs.fill(0);
        return if amax.is_finite() { 0.0 } else { f32::NAN };
    }
    let d = amax / 127.0;
    let inv = 1.0 / d;
    for (q, v) in qs.iter_mut().zip(x) {
        *q = (v * inv).round().clamp(-127.0, 127.0) as i8;
    }
    d
}

impl Act32 {
    /// Quantizes `x` (whole blocks of 32) into `self`, reusing its buffers.
    pub fn quantize(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len() % 32, 0);
        self.qs.resize(x.len(), 0);
        self.d.clear();
        for (xb, qb) in x.chunks_exact(32).zip(self.qs.chunks_exact_mut(32)) {
            self.d.push(quantize_block(xb, qb));
        }
    }
}

impl Act256 {
    /// Quantizes `x` (whole blocks of 256) into `self`, reusing its buffers.
    pub fn quantize(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len() % 256, 0);
        self.qs.resize(x.len(), 0);
        self.d.clear();
        self.sums.clear();
        for (xb, qb) in x.chunks_exact(256).zip(self.qs.chunks_exact_mut(256)) {
            self.d.push(quantize_block(xb, qb));
            self.sums.extend(qb.chunks_exact(16).map(|s| s.iter().map(|&q| q as i16).sum::<i16>()));
        }
    }
}

/// The 6-bit scale and min of sub-block `j` (of 8) from a Q4_K block's 12 scale bytes.
pub fn q4k_scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Scalar dot products of one weight row with one activation row: the definition the SIMD
/// kernels are tested against (same integer sums, so they agree up to float rounding).
pub mod reference {
    use super::*;

    /// Q8_0 weights · [`Act32`] activations (`row` holds whole blocks).
    pub fn dot_q8_0(row: &[u8], d: &[f32], qs: &[i8]) -> f32 {
        let mut acc = 0f32;
        for (b, blk) in row.chunks_exact(34).enumerate() {
            let s: i32 = blk[2..].iter().zip(&qs[32 * b..32 * b + 32]).map(|(&w, &a)| w as i8 as i32 * a as i32).sum();
            acc += f16([blk[0], blk[1]]) * d[b] * s as f32;
        }
        acc
    }

    /// The 32 signed weights (`-16..16`) of one Q5_0 block.
    pub fn q5_0_values(blk: &[u8]) -> [i8; 32] {
        let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
        let mut out = [0i8; 32];
        for j in 0..16 {
            let lo = (blk[6 + j] & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
            let hi = (blk[6 + j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
            out[j] = lo as i8 - 16;
            out[j + 16] = hi as i8 - 16;
        }
        out
    }

    /// Q5_0 weights · [`Act32`] activations.
    pub fn dot_q5_0(row: &[u8], d: &[f32], qs: &[i8]) -> f32 {
        let mut acc = 0f32;
        for (b, blk) in row.chunks_exact(22).enumerate() {
            let w = q5_0_values(blk);
            let s: i32 = w.iter().zip(&qs[32 * b..32 * b + 32]).map(|(&w, &a)| w as i32 * a as i32).sum();
            acc += f16([blk[0], blk[1]]) * d[b] * s as f32;
        }
        acc
    }

    /// Q4_K weights · [`Act256`] activations.
    pub fn dot_q4k(row: &[u8], d: &[f32], qs: &[i8]) -> f32 {
        let mut acc = 0f32;
        for (b, blk) in row.chunks_exact(144).enumerate() {
            let (dw, dmin) = (f16([blk[0], blk[1]]), f16([blk[2], blk[3]]));
            let (scales, nibbles) = (&blk[4..16], &blk[16..144]);
            let a = &qs[256 * b..256 * b + 256];
            let (mut sum, mut sum_min) = (0i32, 0i32);
            for j in 0..8 {
                let (sc, m) = q4k_scale_min(scales, j);
                let bytes = &nibbles[32 * (j / 2)..32 * (j / 2) + 32];
                let ys = &a[32 * j..32 * j + 32];
                let s: i32 = bytes
                    .iter()
                    .zip(ys)
                    .map(|(&q, &y)| {
                        let q = if j % 2 == 0 { q & 0x0F } else { q >> 4 };
                        q as i32 * y as i32
                    })
                    .sum();
                sum += sc as i32 * s;
                sum_min += m as i32 * ys.iter().map(|&y| y as i32).sum::<i32>();
            }
            acc += dw * d[b] * sum as f32 - dmin * d[b] * sum_min as f32;
        }
        acc
    }

    /// The 256 weights (`0..64`, before the offset of 32) of one Q6_K block, in order.
    pub fn q6k_values(blk: &[u8]) -> [u8; 256] {
        let mut out = [0u8; 256];
        for half in 0..2 {
            let (ql, qh) = (&blk[64 * half..64 * half + 64], &blk[128 + 32 * half..128 + 32 * half + 32]);
            let o = &mut out[128 * half..128 * half + 128];
            for l in 0..32 {
                o[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
                o[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
                o[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                o[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
            }
        }
        out
    }

    /// Q6_K weights · [`Act256`] activations.
    pub fn dot_q6k(row: &[u8], d: &[f32], qs: &[i8]) -> f32 {
        let mut acc = 0f32;
        for (b, blk) in row.chunks_exact(210).enumerate() {
            let w = q6k_values(blk);
            let a = &qs[256 * b..256 * b + 256];
            let mut sum = 0i32;
            for (i, (ws, ys)) in w.chunks_exact(16).zip(a.chunks_exact(16)).enumerate() {
                let s: i32 = ws.iter().zip(ys).map(|(&q, &y)| (q as i32 - 32) * y as i32).sum();
                sum += blk[192 + i] as i8 as i32 * s;
            }
            acc += f16([blk[208], blk[209]]) * d[b] * sum as f32;
        }
        acc
    }
}
