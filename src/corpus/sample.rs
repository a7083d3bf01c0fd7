//! Cursor positions in a file, stratified by kind, each with the text that really followed.
//!
//! A [`Span`] marks `text[start..end]` as the target: the document the editor would hold is
//! the file with the target removed, the cursor sits at `start`. Kinds:
//! * `rest_of_line`: mid-line, after ≥ 1 non-blank character; the target is the rest of the line.
//! * `node`: a tree-sitter node (call arguments, condition, right-hand side, return expression),
//!   single-line, ending where only closing brackets/punctuation follow on its line.
//! * `block`: the 2–6 line body after a line ending in `{` or `:`; the cursor after its indent.
//! * `random_span`: from a random point in a line to a point ≤ 2 lines below that is followed
//!   only by closing characters (so the server would still complete there).
//! * `empty`: the end of a complete statement line followed by a non-empty line: the right
//!   answer is nothing.
//! * `cross_file`: the rest of the line from a use of a name defined in another file (see
//!   [`super::cross_file`]).
//! * `lines` (training data only): whole lines after the indent of a line, 1–3 lines.

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Tree};

use super::cross_file::ForeignNames;
use super::walk::SourceFile;
use crate::config::Settings;
use crate::context::{self, Decision};
use crate::rng::Rng;
use crate::session::{ByteOffset, Document, DocumentLimits};
use crate::syntax::{for_each_node, Language};

/// What kind of cursor position a sample is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    RestOfLine,
    Node,
    Block,
    RandomSpan,
    Empty,
    Lines,
    CrossFile,
}

impl SpanKind {
    /// The kinds the evaluation reports, in table order.
    pub const EVAL: [SpanKind; 6] =
        [SpanKind::RestOfLine, SpanKind::Node, SpanKind::Block, SpanKind::RandomSpan, SpanKind::Empty, SpanKind::CrossFile];

    pub fn name(self) -> &'static str {
        match self {
            SpanKind::RestOfLine => "rest_of_line",
            SpanKind::Node => "node",
            SpanKind::Block => "block",
            SpanKind::RandomSpan => "random_span",
            SpanKind::Empty => "empty",
            SpanKind::Lines => "lines",
            SpanKind::CrossFile => "cross_file",
        }
    }

    pub fn parse(name: &str) -> Option<SpanKind> {
        [SpanKind::RestOfLine, SpanKind::Node, SpanKind::Block, SpanKind::RandomSpan, SpanKind::Empty, SpanKind::Lines, SpanKind::CrossFile]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The target `text[start..end]` of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// One cursor position with its context and the text that was really there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// `path:line:column` of the cursor (1-based).
    pub id: String,
    pub path: String,
    #[serde(serialize_with = "language_name")]
    pub language: Language,
    pub kind: SpanKind,
    pub prefix: String,
    pub suffix: String,
    pub target: String,
}

fn language_name<S: serde::Serializer>(language: &Language, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(language.name())
}

impl Sample {
    /// The document the editor holds: the file without the target.
    pub fn document_text(&self) -> String {
        format!("{}{}", self.prefix, self.suffix)
    }

    /// The cursor's byte offset in [`Sample::document_text`].
    pub fn cursor(&self) -> usize {
        self.prefix.len()
    }

    /// What the server's context module decides for this cursor (with `settings`).
    pub fn gather(&self, settings: &Settings) -> anyhow::Result<Decision> {
        let doc = Document::open(&self.path, self.language, &self.document_text(), 0, &DocumentLimits::default())?;
        Ok(context::gather(&doc.snapshot(), ByteOffset(self.cursor()), settings))
    }

    /// True when the server would ask the model here (or, for `empty`, always).
    pub fn server_completes(&self, settings: &Settings) -> bool {
        self.kind == SpanKind::Empty || matches!(self.gather(settings), Ok(Decision::Complete(_)))
    }
}

/// Characters that may follow the cursor on its line without the server declining to complete
/// (mirrors the context module's rule).
fn is_closing(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '"' | '\'' | '`' | ';' | ',' | ':' | '>') || c.is_whitespace()
}

