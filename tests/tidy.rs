//! Tidy: the rules about where things live, checked on the source text (as rust-analyzer's
//! tidy test does). LSP types only under `src/server/`; standard output written only by
//! `src/cli/`; every source file opens with a module doc; the code map in
//! `docs/architecture.md` names only paths that exist and every top-level module; the README's
//! settings table is the server's own list of options.

use std::path::{Path, PathBuf};

use inkling::config::OPTION_DOCS;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `src/`, relative to the crate root with `/` separators.
fn source_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&root().join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).expect("under the root").to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("read a source file");
            (rel, text)
        })
        .collect()
}

/// Lines of code (comments dropped) with a match of `needle` outside string literals.
fn code_hits<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| line.match_indices(needle).any(|(at, _)| line[..at].matches('"').count() % 2 == 0))
        .collect()
}

#[test]
fn lsp_types_only_under_server() {
    let mut found = Vec::new();
    for (path, text) in source_files() {
        if path.starts_with("src/server/") {
            continue;
        }
        for needle in ["tower_lsp_server", "ls_types", "lsp_types"] {
            found.extend(code_hits(&text, needle).into_iter().map(|l| format!("{path}: {}", l.trim())));
        }
    }
    assert!(found.is_empty(), "LSP types outside src/server/:\n{}", found.join("\n"));
}

#[test]
fn only_the_command_line_writes_to_standard_output() {
    let mut found = Vec::new();
    for (path, text) in source_files() {
        if path.starts_with("src/cli/") {
            continue;
        }
        for needle in ["println!", "print!", "stdout()", "io::stdout", "dbg!"] {
            let hits = code_hits(&text, needle).into_iter().filter(|l| !l.contains(&format!("e{needle}")));
            found.extend(hits.map(|l| format!("{path}: {}", l.trim())));
        }
    }
    assert!(found.is_empty(), "standard output written outside src/cli/:\n{}", found.join("\n"));
}

#[test]
fn every_source_file_says_what_it_holds() {
    let missing: Vec<String> =
        source_files().into_iter().filter(|(_, text)| !text.trim_start().starts_with("//!")).map(|(path, _)| path).collect();
    assert!(missing.is_empty(), "source files without a `//!` module doc: {missing:?}");
}

#[test]
fn the_code_map_names_real_paths_and_every_top_level_module() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let start = doc.find("\n## Code map").expect("a `## Code map` section");
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    // Every `src/...` path the map names exists.
    let mut named = Vec::new();
    for piece in section.split('`').skip(1).step_by(2) {
        if let Some(path) = piece.strip_prefix("src/") {
            assert!(root().join("src").join(path).exists(), "the code map names `src/{path}`, which does not exist");
            named.push(format!("src/{path}"));
        }
    }
    // Each top-level module has its own bullet.
    let bullets: Vec<&str> = section.lines().filter_map(|l| l.strip_prefix("- `")).filter_map(|l| l.split('`').next()).collect();
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod "))?.strip_suffix(';'))
        .collect();
    assert!(modules.len() >= 10, "read the modules of src/lib.rs: {modules:?}");
    for module in &modules {
        let (dir, file) = (format!("src/{module}/"), format!("src/{module}.rs"));
        assert!(bullets.contains(&dir.as_str()) || bullets.contains(&file.as_str()), "the code map has no bullet for `{dir}` or `{file}`");
    }
    // And no bullet for a module that is gone.
    for bullet in bullets {
        let module = bullet.trim_start_matches("src/").trim_end_matches('/').trim_end_matches(".rs");
        assert!(modules.contains(&module), "the code map lists `{bullet}`, which src/lib.rs does not declare");
    }
}

#[test]
fn the_readme_settings_table_is_the_servers_list_of_options() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let start = readme.find("\n## Settings").expect("a `## Settings` section");
    let rows: Vec<Vec<String>> = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| setting |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().trim_matches('`').to_string()).collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let expected: Vec<&str> = OPTION_DOCS.iter().map(|d| d.name).collect();
    assert_eq!(names, expected, "the README's settings, in the order `inkling options` prints them");
    for (row, doc) in rows.iter().zip(OPTION_DOCS.iter()) {
        let (json_type, default) = (&row[1], &row[2]);
        assert!(json_type == doc.json_type || json_type.contains(&doc.default), "type of {} in the README: {json_type}", doc.name);
        // A default of null is written in words (— or "all cores").
        assert!(
            doc.default == "null" || *default == doc.default,
            "default of {} in the README: {default}, server: {}",
            doc.name,
            doc.default
        );
    }
}
