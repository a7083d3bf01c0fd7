//! Load-time re-encoding of quantized weights into formats candle's CPU kernels run fast.
//!
//! candle has no SIMD dot product for Q5_0 (the Qwen2.5-Coder-0.5B Q4_K_M GGUF is mostly
//! Q5_0, because its 896-wide rows are not a multiple of the 256-wide K-quant blocks), but it
//! has fast AVX2/AVX-512 kernels for Q8_0. Both formats store 32 weights per block with one
//! f16 scale `d`; a Q5_0 weight is `d * (q - 16)` with `q` in `0..32`, and `q - 16` fits in the
//! i8 of a Q8_0 block. So the conversion keeps `d`, widens every quant, and is *exact*: the
//! dequantized weights are bit-identical. (Q5_1 → Q8_1 is not exact and is left alone.)

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};

use crate::engine::kernels::formats::reference::q5_0_values;

/// Bytes of one Q5_0 block: f16 `d`, 32 high bits `qh`, 16 bytes of low nibbles `qs`.
const Q5_0_BLOCK_BYTES: usize = 22;
/// Bytes of one Q8_0 block: f16 `d`, 32 × i8 `qs`.
const Q8_0_BLOCK_BYTES: usize = 34;
/// Weights per block (both formats).
const BLOCK: usize = 32;

/// Re-encodes a Q5_0 tensor as Q8_0 on the same device when candle's kernels will run it; any
/// other tensor, and every tensor on a CPU that runs the project's own kernels (which read Q5_0
/// as it is, 35% fewer bytes), is returned unchanged.
pub fn fast_cpu_layout(qt: QTensor) -> candle_core::Result<QTensor> {
    use crate::engine::kernels::{preferred_for, Format};
    if qt.dtype() != GgmlDType::Q5_0 || !qt.device().is_cpu() || preferred_for(Format::Q5_0) {
        return Ok(qt);
    }
    q5_0_to_q8_0(&qt)
}

/// Converts a Q5_0 tensor to an equivalent Q8_0 one (see the module docs for why it is exact).
pub fn q5_0_to_q8_0(qt: &QTensor) -> candle_core::Result<QTensor> {
    if qt.dtype() != GgmlDType::Q5_0 {
        candle_core::bail!("q5_0_to_q8_0 called on a {:?} tensor", qt.dtype());
    }
    let src = qt.data()?;
    if src.len() % Q5_0_BLOCK_BYTES != 0 {
        candle_core::bail!("Q5_0 data of {} bytes is not a whole number of blocks", src.len());
    }
    let blocks = src.len() / Q5_0_BLOCK_BYTES;
    if blocks * BLOCK != qt.shape().elem_count() {
        candle_core::bail!("Q5_0 tensor {:?} holds {blocks} blocks, expected {}", qt.shape(), qt.shape().elem_count() / BLOCK);
    }
    // candle reinterprets the bytes as `[BlockQ8_0]`, whose alignment is that of its f16 scale,
    // so start the output at an even address (one spare byte makes room for the shift).
    let len = blocks * Q8_0_BLOCK_BYTES;
    let mut buf = vec![0u8; len + 1];
    let start = buf.as_ptr().align_offset(std::mem::align_of::<u16>());
    let dst = &mut buf[start..start + len];
    for (s, d) in src.chunks_exact(Q5_0_BLOCK_BYTES).zip(dst.chunks_exact_mut(Q8_0_BLOCK_BYTES)) {
        convert_block(s, d);
    }
    let storage = QStorage::from_data(Cow::Borrowed(dst), &qt.device(), GgmlDType::Q8_0)?;
    QTensor::new(storage, qt.shape().clone())
}

/// Converts one block; `src` is 22 bytes, `dst` 34 bytes (both in candle's in-memory layout,
/// which is ggml's: scale first, little-endian).
fn convert_block(src: &[u8], dst: &mut [u8]) {
    dst[0..2].copy_from_slice(&src[0..2]);
    for (d, w) in dst[2..].iter_mut().zip(q5_0_values(src)) {
        *d = w as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    use crate::rng::Rng;

    fn random_q5_0(rows: usize, cols: usize, seed: u64) -> QTensor {
        let mut rng = Rng::new(seed);
        let blocks = rows * cols / BLOCK;
        let mut buf = vec![0u8; blocks * Q5_0_BLOCK_BYTES + 1];
        let start = buf.as_ptr().align_offset(2);
        let bytes = &mut buf[start..start + blocks * Q5_0_BLOCK_BYTES];
        for block in bytes.chunks_exact_mut(Q5_0_BLOCK_BYTES) {
            for b in block.iter_mut() {
                *b = rng.next_u64() as u8;
            }
            // A finite f16 scale: random sign and mantissa, exponent below the inf/NaN code.
            let r = rng.next_u64();
            let exponent = (r % 31) as u16;
            let bits = ((r >> 8) as u16 & 0x8000) | (exponent << 10) | ((r >> 24) as u16 & 0x03ff);
            block[0..2].copy_from_slice(&bits.to_le_bytes());
        }
        let storage = QStorage::from_data(Cow::Borrowed(bytes), &Device::Cpu, GgmlDType::Q5_0).unwrap();
        QTensor::new(storage, (rows, cols)).unwrap()
    }

    fn f32_bits(qt: &QTensor) -> Vec<u32> {
        let t = qt.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        t.to_vec1::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
    }

    #[test]
    fn q5_0_to_q8_0_is_bit_exact() {
        for seed in 1..=8u64 {
            let q5 = random_q5_0(16, 128, seed);
            let q8 = q5_0_to_q8_0(&q5).unwrap();
            assert_eq!(q8.dtype(), GgmlDType::Q8_0);
            assert_eq!(q8.shape(), q5.shape());
            assert_eq!(f32_bits(&q5), f32_bits(&q8), "seed {seed}");
        }
    }

    #[test]
    fn other_types_pass_through() {
        let t = candle_core::Tensor::ones((4, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
        let qt = QTensor::quantize(&t, GgmlDType::Q4_0).unwrap();
        assert_eq!(fast_cpu_layout(qt).unwrap().dtype(), GgmlDType::Q4_0);
    }
}
