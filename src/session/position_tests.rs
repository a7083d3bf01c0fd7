//! Tests for `position.rs`: both encodings over emoji, CJK, tabs, CRLF, lone CR, Unicode
//! separators that LSP does not treat as line breaks, empty documents, and round trips
//! checked against a naive reference on multi-chunk ropes.

use super::*;
use crate::rng::Rng;
use crate::session::test_support::{reference_line_col_in, reference_line_starts};
use PositionEncoding::{Utf16, Utf8};

fn at(line: u32, character: u32) -> LineCol {
    LineCol::new(line, character)
}

// Byte layout: \t(0) a(1) 😀(2..6) b(6) \n(7) | 中(8..11) 文(11..14) \r(14) \n(15) |
// \t(16) x(17) \r(18) | y(19) | end(20)
const MIXED: &str = "\ta😀b\n中文\r\n\tx\ry";

#[test]
fn offsets_in_utf16() {
    let rope = Rope::from_str(MIXED);
    assert_eq!(line_count(&rope), 4);
    let cases = [
        (at(0, 0), 0),
        (at(0, 2), 2),
        (at(0, 3), 2), // inside the surrogate pair: round down
        (at(0, 4), 6),
        (at(0, 5), 7),
        (at(0, 99), 7), // past the end of the line: clamp before the break
        (at(1, 1), 11),
        (at(1, 2), 14),
        (at(1, 3), 14),
        (at(2, 1), 17),
        (at(2, 2), 18),
        (at(2, 3), 18),
        (at(3, 0), 19),
        (at(3, 1), 20), // just past the last char
        (at(3, 7), 20),
    ];
    for (pos, byte) in cases {
        assert_eq!(offset_of(&rope, pos, Utf16), Ok(ByteOffset(byte)), "{pos:?}");
    }
    assert_eq!(offset_of(&rope, at(4, 0), Utf16), Err(PositionError::LineOutOfRange { line: 4, line_count: 4 }));
}

#[test]
fn offsets_in_utf8() {
    let rope = Rope::from_str(MIXED);
    let cases = [
        (at(0, 1), 1),
        (at(0, 2), 2),
        (at(0, 3), 2), // inside the emoji: round down
        (at(0, 5), 2),
        (at(0, 6), 6),
        (at(0, 7), 7),
        (at(0, 8), 7),
        (at(1, 3), 11),
        (at(1, 4), 11), // inside 文
        (at(1, 6), 14),
        (at(1, 9), 14),
        (at(3, 1), 20),
    ];
    for (pos, byte) in cases {
        assert_eq!(offset_of(&rope, pos, Utf8), Ok(ByteOffset(byte)), "{pos:?}");
    }
    assert!(offset_of(&rope, at(u32::MAX, 0), Utf8).is_err());
}

#[test]
fn positions_of_offsets() {
    let rope = Rope::from_str(MIXED);
    let cases = [
        (0, at(0, 0), at(0, 0)),
        (2, at(0, 2), at(0, 2)),
        (3, at(0, 2), at(0, 2)), // inside the emoji: round down
        (6, at(0, 4), at(0, 6)),
        (7, at(0, 5), at(0, 7)),
        (8, at(1, 0), at(1, 0)),
        (12, at(1, 1), at(1, 3)),
        (14, at(1, 2), at(1, 6)),
        (15, at(1, 2), at(1, 6)), // between \r and \n
        (16, at(2, 0), at(2, 0)),
        (18, at(2, 2), at(2, 2)),
        (19, at(3, 0), at(3, 0)),
        (20, at(3, 1), at(3, 1)),
        (500, at(3, 1), at(3, 1)), // past the end: clamp
    ];
    for (byte, utf16, utf8) in cases {
        assert_eq!(line_col_of(&rope, ByteOffset(byte), Utf16), utf16, "utf-16 {byte}");
        assert_eq!(line_col_of(&rope, ByteOffset(byte), Utf8), utf8, "utf-8 {byte}");
    }
}

#[test]
fn empty_document() {
    let rope = Rope::new();
    assert_eq!(line_count(&rope), 1);
    for enc in [Utf8, Utf16] {
        assert_eq!(offset_of(&rope, at(0, 0), enc), Ok(ByteOffset(0)));
        assert_eq!(offset_of(&rope, at(0, 3), enc), Ok(ByteOffset(0)));
        assert_eq!(offset_of(&rope, at(1, 0), enc), Err(PositionError::LineOutOfRange { line: 1, line_count: 1 }));
        assert_eq!(line_col_of(&rope, ByteOffset(0), enc), at(0, 0));
        assert_eq!(line_col_of(&rope, ByteOffset(9), enc), at(0, 0));
    }
    assert_eq!(ts_point_of(&rope, ByteOffset(0)), tree_sitter::Point { row: 0, column: 0 });
}

