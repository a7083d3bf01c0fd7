//! Conversions between LSP types and the plain types of the layers below.

use tower_lsp_server::ls_types::{Position, Range, Uri};

use crate::session::{LineCol, LineColRange};

pub fn line_col(p: Position) -> LineCol {
    LineCol { line: p.line, character: p.character }
}

pub fn position(p: LineCol) -> Position {
    Position { line: p.line, character: p.character }
}

pub fn line_col_range(r: Range) -> LineColRange {
    LineColRange { start: line_col(r.start), end: line_col(r.end) }
}

pub fn uri_key(uri: &Uri) -> String {
    uri.as_str().to_string()
}
