//! Similar code: windows of other files that look like the lines just above the cursor, and
//! the lines that follow them there. Code in one repository repeats itself (a second transport
//! class, the next handler, the same error check), and what followed the similar code elsewhere
//! is often what the user is about to write here.
//!
//! Each indexed file keeps its text and, for every window of [`WINDOW_LINES`] lines (one every
//! [`STRIDE`] lines), the sorted set of hashed identifiers it contains (keywords left out). A
//! query is the same set for the last [`WINDOW_LINES`] non-blank lines above the cursor line; windows
//! are ranked by Jaccard similarity of the two sets, and a hit is shown as its window plus
//! [`FOLLOW_LINES`] lines after it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::lexical::{identifiers, is_keyword};

/// Lines in a window, and in the query.
pub(crate) const WINDOW_LINES: usize = 12;
/// Lines between the starts of two windows.
pub(crate) const STRIDE: usize = 4;
/// Lines after a matched window that the chunk shows as well.
pub(crate) const FOLLOW_LINES: usize = 8;
/// Windows with fewer distinct identifiers say too little to be matched.
const MIN_WINDOW_TOKENS: usize = 4;
/// Bytes counted per window on top of its tokens.
const WINDOW_OVERHEAD: usize = 24;

/// One window: its first line and its identifier set.
struct Window {
    start: u32,
    tokens: Box<[u32]>,
}

/// A file's text and windows.
pub(crate) struct FileWindows {
    text: Box<str>,
    /// Byte offset of each line start.
    lines: Vec<u32>,
    windows: Vec<Window>,
}

/// A file's windows, taken out of the index for a search outside its lock.
#[derive(Clone)]
pub(crate) struct WindowsOfFile {
    pub path: std::sync::Arc<str>,
    pub language: crate::syntax::Language,
    pub windows: std::sync::Arc<FileWindows>,
}

/// A window that matched: where, and how well.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Match {
    pub start: usize,
    pub similarity: f32,
}

fn hash(word: &str) -> u32 {
    let mut hasher = DefaultHasher::new();
    word.hash(&mut hasher);
    hasher.finish() as u32
}

/// The sorted, distinct hashed identifiers of `text`, keywords left out.
pub(crate) fn token_set(text: &str) -> Vec<u32> {
    let mut set: Vec<u32> = identifiers(text).into_iter().filter(|(_, w)| w.len() >= 2 && !is_keyword(w)).map(|(_, w)| hash(w)).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// The query set: identifiers of the last [`WINDOW_LINES`] non-blank whole lines of
/// `text_before`. The cursor line is left out, so that typing on it does not change which
/// windows are shown (and the prompt's cached prefix survives the keystroke).
pub(crate) fn query_set(text_before: &str) -> Vec<u32> {
    let whole = text_before.rfind('\n').map_or("", |i| &text_before[..i]);
    let lines: Vec<&str> = whole.rsplit('\n').filter(|l| !l.trim().is_empty()).take(WINDOW_LINES).collect();
    token_set(&lines.join("\n"))
}

/// Jaccard similarity of two sorted sets.
pub(crate) fn jaccard(a: &[u32], b: &[u32]) -> f32 {
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - shared;
    if union == 0 {
        0.0
    } else {
        shared as f32 / union as f32
    }
}

impl FileWindows {
    pub(crate) fn build(text: &str) -> FileWindows {
        let mut lines = vec![0u32];
        lines.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        if lines.len() > 1 && *lines.last().unwrap_or(&0) as usize == text.len() {
            lines.pop();
        }
        let mut windows = Vec::new();
        let mut start = 0;
        while start < lines.len() {
            let end = (start + WINDOW_LINES).min(lines.len());
            let tokens = token_set(&text[lines[start] as usize..line_end(&lines, text, end)]);
            if tokens.len() >= MIN_WINDOW_TOKENS {
                windows.push(Window { start: start as u32, tokens: tokens.into_boxed_slice() });
            }
            if end == lines.len() {
                break;
            }
            start += STRIDE;
        }
        FileWindows { text: text.into(), lines, windows }
    }

    /// Bytes this takes in memory, roughly (counted against the index's cap).
    pub(crate) fn bytes(&self) -> usize {
        self.text.len() + self.lines.len() * 4 + self.windows.iter().map(|w| w.tokens.len() * 4 + WINDOW_OVERHEAD).sum::<usize>()
    }

    /// The `limit` windows most similar to `query` (a [`query_set`]), best first, at least
    /// `min_similarity`, and none overlapping a better one.
    pub(crate) fn best(&self, query: &[u32], min_similarity: f32, limit: usize) -> Vec<Match> {
        let mut scored: Vec<Match> = self
            .windows
            .iter()
            .map(|w| Match { start: w.start as usize, similarity: jaccard(query, &w.tokens) })
            .filter(|m| m.similarity >= min_similarity)
            .collect();
        scored.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.start.cmp(&b.start)));
        let mut out: Vec<Match> = Vec::new();
        for m in scored {
            if out.len() == limit {
                break;
            }
            if out.iter().all(|o| o.start.abs_diff(m.start) >= WINDOW_LINES) {
                out.push(m);
            }
        }
        out
    }

    /// The chunk shown for a window starting at `start`: its lines and [`FOLLOW_LINES`] more,
    /// without trailing blank lines; with its end line (exclusive).
    pub(crate) fn chunk(&self, start: usize) -> (String, usize) {
        let start = start.min(self.lines.len());
        let mut end = (start + WINDOW_LINES + FOLLOW_LINES).min(self.lines.len());
        let from = self.lines.get(start).map_or(self.text.len(), |&b| b as usize);
        while end > start && self.text[self.lines[end - 1] as usize..line_end(&self.lines, &self.text, end)].trim().is_empty() {
            end -= 1;
        }
        let to = line_end(&self.lines, &self.text, end);
        (self.text[from..to.max(from)].trim_end_matches(['\n', '\r']).to_owned(), end)
    }
}

