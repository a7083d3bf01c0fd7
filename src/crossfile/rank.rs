//! Retrieval: gather candidates, score them, select what fits the budget, lay it out.
//!
//! * **Candidates**: definitions named like an identifier near the cursor (exact match), named
//!   with the word being typed as a prefix, definitions of the modules the current file imports,
//!   the recent-chunks ring, and the windows most similar to the lines above the cursor
//!   (`similar`) in the files those came from and the current file's folder. Only languages
//!   that can call each other (C with C++, the JavaScript family together) and never the
//!   current file.
//! * **Score** = metadata + [`W_BM25`] × BM25, where BM25 (k1 = 1.2, b = 0.75) compares each
//!   candidate's identifier tokens with the query window's, IDF taken over the candidates, and
//!   normalised to 0..1 by the best candidate. Metadata: exact identifier hit (weighted by how
//!   close to the cursor the identifier is, and divided among same-named definitions), prefix
//!   hit, recency in the ring (edits over views), similarity of a similar-code window,
//!   imported by the current file, same folder.
//! * **Selection** takes candidates by score while they fit `budget_bytes` (see
//!   [`chunk_cost`]), skipping those contained in an already chosen chunk of the same file
//!   (similar-code windows: those overlapping one).
//! * **Layout** is *not* by score. The prompt puts these chunks first so the engine can reuse
//!   its KV cache while the user types; that only works when the chunk sequence keeps its
//!   prefix from one keystroke to the next. So each current file remembers when each chosen
//!   chunk (path + exact text) entered its selection: chunks still selected keep their place,
//!   chunks that newly enter go last (ties by path and line), chunks that drop out are
//!   forgotten (re-entering puts them last again). A keystroke that changes nothing in the
//!   selection gives the identical sequence; one that adds a chunk only appends. Chunks the
//!   last layout showed also get a small score bonus, so near-ties do not flip back and forth.
//! * **Pinned per line** ([`super::CrossFile::retrieve_on_line`]): a request whose line key
//!   ([`super::line_key`]: the text above the cursor line) equals the previous one for the same
//!   file gets the previous chunks back without a new selection. While the user types on one line the chunks do not change
//!   at all, so no keystroke re-reads the file's prefix (on a CPU, a changed chunk costs
//!   seconds of prefill). The price: a definition named by the word being typed is looked up
//!   only when the cursor reaches another line (or the first request on a line names it).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::defs::DefKind;
use super::index::{module_keys, Hit, Index};
use super::lexical::{import_segments, partial_word, tokens};
use super::recent::RecentChunk;
use super::similar;
use super::Query;
use crate::prompt::ContextChunk;
use crate::syntax::Language;

const W_EXACT: f32 = 1.0;
const W_PREFIX: f32 = 0.45;
const W_RECENT: f32 = 0.5;
const W_IMPORTED: f32 = 0.35;
const W_SAME_DIR: f32 = 0.15;
/// Bonus for a chunk the current file's last layout already shows: hysteresis, so near-ties
/// do not flip the selection (and the KV cache) on every keystroke.
const W_STICKY: f32 = 0.1;
/// Weight of a similar-code window's Jaccard similarity.
const W_SIMILAR: f32 = 2.0;
/// Windows less similar than this are not candidates.
const MIN_SIMILARITY: f32 = 0.2;
/// Most similar-code windows among the candidates, and files searched for them.
const MAX_SIMILAR: usize = 2;
const MAX_SIMILAR_FILES: usize = 64;
pub(crate) const W_BM25: f32 = 0.6;
/// Candidates scoring less are never shown.
const MIN_SCORE: f32 = 0.2;
const MAX_CHUNKS: usize = 12;
const MAX_CANDIDATES: usize = 400;
const LOOKUP_LIMIT: usize = 12;
/// Lines of the query window BM25 reads: before the cursor, and after it.
const QUERY_LINES_BEFORE: usize = 15;
const QUERY_LINES_AFTER: usize = 5;

/// Where a retrieved chunk came from.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkSource {
    Definition {
        name: String,
        kind: DefKind,
        exact: bool,
    },
    Recent {
        edited: bool,
    },
    /// Code like the lines above the cursor, and what follows it (Jaccard `similarity`).
    Similar {
        similarity: f32,
    },
}

/// A selected chunk with its score, in selection (best-first) order.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredChunk {
    pub chunk: ContextChunk,
    pub score: f32,
    pub source: ChunkSource,
    /// Zero-based first line of the chunk in its file.
    pub start_line: usize,
}

