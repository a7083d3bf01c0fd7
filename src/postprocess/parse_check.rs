//! Rejecting completions that break the code: the text around the cursor is parsed with and
//! without the candidate; a candidate that adds tree-sitter ERROR/MISSING nodes (more of them,
//! or one starting inside the inserted text) is cut back to its longest prefix that does not
//! (by lines, then by words), or dropped.

use crate::context::CompletionContext;
use crate::syntax::{count_errors, Parser};

/// Most shorter candidates tried before giving up.
const MAX_TRIES: usize = 16;

use std::ops::Range;

/// What the parse of a text says near the insertion.
struct Errors {
    count: usize,
    /// An error node starts inside the inserted range.
    starts_inside: bool,
    /// An error node overlaps the inserted range (or touches the cursor when it is empty).
    overlaps: bool,
}

fn errors(parser: &mut Parser, text: &str, inserted: Range<usize>) -> Option<Errors> {
    let rope = ropey::Rope::from_str(text);
    let tree = parser.parse(&rope, None)?;
    let root = tree.root_node();
    let touch = inserted.start.saturating_sub(1)..inserted.end.max(inserted.start + 1);
    Some(Errors { count: count_errors(root), starts_inside: error_in(root, &inserted, true), overlaps: error_in(root, &touch, false) })
}

/// Whether an ERROR/MISSING node starts inside `range` (`starts`) or overlaps it.
fn error_in(node: tree_sitter::Node<'_>, range: &Range<usize>, starts: bool) -> bool {
    if !node.has_error() || node.end_byte() < range.start || node.start_byte() >= range.end {
        return false;
    }
    if node.is_error() || node.is_missing() {
        let hit = if starts { range.contains(&node.start_byte()) } else { node.start_byte() < range.end && node.end_byte() >= range.start };
        if hit {
            return true;
        }
    }
    let mut cursor = node.walk();
    let found = node.children(&mut cursor).any(|child| error_in(child, range, starts));
    found
}

/// Shorter versions of `text` to try, longest first: whole lines, then word boundaries.
fn shorter(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    for n in (1..lines.len()).rev() {
        out.push(lines[..n].join("\n"));
    }
    let first = lines[0];
    let cuts: Vec<usize> =
        first.char_indices().filter(|(_, c)| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '.' | ';')).map(|(i, _)| i).collect();
    for &i in cuts.iter().rev() {
        let cut = first[..i].trim_end();
        if !cut.trim().is_empty() && out.last().map(String::as_str) != Some(cut) {
            out.push(cut.to_string());
        }
    }
    out
}

/// `text` if inserting it adds no syntax error, else its longest prefix that adds none, else
/// `None`. Languages without a grammar pass unchecked.
pub fn longest_clean(text: &str, ctx: &CompletionContext) -> Option<String> {
    let Ok(mut parser) = Parser::new(ctx.language) else { return Some(text.to_string()) };
    let around = |completion: &str| format!("{}{}{}{}", ctx.text.prefix, ctx.text.line_head, completion, ctx.text.suffix);
    let start = ctx.text.prefix.len() + ctx.text.line_head.len();
    let Some(base) = errors(&mut parser, &around(""), start..start) else { return Some(text.to_string()) };
    // Clean: no more error nodes than before, none starting inside the inserted text, and none
    // swallowing it unless the code at the cursor was already broken before.
    let clean = |parser: &mut Parser, candidate: &str| {
        errors(parser, &around(candidate), start..start + candidate.len())
            .is_some_and(|e| e.count <= base.count && !e.starts_inside && (base.overlaps || !e.overlaps))
    };
    if clean(&mut parser, text) {
        return Some(text.to_string());
    }
    shorter(text).into_iter().take(MAX_TRIES).find(|c| clean(&mut parser, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_candidates_go_by_lines_then_words() {
        assert_eq!(shorter("a b\nc\nd"), vec!["a b\nc", "a b", "a"]);
        assert_eq!(shorter("f(x, y) z"), vec!["f(x, y)", "f(x, y", "f(x,", "f(x", "f"]);
    }
}