/// Byte offset where line `end - 1` ends (its line break included), for `end` in 1..=lines.
fn line_end(lines: &[u32], text: &str, end: usize) -> usize {
    lines.get(end).map_or(text.len(), |&b| b as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        (0..n).map(|i| format!("value_{i} = compute_{i}(item_{i})\n")).collect()
    }

    #[test]
    fn jaccard_of_sorted_sets() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[], &[]), 0.0);
        assert_eq!(jaccard(&[7], &[7]), 1.0);
    }

    #[test]
    fn query_reads_the_last_non_blank_lines_without_keywords() {
        let before = format!("first_name = 1\n{}\n\n   return total_value\n    partial_wor", "x_y = 2\n".repeat(WINDOW_LINES - 1));
        let set = query_set(&before);
        assert!(set.contains(&hash("total_value")) && set.contains(&hash("x_y")));
        assert!(!set.contains(&hash("first_name")), "only the last {WINDOW_LINES} non-blank lines count");
        assert!(!set.contains(&hash("return")));
        assert!(!set.contains(&hash("partial_wor")), "the cursor line is left out");
        assert_eq!(query_set(&format!("{before}d(x)")), set, "typing on the cursor line changes nothing");
    }

    #[test]
    fn windows_cover_the_file_and_the_best_one_is_found_with_what_follows() {
        let text = numbered(40);
        let windows = FileWindows::build(&text);
        let starts: Vec<u32> = windows.windows.iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![0, 4, 8, 12, 16, 20, 24, 28]);
        // The query is lines 11..23 of the file (the cursor on the line after): the window
        // starting at 12 shares the most, and the windows at 8 and 16 overlap it, so they are
        // not returned.
        let query = query_set(&format!("{}\n", text.lines().skip(11).take(WINDOW_LINES).collect::<Vec<_>>().join("\n")));
        let best = windows.best(&query, 0.1, 3);
        assert_eq!(best.len(), 1, "{best:?}");
        assert_eq!(best[0].start, 12);
        assert!((best[0].similarity - 33.0 / 39.0).abs() < 1e-6, "{best:?}");
        let (chunk, end) = windows.chunk(12);
        assert_eq!(end, 12 + WINDOW_LINES + FOLLOW_LINES);
        assert!(chunk.starts_with("value_12 = ") && chunk.ends_with("compute_31(item_31)"), "{chunk}");
        assert!(windows.best(&query_set("unrelated_name other_name\n"), 0.1, 2).is_empty());
    }

    #[test]
    fn chunk_at_the_end_of_a_file_drops_trailing_blank_lines() {
        let text = format!("{}\n\n\n", numbered(14).trim_end());
        let windows = FileWindows::build(&text);
        let (chunk, end) = windows.chunk(4);
        assert_eq!(end, 14);
        assert!(chunk.ends_with("compute_13(item_13)"), "{chunk:?}");
        assert!(windows.bytes() > text.len());
    }
}
