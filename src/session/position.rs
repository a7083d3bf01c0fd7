//! Typed positions, and the ONE place where coordinates are converted: byte offsets into a
//! [`Rope`] ([`ByteOffset`]), LSP-style line/character positions ([`LineCol`]) in either
//! negotiated [`PositionEncoding`], and tree-sitter points ([`ts_point_of`]).
//!
//! # Lines
//! LSP ends a line at `"\n"`, `"\r\n"` or `"\r"` and nothing else. ropey 1.6 is built with its
//! default `unicode_lines` feature (the crate manifest does not turn it off, and Cargo features
//! are additive), so ropey's own line index also breaks at VT, FF, NEL (U+0085), U+2028 and
//! U+2029. We therefore never use ropey's line functions here and find lines ourselves by
//! scanning the rope's chunks for `\r` and `\n`: whole chunks are counted in bulk (a simple
//! byte count the compiler vectorises), bytes are walked one by one only in the chunk that
//! holds the answer. The cost is linear in the bytes before the position, a few hundred
//! microseconds on a multi-megabyte document, which is small next to a model call.
//!
//! A `\r` immediately followed by `\n` is not a break on its own; the `\n` ends the line. A
//! position between the two belongs to the line the pair ends.

use std::ops::ControlFlow;

use ropey::Rope;

/// A byte offset into a document's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteOffset(pub usize);

/// The unit of [`LineCol::character`], as negotiated with the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PositionEncoding {
    /// Characters are UTF-8 bytes.
    Utf8,
    /// Characters are UTF-16 code units (the LSP default).
    #[default]
    Utf16,
}

/// An LSP-style position: a zero-based line and a zero-based `character` offset in that line,
/// counted in the units of a [`PositionEncoding`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineCol {
    pub line: u32,
    pub character: u32,
}

impl LineCol {
    pub const fn new(line: u32, character: u32) -> LineCol {
        LineCol { line, character }
    }
}

/// A range of [`LineCol`]s, `start` inclusive and `end` exclusive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LineColRange {
    pub start: LineCol,
    pub end: LineCol,
}

impl LineColRange {
    pub const fn new(start: LineCol, end: LineCol) -> LineColRange {
        LineColRange { start, end }
    }
}

/// A position that does not exist in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error("line {line} is past the end of the document, which has {line_count} lines (counting from 0)")]
    LineOutOfRange { line: u32, line_count: usize },
    #[error("the range ends (line {}, character {}) before it starts (line {}, character {})", .end.line, .end.character, .start.line, .start.character)]
    InvertedRange { start: LineCol, end: LineCol },
}

/// The number of LSP lines in `rope`: line breaks + 1 (an empty document has one line, and a
/// document ending in a line break has an empty last line).
pub fn line_count(rope: &Rope) -> usize {
    count_breaks_before(rope, rope.len_bytes()) + 1
}

/// The byte offset of `pos`. A `character` past the end of its line clamps to the end of the
/// line (before its line break); one that falls inside a character (a UTF-8 sequence or a
/// UTF-16 surrogate pair) rounds down to that character's start. A `line` past the last line
/// is an error.
pub fn offset_of(rope: &Rope, pos: LineCol, enc: PositionEncoding) -> Result<ByteOffset, PositionError> {
    let start = line_start(rope, pos.line)?;
    let end = content_end(rope, start);
    let line = rope.byte_slice(start..end);
    let character = pos.character as usize;
    let within = match enc {
        PositionEncoding::Utf8 => {
            let byte = character.min(line.len_bytes());
            line.char_to_byte(line.byte_to_char(byte))
        }
        PositionEncoding::Utf16 => {
            let unit = character.min(line.len_utf16_cu());
            line.char_to_byte(line.utf16_cu_to_char(unit))
        }
    };
    Ok(ByteOffset(start + within))
}

/// The position of `offset`. An offset past the end clamps to the end of the document, one
/// inside a character rounds down to its start, and one inside a `"\r\n"` clamps to the end of
/// that line's content. Never fails.
pub fn line_col_of(rope: &Rope, offset: ByteOffset, enc: PositionEncoding) -> LineCol {
    let byte = floor_char_boundary(rope, offset.0);
    let line = count_breaks_before(rope, byte);
    let start = line_start_before(rope, byte);
    let end = content_end(rope, start).min(byte);
    let prefix = rope.byte_slice(start..end);
    let character = match enc {
        PositionEncoding::Utf8 => prefix.len_bytes(),
        PositionEncoding::Utf16 => prefix.len_utf16_cu(),
    };
    LineCol { line: saturate(line), character: saturate(character) }
}

/// The byte offsets of `range`; an error when a line is out of range or the range ends before
/// it starts (after clamping and rounding both ends).
pub fn offset_range_of(rope: &Rope, range: LineColRange, enc: PositionEncoding) -> Result<(ByteOffset, ByteOffset), PositionError> {
    let start = offset_of(rope, range.start, enc)?;
    let end = offset_of(rope, range.end, enc)?;
    if end < start {
        return Err(PositionError::InvertedRange { start: range.start, end: range.end });
    }
    Ok((start, end))
}

/// The positions of the byte range `start..end` (see [`line_col_of`]).
pub fn line_col_range_of(rope: &Rope, start: ByteOffset, end: ByteOffset, enc: PositionEncoding) -> LineColRange {
    LineColRange { start: line_col_of(rope, start, enc), end: line_col_of(rope, end, enc) }
}

