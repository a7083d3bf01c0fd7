//! The kernels against their scalar definitions, against candle's dequantized weights and
//! kernels (an independent reading of the same blocks), and under concurrent use.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Module, Tensor};

use super::formats::reference;
use super::*;
use crate::rng::Rng;

const FORMATS: [(Format, GgmlDType); 4] =
    [(Format::Q8_0, GgmlDType::Q8_0), (Format::Q5_0, GgmlDType::Q5_0), (Format::Q4K, GgmlDType::Q4K), (Format::Q6K, GgmlDType::Q6K)];

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    // Mostly small values with a few large ones, like real activations.
    (0..n).map(|i| rng.signed_unit_f32() * if i % 97 == 0 { 8.0 } else { 1.0 }).collect()
}

/// A `[rows, cols]` random matrix quantized by candle (an implementation independent of ours).
fn weights(dtype: GgmlDType, rows: usize, cols: usize, seed: u64) -> QTensor {
    let t = Tensor::from_vec(random(rows * cols, seed), (rows, cols), &Device::Cpu).unwrap();
    QTensor::quantize(&t, dtype).unwrap()
}

fn scalar_dot(format: Format, row: &[u8], x: &[f32]) -> f32 {
    if format.wide_activations() {
        let mut a = Act256::default();
        a.quantize(x);
        match format {
            Format::Q4K => reference::dot_q4k(row, &a.d, &a.qs),
            _ => reference::dot_q6k(row, &a.d, &a.qs),
        }
    } else {
        let mut a = Act32::default();
        a.quantize(x);
        match format {
            Format::Q8_0 => reference::dot_q8_0(row, &a.d, &a.qs),
            _ => reference::dot_q5_0(row, &a.d, &a.qs),
        }
    }
}

fn max_abs(xs: &[f32]) -> f32 {
    xs.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn each_kernel_computes_its_scalar_definition() {
    if !available() {
        eprintln!("no AVX2/FMA/F16C here: the model uses candle's kernels");
        return;
    }
    let (rows, cols) = (37, 768);
    for (format, dtype) in FORMATS {
        let q = weights(dtype, rows, cols, 1);
        let data = q.data().unwrap();
        let w = QuantMatrix::new(format, &data, rows, cols).unwrap();
        // Tiles of four rows and every size of the smaller last tile.
        for m in [1, 2, 3, 5, 6, 9] {
            let x = random(m * cols, 2);
            let mut out = vec![0f32; m * rows];
            matmul(&w, &x, m, &mut out).unwrap();
            let row_bytes = data.len() / rows;
            let expected: Vec<f32> = (0..m)
                .flat_map(|i| (0..rows).map(move |r| (i, r)))
                .map(|(i, r)| scalar_dot(format, &data[r * row_bytes..(r + 1) * row_bytes], &x[i * cols..(i + 1) * cols]))
                .collect();
            let scale = max_abs(&expected);
            for (k, (a, b)) in out.iter().zip(&expected).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "{format:?} m={m} output {k}: kernel {a}, definition {b}");
            }
        }
    }
}

