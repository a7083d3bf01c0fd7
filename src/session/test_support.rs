//! Test helpers shared by the session tests: naive reference implementations of the LSP line
//! rules to check the real ones against.

use super::position::{LineCol, PositionEncoding};

/// Byte offsets where LSP lines start, the obvious way.
pub fn reference_line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            starts.push(i + 1);
        }
    }
    starts
}

/// The position of the char boundary `byte` of `text`, the obvious way.
pub fn reference_line_col(text: &str, byte: usize, enc: PositionEncoding) -> LineCol {
    reference_line_col_in(text, &reference_line_starts(text), byte, enc)
}

/// [`reference_line_col`] with the line starts of `text` computed beforehand.
pub fn reference_line_col_in(text: &str, starts: &[usize], byte: usize, enc: PositionEncoding) -> LineCol {
    let line = starts.iter().rposition(|&s| s <= byte).unwrap_or(0);
    let start = starts[line];
    let content_end = text[start..].find(['\r', '\n']).map_or(text.len(), |i| start + i);
    let prefix = &text[start..byte.min(content_end)];
    let character = match enc {
        PositionEncoding::Utf8 => prefix.len(),
        PositionEncoding::Utf16 => prefix.encode_utf16().count(),
    };
    LineCol::new(line as u32, character as u32)
}