/// The start of the LSP line holding `offset` (clamped to the document and rounded down to a
/// char boundary). Use this rather than ropey's line functions, which break lines at more
/// characters than LSP does.
pub fn line_start_of(rope: &Rope, offset: ByteOffset) -> ByteOffset {
    ByteOffset(line_start_before(rope, floor_char_boundary(rope, offset.0)))
}

/// The end of the content of the LSP line holding `offset`: the offset of its line break, or
/// the end of the document on the last line.
pub fn line_end_of(rope: &Rope, offset: ByteOffset) -> ByteOffset {
    ByteOffset(content_end(rope, line_start_of(rope, offset).0))
}

/// The tree-sitter point of `offset`: tree-sitter counts rows at `\n` only, and columns in
/// bytes. Offsets past the end clamp to the end.
pub fn ts_point_of(rope: &Rope, offset: ByteOffset) -> tree_sitter::Point {
    let byte = offset.0.min(rope.len_bytes());
    let mut row = 0;
    scan_chunks(rope, byte, |_, chunk, _| {
        row += chunk.iter().filter(|&&b| b == b'\n').count();
        ControlFlow::<()>::Continue(())
    });
    let mut row_start = byte;
    let mut bytes = rope.bytes_at(byte);
    while let Some(b) = bytes.prev() {
        if b == b'\n' {
            break;
        }
        row_start -= 1;
    }
    tree_sitter::Point { row, column: byte - row_start }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `byte`, clamped to the document and rounded down to a char boundary.
fn floor_char_boundary(rope: &Rope, byte: usize) -> usize {
    let byte = byte.min(rope.len_bytes());
    rope.char_to_byte(rope.byte_to_char(byte))
}

/// Calls `f(chunk_start, chunk_bytes, next_byte)` for the rope's chunks cut at `end`, where
/// `next_byte` is the document byte right after the (cut) chunk, until `f` breaks.
fn scan_chunks<T>(rope: &Rope, end: usize, mut f: impl FnMut(usize, &[u8], Option<u8>) -> ControlFlow<T>) -> Option<T> {
    let mut chunk_start = 0;
    for chunk in rope.chunks() {
        if chunk_start >= end {
            break;
        }
        let bytes = chunk.as_bytes();
        let bytes = &bytes[..bytes.len().min(end - chunk_start)];
        let next = rope.get_byte(chunk_start + bytes.len());
        if let ControlFlow::Break(found) = f(chunk_start, bytes, next) {
            return Some(found);
        }
        chunk_start += bytes.len();
    }
    None
}

/// Whether the byte at `i` of `chunk` ends a line (`next` is the byte after the chunk).
fn ends_line(chunk: &[u8], i: usize, next: Option<u8>) -> bool {
    match chunk[i] {
        b'\n' => true,
        b'\r' => chunk.get(i + 1).copied().or(next) != Some(b'\n'),
        _ => false,
    }
}

/// The number of line breaks in `chunk` (`next` is the byte after it).
fn count_breaks(chunk: &[u8], next: Option<u8>) -> usize {
    let lf = chunk.iter().filter(|&&b| b == b'\n').count();
    let cr = chunk.iter().filter(|&&b| b == b'\r').count();
    if cr == 0 {
        return lf;
    }
    let crlf = chunk.windows(2).filter(|w| w == b"\r\n").count();
    let split_crlf = usize::from(chunk.last() == Some(&b'\r') && next == Some(b'\n'));
    lf + cr - crlf - split_crlf
}

/// The number of line breaks that end before `byte`.
fn count_breaks_before(rope: &Rope, byte: usize) -> usize {
    let mut breaks = 0;
    scan_chunks(rope, byte, |_, chunk, next| {
        breaks += count_breaks(chunk, next);
        ControlFlow::<()>::Continue(())
    });
    breaks
}

/// The byte offset where LSP line `line` starts.
fn line_start(rope: &Rope, line: u32) -> Result<usize, PositionError> {
    if line == 0 {
        return Ok(0);
    }
    let target = line as usize;
    let mut seen = 0;
    let found = scan_chunks(rope, rope.len_bytes(), |chunk_start, chunk, next| {
        let breaks = count_breaks(chunk, next);
        if seen + breaks < target {
            seen += breaks;
            return ControlFlow::Continue(());
        }
        for i in 0..chunk.len() {
            if ends_line(chunk, i, next) {
                seen += 1;
                if seen == target {
                    return ControlFlow::Break(chunk_start + i + 1);
                }
            }
        }
        ControlFlow::Continue(())
    });
    found.ok_or(PositionError::LineOutOfRange { line, line_count: seen + 1 })
}

/// The start of the line holding `byte` (a char boundary): just after the last break before it.
fn line_start_before(rope: &Rope, byte: usize) -> usize {
    let mut start = byte;
    let mut bytes = rope.bytes_at(byte);
    // The byte just before `byte` is a `\r` paired with the `\n` at `byte` when `byte` is
    // inside a CRLF; that `\r` does not end a line.
    let mut after = rope.get_byte(byte);
    while let Some(b) = bytes.prev() {
        if b == b'\n' || (b == b'\r' && after != Some(b'\n')) {
            break;
        }
        start -= 1;
        after = Some(b);
    }
    start
}

/// The end of the content of the line starting at `start`: its first `\r` or `\n`, or the end.
fn content_end(rope: &Rope, start: usize) -> usize {
    let len = rope.len_bytes();
    let mut end = start;
    for b in rope.bytes_at(start.min(len)) {
        if b == b'\n' || b == b'\r' {
            break;
        }
        end += 1;
    }
    end
}

#[cfg(test)]
#[path = "position_tests.rs"]
mod tests;
