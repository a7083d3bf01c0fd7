//! A reference model of an LSP text document, written the obvious way (a `String` and linear
//! scans), used to check the server's incremental edits: LSP lines end at `\n`, `\r\n` or a lone
//! `\r`; a column past the end of its line clamps to the end of the line's content; a column
//! inside a character (a UTF-8 sequence, a UTF-16 surrogate pair) rounds down to its start.
//! Also random edits (drawn from `inkling::rng::Rng`) that exercise emoji, CJK and CRLF.

/// The units of an LSP `character`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enc {
    Utf8,
    Utf16,
}

impl Enc {
    fn width(self, c: char) -> usize {
        match self {
            Enc::Utf8 => c.len_utf8(),
            Enc::Utf16 => c.len_utf16(),
        }
    }
}

/// Byte offsets where LSP lines start.
pub fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            starts.push(i + 1);
        }
    }
    starts
}

fn content_end(text: &str, start: usize) -> usize {
    text[start..].find(['\r', '\n']).map_or(text.len(), |i| start + i)
}

/// The byte offset of (line, character), or `None` when the line does not exist.
pub fn offset_of(text: &str, line: u32, character: u32, enc: Enc) -> Option<usize> {
    let starts = line_starts(text);
    let start = *starts.get(line as usize)?;
    let end = content_end(text, start);
    let mut units = 0usize;
    let mut off = start;
    for c in text[start..end].chars() {
        let w = enc.width(c);
        if units + w > character as usize {
            break;
        }
        units += w;
        off += c.len_utf8();
    }
    Some(off)
}

/// The (line, character) of the char boundary `byte` (inside a `\r\n`: the end of the content).
pub fn line_col(text: &str, byte: usize, enc: Enc) -> (u32, u32) {
    let starts = line_starts(text);
    let line = starts.iter().rposition(|&s| s <= byte).unwrap_or(0);
    let start = starts[line];
    let end = content_end(text, start).min(byte);
    let character: usize = text[start..end].chars().map(|c| enc.width(c)).sum();
    (line as u32, character as u32)
}

/// The position of the end of the document.
pub fn end_position(text: &str, enc: Enc) -> (u32, u32) {
    line_col(text, text.len(), enc)
}

/// One LSP content change: `range` = ((line, char), (line, char)), or the whole text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub range: Option<((u32, u32), (u32, u32))>,
    pub text: String,
}

impl Change {
    pub fn to_json(&self) -> serde_json::Value {
        match self.range {
            None => serde_json::json!({"text": self.text}),
            Some(((sl, sc), (el, ec))) => serde_json::json!({
                "range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}},
                "text": self.text
            }),
        }
    }
}

/// Why a change does not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Line,
    Inverted,
    TooLarge,
}

/// Applies one change to `text` (unchanged on error), the way LSP says.
pub fn apply(text: &mut String, change: &Change, enc: Enc, max_bytes: usize) -> Result<(), Refused> {
    let Some(((sl, sc), (el, ec))) = change.range else {
        if change.text.len() > max_bytes {
            return Err(Refused::TooLarge);
        }
        *text = change.text.clone();
        return Ok(());
    };
    let start = offset_of(text, sl, sc, enc).ok_or(Refused::Line)?;
    let end = offset_of(text, el, ec, enc).ok_or(Refused::Line)?;
    if end < start {
        return Err(Refused::Inverted);
    }
    if text.len() - (end - start) + change.text.len() > max_bytes {
        return Err(Refused::TooLarge);
    }
    text.replace_range(start..end, &change.text);
    Ok(())
}

/// Applies all changes or none.
pub fn apply_all(text: &mut String, changes: &[Change], enc: Enc, max_bytes: usize) -> Result<(), Refused> {
    let mut work = text.clone();
    for c in changes {
        apply(&mut work, c, enc, max_bytes)?;
    }
    *text = work;
    Ok(())
}

pub use inkling::rng::Rng;

/// Pieces random text is made of: code, emoji (surrogate pairs, ZWJ and modifier sequences),
/// CJK, accents, tabs and every kind of line break.
pub const PIECES: &[&str] = &[
    "a",
    "x",
    "foo",
    "bar_baz",
    " ",
    "  ",
    "    ",
    "\t",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ":",
    ";",
    ",",
    ".",
    "=",
    " = ",
    "def ",
    "fn ",
    "return ",
    "if ",
    "let ",
    "\"",
    "'",
    "#",
    "//",
    "/*",
    "*/",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "漢字",
    "中",
    "é",
    "ñ",
    "\u{0301}",
    "ß",
    "\n",
    "\n",
    "\r\n",
    "\r\n",
    "\r",
    "\n    ",
    "\u{2028}",
    "\u{85}",
    "\u{feff}",
];

/// Random text of up to `max_pieces` pieces.
pub fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    let n = rng.below(max_pieces + 1);
    (0..n).map(|_| *rng.pick(PIECES).expect("pieces")).collect()
}

/// A random char boundary of `text`.
pub fn random_boundary(rng: &mut Rng, text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    let mut b = rng.below(text.len() + 1);
    while !text.is_char_boundary(b) {
        b -= 1;
    }
    b
}

/// A random position in `text` that resolves (clamping and rounding included).
pub fn random_position(rng: &mut Rng, text: &str, enc: Enc) -> (u32, u32) {
    let (line, character) = line_col(text, random_boundary(rng, text), enc);
    match rng.below(10) {
        0 => (line, character + 1 + rng.below(3) as u32), // may fall inside a character or past the end
        1 => (line, 10_000),                              // past the end of the line: clamps
        _ => (line, character),
    }
}

/// A random valid change for `text` (insertion, deletion or replacement; sometimes the whole
/// document), biased towards deletions once the text is over `soft_max` bytes.
pub fn random_change(rng: &mut Rng, text: &str, enc: Enc, soft_max: usize) -> Change {
    if rng.chance(1) {
        return Change { range: None, text: random_text(rng, 40) };
    }
    loop {
        let a = random_position(rng, text, enc);
        let b = if rng.chance(40) { a } else { random_position(rng, text, enc) };
        let resolve = |p: (u32, u32)| offset_of(text, p.0, p.1, enc).unwrap_or(0);
        let (start, end) = if resolve(a) <= resolve(b) { (a, b) } else { (b, a) };
        if resolve(start) > resolve(end) {
            continue;
        }
        let deleting = text.len() > soft_max && rng.chance(80);
        let new_text = if deleting { String::new() } else { random_text(rng, 6) };
        return Change { range: Some((start, end)), text: new_text };
    }
}
