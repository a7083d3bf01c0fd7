//! One open document ([`Document`]): its text as a [`Rope`], version, language and path, and
//! an incrementally maintained tree-sitter tree. Edits arrive as LSP-style [`TextChange`]s and
//! are applied all-or-nothing; readers take cheap owned [`Snapshot`]s.

use std::sync::Arc;

use ropey::Rope;
use tree_sitter::{InputEdit, Point, Tree};

use super::position::{offset_range_of, ts_point_of, ByteOffset, LineColRange, PositionEncoding, PositionError};
use crate::syntax::{Language, ParseError, Parser};

/// How many bytes at the start of a document are checked for NUL when deciding it is binary.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// After this many consecutive timed-out parses, a document stops being parsed.
const MAX_PARSE_TIMEOUTS: u8 = 2;

/// Size limits for documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Larger documents are refused ([`DocumentError::TooLarge`]). Default 4 MiB.
    pub max_bytes: usize,
    /// Larger documents get no syntax tree (plain-text completion). Default 1 MiB.
    pub max_parse_bytes: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits { max_bytes: 4 * 1024 * 1024, max_parse_bytes: 1024 * 1024 }
    }
}

/// Why a document could not be opened or edited. A failed edit leaves the document unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the document is {size} bytes, more than the {limit} bytes inkling accepts, so it is not tracked")]
    TooLarge { size: usize, limit: usize },
    #[error("the document looks like a binary file (it contains NUL bytes), so it is not tracked")]
    Binary,
    #[error("change number {index} in the edit does not fit the document: {source}; the edit was not applied")]
    RangeOutOfBounds { index: usize, source: PositionError },
    #[error("the document {0} is not open")]
    NotOpen(String),
}

/// One LSP-style content change: replace `range` with `text`, or the whole document when
/// `range` is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextChange {
    pub range: Option<LineColRange>,
    pub text: String,
}

/// An owned, immutable view of a document at one version. Cheap to take: the rope clone is
/// O(1) and the tree clone bumps a reference count.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub text: Rope,
    /// `None` for languages without a grammar, documents over the parse limit, and documents
    /// whose parse failed or ran out of time.
    pub tree: Option<Tree>,
    pub version: i32,
    pub language: Language,
    pub path: Arc<str>,
}

/// An open document.
#[derive(Debug)]
pub struct Document {
    text: Rope,
    version: i32,
    language: Language,
    path: Arc<str>,
    limits: DocumentLimits,
    /// `None` when the language has no grammar or parsing was given up.
    parser: Option<Parser>,
    tree: Option<Tree>,
    parse_timeouts: u8,
}

impl Document {
    /// Opens a document, refusing text over `limits.max_bytes` and binary text, and parses it
    /// when it has a grammar and fits `limits.max_parse_bytes`.
    pub fn open(path: &str, language: Language, text: &str, version: i32, limits: &DocumentLimits) -> Result<Document, DocumentError> {
        if text.len() > limits.max_bytes {
            return Err(DocumentError::TooLarge { size: text.len(), limit: limits.max_bytes });
        }
        if looks_binary(text) {
            return Err(DocumentError::Binary);
        }
        let parser = match language.ts_language().map(|_| Parser::new(language)) {
            None => None,
            Some(Ok(parser)) => Some(parser),
            Some(Err(error)) => {
                tracing::warn!(%error, path, "no syntax trees for this document");
                None
            }
        };
        let mut document = Document {
            text: Rope::from_str(text),
            version,
            language,
            path: Arc::from(path),
            limits: *limits,
            parser,
            tree: None,
            parse_timeouts: 0,
        };
        document.reparse(None);
        Ok(document)
    }

    /// Applies `changes` in order and moves to `version`. All or nothing: when any change is
    /// out of range or the text would grow past the size limit, the document is unchanged.
    pub fn apply_changes(&mut self, version: i32, changes: &[TextChange], enc: PositionEncoding) -> Result<(), DocumentError> {
        let mut text = self.text.clone();
        // Only keep editing the old tree when it can be reused by the reparse.
        let mut tree = self.tree.clone().filter(|_| self.parser.is_some());
        for (index, change) in changes.iter().enumerate() {
            apply_change(&mut text, &mut tree, change, enc, self.limits.max_bytes).map_err(|error| error.numbered(index))?;
        }
        self.text = text;
        self.version = version;
        self.reparse(tree);
        Ok(())
    }