#[test]
fn products_match_the_dequantized_weights_as_closely_as_candles_kernels() {
    // candle's dequantization is the independent truth for what the blocks mean; the only
    // difference allowed is the 8-bit rounding of the activations, which candle's own quantized
    // kernels also do: ours must be about as close to the truth as theirs.
    if !available() {
        return;
    }
    let (rows, cols, m) = (64, 512, 2);
    let rel = |a: &Tensor, b: &Tensor| {
        let (a, b) = (a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let err = a.iter().zip(&b).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt();
        err / a.iter().map(|a| a * a).sum::<f32>().sqrt()
    };
    for (format, dtype) in FORMATS {
        let q = weights(dtype, rows, cols, 3);
        let x = Tensor::from_vec(random(m * cols, 4), (m, cols), &Device::Cpu).unwrap();
        let exact = x.matmul(&q.dequantize(&Device::Cpu).unwrap().t().unwrap()).unwrap();
        let ours = forward(format, &q, &x).unwrap();
        assert_eq!(ours.dims(), &[m, rows]);
        let theirs = candle_core::quantized::QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
        let (ours, theirs) = (rel(&exact, &ours), rel(&exact, &theirs));
        assert!(ours > 0.0 && ours < 0.03, "{format:?}: relative error {ours}");
        assert!(ours < 1.5 * theirs, "{format:?}: relative error {ours}, candle's {theirs}");
    }
}

#[test]
fn a_batch_of_rows_gives_bit_for_bit_the_products_of_one_row_at_a_time() {
    // A speculative check multiplies several tokens at once; decoding multiplies one. The two
    // must agree exactly, or a near tie could pick another token with speculation on.
    if !available() {
        return;
    }
    let (rows, m) = (19, 11);
    for (format, dtype) in FORMATS {
        // An odd number of 32-weight blocks where the format allows (the last block is alone).
        let cols = if format.wide_activations() { 768 } else { 352 };
        let q = weights(dtype, rows, cols, 9);
        let data = q.data().unwrap();
        let w = QuantMatrix::new(format, &data, rows, cols).unwrap();
        let x = random(m * cols, 10);
        let mut batch = vec![0f32; m * rows];
        matmul(&w, &x, m, &mut batch).unwrap();
        for (i, expected) in batch.chunks_exact(rows).enumerate() {
            let mut one = vec![0f32; rows];
            matmul(&w, &x[i * cols..(i + 1) * cols], 1, &mut one).unwrap();
            assert_eq!(one, expected, "{format:?}: activation row {i}");
        }
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn vnni_and_avx2_give_bit_for_bit_the_same_products() {
    // Both form the same exact integer sums per lane and scale them in the same order, so a
    // model gives the same suggestions on any x86 CPU that runs these kernels.
    if !super::avx2::vnni_detected() {
        eprintln!("no AVX-512 VNNI here: nothing to compare");
        return;
    }
    let (rows, cols) = (21, 352);
    for (format, dtype) in [(Format::Q8_0, GgmlDType::Q8_0), (Format::Q5_0, GgmlDType::Q5_0)] {
        let q = weights(dtype, rows, cols, 11);
        let data = q.data().unwrap();
        for m in [1, 4, 7] {
            let mut a = Act32::default();
            a.quantize(&random(m * cols, 12));
            let (mut vnni, mut avx2) = (vec![0f32; m * rows], vec![0f32; m * rows]);
            super::avx2::rows_on(true, format, &data, cols, Acts::A32(&a), m, &mut vnni);
            super::avx2::rows_on(false, format, &data, cols, Acts::A32(&a), m, &mut avx2);
            assert_eq!(vnni, avx2, "{format:?} m={m}");
            assert!(vnni.iter().any(|&y| y != 0.0));
        }
    }
}

#[test]
fn zero_and_one_hot_activations() {
    if !available() {
        return;
    }
    let (rows, cols) = (8, 256);
    for (format, dtype) in FORMATS {
        let q = weights(dtype, rows, cols, 5);
        let dense = q.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
        let data = q.data().unwrap();
        let w = QuantMatrix::new(format, &data, rows, cols).unwrap();
        let mut out = vec![1f32; rows];
        matmul(&w, &vec![0.0; cols], 1, &mut out).unwrap();
        assert!(out.iter().all(|&y| y == 0.0), "{format:?}: {out:?}");
        // x = e_j picks column j of the weights (exactly, up to the f32 scale product).
        for j in [0, 17, 255] {
            let mut x = vec![0f32; cols];
            x[j] = 1.0;
            matmul(&w, &x, 1, &mut out).unwrap();
            for (r, y) in out.iter().enumerate() {
                assert!((y - dense[r][j]).abs() <= 1e-5 * (1.0 + dense[r][j].abs()), "{format:?} row {r} col {j}: {y} vs {}", dense[r][j]);
            }
        }
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let q = weights(GgmlDType::Q8_0, 4, 64, 6);
    let data = q.data().unwrap();
    assert!(QuantMatrix::new(Format::Q8_0, &data, 5, 64).is_err());
    assert!(QuantMatrix::new(Format::Q8_0, &data, 4, 48).is_err());
    assert!(QuantMatrix::new(Format::Q4K, &data, 4, 64).is_err());
    let w = QuantMatrix::new(Format::Q8_0, &data, 4, 64).unwrap();
    let mut out = vec![0f32; 4];
    assert!(matmul(&w, &[0.0; 63], 1, &mut out).is_err());
    assert!(matmul(&w, &[0.0; 64], 2, &mut out).is_err());
    let x = Tensor::zeros((1, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(forward(Format::Q8_0, &q, &x).is_err());
}

#[test]
fn products_nested_in_parallel_work_give_the_same_results() {
    // A thread waiting for its own parallel rows may run another product (rayon steals work):
    // each must still use its own activations. (Whether stealing happens depends on timing: a
    // buffer held across the wait made the full suite fail now and then, not this test always.)
    if !available() {
        return;
    }
    use rayon::prelude::*;
    let (rows, cols) = (512, 256);
    let q = weights(GgmlDType::Q5_0, rows, cols, 7);
    let data = q.data().unwrap();
    let w = QuantMatrix::new(Format::Q5_0, &data, rows, cols).unwrap();
    let xs: Vec<Vec<f32>> = (0..32).map(|i| random(cols, 100 + i)).collect();
    let product = |x: &Vec<f32>| {
        let mut out = vec![0f32; rows];
        matmul(&w, x, 1, &mut out).unwrap();
        out
    };
    let alone: Vec<Vec<f32>> = xs.iter().map(product).collect();
    for _ in 0..4 {
        let together: Vec<Vec<f32>> = xs.par_iter().map(product).collect();
        assert_eq!(together, alone);
    }
}

#[test]
fn q5_0_dequantization_equals_candles() {
    let q = weights(GgmlDType::Q5_0, 70, 96, 8);
    let ours = dequantize(&q).unwrap().to_vec2::<f32>().unwrap();
    let theirs = q.dequantize(&Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(ours, theirs);
    assert!(ours.iter().flatten().any(|&v| v != 0.0));
}

#[test]
fn a_speculative_check_runs_on_the_kernels_that_decode_one_token() {
    // Where K-quants go to candle for longer steps, the limit must still take a whole check
    // (the decoded token and its draft), or a check would round differently from decoding.
    let check = crate::engine::EngineOptions::default().max_draft + 1;
    assert!(super::KQUANT_OWN_MAX_ROWS > check, "{} rows must take the check's {check}", super::KQUANT_OWN_MAX_ROWS);
    for format in [Format::Q8_0, Format::Q5_0, Format::Q4K, Format::Q6K] {
        let limit = super::own_max_rows(format);
        assert!(limit == 0 || limit > check, "{format:?}: {limit}");
    }
}
