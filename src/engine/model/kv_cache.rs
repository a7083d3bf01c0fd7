//! A preallocated key/value cache whose length can be cut back in O(1).
//!
//! Each layer owns one K and one V tensor of shape `[1, num_kv_heads, max_ctx, head_dim]`,
//! allocated once. New positions are written in place with [`Tensor::slice_set`]; attention
//! reads a narrowed view of the first `len` positions (no copy). Truncating only moves the
//! shared length cursor: stale entries past it are overwritten by the next append. This is
//! what lets the engine keep the common prefix of two consecutive prompts and only run the
//! tokens that changed. A run of cached positions can also be copied out ([`KvCache::span`])
//! and appended again at another position ([`KvCache::append_span`]), which is how the engine
//! moves cached text that a new prompt holds at another place.

use candle_core::{DType, Device, Tensor};

/// Per-layer K/V storage plus one length cursor shared by all layers.
#[derive(Debug)]
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
    max_ctx: usize,
}

impl KvCache {
    /// Allocates `num_layers` zeroed K and V tensors of `[1, num_kv_heads, max_ctx, head_dim]`.
    pub fn new(
        num_layers: usize,
        num_kv_heads: usize,
        head_dim: usize,
        max_ctx: usize,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let shape = (1, num_kv_heads, max_ctx, head_dim);
        let mut keys = Vec::with_capacity(num_layers);
        let mut values = Vec::with_capacity(num_layers);
        for _ in 0..num_layers {
            keys.push(Tensor::zeros(shape, dtype, device)?);
            values.push(Tensor::zeros(shape, dtype, device)?);
        }
        Ok(Self { keys, values, len: 0, max_ctx })
    }

    /// Number of committed positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Capacity in positions.
    pub fn max_ctx(&self) -> usize {
        self.max_ctx
    }

    /// Forgets every position at or after `len` (no-op when `len >= self.len()`). O(1).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Fails (without changing anything) if `n` more positions do not fit.
    pub fn ensure_room(&self, n: usize) -> candle_core::Result<()> {
        match self.len.checked_add(n) {
            Some(end) if end <= self.max_ctx => Ok(()),
            _ => candle_core::bail!(
                "KV cache overflow: {} cached + {n} new positions exceed the context of {} \
                 (truncate the cache or shorten the prompt)",
                self.len,
                self.max_ctx
            ),
        }
    }

    /// Writes `k` and `v` (`[1, num_kv_heads, n, head_dim]`) for `layer` at the uncommitted
    /// positions `len()..len()+n` and returns views of positions `0..len()+n`.
    ///
    /// The cursor does not move: call [`KvCache::commit`] once every layer has been written, so
    /// that a forward pass failing half-way leaves the cache as it was.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let n = k.dim(2)?;
        self.ensure_room(n)?;
        let (Some(k_cache), Some(v_cache)) = (self.keys.get(layer), self.values.get(layer)) else {
            candle_core::bail!("KV cache has no layer {layer}");
        };
        k_cache.slice_set(&k.contiguous()?, 2, self.len)?;
        v_cache.slice_set(&v.contiguous()?, 2, self.len)?;
        let end = self.len + n;
        Ok((k_cache.narrow(2, 0, end)?, v_cache.narrow(2, 0, end)?))
    }

    /// Marks `n` appended positions as cached.
    pub fn commit(&mut self, n: usize) -> candle_core::Result<()> {
        self.ensure_room(n)?;
        self.len += n;
        Ok(())
    }
}

/// A copy of the keys and values of the cached positions `start..start + len`.
#[derive(Debug)]
pub struct KvSpan {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    start: usize,
    len: usize,
}

impl KvSpan {
    /// The first position the span was copied from.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Positions in the span.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the span holds no position.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl KvCache {
    /// Copies positions `start..start + len` out, so that they survive the cache being
    /// truncated and rewritten.
    pub fn span(&self, start: usize, len: usize) -> candle_core::Result<KvSpan> {
        if start.checked_add(len).is_none_or(|end| end > self.len) {
            candle_core::bail!("KV span {start}+{len} is outside the {} cached positions", self.len);
        }
        let copy = |t: &Tensor| t.narrow(2, start, len)?.contiguous()?.copy();
        Ok(KvSpan {
            keys: self.keys.iter().map(copy).collect::<candle_core::Result<_>>()?,
            values: self.values.iter().map(copy).collect::<candle_core::Result<_>>()?,
            start,
            len,
        })
    }

    /// Appends a span at position `len()` and commits it. Each layer's keys pass through
    /// `turn` first: they carry the rotation of the positions they were copied from, and the
    /// caller turns them by the distance moved (see the model's `append_span`).
    pub fn append_span(&mut self, span: &KvSpan, turn: impl Fn(&Tensor) -> candle_core::Result<Tensor>) -> candle_core::Result<()> {
        if span.keys.len() != self.keys.len() {
            candle_core::bail!("KV span does not fit this cache");
        }
        self.ensure_room(span.len)?;
        if span.len == 0 {
            return Ok(());
        }
        for (layer, (k, v)) in span.keys.iter().zip(&span.values).enumerate() {
            self.keys[layer].slice_set(&turn(k)?.contiguous()?, 2, self.len)?;
            self.values[layer].slice_set(v, 2, self.len)?;
        }
        self.len += span.len;
        Ok(())
    }
}

/// A saved copy of the first `len` positions of every layer, for switching between files
/// without recomputing (see the engine's per-file snapshot LRU).
#[derive(Debug)]
pub struct KvSnapshot {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
}

