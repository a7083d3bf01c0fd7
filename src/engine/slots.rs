//! Per-file KV-cache snapshots: switching to another file and back does not recompute its
//! prompt. The live cache belongs to one slot (a file); when a request comes for another slot,
//! the live cache is copied into a small LRU (bounded in bytes) and the other slot's snapshot,
//! if any, is copied back.

use std::collections::VecDeque;

use anyhow::Result;

use super::model::{KvSnapshot, Qwen2};

struct Saved {
    slot: String,
    tokens: Vec<u32>,
    kv: KvSnapshot,
}

/// The saved caches, most recently used last.
#[derive(Default)]
pub struct Slots {
    live: Option<String>,
    saved: VecDeque<Saved>,
}

impl Slots {
    /// Makes `slot` the live one. `cached` holds the tokens of the live cache and is replaced by
    /// the restored slot's tokens. Returns whether a snapshot was restored.
    pub fn switch_to(&mut self, slot: &str, model: &mut Qwen2, cached: &mut Vec<u32>, budget_bytes: usize) -> Result<bool> {
        if self.live.as_deref() == Some(slot) {
            return Ok(false);
        }
        if let Some(previous) = self.live.take() {
            if budget_bytes > 0 && !cached.is_empty() {
                let kv = model.snapshot()?;
                self.saved.retain(|s| s.slot != previous);
                self.saved.push_back(Saved { slot: previous, tokens: cached.clone(), kv });
            }
        }
        self.live = Some(slot.to_string());
        let restored = match self.saved.iter().position(|s| s.slot == slot) {
            Some(i) => {
                let saved = self.saved.remove(i).ok_or_else(|| anyhow::anyhow!("slot vanished"))?;
                model.restore(&saved.kv)?;
                *cached = saved.tokens;
                true
            }
            None => false,
        };
        self.evict(budget_bytes);
        Ok(restored)
    }

    fn evict(&mut self, budget_bytes: usize) {
        while self.bytes() > budget_bytes {
            if self.saved.pop_front().is_none() {
                break;
            }
        }
    }

    /// Memory held by saved snapshots.
    pub fn bytes(&self) -> usize {
        self.saved.iter().map(|s| s.kv.bytes()).sum()
    }

    #[cfg(test)]
    pub fn saved_count(&self) -> usize {
        self.saved.len()
    }

    /// Forgets everything (after an error left the live cache in doubt).
    pub fn clear(&mut self) {
        self.live = None;
        self.saved.clear();
    }
}