/// The bytes a chunk takes in the prompt: `path`, a line break, `text` (the comment markers or
/// `<|file_sep|>` token are not counted). `budget_bytes` is compared with the sum of these.
pub fn chunk_cost(chunk: &ContextChunk) -> usize {
    chunk.path.len() + 1 + chunk.text.len()
}

struct Candidate {
    path: Arc<str>,
    display: String,
    start: usize,
    end: usize,
    text: String,
    source: ChunkSource,
    meta: f32,
}

/// Whether code in `a` may use definitions written in `b`.
pub(crate) fn compatible(a: Language, b: Language) -> bool {
    use Language::*;
    let family = |l| match l {
        JavaScript | TypeScript | Tsx => 1,
        C | Cpp => 2,
        _ => 0,
    };
    a == b || (family(a) != 0 && family(a) == family(b))
}

pub(crate) fn folder(path: &str) -> &str {
    path.rfind(['/', '\\']).map_or("", |i| &path[..i])
}

pub(crate) fn display_path(root: Option<&str>, path: &str) -> String {
    let relative = root.and_then(|r| path.strip_prefix(r)).map(|p| p.trim_start_matches(['/', '\\']));
    relative.filter(|p| !p.is_empty()).unwrap_or(path).to_owned()
}

/// Candidates for `query`, with their metadata scores.
fn gather(index: &Index, recent: &[RecentChunk], query: &Query, root: Option<&str>) -> Vec<Candidate> {
    let segments = import_segments(&query.imports);
    let here = folder(&query.path);
    let mut out: Vec<Candidate> = Vec::new();
    let mut seen: HashMap<(Arc<str>, usize, bool), usize> = HashMap::new();
    let mut add_def = |out: &mut Vec<Candidate>, hit: Hit, bonus: f32, exact: bool| {
        if *hit.path == *query.path || !compatible(query.language, hit.language) {
            return;
        }
        let key = (hit.path.clone(), hit.def.start_line as usize, false);
        if let Some(&i) = seen.get(&key) {
            let candidate: &mut Candidate = &mut out[i];
            candidate.meta += bonus;
            if let ChunkSource::Definition { exact: e, .. } = &mut candidate.source {
                *e |= exact;
            }
            return;
        }
        if out.len() >= MAX_CANDIDATES {
            return;
        }
        seen.insert(key, out.len());
        out.push(Candidate {
            display: display_path(root, &hit.path),
            path: hit.path,
            start: hit.def.start_line as usize,
            end: hit.def.end_line as usize + 1,
            text: hit.def.snippet,
            source: ChunkSource::Definition { name: hit.def.name, kind: hit.def.kind, exact },
            meta: bonus,
        });
    };
    for (rank, name) in query.identifiers.iter().take(24).enumerate() {
        let hits = index.lookup(name, LOOKUP_LIMIT);
        let closeness = 0.93f32.powi(rank as i32).max(0.3);
        let shared = (4.0 / hits.len().max(1) as f32).min(1.0);
        for hit in hits {
            add_def(&mut out, hit, W_EXACT * closeness * shared, true);
        }
    }
    let partial = partial_word(&query.text_before);
    if partial.chars().count() >= 3 {
        for hit in index.lookup_prefix(partial, 12) {
            add_def(&mut out, hit, W_PREFIX, false);
        }
    }
    let mut modules: Vec<&String> = segments.iter().collect();
    modules.sort();
    for module in modules.into_iter().take(8) {
        for hit in index.module_definitions(module, 24) {
            add_def(&mut out, hit, 0.0, false);
        }
    }
    for (age, chunk) in recent.iter().enumerate() {
        if *chunk.path == *query.path || !compatible(query.language, Language::from_path(&chunk.path)) {
            continue;
        }
        let weight = if chunk.edited { 1.0 } else { 0.6 };
        out.push(Candidate {
            path: chunk.path.clone(),
            display: display_path(root, &chunk.path),
            start: chunk.start,
            end: chunk.end,
            text: chunk.text.clone(),
            source: ChunkSource::Recent { edited: chunk.edited },
            meta: W_RECENT * weight * 0.85f32.powi(age as i32),
        });
    }
    add_similar(index, query, root, &mut out);
    for candidate in &mut out {
        if module_keys(&candidate.path).iter().any(|k| segments.contains(k)) {
            candidate.meta += W_IMPORTED;
        }
        if folder(&candidate.path) == here {
            candidate.meta += W_SAME_DIR;
        }
    }
    out
}

