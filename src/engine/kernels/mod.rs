//! The project's own CPU kernels: products of GGUF-quantized weight matrices with a few rows of
//! activations (decoding one token, checking a speculative draft, a short prefill step).
//!
//! Weights stay in their GGUF blocks (Q8_0, Q5_0, Q4_K, Q6_K; [`formats`] says what each byte
//! means), read where candle loaded them: nothing is widened or copied. The activations are
//! quantized to 8 bits once per product (not once per output row), and the output rows are
//! split over rayon's pool, the one the rest of the forward pass uses. The SIMD code is in
//! `avx2` (AVX2 + FMA + F16C, detected at run time, with AVX-512 VNNI's byte dot product for
//! Q8_0/Q5_0 where the CPU has it; `INKLING_CPU_KERNELS=avx2` does without); on other CPUs
//! [`available`] is false and the model keeps candle's kernels.
//!
//! Prefill chunks of many rows do not come here: they are compute-bound, and a blocked f32 GEMM
//! does better (see `model::weights::DENSE_PREFILL_MIN_ROWS`).
//!
//! [`attention`] is the other kernel of a decoding step: a few query rows over the f32 KV cache.

pub mod attention;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_attention;
pub mod formats;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Tensor, D};
use rayon::prelude::*;

pub use formats::{Act256, Act32, Format};

/// Quantized activation rows, in the layout the weight format asks for.
#[derive(Debug, Clone, Copy)]
pub enum Acts<'a> {
    /// Per 32 values (Q8_0, Q5_0 weights).
    A32(&'a Act32),
    /// Per 256 values with sums of 16 (K-quant weights).
    A256(&'a Act256),
}

/// Whether this CPU runs the project's kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a model loaded now should run weights in `format` on these kernels rather than
/// candle's, for some inputs at least ([`own_max_rows`] says which).
pub fn preferred_for(format: Format) -> bool {
    own_max_rows(format) > 0
}

/// Inputs of fewer rows than this multiply weights in `format` on these kernels (0: none; the
/// dense prefill path takes long inputs of Q8_0 and Q5_0 before this limit applies).
///
/// Q8_0 and Q5_0 always (candle has no SIMD Q5_0 kernel and converts each Q8_0 scale through a
/// function call). K-quants too, except where candle has its AVX-512 VNNI kernels: there its
/// tiled kernels run steps of 17 to 55 rows faster than these untiled ones, but not decoding
/// and short steps (on a 2-core Xeon, `cargo bench --bench engine`: decode 17.4 vs 15.8 tok/s,
/// a 16-token step 89.9 vs 83.0, a 48-token step 106.2 vs 122.0), which also keep decoding on
/// one thread pool — candle's spins while rayon's works. A speculative check (at most 7 rows)
/// then runs on the kernels that decode one token, so the two agree bit for bit.
/// `INKLING_CPU_KERNELS=candle` turns the project's kernels off (a way out should they misbehave
/// on some CPU, and the baseline of the engine benchmark); `=own` uses them for every K-quant
/// step.
pub fn own_max_rows(format: Format) -> usize {
    let choice = std::env::var("INKLING_CPU_KERNELS").unwrap_or_default();
    if !own_kernels_allowed() {
        return 0;
    }
    match format {
        Format::Q8_0 | Format::Q5_0 => usize::MAX,
        Format::Q4K | Format::Q6K if choice == "own" || !candle_has_vnni() => usize::MAX,
        Format::Q4K | Format::Q6K => KQUANT_OWN_MAX_ROWS,
    }
}

/// Where candle has VNNI K-quant kernels, K-quant inputs of fewer rows than this take these.
const KQUANT_OWN_MAX_ROWS: usize = 17;

/// Whether a model loaded now may run the project's kernels at all (the products where
/// [`preferred_for`] says so, and the attention of short steps, [`attention`]): where the CPU
/// has them, unless `INKLING_CPU_KERNELS=candle`.
pub fn own_kernels_allowed() -> bool {
    available() && std::env::var("INKLING_CPU_KERNELS").map_or(true, |c| c != "candle")
}

fn candle_has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Format {
    /// The kernel format for a candle quantized type, if there is one.
    pub fn of(dtype: GgmlDType) -> Option<Format> {
        match dtype {
            GgmlDType::Q8_0 => Some(Format::Q8_0),
            GgmlDType::Q5_0 => Some(Format::Q5_0),
            GgmlDType::Q4K => Some(Format::Q4K),
            GgmlDType::Q6K => Some(Format::Q6K),
            _ => None,
        }
    }
}

/// A `[rows, cols]` weight matrix in one of the [`Format`]s, rows stored one after the other.
#[derive(Debug, Clone, Copy)]
pub struct QuantMatrix<'a> {
    format: Format,
    bytes: &'a [u8],
    rows: usize,
    cols: usize,
}

impl<'a> QuantMatrix<'a> {
    /// Checks that `bytes` holds exactly `rows` rows of `cols` weights in `format`.
    pub fn new(format: Format, bytes: &'a [u8], rows: usize, cols: usize) -> candle_core::Result<Self> {
        if cols == 0 || !cols.is_multiple_of(format.block()) {
            candle_core::bail!("a {format:?} row of {cols} weights is not a whole number of {}-weight blocks", format.block());
        }
        if bytes.len() != rows * Self::row_bytes_of(format, cols) {
            candle_core::bail!("{} bytes do not hold {rows} × {cols} {format:?} weights", bytes.len());
        }
        Ok(Self { format, bytes, rows, cols })
    }

