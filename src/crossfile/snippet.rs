//! Compact snippets of definitions, shown to the model instead of whole files:
//!
//! * [`head`]: leading doc comments/attributes (≤ 6 lines), then the definition's first
//!   [`HEAD_LINES`] lines, cut after a whole statement of its body and marked `// ...` (`...`
//!   in Python). A method is wrapped in its container's header (`impl Invoice {` … `}`), so
//!   the model sees how it is called. Headers written over several lines are kept whole.
//! * [`outline`]: for classes, traits, interfaces and `impl` blocks: the header, each member's
//!   signature (`fn area(&self) -> f64 { ... }`, `def total(self): ...`), short fields whole,
//!   and the closing line; at most [`OUTLINE_LINES`] lines.
//!
//! Lines longer than [`MAX_LINE`] bytes are cut. Snippets always end in a line break.

use tree_sitter::Node;

use crate::syntax::Language;

/// Lines of a definition a [`head`] snippet keeps.
pub const HEAD_LINES: usize = 12;
/// Most lines of an [`outline`].
pub const OUTLINE_LINES: usize = 40;
/// Most lines of a definition's header kept.
const HEADER_LINES: usize = 8;
/// Longest line kept, in bytes.
const MAX_LINE: usize = 200;
/// Most lines of leading comments and attributes kept.
const DOC_LINES: usize = 6;

/// A file's text with its line starts, for cutting whole lines.
pub(crate) struct Source<'s> {
    text: &'s str,
    line_starts: Vec<usize>,
    language: Language,
}

impl<'s> Source<'s> {
    pub(crate) fn new(text: &'s str, language: Language) -> Source<'s> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { text, line_starts, language }
    }

    /// The text of `node` (empty when its range is not valid UTF-8 boundaries of the text).
    pub(crate) fn text(&self, node: Node<'_>) -> &'s str {
        self.text.get(node.start_byte()..node.end_byte()).unwrap_or("")
    }

    /// Line `row` without its line break (empty past the end).
    fn line(&self, row: usize) -> &'s str {
        let Some(&start) = self.line_starts.get(row) else { return "" };
        let end = self.line_starts.get(row + 1).map_or(self.text.len(), |&e| e);
        let line = self.text.get(start..end).unwrap_or("");
        line.trim_end_matches(['\n', '\r'])
    }

    /// The text from the start of `row` up to byte `end`.
    fn line_start_to(&self, row: usize, end: usize) -> &'s str {
        let Some(&start) = self.line_starts.get(row) else { return "" };
        self.text.get(start..end.max(start)).unwrap_or("")
    }

    fn braces(&self) -> bool {
        self.language != Language::Python
    }

    /// The line that marks cut code: `...` in Python (a statement, so the snippet still
    /// parses), a `// ...` comment elsewhere.
    fn ellipsis(&self, indent: &str) -> String {
        if self.language == Language::Python {
            return format!("{indent}...");
        }
        format!("{indent}{} ...", self.language.line_comment().unwrap_or("//"))
    }

    /// The last row of `node`'s header: up to the `{` (or the `:` in Python) that opens its
    /// body, so a header written over several lines is kept whole.
    fn header_end(&self, node: Node<'_>) -> usize {
        let start = node.start_position().row;
        let Some(body) = node.child_by_field_name("body") else { return start };
        let row = if self.braces() { body.start_position().row } else { body.prev_sibling().map_or(start, |n| n.end_position().row) };
        row.max(start).min(start + HEADER_LINES - 1)
    }
}