/// Adds the [`MAX_SIMILAR`] windows most like the lines above the cursor, searched in the files
/// of the candidates so far (recent ones first), then in the current file's folder.
fn add_similar(index: &Index, query: &Query, root: Option<&str>, out: &mut Vec<Candidate>) {
    let wanted = similar::query_set(&query.text_before);
    if wanted.len() < 3 {
        return;
    }
    let mut paths: Vec<Arc<str>> =
        out.iter().rev().filter(|c| matches!(c.source, ChunkSource::Recent { .. })).map(|c| c.path.clone()).collect();
    paths.extend(out.iter().filter(|c| !matches!(c.source, ChunkSource::Recent { .. })).map(|c| c.path.clone()));
    let mut found: Vec<(similar::Match, similar::WindowsOfFile)> = Vec::new();
    for file in index.windows(&paths, folder(&query.path), MAX_SIMILAR_FILES) {
        if *file.path == *query.path || !compatible(query.language, file.language) {
            continue;
        }
        for m in file.windows.best(&wanted, MIN_SIMILARITY, MAX_SIMILAR) {
            found.push((m, file.clone()));
        }
    }
    found.sort_by(|(a, x), (b, y)| b.similarity.total_cmp(&a.similarity).then_with(|| x.path.cmp(&y.path)).then(a.start.cmp(&b.start)));
    for (m, file) in found.into_iter().take(MAX_SIMILAR) {
        let (text, end) = file.windows.chunk(m.start);
        out.push(Candidate {
            display: display_path(root, &file.path),
            path: file.path,
            start: m.start,
            end,
            text,
            source: ChunkSource::Similar { similarity: m.similarity },
            meta: W_SIMILAR * m.similarity,
        });
    }
}

/// BM25 of each document against the query terms, normalised so the best is 1.
fn bm25(query: &HashSet<String>, docs: &[Vec<String>]) -> Vec<f32> {
    const K1: f32 = 1.2;
    const B: f32 = 0.75;
    let n = docs.len() as f32;
    let avg = docs.iter().map(Vec::len).sum::<usize>() as f32 / n.max(1.0);
    let mut df: HashMap<&str, f32> = HashMap::new();
    for doc in docs {
        let unique: HashSet<&str> = doc.iter().map(String::as_str).filter(|t| query.contains(*t)).collect();
        for term in unique {
            *df.entry(term).or_default() += 1.0;
        }
    }
    let scores: Vec<f32> = docs
        .iter()
        .map(|doc| {
            let mut tf: HashMap<&str, f32> = HashMap::new();
            for term in doc.iter().filter(|t| query.contains(*t)) {
                *tf.entry(term.as_str()).or_default() += 1.0;
            }
            let len_norm = 1.0 - B + B * doc.len() as f32 / avg.max(1.0);
            tf.iter()
                .map(|(term, &f)| {
                    let d = df.get(term).copied().unwrap_or(0.0);
                    let idf = (1.0 + (n - d + 0.5) / (d + 0.5)).ln();
                    idf * f * (K1 + 1.0) / (f + K1 * len_norm)
                })
                .sum()
        })
        .collect();
    let best = scores.iter().copied().fold(0.0f32, f32::max);
    scores.into_iter().map(|s| if best > 0.0 { s / best } else { 0.0 }).collect()
}

fn query_terms(query: &Query) -> HashSet<String> {
    let before: Vec<&str> = query.text_before.rsplit('\n').take(QUERY_LINES_BEFORE + 1).collect();
    let after: Vec<&str> = query.text_after.split('\n').take(QUERY_LINES_AFTER + 1).collect();
    let mut terms: HashSet<String> = tokens(&before.join("\n")).into_iter().collect();
    terms.extend(tokens(&after.join("\n")));
    terms.extend(query.identifiers.iter().flat_map(|i| tokens(i)));
    terms
}

