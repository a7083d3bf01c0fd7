//! The FIM and stop token ids, looked up in the loaded tokenizer (never hard-coded).

use tokenizers::Tokenizer;

/// Special token ids of a Qwen2.5-Coder tokenizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecialTokens {
    pub fim_prefix: u32,
    pub fim_middle: u32,
    pub fim_suffix: u32,
    pub fim_pad: u32,
    pub repo_name: u32,
    pub file_sep: u32,
    pub end_of_text: u32,
    /// Every id that ends a completion: end-of-text, FIM markers, chat markers.
    pub stop: Vec<u32>,
}

/// The tokenizer lacks a token the FIM prompt needs.
#[derive(Debug, thiserror::Error)]
#[error("the model's tokenizer has no `{0}` token: inkling needs a fill-in-the-middle model such as Qwen2.5-Coder")]
pub struct MissingToken(pub &'static str);

impl SpecialTokens {
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Result<SpecialTokens, MissingToken> {
        let id = |name: &'static str| tokenizer.token_to_id(name).ok_or(MissingToken(name));
        let mut s = SpecialTokens {
            fim_prefix: id("<|fim_prefix|>")?,
            fim_middle: id("<|fim_middle|>")?,
            fim_suffix: id("<|fim_suffix|>")?,
            fim_pad: id("<|fim_pad|>")?,
            repo_name: id("<|repo_name|>")?,
            file_sep: id("<|file_sep|>")?,
            end_of_text: id("<|endoftext|>")?,
            stop: Vec::new(),
        };
        s.stop = vec![s.end_of_text, s.fim_prefix, s.fim_middle, s.fim_suffix, s.fim_pad, s.repo_name, s.file_sep];
        for optional in ["<|im_end|>", "<|im_start|>", "<|cursor|>"] {
            if let Some(i) = tokenizer.token_to_id(optional) {
                s.stop.push(i);
            }
        }
        Ok(s)
    }

    pub fn is_stop(&self, id: u32) -> bool {
        self.stop.contains(&id)
    }
}
