//! Prompt assembly: Qwen2.5-Coder fill-in-the-middle layout → token ids.
//!
//! The layout puts what changes least first, so that typing mostly *appends* tokens and the
//! engine can reuse its KV cache:
//!
//! ```text
//! <|fim_prefix|>[# Path: other/file.py\n# code ...]         other files as comments, oldest-stable first
//!               [lines before the cursor line]
//! <|fim_suffix|>[rest of the cursor line + lines after]
//! <|fim_middle|>[cursor line up to the cursor]              ← the model continues from here
//! ```
//!
//! Other files are written as line comments at the top of the prefix, as Copilot, Tabby and
//! Continue do. Qwen's repo-level format (`<|repo_name|>name <|file_sep|>path\ncode ...
//! <|file_sep|>this/path\n` before `<|fim_prefix|>`) is used only for languages without line
//! comments: on the same held-out Python block cursors with the 0.5B model it hurt multi-line
//! answers about twice as much as comments did (`docs/quality.md` has the figures).
//!
//! Each segment is tokenized on its own, so an edit on the cursor line only changes the last
//! segment's tokens. Budgets are in tokens: the prefix loses whole lines from the top, the suffix
//! whole lines from the bottom. The same code builds training prompts (`finetune/`), so serving
//! and training prompts are byte-identical.

mod special;

pub use special::SpecialTokens;

use anyhow::{Context as _, Result};
use tokenizers::Tokenizer;

use crate::syntax::Language;

/// Bytes of code that `tokens` tokens typically hold (Qwen's tokenizer averages about 3.5 bytes
/// per token on source code): how much text to gather for a token budget that the prompt then
/// trims exactly. The one estimate of text per token, with [`max_bytes`].
pub fn typical_bytes(tokens: usize) -> usize {
    tokens * 7 / 2
}

/// Bytes that `tokens` tokens hold at most in practice (8 per token: long identifiers, rare
/// characters): a window cut to this before tokenizing still holds its whole token budget.
pub fn max_bytes(tokens: usize) -> usize {
    tokens * 8
}

/// A chunk of another file shown before the FIM prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextChunk {
    pub path: String,
    pub text: String,
}

/// How code from other files is laid out before the FIM part of the prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkLayout {
    /// As line comments at the top of the prefix: `# Path: a/b.py`, then each line commented
    /// with `marker` (`#`, `//`).
    Comments { marker: &'static str },
    /// Qwen's repo-level format: `<|repo_name|>name`, then `<|file_sep|>path\ncode` per chunk,
    /// then `<|file_sep|>path` of the file being completed (without that header the model reads
    /// the FIM part as the end of the last chunk's file).
    RepoLevel { repo_name: Option<String>, path: Option<String> },
}

impl Default for ChunkLayout {
    fn default() -> Self {
        ChunkLayout::RepoLevel { repo_name: None, path: None }
    }
}

impl ChunkLayout {
    /// The layout for a file in `language`: line comments where the language has them (as
    /// Copilot, Tabby and Continue do), Qwen's repo-level format otherwise. `repo_name` and
    /// `path` (this file as the chunk headers show paths) are used by the repo-level format;
    /// empty means unknown.
    pub fn for_language(language: Language, repo_name: String, path: String) -> ChunkLayout {
        match language.line_comment() {
            Some(marker) => ChunkLayout::Comments { marker },
            None => {
                ChunkLayout::RepoLevel { repo_name: Some(repo_name).filter(|s| !s.is_empty()), path: Some(path).filter(|s| !s.is_empty()) }
            }
        }
    }
}

/// The text the model sees, already cut into windows by the context module.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromptText {
    /// Other files, in the order they are laid out (most stable first).
    pub chunks: Vec<ContextChunk>,
    /// How [`PromptText::chunks`] are laid out.
    pub layout: ChunkLayout,
    /// Whole lines before the cursor line (each ending in a line break).
    pub prefix: String,
    /// The document's line number (0-based) of the prefix's first line: the prefix window
    /// starts only at lines on a grid of this numbering (see [`anchor_step`]).
    pub prefix_line: usize,
    /// The rest of the cursor line after the cursor, and the lines after it.
    pub suffix: String,
    /// The cursor line up to the cursor.
    pub line_head: String,
}

/// Token budgets for the prompt segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_prefix_tokens: usize,
    pub max_suffix_tokens: usize,
    pub max_context_tokens: usize,
}

