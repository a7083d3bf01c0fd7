//! Cutting raw model output so it fits the code around the cursor.
//!
//! The model keeps writing past the point where a person would stop. [`shape`] keeps the part a
//! user would accept: one line in single-line mode; in multi-line mode, up to the end of the
//! enclosing block (by indentation), never repeating what already follows the cursor.
//! [`block_done`] lets the decode loop stop as soon as the kept part cannot grow any more.
//! Then the text is made to fit: the file's indentation characters, brackets it opened closed
//! (one-line completions), and no new syntax errors (cut back to the longest clean prefix).

mod fit;
mod parse_check;

use crate::context::{CompletionContext, Mode};
use crate::syntax::Opener;

/// Display width of leading whitespace (a tab counts as 4, as most editors show it).
fn indent_width(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ' || *c == '\t').map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

fn is_closer_line(line: &str) -> bool {
    matches!(line.trim_start().chars().next(), Some('}' | ')' | ']'))
}

/// The first non-blank line after the cursor line, trimmed.
fn next_suffix_line(ctx: &CompletionContext) -> Option<&str> {
    let mut lines = ctx.text.suffix.split('\n');
    lines.next(); // rest of the cursor line
    lines.map(str::trim).find(|l| !l.is_empty())
}

/// Splits raw output into the kept lines. Returns the kept lines and whether a cut happened (the
/// block ended, or the output reached text that already follows the cursor).
fn keep_lines<'a>(raw: &'a str, ctx: &CompletionContext, complete_lines_only: bool) -> (Vec<&'a str>, bool) {
    let mut lines: Vec<&str> = raw.split('\n').collect();
    if complete_lines_only {
        lines.pop(); // the last piece is not finished yet
    }
    if ctx.mode == Mode::SingleLine {
        let cut = lines.len() > 1 || (complete_lines_only && raw.contains('\n'));
        lines.truncate(1);
        return (lines, cut);
    }
    // The block's indentation: the cursor line's, or, on a blank cursor line, where the first
    // generated line starts.
    let base = if ctx.text.line_head.trim().is_empty() {
        indent_width(&format!("{}{}", ctx.text.line_head, lines.first().copied().unwrap_or("")))
    } else {
        indent_width(&ctx.indent)
    };
    let opener = crate::syntax::opener(&ctx.text.line_head);
    let next_existing = next_suffix_line(ctx);
    let mut kept = Vec::new();
    let mut blank_run = 0;
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                blank_run += 1;
                if blank_run >= 2 {
                    return (kept, true);
                }
                kept.push(*line);
                continue;
            }
            blank_run = 0;
            // Text that already follows the cursor ends the completion; a lone closing bracket
            // does not count (it may close a block the completion opened).
            if Some(trimmed) == next_existing && trimmed.chars().any(char::is_alphanumeric) {
                return (kept, true);
            }
            let width = indent_width(line);
            if width < base {
                // Dedent below the block: a closing bracket of the block itself is kept.
                if is_closer_line(line) && opener.is_some_and(Opener::owns_closer) {
                    kept.push(*line);
                }
                return (kept, true);
            }
            if width == base && opener.is_some() && i > 0 {
                if is_closer_line(line) && opener.is_some_and(Opener::owns_closer) {
                    kept.push(*line);
                }
                return (kept, true);
            }
        }
        kept.push(*line);
    }
    (kept, false)
}

/// True once the decode loop may stop: the kept text cannot grow any more.
pub fn block_done(raw: &str, ctx: &CompletionContext) -> bool {
    keep_lines(raw, ctx, true).1
}

/// The part of `raw` a user would keep, or `None` when nothing is left.
pub fn shape(raw: &str, ctx: &CompletionContext) -> Option<String> {
    let raw = raw.replace('\r', "");
    let (lines, _) = keep_lines(&raw, ctx, false);
    let mut text = lines.join("\n");
    let trimmed_len = text.trim_end().len();
    text.truncate(trimmed_len);
    // Do not repeat what already follows the cursor on its line (e.g. an auto-inserted `)`).
    let tail = ctx.line_tail.trim();
    if !tail.is_empty() && text.ends_with(tail) {
        text.truncate(text.len() - tail.len());
        let trimmed_len = text.trim_end().len();
        text.truncate(trimmed_len);
    }
    if text.trim().is_empty() {
        return None;
    }
    let text = match ctx.mode {
        Mode::SingleLine => fit::balance(&text, &ctx.line_tail),
        Mode::MultiLine => fit::reindent(&text, ctx.indent_style),
    };
    parse_check::longest_clean(&text, ctx).filter(|t| !t.trim().is_empty())
}

#[cfg(test)]
mod tests;
