//! The recent-chunks ring: the ~40 lines around the places the user recently edited or viewed,
//! at most [`RecentLimits::chunks`] chunks of at most [`RecentLimits::max_lines`] lines.
//! Chunks of the same file that overlap or touch are merged; when the ring is full, the chunk
//! touched longest ago is evicted.

use std::sync::Arc;

use ropey::Rope;

/// Most bytes of one chunk (a window of very long lines is cut here, at a line boundary when
/// there is one).
const MAX_CHUNK_BYTES: usize = 8 * 1024;

/// Text handed to the ring or the index: a document's rope, or plain text.
#[derive(Clone, Copy, Debug)]
pub enum Text<'a> {
    Rope(&'a Rope),
    Str(&'a str),
}

impl<'a> From<&'a Rope> for Text<'a> {
    fn from(rope: &'a Rope) -> Text<'a> {
        Text::Rope(rope)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Text<'a> {
        Text::Str(text)
    }
}

impl<'a> From<&'a String> for Text<'a> {
    fn from(text: &'a String) -> Text<'a> {
        Text::Str(text)
    }
}

impl Text<'_> {
    /// Lines `start..end` (zero-based, end exclusive, clamped) with their line breaks.
    fn lines(self, start: usize, end: usize) -> String {
        match self {
            Text::Rope(rope) => {
                let count = rope.len_lines();
                let (start, end) = (start.min(count), end.min(count));
                let from = rope.try_line_to_char(start).unwrap_or(0);
                let to = rope.try_line_to_char(end).unwrap_or(from).max(from);
                rope.slice(from..to).to_string()
            }
            Text::Str(text) => text.split_inclusive('\n').skip(start).take(end.saturating_sub(start)).collect(),
        }
    }

    fn line_count(self) -> usize {
        match self {
            Text::Rope(rope) => rope.len_lines(),
            Text::Str(text) => text.split_inclusive('\n').count().max(1),
        }
    }

    /// The whole text.
    pub(crate) fn to_text(self) -> String {
        match self {
            Text::Rope(rope) => rope.to_string(),
            Text::Str(text) => text.to_owned(),
        }
    }
}

/// Size of the ring and its chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecentLimits {
    /// Most chunks kept (default 16).
    pub chunks: usize,
    /// Lines recorded around a position (default 40: 20 above, 20 below).
    pub window_lines: usize,
    /// Most lines of one chunk after merging (default 60).
    pub max_lines: usize,
}

impl Default for RecentLimits {
    fn default() -> Self {
        RecentLimits { chunks: 16, window_lines: 40, max_lines: 60 }
    }
}

/// One recently edited or viewed region of a file.
#[derive(Clone, Debug)]
pub(crate) struct RecentChunk {
    pub path: Arc<str>,
    /// Zero-based lines `start..end`.
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// When last edited or viewed (a counter; larger is newer).
    pub touched: u64,
    /// Whether it was ever edited, not only viewed.
    pub edited: bool,
}

#[derive(Debug)]
pub(crate) struct Ring {
    limits: RecentLimits,
    chunks: Vec<RecentChunk>,
    clock: u64,
}

impl Ring {
    pub(crate) fn new(limits: RecentLimits) -> Ring {
        Ring { limits, chunks: Vec::new(), clock: 0 }
    }

    /// Records the window around `line` of `path`, merging with chunks of the same file it
    /// overlaps or touches.
    pub(crate) fn note(&mut self, path: &str, text: Text<'_>, line: usize, edited: bool) {
        if self.limits.chunks == 0 || self.limits.max_lines == 0 {
            return;
        }
        let count = text.line_count();
        let line = line.min(count.saturating_sub(1));
        let half = self.limits.window_lines.max(1) / 2;
        let mut start = line.saturating_sub(half);
        let mut end = (line + half).min(count).max(line + 1);
        let mut was_edited = edited;
        let mut i = 0;
        while i < self.chunks.len() {
            let chunk = &self.chunks[i];
            if &*chunk.path == path && chunk.start <= end && start <= chunk.end {
                start = start.min(chunk.start);
                end = end.max(chunk.end);
                was_edited |= chunk.edited;
                self.chunks.remove(i);
            } else {
                i += 1;
            }
        }
        if end - start > self.limits.max_lines {
            // Keep the part of the merged range centred on the new position.
            let max = self.limits.max_lines;
            let centred = line.saturating_sub(max / 2).max(start);
            start = centred.min(end - max);
            end = start + max;
        }
        self.clock += 1;
        let text = cut(text.lines(start, end));
        self.chunks.push(RecentChunk { path: Arc::from(path), start, end, text, touched: self.clock, edited: was_edited });
        while self.chunks.len() > self.limits.chunks {
            let oldest = (0..self.chunks.len()).min_by_key(|&i| self.chunks[i].touched).unwrap_or(0);
            self.chunks.remove(oldest);
        }
    }

    pub(crate) fn remove_file(&mut self, path: &str) {
        self.chunks.retain(|c| &*c.path != path);
    }

    /// The chunks, newest first.
    pub(crate) fn chunks(&self) -> Vec<RecentChunk> {
        let mut chunks = self.chunks.clone();
        chunks.sort_by_key(|c| std::cmp::Reverse(c.touched));
        chunks
    }
}

fn cut(mut text: String) -> String {
    if text.len() <= MAX_CHUNK_BYTES {
        return text;
    }
    let mut at = MAX_CHUNK_BYTES;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let at = text[..at].rfind('\n').map_or(at, |i| i + 1);
    text.truncate(at);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        (0..n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn windows_merge_cap_and_evict() {
        let text = numbered(200);
        let mut ring = Ring::new(RecentLimits { chunks: 2, window_lines: 40, max_lines: 60 });
        ring.note("a.rs", Text::Str(&text), 100, true);
        let first = ring.chunks();
        assert_eq!((first[0].start, first[0].end), (80, 120));
        assert!(first[0].text.starts_with("line 80\n") && first[0].text.ends_with("line 119\n"));
        // Overlapping: merged, capped at 60 lines around the new position.
        ring.note("a.rs", Text::Str(&text), 130, false);
        let merged = ring.chunks();
        assert_eq!(merged.len(), 1);
        assert_eq!((merged[0].start, merged[0].end), (90, 150));
        assert!(merged[0].edited);
        let rope = Rope::from_str(&text);
        ring.note("b.rs", Text::Rope(&rope), 0, false);
        ring.note("c.rs", Text::Rope(&rope), 1_000, false);
        let chunks = ring.chunks();
        assert_eq!(chunks.iter().map(|c| &*c.path).collect::<Vec<_>>(), vec!["c.rs", "b.rs"]);
        assert_eq!((chunks[1].start, chunks[1].end), (0, 20));
        assert!(chunks[0].text.ends_with("line 199\n"), "{}", chunks[0].text);
        ring.remove_file("c.rs");
        assert_eq!(ring.chunks().len(), 1);
        // Odd input does not panic.
        ring.note("d.rs", Text::Str(""), 5, true);
        let long = "x".repeat(100_000);
        ring.note("e.rs", Text::Str(&long), 0, true);
        assert!(ring.chunks()[0].text.len() <= MAX_CHUNK_BYTES);
    }
}
