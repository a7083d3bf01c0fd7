//! The raw bytes each token stands for, for constrained decoding (token healing).
//!
//! Qwen's tokenizer is byte-level BPE: each vocabulary string spells bytes with the GPT-2
//! byte-to-character table. Inverting that table gives every token's exact bytes without
//! decoding 150k tokens one by one. Special tokens have no bytes (`None`).

use std::collections::HashMap;

use tokenizers::Tokenizer;

/// The GPT-2 byte → printable character table: printable Latin-1 bytes stand for themselves,
/// the others for U+0100 onwards in byte order.
pub(crate) fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\0')
        };
    }
    table
}

/// Token id → bytes (`None` for special tokens and anything not byte-level).
pub struct TokenBytes(Vec<Option<Vec<u8>>>);

impl TokenBytes {
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> TokenBytes {
        let inverse: HashMap<char, u8> = byte_to_char().iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
        let size = tokenizer.get_vocab_size(true);
        let specials: std::collections::HashSet<u32> =
            tokenizer.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(id, _)| *id).collect();
        let bytes = (0..size as u32)
            .map(|id| {
                if specials.contains(&id) {
                    return None;
                }
                let piece = tokenizer.id_to_token(id)?;
                piece.chars().map(|c| inverse.get(&c).copied()).collect::<Option<Vec<u8>>>()
            })
            .collect();
        TokenBytes(bytes)
    }

    pub fn get(&self, id: u32) -> Option<&[u8]> {
        self.0.get(id as usize).and_then(|b| b.as_deref())
    }

    /// Whether `id` may come next while `pending` bytes are still to be spelled: it spells a
    /// prefix of them, or all of them and more.
    pub fn fits(&self, id: u32, pending: &[u8]) -> bool {
        match self.get(id) {
            Some(b) if !b.is_empty() => b.starts_with(pending) || pending.starts_with(b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::Qwen2;
    use crate::engine::testing::tiny_model_path;

    #[test]
    fn token_bytes_match_decoding() {
        let (_, tok) = Qwen2::load(&tiny_model_path(), &candle_core::Device::Cpu, 16).unwrap();
        let bytes = TokenBytes::from_tokenizer(&tok);
        let ids = tok.encode_fast("def add(a, b):\n    return a + b  # é😀", false).unwrap().get_ids().to_vec();
        let joined: Vec<u8> = ids.iter().flat_map(|id| bytes.get(*id).unwrap().to_vec()).collect();
        assert_eq!(String::from_utf8(joined).unwrap(), "def add(a, b):\n    return a + b  # é😀");
        let fim = tok.token_to_id("<|fim_prefix|>").unwrap();
        assert!(bytes.get(fim).is_none());
        let space = tok.encode_fast(" ", false).unwrap().get_ids()[0];
        assert!(bytes.fits(space, b"  "));
        assert!(!bytes.fits(space, b"x"));
    }
}