fn indent_len(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

fn indent_width(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ' || *c == '\t').map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

fn is_comment(trimmed: &str, language: Language) -> bool {
    ["//", "/*", "*", "\"\"\"", "'''"].iter().any(|m| trimmed.starts_with(m))
        || language.line_comment().is_some_and(|m| trimmed.starts_with(m))
}

/// A file with its syntax tree and line table, ready for sampling.
pub struct ParsedFile<'a> {
    pub file: &'a SourceFile,
    pub tree: Option<Tree>,
    /// `(start, end)` byte offsets of each line, without its line break.
    lines: Vec<(usize, usize)>,
    /// Names defined in other files, for the `cross_file` kind (none: no such samples).
    foreign: Option<&'a ForeignNames>,
}

impl<'a> ParsedFile<'a> {
    /// Parses with the same document code the server uses.
    pub fn new(file: &'a SourceFile) -> ParsedFile<'a> {
        let tree =
            Document::open(&file.path, file.language, &file.text, 0, &DocumentLimits::default()).ok().and_then(|d| d.snapshot().tree);
        let mut lines = Vec::new();
        let mut start = 0;
        for piece in file.text.split_inclusive('\n') {
            let content = piece.trim_end_matches(['\n', '\r']);
            lines.push((start, start + content.len()));
            start += piece.len();
        }
        ParsedFile { file, tree, lines, foreign: None }
    }

    /// The same file, with the names other files define (for `cross_file` samples).
    pub fn with_foreign_names(self, foreign: &'a ForeignNames) -> ParsedFile<'a> {
        ParsedFile { foreign: Some(foreign), ..self }
    }

    pub(super) fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// The byte offset where line `i` ends (before its line break).
    pub(super) fn line_end(&self, i: usize) -> usize {
        self.lines[i].1
    }

    fn line(&self, i: usize) -> &str {
        let (s, e) = self.lines[i];
        &self.file.text[s..e]
    }

    /// Non-blank, non-comment lines.
    pub(super) fn code_line(&self, i: usize) -> bool {
        let t = self.line(i).trim();
        !t.is_empty() && !is_comment(t, self.file.language)
    }

    /// The line index holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.lines.partition_point(|&(s, _)| s <= offset).saturating_sub(1)
    }

    /// Builds the sample for `span`.
    pub fn sample(&self, kind: SpanKind, span: Span) -> Sample {
        let text = &self.file.text;
        let line = self.line_of(span.start);
        let column = text[self.lines[line].0..span.start].chars().count();
        Sample {
            id: format!("{}:{}:{}", self.file.path, line + 1, column + 1),
            path: self.file.path.clone(),
            language: self.file.language,
            kind,
            prefix: text[..span.start].to_string(),
            suffix: text[span.end..].to_string(),
            target: text[span.start..span.end].to_string(),
        }
    }

    /// Every candidate span of `kind` (one per line for the kinds with a random cursor).
    pub fn candidates(&self, kind: SpanKind, rng: &mut Rng) -> Vec<Span> {
        let mut out = match kind {
            SpanKind::RestOfLine => (0..self.lines.len()).filter_map(|i| self.rest_of_line(i, rng)).collect(),
            SpanKind::Node => self.nodes(),
            SpanKind::Block => (0..self.lines.len()).filter_map(|i| self.block(i)).collect(),
            SpanKind::RandomSpan => (0..self.lines.len()).filter_map(|i| self.random_span(i, rng)).collect(),
            SpanKind::Empty => (0..self.lines.len()).filter_map(|i| self.empty(i)).collect(),
            SpanKind::Lines => (0..self.lines.len()).filter_map(|i| self.whole_lines(i, rng)).collect(),
            SpanKind::CrossFile => self.foreign.map(|names| super::cross_file::uses(self, names, rng)).unwrap_or_default(),
        };
        let text = &self.file.text;
        out.retain(|s: &Span| kind == SpanKind::Empty || !text[s.start..s.end].trim().is_empty());
        out
    }

    fn rest_of_line(&self, i: usize, rng: &mut Rng) -> Option<Span> {
        if !self.code_line(i) {
            return None;
        }
        let (start, end) = self.lines[i];
        let first = start + indent_len(self.line(i));
        let text = &self.file.text;
        let cursors: Vec<usize> =
            text[first..end].char_indices().skip(1).map(|(k, _)| first + k).filter(|&p| !text[p..end].trim().is_empty()).collect();
        rng.pick(&cursors).map(|&p| Span { start: p, end })
    }

    fn block(&self, i: usize) -> Option<Span> {
        let head = self.line(i).trim_end();
        if !self.code_line(i) || !(head.ends_with('{') || head.ends_with(':')) || i + 1 >= self.lines.len() {
            return None;
        }
        let width = indent_width(head);
        let body_line = |j: usize| self.line(j).trim().is_empty() || indent_width(self.line(j)) > width;
        let mut j = i + 1;
        while j < self.lines.len() && body_line(j) {
            j += 1;
        }
        let mut last = j.checked_sub(1)?;
        while last > i && self.line(last).trim().is_empty() {
            last -= 1;
        }
        let count = (last + 1).checked_sub(i + 1)?;
        if !(2..=6).contains(&count) || self.line(i + 1).trim().is_empty() {
            return None;
        }
        Some(Span { start: self.lines[i + 1].0 + indent_len(self.line(i + 1)), end: self.lines[last].1 })
    }

    fn random_span(&self, i: usize, rng: &mut Rng) -> Option<Span> {
        if !self.code_line(i) {
            return None;
        }
        let text = &self.file.text;
        let (line_start, line_end) = self.lines[i];
        let first = line_start + indent_len(self.line(i));
        let starts: Vec<usize> = text[first..line_end].char_indices().map(|(k, _)| first + k).collect();
        let start = *rng.pick(&starts)?;
        let roll = rng.unit();
        let extra = if roll < 0.6 {
            0
        } else if roll < 0.85 {
            1
        } else {
            2
        };
        let m = if i + extra < self.lines.len() { i + extra } else { i };
        let (m_start, m_end) = self.lines[m];
        let mut ends = vec![m_end];
        for (k, c) in text[m_start..m_end].char_indices().rev() {
            if !is_closing(c) {
                break;
            }
            ends.push(m_start + k);
        }
        ends.retain(|&e| e > start);
        rng.pick(&ends).map(|&end| Span { start, end })
    }

    fn empty(&self, i: usize) -> Option<Span> {
        if i + 1 >= self.lines.len() || !self.code_line(i) || self.line(i + 1).trim().is_empty() {
            return None;
        }
        let t = self.line(i).trim();
        let open_end = t.ends_with("=>") || t.ends_with(|c: char| "{([,:=+-*/\\.&|<>!?".contains(c));
        let substance = t.chars().filter(|c| !is_closing(*c)).count();
        if open_end || substance < 2 || indent_width(self.line(i + 1)) > indent_width(self.line(i)) {
            return None;
        }
        let end = self.lines[i].1;
        Some(Span { start: end, end })
    }

    fn whole_lines(&self, i: usize, rng: &mut Rng) -> Option<Span> {
        if !self.code_line(i) {
            return None;
        }
        let mut last = (i + rng.below(3)).min(self.lines.len() - 1);
        while last > i && self.line(last).trim().is_empty() {
            last -= 1;
        }
        Some(Span { start: self.lines[i].0 + indent_len(self.line(i)), end: self.lines[last].1 })
    }

    fn nodes(&self) -> Vec<Span> {
        let Some(tree) = &self.tree else { return Vec::new() };
        let text = &self.file.text;
        let mut out = Vec::new();
        for_each_node(tree, |node| out.extend(node_target(node).and_then(|n| self.node_span(n))));
        out.sort();
        out.dedup();
        out.retain(|s| !text[s.start..s.end].contains('\n'));
        out
    }

    /// The node's text without surrounding parentheses or spaces, if the server would complete
    /// there (only closing characters after it on its line).
    fn node_span(&self, node: Node<'_>) -> Option<Span> {
        let text = &self.file.text;
        let (mut s, mut e) = (node.start_byte(), node.end_byte());
        if e - s >= 2 && text[s..e].starts_with('(') && text[s..e].ends_with(')') {
            s += 1;
            e -= 1;
        }
        let inner = &text[s..e];
        let inner_trimmed = inner.trim_start();
        s += inner.len() - inner_trimmed.len();
        e = s + inner_trimmed.trim_end().len();
        let line_end = self.lines[self.line_of(e)].1.max(e);
        (s < e && text[e..line_end].chars().all(is_closing)).then_some(Span { start: s, end: e })
    }
}

/// The node holding the target for the `node` kind, if `node` is one of the shapes sampled.
fn node_target(node: Node<'_>) -> Option<Node<'_>> {
    let kind = node.kind();
    match kind {
        "arguments" | "argument_list" => Some(node),
        "return_statement" | "return_expression" => {
            let mut walk = node.walk();
            let child = node.named_children(&mut walk).find(|c| !c.kind().contains("comment"));
            child
        }
        "let_declaration" | "variable_declarator" | "init_declarator" | "const_item" | "static_item" | "var_spec" | "const_spec" => {
            node.child_by_field_name("value")
        }
        _ if kind.contains("assignment") || kind == "short_var_declaration" => node.child_by_field_name("right"),
        _ if kind.contains("if") || kind.contains("while") => node.child_by_field_name("condition"),
        _ => None,
    }
}

/// Picks up to `n` samples of `kind`, round-robin over the files in a seeded order (so they
/// spread over files), keeping those with a non-blank target (any target for `empty`) that
/// `accept` agrees to. Deterministic for a given seed.
pub fn pick(files: &[ParsedFile<'_>], kind: SpanKind, n: usize, seed: u64, accept: &mut dyn FnMut(&Sample) -> bool) -> Vec<Sample> {
    let mut queues: Vec<(usize, Vec<Span>)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut rng = Rng::derived(seed, &format!("{}/{}", kind.name(), f.file.path));
            let mut spans = f.candidates(kind, &mut rng);
            rng.shuffle(&mut spans);
            (i, spans)
        })
        .collect();
    Rng::derived(seed, kind.name()).shuffle(&mut queues);
    let mut out = Vec::new();
    while out.len() < n && queues.iter().any(|(_, q)| !q.is_empty()) {
        for (i, queue) in queues.iter_mut() {
            if out.len() >= n {
                break;
            }
            while let Some(span) = queue.pop() {
                let sample = files[*i].sample(kind, span);
                if accept(&sample) {
                    out.push(sample);
                    break;
                }
            }
        }
    }
    out
}