/// Scores and selects chunks for `query`, best first, within its budget.
pub(crate) fn select(index: &Index, recent: &[RecentChunk], query: &Query, root: Option<&str>, shown: &HashSet<u64>) -> Vec<ScoredChunk> {
    let candidates = gather(index, recent, query, root);
    if candidates.is_empty() {
        return Vec::new();
    }
    let docs: Vec<Vec<String>> = candidates.iter().map(|c| tokens(&c.text)).collect();
    let lexical = bm25(&query_terms(query), &docs);
    let sticky = |c: &Candidate| if shown.contains(&identity(&c.display, &c.text)) { W_STICKY } else { 0.0 };
    let mut scored: Vec<(f32, Candidate)> =
        candidates.into_iter().zip(lexical).map(|(c, l)| (c.meta + W_BM25 * l + sticky(&c), c)).collect();
    scored.sort_by(|(a, x), (b, y)| b.total_cmp(a).then_with(|| x.display.cmp(&y.display)).then_with(|| x.start.cmp(&y.start)));
    let mut left = query.budget_bytes;
    let mut chosen: Vec<ScoredChunk> = Vec::new();
    let mut ranges: Vec<(Arc<str>, usize, usize)> = Vec::new();
    for (score, candidate) in scored {
        if score < MIN_SCORE || chosen.len() == MAX_CHUNKS {
            break;
        }
        // A definition inside a chosen chunk adds nothing; a similar-code window is literal
        // code, so any overlap with a chosen chunk would show lines twice.
        let similar = matches!(candidate.source, ChunkSource::Similar { .. });
        let inside = ranges.iter().any(|(p, s, e)| {
            *p == candidate.path
                && if similar { *s < candidate.end && candidate.start < *e } else { *s <= candidate.start && candidate.end <= *e }
        });
        let chunk = ContextChunk { path: candidate.display, text: candidate.text };
        let cost = chunk_cost(&chunk);
        if inside || cost > left || chunk.text.trim().is_empty() {
            continue;
        }
        left -= cost;
        ranges.push((candidate.path, candidate.start, candidate.end));
        chosen.push(ScoredChunk { chunk, score, source: candidate.source, start_line: candidate.start });
    }
    chosen
}

/// When each chunk entered one current file's selection.
#[derive(Debug, Default)]
pub(crate) struct Layouts {
    files: HashMap<String, (u64, HashMap<u64, u64>)>,
    /// Per current file: the line key of its last retrieval and the chunks it returned.
    pins: HashMap<String, (u64, Vec<ContextChunk>)>,
    clock: u64,
}

/// How many current files keep a remembered layout.
const REMEMBERED_FILES: usize = 32;

impl Layouts {
    /// The chunks of `chosen` in stable layout order for `current` (see the module doc).
    pub(crate) fn arrange(&mut self, current: &str, chosen: &[ScoredChunk]) -> Vec<ContextChunk> {
        self.clock += 1;
        let clock = self.clock;
        let (used, entered) = self.files.entry(current.to_owned()).or_default();
        *used = clock;
        let keyed: Vec<(u64, &ScoredChunk)> = chosen.iter().map(|c| (identity(&c.chunk.path, &c.chunk.text), c)).collect();
        let mut new: Vec<&(u64, &ScoredChunk)> = keyed.iter().filter(|(k, _)| !entered.contains_key(k)).collect();
        new.sort_by(|(_, a), (_, b)| a.chunk.path.cmp(&b.chunk.path).then(a.start_line.cmp(&b.start_line)));
        let next = entered.values().copied().max().map_or(0, |m| m + 1);
        let mut fresh: HashMap<u64, u64> = keyed.iter().filter_map(|(k, _)| entered.get(k).map(|&at| (*k, at))).collect();
        for (at, (key, _)) in (next..).zip(new) {
            fresh.insert(*key, at);
        }
        let mut ordered: Vec<(u64, &ScoredChunk)> = keyed.iter().map(|(k, c)| (fresh.get(k).copied().unwrap_or(u64::MAX), *c)).collect();
        ordered.sort_by_key(|(at, _)| *at);
        *entered = fresh;
        if self.files.len() > REMEMBERED_FILES {
            let oldest = self.files.iter().min_by_key(|(_, (used, _))| *used).map(|(path, _)| path.clone());
            if let Some(oldest) = oldest {
                self.files.remove(&oldest);
                self.pins.remove(&oldest);
            }
        }
        ordered.into_iter().map(|(_, c)| c.chunk.clone()).collect()
    }

    /// The chunks retrieved for `current` at the line `line`, if its last retrieval was there.
    pub(crate) fn pinned(&self, current: &str, line: u64) -> Option<Vec<ContextChunk>> {
        self.pins.get(current).filter(|(at, _)| *at == line).map(|(_, chunks)| chunks.clone())
    }

    /// Remembers `chunks` as what `current` shows while the cursor stays at `line`. An empty
    /// retrieval is not kept (the index may still be filling).
    pub(crate) fn pin(&mut self, current: &str, line: u64, chunks: &[ContextChunk]) {
        if chunks.is_empty() {
            self.pins.remove(current);
        } else {
            self.pins.insert(current.to_owned(), (line, chunks.to_vec()));
        }
    }

    /// The chunks the last layout for `current` showed.
    pub(crate) fn shown(&self, current: &str) -> HashSet<u64> {
        self.files.get(current).map(|(_, entered)| entered.keys().copied().collect()).unwrap_or_default()
    }
}

/// What identifies a chunk in a layout: its path and exact text.
fn identity(path: &str, text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    text.hash(&mut hasher);
    hasher.finish()
}