fn push_line(out: &mut String, line: &str) {
    let mut cut = line.len().min(MAX_LINE);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    out.push_str(line[..cut].trim_end());
    out.push('\n');
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The first row of the comments and attributes right above `range` (≤ [`DOC_LINES`] lines).
fn doc_start(range: Node<'_>) -> usize {
    let start = range.start_position().row;
    let mut first = start;
    let mut sibling = range.prev_sibling();
    while let Some(node) = sibling {
        let is_doc = node.kind().contains("comment") || node.kind() == "attribute_item";
        if !is_doc || super::defs::last_row(node) + 1 < first {
            break;
        }
        first = node.start_position().row;
        sibling = node.prev_sibling();
    }
    first.max(start.saturating_sub(DOC_LINES))
}

/// Only the first line of `range` (for files whose snippet budget is spent).
pub(crate) fn first_line(src: &Source<'_>, range: Node<'_>) -> String {
    let mut out = String::new();
    push_line(&mut out, src.line(range.start_position().row));
    out
}

/// Doc lines, then the first [`HEAD_LINES`] lines of `range`, cut after a whole statement of
/// its body; wrapped in `container`'s header when given.
pub(crate) fn head(src: &Source<'_>, node: Node<'_>, range: Node<'_>, container: Option<Node<'_>>) -> String {
    let mut out = String::new();
    if let Some(c) = container {
        for row in c.start_position().row..=src.header_end(c) {
            push_line(&mut out, src.line(row));
        }
    }
    let start = range.start_position().row;
    let end = super::defs::last_row(range);
    for row in doc_start(range)..start {
        push_line(&mut out, src.line(row));
    }
    let limit = start + HEAD_LINES - 1;
    let last = if end <= limit { end } else { statement_cut(src, node, limit) };
    for row in start..=last {
        push_line(&mut out, src.line(row));
    }
    if last < end {
        let body_indent =
            node.child_by_field_name("body").and_then(|b| b.named_child(0)).map(|s| indent_of(src.line(s.start_position().row)).to_owned());
        let indent = body_indent.filter(|i| !i.is_empty()).unwrap_or_else(|| format!("{}    ", indent_of(src.line(start))));
        out.push_str(&src.ellipsis(&indent));
        out.push('\n');
        if src.braces() {
            push_line(&mut out, src.line(end));
        }
    }
    if let (Some(c), true) = (container, src.braces()) {
        out.push_str(indent_of(src.line(c.start_position().row)));
        out.push_str("}\n");
    }
    out
}

/// The last row to keep of a definition longer than `limit` rows: the end of the last
/// statement of its body that ends by `limit`, else the end of its header. Cutting between
/// statements keeps the snippet code that parses (an open bracket or a half-written `if` would
/// teach the model to leave its own code unfinished).
fn statement_cut(src: &Source<'_>, node: Node<'_>, limit: usize) -> usize {
    let header = src.header_end(node).min(limit);
    let Some(body) = node.child_by_field_name("body") else { return limit };
    let mut cursor = body.walk();
    let last = body.named_children(&mut cursor).map(super::defs::last_row).take_while(|&row| row <= limit).last();
    last.unwrap_or(header).max(header)
}

/// Header, member signatures and closing line of a class-like definition.
pub(crate) fn outline(src: &Source<'_>, node: Node<'_>, range: Node<'_>) -> String {
    let Some(body) = node.child_by_field_name("body") else {
        return head(src, node, range, None);
    };
    let mut out = String::new();
    let start = range.start_position().row;
    let header_end = src.header_end(node);
    for row in doc_start(range)..=header_end.max(start) {
        push_line(&mut out, src.line(row));
    }
    let mut lines = 0usize;
    let mut cursor = body.walk();
    let members: Vec<Node<'_>> = body.named_children(&mut cursor).collect();
    let member_indent = members.first().map(|m| indent_of(src.line(m.start_position().row)).to_owned());
    for member in members {
        if lines >= OUTLINE_LINES {
            out.push_str(&src.ellipsis(member_indent.as_deref().unwrap_or("    ")));
            out.push('\n');
            break;
        }
        let docstring = member.kind() == "expression_statement" && member.named_child(0).is_some_and(|c| c.kind() == "string");
        if member.kind().contains("comment") || docstring {
            continue;
        }
        let text = member_signature(src, member);
        for line in text.lines() {
            push_line(&mut out, line);
            lines += 1;
        }
    }
    let end = super::defs::last_row(node);
    if src.braces() && end > header_end {
        push_line(&mut out, src.line(end));
    }
    out
}

/// One member of a class body: a method's signature with `{ ... }` / `...` for its body, a
/// short member whole, or a long one's first line.
fn member_signature(src: &Source<'_>, member: Node<'_>) -> String {
    let start = member.start_position().row;
    let mut inner = member;
    for _ in 0..4 {
        match inner.child_by_field_name("definition").or_else(|| {
            (inner.kind() == "template_declaration").then(|| inner.named_child(inner.named_child_count().saturating_sub(1))).flatten()
        }) {
            Some(next) if next.id() != inner.id() => inner = next,
            _ => break,
        }
    }
    let function_like = ["function", "method", "constructor"].iter().any(|k| inner.kind().contains(k));
    if let (true, Some(body)) = (function_like, inner.child_by_field_name("body")) {
        let signature = src.line_start_to(start, body.start_byte()).trim_end();
        let tail = if src.braces() { " { ... }" } else { " ..." };
        return format!("{signature}{tail}");
    }
    let end = super::defs::last_row(member);
    if end <= start + 1 {
        return (start..=end).map(|r| src.line(r)).collect::<Vec<_>>().join("\n");
    }
    format!("{} ...", src.line(start).trim_end())
}