impl KvSnapshot {
    /// Positions saved.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was saved.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Memory the snapshot holds.
    pub fn bytes(&self) -> usize {
        self.keys.iter().chain(&self.values).map(|t| t.elem_count() * t.dtype().size_in_bytes()).sum()
    }
}

impl KvCache {
    /// Copies the cached positions out (one copy of `len` positions per layer).
    pub fn snapshot(&self) -> candle_core::Result<KvSnapshot> {
        // `contiguous` packs the narrowed view; `copy` then guarantees own storage even when
        // the view was already contiguous (a full cache), so later in-place writes cannot leak in.
        let copy = |t: &Tensor| t.narrow(2, 0, self.len)?.contiguous()?.copy();
        Ok(KvSnapshot {
            keys: self.keys.iter().map(copy).collect::<candle_core::Result<_>>()?,
            values: self.values.iter().map(copy).collect::<candle_core::Result<_>>()?,
            len: self.len,
        })
    }

    /// Replaces the cache content with a snapshot taken from a cache of the same shape.
    pub fn restore(&mut self, snap: &KvSnapshot) -> candle_core::Result<()> {
        if snap.keys.len() != self.keys.len() || snap.len > self.max_ctx {
            candle_core::bail!("KV snapshot does not fit this cache");
        }
        self.len = 0;
        if snap.len > 0 {
            for (dst, src) in self.keys.iter().zip(&snap.keys).chain(self.values.iter().zip(&snap.values)) {
                dst.slice_set(src, 2, 0)?;
            }
        }
        self.len = snap.len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize, value: f32) -> Tensor {
        Tensor::full(value, (1, 2, n, 4), &Device::Cpu).unwrap()
    }

    #[test]
    fn append_truncate_and_overwrite() {
        let mut cache = KvCache::new(1, 2, 4, 8, DType::F32, &Device::Cpu).unwrap();
        let (k, _) = cache.append(0, &filled(3, 1.0), &filled(3, 1.0)).unwrap();
        assert_eq!(k.dims(), &[1, 2, 3, 4]);
        cache.commit(3).unwrap();
        cache.truncate(10); // no-op
        assert_eq!(cache.len(), 3);
        cache.truncate(1);
        assert_eq!(cache.len(), 1);
        let (k, v) = cache.append(0, &filled(2, 2.0), &filled(2, 3.0)).unwrap();
        cache.commit(2).unwrap();
        let k: Vec<f32> = k.i_sum_positions();
        assert_eq!(k, vec![8.0, 16.0, 16.0]);
        assert_eq!(v.i_sum_positions(), vec![8.0, 24.0, 24.0]);
    }

    #[test]
    fn a_span_moves_to_the_end_and_survives_overwrites() {
        let mut cache = KvCache::new(2, 2, 4, 16, DType::F32, &Device::Cpu).unwrap();
        for (layer, value) in [(0, 1.0), (1, 10.0)] {
            let ramp = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap().reshape((1, 1, 6, 1)).unwrap();
            let k = (ramp.broadcast_as((1, 2, 6, 4)).unwrap() + value).unwrap();
            cache.append(layer, &k, &k).unwrap();
        }
        cache.commit(6).unwrap();
        assert!(cache.span(4, 3).is_err(), "past the cached length");
        let span = cache.span(3, 2).unwrap(); // positions 3 and 4
        cache.truncate(1);
        cache.append(0, &filled(1, 0.0), &filled(1, 0.0)).unwrap(); // overwrite position 1 ...
        cache.append(1, &filled(1, 0.0), &filled(1, 0.0)).unwrap();
        cache.commit(1).unwrap();
        cache.append_span(&span, |k| k * 2.0).unwrap(); // ... then put 3 and 4 at 2 and 3
        assert_eq!(cache.len(), 4);
        let (k, v) = (cache.keys[1].narrow(2, 0, 4).unwrap(), cache.values[1].narrow(2, 0, 4).unwrap());
        // Layer 1, per position: 8 values of (position + 10), keys doubled by `turn`.
        assert_eq!(v.i_sum_positions(), vec![80.0, 0.0, 104.0, 112.0]);
        assert_eq!(k.i_sum_positions(), vec![80.0, 0.0, 208.0, 224.0]);
        let mut full = KvCache::new(2, 2, 4, 5, DType::F32, &Device::Cpu).unwrap();
        full.len = 4;
        assert!(full.append_span(&span, |k| Ok(k.clone())).is_err(), "no room");
        assert_eq!(full.len(), 4);
    }

    #[test]
    fn overflow_is_an_error_and_changes_nothing() {
        let mut cache = KvCache::new(2, 2, 4, 4, DType::F32, &Device::Cpu).unwrap();
        cache.append(0, &filled(3, 1.0), &filled(3, 1.0)).unwrap();
        cache.commit(3).unwrap();
        assert!(cache.append(1, &filled(2, 1.0), &filled(2, 1.0)).is_err());
        assert!(cache.commit(2).is_err());
        assert!(cache.append(5, &filled(1, 1.0), &filled(1, 1.0)).is_err());
        assert_eq!(cache.len(), 3);
    }

    /// Sum over heads and head_dim for each position.
    trait SumPositions {
        fn i_sum_positions(&self) -> Vec<f32>;
    }
    impl SumPositions for Tensor {
        fn i_sum_positions(&self) -> Vec<f32> {
            self.sum(3).unwrap().sum(1).unwrap().squeeze(0).unwrap().to_vec1().unwrap()
        }
    }
}