#[test]
fn trailing_breaks_open_an_empty_last_line() {
    for text in ["ab\n", "ab\r\n", "ab\r"] {
        let rope = Rope::from_str(text);
        assert_eq!(line_count(&rope), 2, "{text:?}");
        assert_eq!(offset_of(&rope, at(1, 0), Utf16), Ok(ByteOffset(text.len())), "{text:?}");
        assert_eq!(offset_of(&rope, at(0, 9), Utf16), Ok(ByteOffset(2)), "{text:?}");
        assert_eq!(line_col_of(&rope, ByteOffset(text.len()), Utf16), at(1, 0), "{text:?}");
        assert!(offset_of(&rope, at(2, 0), Utf16).is_err(), "{text:?}");
    }
    let rope = Rope::from_str("\r\r\n\n");
    assert_eq!(line_count(&rope), 4);
    assert_eq!(offset_of(&rope, at(1, 0), Utf8), Ok(ByteOffset(1)));
    assert_eq!(offset_of(&rope, at(2, 0), Utf8), Ok(ByteOffset(3)));
    assert_eq!(offset_of(&rope, at(3, 0), Utf8), Ok(ByteOffset(4)));
}

#[test]
fn only_cr_and_lf_break_lines() {
    // ropey (with its default `unicode_lines`) sees five line breaks here; LSP sees none.
    let text = "a\u{2028}b\u{2029}c\u{85}d\u{0B}e\u{0C}f";
    let rope = Rope::from_str(text);
    assert_eq!(rope.len_lines(), 6);
    assert_eq!(line_count(&rope), 1);
    let end = ByteOffset(text.len());
    assert_eq!(line_col_of(&rope, end, Utf16), at(0, 11));
    assert_eq!(line_col_of(&rope, end, Utf8), at(0, text.len() as u32));
    assert_eq!(offset_of(&rope, at(0, 11), Utf16), Ok(end));
    assert!(offset_of(&rope, at(1, 0), Utf16).is_err());
}

#[test]
fn ranges() {
    let rope = Rope::from_str(MIXED);
    let range = LineColRange::new(at(0, 2), at(1, 1));
    assert_eq!(offset_range_of(&rope, range, Utf16), Ok((ByteOffset(2), ByteOffset(11))));
    assert_eq!(line_col_range_of(&rope, ByteOffset(2), ByteOffset(11), Utf16), range);
    let inverted = LineColRange::new(at(1, 0), at(0, 1));
    assert_eq!(offset_range_of(&rope, inverted, Utf16), Err(PositionError::InvertedRange { start: at(1, 0), end: at(0, 1) }));
    // Both ends clamp to the same offset: an empty range, not an error.
    let clamped = LineColRange::new(at(0, 9), at(0, 5));
    assert_eq!(offset_range_of(&rope, clamped, Utf16), Ok((ByteOffset(7), ByteOffset(7))));
}

#[test]
fn line_start_and_end_of_offsets() {
    let rope = Rope::from_str(MIXED);
    let cases = [(0, 0, 7), (3, 0, 7), (7, 0, 7), (8, 8, 14), (15, 8, 14), (17, 16, 18), (20, 19, 20), (99, 19, 20)];
    for (byte, start, end) in cases {
        assert_eq!(line_start_of(&rope, ByteOffset(byte)), ByteOffset(start), "{byte}");
        assert_eq!(line_end_of(&rope, ByteOffset(byte)), ByteOffset(end), "{byte}");
    }
    let rope = Rope::from_str("a\u{2028}b");
    assert_eq!(line_start_of(&rope, ByteOffset(4)), ByteOffset(0));
}

#[test]
fn tree_sitter_points_count_rows_at_lf_only() {
    let rope = Rope::from_str("ab\r\ncd\ref😀g");
    assert_eq!(ts_point_of(&rope, ByteOffset(2)), tree_sitter::Point { row: 0, column: 2 });
    assert_eq!(ts_point_of(&rope, ByteOffset(4)), tree_sitter::Point { row: 1, column: 0 });
    assert_eq!(ts_point_of(&rope, ByteOffset(8)), tree_sitter::Point { row: 1, column: 4 });
    assert_eq!(ts_point_of(&rope, ByteOffset(13)), tree_sitter::Point { row: 1, column: 9 });
    assert_eq!(ts_point_of(&rope, ByteOffset(99)), tree_sitter::Point { row: 1, column: 10 });
}

#[test]
fn round_trips_on_a_multi_chunk_rope() {
    let pieces: [&str; 10] = ["fn 😀() {", "\r\n", "\t中文", "\n", "x", "\r", "", "é\u{2028}", "\r\n\r\n", "  "];
    let mut text = String::new();
    let mut rng = Rng::new(0x9e37_79b9);
    while text.len() < 12_000 {
        text.push_str(pieces[rng.below(pieces.len())]);
    }
    let rope = Rope::from_str(&text);
    assert!(rope.chunks().count() > 8);
    let starts = reference_line_starts(&text);
    assert_eq!(line_count(&rope), starts.len());
    for enc in [Utf8, Utf16] {
        for (byte, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let pos = line_col_of(&rope, ByteOffset(byte), enc);
            assert_eq!(pos, reference_line_col_in(&text, &starts, byte, enc), "{enc:?} {byte}");
            let back = offset_of(&rope, pos, enc).map(|o| o.0);
            let inside_crlf = text.as_bytes().get(byte) == Some(&b'\n') && byte > 0 && text.as_bytes()[byte - 1] == b'\r';
            let expected = if inside_crlf { byte - 1 } else { byte };
            assert_eq!(back, Ok(expected), "{enc:?} {byte} {pos:?}");
        }
        for (line, &start) in starts.iter().enumerate() {
            assert_eq!(offset_of(&rope, at(line as u32, 0), enc), Ok(ByteOffset(start)));
        }
    }
}
