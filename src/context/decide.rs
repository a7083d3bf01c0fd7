//! The "should I complete here, and how much?" rules.

use crate::config::{Multiline, Settings};
use crate::session::Snapshot;
use crate::syntax::Opener;

use super::CursorLine;

/// How much the model may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stop at the end of the line.
    SingleLine,
    /// May continue over several lines, up to the end of the enclosing block.
    MultiLine,
}

/// Why no completion is offered at a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Completions are switched off in the settings.
    Disabled,
    /// The cursor is inside a comment or a string (and `completeInComments` is off).
    InCommentOrString,
    /// Text that is not just closing brackets follows the cursor on its line.
    TextAfterCursor,
    /// The cursor ends a complete statement and the next line already has code.
    EndOfStatement,
}

/// Characters that may follow the cursor without preventing a completion.
fn is_closing(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '"' | '\'' | '`' | ';' | ',' | ':' | '>') || c.is_whitespace()
}

pub(super) fn decide(snapshot: &Snapshot, offset: usize, line: &CursorLine, settings: &Settings) -> Result<Mode, SkipReason> {
    if !settings.enabled {
        return Err(SkipReason::Disabled);
    }
    if !settings.complete_in_comments && in_comment_or_string(snapshot, offset) {
        return Err(SkipReason::InCommentOrString);
    }
    if !line.tail.chars().all(is_closing) {
        return Err(SkipReason::TextAfterCursor);
    }
    if ends_complete_statement(snapshot, line) && next_line_has_code(snapshot, line) {
        return Err(SkipReason::EndOfStatement);
    }
    Ok(match settings.multiline {
        Multiline::Never => Mode::SingleLine,
        Multiline::Always => Mode::MultiLine,
        Multiline::Auto if line.head.trim().is_empty() => Mode::MultiLine,
        Multiline::Auto => {
            if line.tail.trim().is_empty() && crate::syntax::opener(&line.head).is_some_and(Opener::starts_body) {
                Mode::MultiLine
            } else {
                Mode::SingleLine
            }
        }
    })
}

/// The cursor is at the end of a line whose statement is complete: it ends in a terminator
/// (`;`, a closing bracket or quote, a digit) and has no syntax error. A line ending in a word
/// may be a word being typed, so it does not count.
fn ends_complete_statement(snapshot: &Snapshot, line: &CursorLine) -> bool {
    let head = line.head.trim_end();
    if !line.tail.trim().is_empty() || head.trim().is_empty() {
        return false;
    }
    let Some(last) = head.chars().last() else { return false };
    if !matches!(last, ';' | ')' | ']' | '}' | '"' | '\'') && !last.is_ascii_digit() {
        return false;
    }
    let Some(tree) = &snapshot.tree else { return false };
    !errors_in(tree.root_node(), line.start, line.end)
}

/// Whether an ERROR or MISSING node overlaps bytes `start..end`.
fn errors_in(node: tree_sitter::Node<'_>, start: usize, end: usize) -> bool {
    if node.end_byte() < start || node.start_byte() > end || !node.has_error() {
        return false;
    }
    if node.is_error() || node.is_missing() {
        return true;
    }
    let mut cursor = node.walk();
    let found = node.children(&mut cursor).any(|child| errors_in(child, start, end));
    found
}

/// Whether the line after the cursor line holds anything but whitespace.
fn next_line_has_code(snapshot: &Snapshot, line: &CursorLine) -> bool {
    let text = &snapshot.text;
    let mut at = line.end;
    // Skip the line break.
    while at < text.len_bytes() && matches!(text.byte(at), b'\r' | b'\n') {
        if text.byte(at) == b'\n' {
            at += 1;
            break;
        }
        at += 1;
    }
    while at < text.len_bytes() {
        match text.byte(at) {
            b'\n' => return false,
            b' ' | b'\t' | b'\r' => at += 1,
            _ => return true,
        }
    }
    false
}

/// True when the smallest syntax node around the cursor is a comment or a string literal.
fn in_comment_or_string(snapshot: &Snapshot, offset: usize) -> bool {
    let Some(tree) = &snapshot.tree else { return false };
    // Look at the character before the cursor: a cursor right after a closing quote is outside.
    let probe = offset.saturating_sub(1);
    let Some(node) = tree.root_node().descendant_for_byte_range(probe, probe) else { return false };
    let mut node = Some(node);
    while let Some(n) = node {
        let kind = n.kind();
        if kind == "template_substitution" || kind == "interpolation" {
            return false; // code inside a template string
        }
        if kind.contains("comment") {
            // At the very end of a comment the cursor is still inside, unless it closed a block comment.
            let end = n.end_byte();
            let closed_block = end >= 2 && snapshot.text.byte(end - 2) == b'*' && snapshot.text.byte(end - 1) == b'/';
            return offset > n.start_byte() && (offset < end || (offset == end && !closed_block));
        }
        if kind.contains("string") && offset > n.start_byte() && offset < n.end_byte() {
            return true;
        }
        node = n.parent();
    }
    false
}