    /// An owned view of the current state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            text: self.text.clone(),
            tree: self.tree.clone(),
            version: self.version,
            language: self.language,
            path: Arc::clone(&self.path),
        }
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn text(&self) -> &Rope {
        &self.text
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The latest syntax tree, if any (see [`Snapshot::tree`]).
    pub fn tree(&self) -> Option<&Tree> {
        self.tree.as_ref()
    }

    pub fn limits(&self) -> DocumentLimits {
        self.limits
    }

    /// Brings `self.tree` up to date with `self.text`; `old` is the previous tree, already
    /// edited to match, or `None` to parse from scratch.
    fn reparse(&mut self, old: Option<Tree>) {
        self.tree = None;
        if self.text.len_bytes() > self.limits.max_parse_bytes {
            return;
        }
        let Some(parser) = self.parser.as_mut() else {
            return;
        };
        match parser.try_parse(&self.text, old.as_ref()) {
            Ok(tree) => {
                self.tree = Some(tree);
                self.parse_timeouts = 0;
            }
            Err(ParseError::TimedOut(_)) => {
                self.parse_timeouts += 1;
                if self.parse_timeouts >= MAX_PARSE_TIMEOUTS {
                    tracing::warn!(path = %self.path, "parsing keeps timing out; no syntax trees for this document");
                    self.parser = None;
                }
            }
            Err(ParseError::Failed) => {}
        }
    }
}

/// Whether the start of `text` contains a NUL byte.
fn looks_binary(text: &str) -> bool {
    let sniff = &text.as_bytes()[..text.len().min(BINARY_SNIFF_BYTES)];
    sniff.contains(&0)
}

/// Why one change failed, before it is numbered.
enum ChangeError {
    Range(PositionError),
    TooLarge { size: usize, limit: usize },
}

impl ChangeError {
    fn numbered(self, index: usize) -> DocumentError {
        match self {
            ChangeError::Range(source) => DocumentError::RangeOutOfBounds { index, source },
            ChangeError::TooLarge { size, limit } => DocumentError::TooLarge { size, limit },
        }
    }
}

/// Applies one change to `text`, and records it in `tree` (when there is one) so that tree can
/// seed an incremental reparse.
fn apply_change(
    text: &mut Rope,
    tree: &mut Option<Tree>,
    change: &TextChange,
    enc: PositionEncoding,
    max_bytes: usize,
) -> Result<(), ChangeError> {
    let Some(range) = change.range else {
        if change.text.len() > max_bytes {
            return Err(ChangeError::TooLarge { size: change.text.len(), limit: max_bytes });
        }
        *text = Rope::from_str(&change.text);
        *tree = None;
        return Ok(());
    };
    let (ByteOffset(start), ByteOffset(old_end)) = offset_range_of(text, range, enc).map_err(ChangeError::Range)?;
    let size = text.len_bytes() - (old_end - start) + change.text.len();
    if size > max_bytes {
        return Err(ChangeError::TooLarge { size, limit: max_bytes });
    }
    if let Some(tree) = tree.as_mut() {
        let start_position = ts_point_of(text, ByteOffset(start));
        let old_end_position = ts_point_of(text, ByteOffset(old_end));
        tree.edit(&InputEdit {
            start_byte: start,
            old_end_byte: old_end,
            new_end_byte: start + change.text.len(),
            start_position,
            old_end_position,
            new_end_position: point_after(start_position, &change.text),
        });
    }
    // Both offsets are char boundaries inside the text, so these conversions cannot fail.
    let start_char = text.byte_to_char(start);
    text.remove(start_char..text.byte_to_char(old_end));
    text.insert(start_char, &change.text);
    Ok(())
}

/// The tree-sitter point reached by writing `inserted` at `start` (rows at `\n`, byte columns).
fn point_after(start: Point, inserted: &str) -> Point {
    match inserted.rfind('\n') {
        None => Point { row: start.row, column: start.column + inserted.len() },
        Some(last) => Point { row: start.row + inserted.bytes().filter(|&b| b == b'\n').count(), column: inserted.len() - last - 1 },
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
