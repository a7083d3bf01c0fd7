//! The `cross_file` sample kind: the rest of a line from a use of a name that is defined in
//! another file of the repository (and not in the file itself), as in CrossCodeEval. These are
//! the cursors where code from other files can matter; on a random cursor it rarely does.
//!
//! "Defined" means what the cross-file index itself extracts ([`crate::crossfile`]'s
//! definitions: functions, methods, classes, types, constants…), from the files that are not
//! held out, in the same language. The match is by name, not by import resolution: a local
//! variable that shares a name with a function elsewhere counts too. Dunder names (`__init__`)
//! are left out: they say nothing about another file.

use std::collections::{HashMap, HashSet};

use tree_sitter::Node;

use super::sample::{ParsedFile, Span};
use super::walk::SourceFile;
use crate::crossfile::defs;
use crate::rng::Rng;
use crate::session::{Document, DocumentLimits};
use crate::syntax::{for_each_node, Language};

/// Names defined in some files, per language.
pub type ForeignNames = HashMap<Language, HashSet<String>>;

/// Names defined in `files` (parsed with the server's document code), per language.
pub fn names_defined_in<'a>(files: impl IntoIterator<Item = &'a SourceFile>) -> ForeignNames {
    let mut names = ForeignNames::new();
    for file in files {
        let Some(tree) =
            Document::open(&file.path, file.language, &file.text, 0, &DocumentLimits::default()).ok().and_then(|d| d.snapshot().tree)
        else {
            continue;
        };
        names
            .entry(file.language)
            .or_default()
            .extend(defs::extract(file.language, &file.text, &tree).into_iter().map(|d| d.name).filter(|n| !is_dunder(n)));
    }
    names
}

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

/// For each code line of `file`: one use (picked with `rng`) of a name in `foreign` that `file`
/// does not define itself; the span runs from the name to the end of the line.
pub(super) fn uses(file: &ParsedFile<'_>, foreign: &ForeignNames, rng: &mut Rng) -> Vec<Span> {
    let (Some(tree), Some(foreign)) = (&file.tree, foreign.get(&file.file.language)) else { return Vec::new() };
    let text = &file.file.text;
    let local: HashSet<String> = defs::extract(file.file.language, text, tree).into_iter().map(|d| d.name).collect();
    let mut per_line: Vec<Vec<usize>> = vec![Vec::new(); file.line_count()];
    for_each_node(tree, |node| {
        if !is_name(node) {
            return;
        }
        let name = &text[node.byte_range()];
        let row = node.start_position().row;
        if foreign.contains(name) && !local.contains(name) && row < per_line.len() && file.code_line(row) {
            per_line[row].push(node.start_byte());
        }
    });
    per_line.iter().enumerate().filter_map(|(row, starts)| rng.pick(starts).map(|&start| Span { start, end: file.line_end(row) })).collect()
}

/// An identifier leaf (plain, field, property, type or package identifier).
fn is_name(node: Node<'_>) -> bool {
    node.child_count() == 0 && node.kind().ends_with("identifier")
}