    fn row_bytes_of(format: Format, cols: usize) -> usize {
        cols / format.block() * format.block_bytes()
    }

    fn row_bytes(&self) -> usize {
        Self::row_bytes_of(self.format, self.cols)
    }
}

thread_local! {
    /// The calling thread's quantized activations, reused from one product to the next.
    static ACTS: RefCell<(Act32, Act256)> = RefCell::new(Default::default());
}

/// `out[i·rows + r] = x[i·cols..(i+1)·cols] · w[r]` for the `m` rows of `x`.
///
/// Fails if the lengths do not match `w`, or if this CPU has no kernels ([`available`]).
pub fn matmul(w: &QuantMatrix<'_>, x: &[f32], m: usize, out: &mut [f32]) -> candle_core::Result<()> {
    if !available() {
        candle_core::bail!("the quantized CPU kernels need AVX2, FMA and F16C");
    }
    if x.len() != m * w.cols || out.len() != m * w.rows {
        candle_core::bail!("matmul of {m} × {} activations into {} outputs with a {} × {} matrix", x.len(), out.len(), w.rows, w.cols);
    }
    // The buffers are taken out while in use: a thread waiting for its parallel work may run
    // another product meanwhile (rayon steals work), which then starts with fresh buffers.
    let (mut a32, mut a256) = ACTS.with(|cell| cell.take());
    let acts = if w.format.wide_activations() {
        a256.quantize(x);
        Acts::A256(&a256)
    } else {
        a32.quantize(x);
        Acts::A32(&a32)
    };
    if m == 1 {
        rows_parallel(w, acts, 1, out);
    } else {
        // Row-major per weight row first (each weight row is read once for all m rows).
        let mut by_row = vec![0f32; m * w.rows];
        rows_parallel(w, acts, m, &mut by_row);
        for (r, ys) in by_row.chunks_exact(m).enumerate() {
            for (i, y) in ys.iter().enumerate() {
                out[i * w.rows + r] = *y;
            }
        }
    }
    ACTS.with(|cell| cell.replace((a32, a256)));
    Ok(())
}

/// Weight rows per parallel task: a few tasks per thread, so a busy core slows one task only.
fn chunk_rows(rows: usize) -> usize {
    rows.div_ceil(4 * rayon::current_num_threads()).max(16)
}

fn rows_parallel(w: &QuantMatrix<'_>, acts: Acts<'_>, m: usize, out: &mut [f32]) {
    let (chunk, row_bytes) = (chunk_rows(w.rows), w.row_bytes());
    out.par_chunks_mut(chunk * m).enumerate().for_each(|(c, out)| {
        let first = c * chunk;
        let bytes = &w.bytes[first * row_bytes..(first + out.len() / m) * row_bytes];
        run_rows(w.format, bytes, w.cols, acts, m, out);
    });
}

#[cfg(target_arch = "x86_64")]
fn run_rows(format: Format, bytes: &[u8], cols: usize, acts: Acts<'_>, m: usize, out: &mut [f32]) {
    avx2::rows(format, bytes, cols, acts, m, out)
}

#[cfg(not(target_arch = "x86_64"))]
fn run_rows(_: Format, _: &[u8], _: usize, _: Acts<'_>, _: usize, _: &mut [f32]) {
    unreachable!("matmul checks `available()` first")
}

/// The f32 weights of a CPU weight tensor `q`, `[rows, cols]`: the project's vectorized
/// dequantization for Q5_0 (candle's is scalar), candle's for every other type.
pub fn dequantize(q: &QTensor) -> candle_core::Result<Tensor> {
    let _span = tracing::trace_span!("dequantize").entered();
    #[cfg(target_arch = "x86_64")]
    if q.dtype() == GgmlDType::Q5_0 && available() && q.device().is_cpu() {
        let (rows, cols) = q.shape().dims2()?;
        let data = q.data()?;
        QuantMatrix::new(Format::Q5_0, &data, rows, cols)?;
        let mut out = vec![0f32; rows * cols];
        let chunk = chunk_rows(rows) * cols / 32 * 22;
        out.par_chunks_mut(chunk / 22 * 32).zip(data.par_chunks(chunk)).for_each(|(o, w)| avx2::dequantize_q5_0(w, o));
        return Tensor::from_vec(out, (rows, cols), &q.device());
    }
    q.dequantize(&q.device())
}

/// `x · qᵀ` for an f32 tensor `x` (`[.., cols]`) and a CPU weight tensor `q` (`[rows, cols]`)
/// in `format`: the tensor-level entry point of the model's linear layers.
pub fn forward(format: Format, q: &QTensor, x: &Tensor) -> candle_core::Result<Tensor> {
    let _span = tracing::trace_span!("own_kernel").entered();
    let (rows, cols) = q.shape().dims2()?;
    if x.dim(D::Minus1)? != cols {
        candle_core::bail!("activations {:?} do not match a weight of {rows} × {cols}", x.dims());
    }
    let m = x.elem_count() / cols;
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let data = q.data()?;
    let w = QuantMatrix::new(format, &data, rows, cols)?;
    let mut out = vec![0f32; m * rows];
    matmul(&w, &xs, m, &mut out)?;
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = rows;
    }
    Tensor::from_vec(out, dims, x.device())
}
