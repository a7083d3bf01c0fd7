//! What the model should see, and whether to complete at all.
//!
//! Given a document snapshot and a cursor, [`gather`] decides whether a suggestion belongs here
//! ([`Decision::Skip`] with a reason otherwise), whether it may span several lines, and cuts the
//! prefix/suffix text windows at line boundaries for the prompt module.

mod decide;

pub use decide::{Mode, SkipReason};

use ropey::Rope;

use crate::config::Settings;
use crate::prompt::PromptText;
use crate::session::{line_end_of, line_start_of, ByteOffset, Snapshot};
use crate::syntax::Language;

/// How the file indents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndentStyle {
    Tabs,
    Spaces(usize),
}

/// The indentation style of `text`: tabs if most indented lines start with a tab, else spaces
/// with the most common step between consecutive indentation levels (2, 4 or 8; default 4).
pub fn indent_style(text: &str) -> IndentStyle {
    let (mut tabs, mut spaces) = (0usize, 0usize);
    let mut steps = [0usize; 9];
    let mut previous = 0usize;
    for line in text.lines() {
        if line.starts_with('\t') {
            tabs += 1;
        } else if line.starts_with(' ') {
            spaces += 1;
        }
        if line.trim().is_empty() {
            continue;
        }
        let width = line.len() - line.trim_start_matches(' ').len();
        if width > previous && width - previous < steps.len() {
            steps[width - previous] += 1;
        }
        previous = width;
    }
    if tabs > spaces {
        return IndentStyle::Tabs;
    }
    let best = [2usize, 4, 8].into_iter().max_by_key(|&n| (steps[n], n == 4)).unwrap_or(4);
    IndentStyle::Spaces(if steps[best] == 0 { 4 } else { best })
}

/// Everything the engine and the post-processor need for one completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletionContext {
    pub text: PromptText,
    pub mode: Mode,
    pub language: Language,
    pub path: String,
    /// Leading whitespace of the cursor line.
    pub indent: String,
    /// Text after the cursor on the cursor line.
    pub line_tail: String,
    /// How the file indents (from the text around the cursor).
    pub indent_style: IndentStyle,
    /// The kind of the syntax node around the cursor ([`crate::syntax::cursor_node_kind`];
    /// `"none"` without a syntax tree).
    pub cursor_node: &'static str,
}

/// Whether to complete, and with what. Made once per request and matched at once, so the
/// large variant is not boxed (that would only add an allocation per keystroke).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    Complete(CompletionContext),
    Skip(SkipReason),
}

/// The cursor line split at the cursor, with the byte offsets of the line's start and end.
pub(crate) struct CursorLine {
    pub start: usize,
    pub head: String,
    pub tail: String,
    pub end: usize,
}

pub(crate) fn cursor_line(text: &Rope, offset: usize) -> CursorLine {
    let offset = offset.min(text.len_bytes());
    let start = line_start_of(text, ByteOffset(offset)).0;
    let end = line_end_of(text, ByteOffset(offset)).0;
    CursorLine { start, head: slice(text, start, offset), tail: slice(text, offset, end), end }
}

/// Decides and cuts the windows. `offset` must be a char boundary of the snapshot's text.
pub fn gather(snapshot: &Snapshot, offset: ByteOffset, settings: &Settings) -> Decision {
    let text = &snapshot.text;
    let line = cursor_line(text, offset.0);
    let mode = match decide::decide(snapshot, offset.0, &line, settings) {
        Ok(mode) => mode,
        Err(reason) => return Decision::Skip(reason),
    };

    let prefix_window = crate::prompt::max_bytes(settings.max_prefix_tokens);
    let suffix_window = crate::prompt::max_bytes(settings.max_suffix_tokens);
    // Prefix: whole lines before the cursor line, starting at a line boundary.
    let first = line_start_at_or_after(text, line.start.saturating_sub(prefix_window));
    let prefix = slice(text, first, line.start);
    let prefix_line = text.byte_to_line(first);
    // Suffix: the rest of the cursor line and whole lines after it.
    let last = line_end_at_or_before(text, (line.end + suffix_window).min(text.len_bytes()), line.end);
    let suffix = slice(text, line.start + line.head.len(), last);

    let indent: String = line.head.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
    let indent_style = indent_style(&format!("{prefix}{}{suffix}", line.head));
    let cursor_node = snapshot.tree.as_ref().map_or("none", |t| crate::syntax::cursor_node_kind(t, node_probe(offset.0, &line.head)));
    Decision::Complete(CompletionContext {
        text: PromptText { prefix, prefix_line, suffix, line_head: line.head, ..PromptText::default() },
        mode,
        language: snapshot.language,
        path: snapshot.path.to_string(),
        indent,
        line_tail: line.tail,
        indent_style,
        cursor_node,
    })
}

/// Where to look for the syntax node around the cursor: after the last character typed on the
/// line, spaces after it left out (after `return ` the node is the return statement); on a line
/// of only indentation, at the cursor (the enclosing block).
fn node_probe(offset: usize, head: &str) -> usize {
    let trimmed = head.trim_end();
    if trimmed.trim_start().is_empty() {
        offset
    } else {
        offset - (head.len() - trimmed.len())
    }
}

fn slice(text: &Rope, start: usize, end: usize) -> String {
    if start >= end {
        return String::new();
    }
    text.byte_slice(start..end).to_string()
}

/// The first line start at or after byte `at` (so a window never starts mid-line).
fn line_start_at_or_after(text: &Rope, at: usize) -> usize {
    let at = floor_boundary(text, at);
    let start = line_start_of(text, ByteOffset(at)).0;
    if start == at {
        return start;
    }
    // Skip past the end of this line and its break.
    let end = line_end_of(text, ByteOffset(at)).0;
    let mut next = end;
    if next < text.len_bytes() && text.byte(next) == b'\r' {
        next += 1;
    }
    if next < text.len_bytes() && text.byte(next) == b'\n' {
        next += 1;
    }
    next
}

/// The start of the line holding byte `at` (a whole-line cut), but never before `min`.
fn line_end_at_or_before(text: &Rope, at: usize, min: usize) -> usize {
    if at >= text.len_bytes() {
        return text.len_bytes();
    }
    line_start_of(text, ByteOffset(floor_boundary(text, at))).0.max(min)
}

/// The nearest char boundary at or before `at`.
fn floor_boundary(text: &Rope, at: usize) -> usize {
    let at = at.min(text.len_bytes());
    text.char_to_byte(text.byte_to_char(at))
}

#[cfg(test)]
mod snapshots;
#[cfg(test)]
mod tests;