/// Token ids ready for the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub tokens: Vec<u32>,
    /// How many leading tokens are repo context (the most stable part).
    pub context_len: usize,
    /// Token healing: the text of the line head's last token, left out of `tokens`. The first
    /// generated tokens must spell it out again, so the model picks the natural token boundary
    /// (e.g. `" return"` after three spaces rather than `"return"` after a four-space token).
    pub heal: String,
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let enc = tokenizer.encode_fast(text, false).map_err(anyhow::Error::msg).context("tokenizing the prompt")?;
    Ok(enc.get_ids().to_vec())
}

/// Splits `text` into lines that keep their terminators.
fn lines_with_breaks(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Token counts of each line encoded on its own (their sum is close to the joint count).
fn line_token_counts(tokenizer: &Tokenizer, lines: &[&str]) -> Result<Vec<usize>> {
    lines.iter().map(|l| encode(tokenizer, l).map(|ids| ids.len())).collect()
}

/// Lines between two places the prefix window may start, for a budget of `max_tokens`: about a
/// quarter of the budget (at ~10 tokens a line), at most 32 lines.
///
/// The window's first line is where the prompt's cached tokens stop matching when it moves, so
/// it moves in steps: while the cursor walks down, the window keeps its first line and grows,
/// until the budget forces it down to the next line on the grid. Moving to the next line then
/// re-reads only that line (and what follows the prefix), not the whole window. The grid is a
/// pure function of the document's line numbers, so training prompts built from the same text
/// are the same.
pub fn anchor_step(max_tokens: usize) -> usize {
    (max_tokens / 40).clamp(1, 32)
}

/// Tokenizes the prefix, dropping whole lines from the top until it fits `max` tokens and
/// starts on the [`anchor_step`] grid (`first_line`: the document's number of its first line).
/// The kept lines are tokenized in one piece, so the ids equal those of the kept text.
fn fit_prefix(tokenizer: &Tokenizer, prefix: &str, first_line: usize, max: usize) -> Result<Vec<u32>> {
    let lines = lines_with_breaks(prefix);
    let counts = line_token_counts(tokenizer, &lines)?;
    let step = anchor_step(max);
    // The first line at or after `i` on the grid; when none is left before the end (a budget
    // of fewer lines than a step), any line will do.
    let on_grid = |i: usize| {
        let next = (first_line + i).next_multiple_of(step) - first_line;
        if next < lines.len() {
            next
        } else {
            i
        }
    };
    // Estimate from per-line counts, then check the joint encoding exactly.
    let mut start = lines.len();
    let mut total = 0usize;
    while start > 0 && total + counts[start - 1] <= max {
        start -= 1;
        total += counts[start];
    }
    start = on_grid(start);
    loop {
        let ids = encode(tokenizer, &lines[start..].concat())?;
        if ids.len() <= max || start >= lines.len() {
            return Ok(ids);
        }
        start = on_grid(start + 1);
    }
}

/// Tokenizes the suffix, dropping whole lines from the bottom until it fits `max` tokens.
fn fit_suffix(tokenizer: &Tokenizer, suffix: &str, max: usize) -> Result<Vec<u32>> {
    let lines = lines_with_breaks(suffix);
    let counts = line_token_counts(tokenizer, &lines)?;
    let mut end = 0usize;
    let mut total = 0usize;
    while end < lines.len() && total + counts[end] <= max {
        total += counts[end];
        end += 1;
    }
    loop {
        let ids = encode(tokenizer, &lines[..end].concat())?;
        if ids.len() <= max || end == 0 {
            return Ok(ids);
        }
        end -= 1;
    }
}

/// The prompt as text, exactly as the model sees it before healing (special tokens written out).
/// Training data is written with this, so training and serving prompts are byte-identical.
pub fn render(tokenizer: &Tokenizer, special: &SpecialTokens, text: &PromptText, budget: Budget) -> Result<String> {
    let prompt = build(tokenizer, special, text, budget)?;
    let mut out = tokenizer.decode(&prompt.tokens, false).map_err(anyhow::Error::msg)?;
    out.push_str(&prompt.heal);
    Ok(out)
}

/// Builds the token sequence for `text` within `budget`.
pub fn build(tokenizer: &Tokenizer, special: &SpecialTokens, text: &PromptText, budget: Budget) -> Result<Prompt> {
    let mut tokens = Vec::new();
    let repo_level = match &text.layout {
        ChunkLayout::Comments { marker } => {
            tokens.push(special.fim_prefix);
            tokens.extend(commented_chunks(tokenizer, &text.chunks, marker, budget.max_context_tokens)?);
            let context_len = tokens.len();
            tokens.extend(fit_prefix(tokenizer, &text.prefix, text.prefix_line, budget.max_prefix_tokens)?);
            return finish_fim(tokenizer, special, text, budget, tokens, context_len);
        }
        ChunkLayout::RepoLevel { repo_name, path } => (repo_name, path),
    };
    if !text.chunks.is_empty() {
        let (repo_name, path) = repo_level;
        let mut used = 0usize;
        let mut ctx = Vec::new();
        if let Some(name) = repo_name {
            ctx.push(special.repo_name);
            ctx.extend(encode(tokenizer, &format!("{name}\n"))?);
        }
        for chunk in &text.chunks {
            let mut ids = vec![special.file_sep];
            ids.extend(encode(tokenizer, &format!("{}\n{}", chunk.path, chunk.text))?);
            if used + ids.len() > budget.max_context_tokens {
                continue;
            }
            used += ids.len();
            ctx.extend(ids);
        }
        if let Some(path) = path {
            ctx.push(special.file_sep);
            ctx.extend(encode(tokenizer, &format!("{path}\n"))?);
        }
        tokens.extend(ctx);
    }
    let context_len = tokens.len();
    tokens.push(special.fim_prefix);
    tokens.extend(fit_prefix(tokenizer, &text.prefix, text.prefix_line, budget.max_prefix_tokens)?);
    finish_fim(tokenizer, special, text, budget, tokens, context_len)
}

/// The suffix and the middle, after the prefix.
fn finish_fim(
    tokenizer: &Tokenizer,
    special: &SpecialTokens,
    text: &PromptText,
    budget: Budget,
    mut tokens: Vec<u32>,
    context_len: usize,
) -> Result<Prompt> {
    tokens.push(special.fim_suffix);
    tokens.extend(fit_suffix(tokenizer, &text.suffix, budget.max_suffix_tokens)?);
    tokens.push(special.fim_middle);
    let (head, heal) = split_line_head(tokenizer, &text.line_head)?;
    tokens.extend(head);
    Ok(Prompt { tokens, context_len, heal })
}

/// The other files as line comments (`# Path: a/b.py`, then each line commented), each chunk
/// tokenized on its own, in order, skipping chunks that no longer fit `max_tokens`.
fn commented_chunks(tokenizer: &Tokenizer, chunks: &[ContextChunk], marker: &str, max_tokens: usize) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut block = format!("{marker} Path: {}\n", chunk.path);
        for line in chunk.text.lines() {
            block.push_str(marker);
            if !line.is_empty() {
                block.push(' ');
                block.push_str(line);
            }
            block.push('\n');
        }
        let ids = encode(tokenizer, &block)?;
        if out.len() + ids.len() <= max_tokens {
            out.extend(ids);
        }
    }
    Ok(out)
}

/// Splits the line head into the tokens the prompt ends with and the text the model spells
/// first (token healing): the model is given the line head as the tokenizer cuts it when code
/// follows, minus the last token, which it writes itself (constrained to match).
///
/// The cut with code following matters for indentation: alone, eight spaces are one token that
/// is almost never followed by code, and the model then keeps writing whitespace; followed by
/// code they are seven spaces and a space glued to the first word. So the line head is encoded
/// with a probe letter after it, and only the tokens that lie wholly inside the line head count.
fn split_line_head(tokenizer: &Tokenizer, line_head: &str) -> Result<(Vec<u32>, String)> {
    if line_head.is_empty() {
        return Ok((Vec::new(), String::new()));
    }
    let probed = encode(tokenizer, &format!("{line_head}x"))?;
    let mut head = Vec::new();
    let (mut covered, mut last_len) = (0usize, 0usize);
    for &id in &probed {
        let piece = tokenizer.decode(&[id], false).map_err(anyhow::Error::msg)?;
        // Only whole characters that continue the line head.
        if piece.is_empty() || piece.contains('\u{FFFD}') || !line_head[covered..].starts_with(&piece) {
            break;
        }
        head.push(id);
        covered += piece.len();
        last_len = piece.len();
    }
    if covered == line_head.len() {
        // The probe is a token of its own: leave the line head's last token to the model.
        head.pop();
        covered -= last_len;
    }
    Ok((head, line_head[covered..].to_string()))
}

#[cfg(test)]
mod tests;
