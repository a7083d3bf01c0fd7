//! Words in code, without a parser: identifiers near the cursor ([`identifiers_near`]), the
//! modules a file imports ([`imports_of`]), and the lowercase tokens BM25 compares
//! ([`tokens`]). Everything here is a cheap, line-based approximation that never fails: odd
//! input gives fewer words, not an error.

use std::collections::HashSet;

use crate::syntax::Language;

/// How many lines before the cursor line [`identifiers_near`] looks at.
const NEAR_LINES: usize = 15;
/// Most identifiers [`identifiers_near`] returns.
const MAX_NEAR: usize = 32;

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Identifiers in `text` with their byte offsets, in order. Words starting with a digit
/// (numbers such as `0x1f`) are skipped whole.
pub(crate) fn identifiers(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !is_ident_char(c) {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if !is_ident_char(next) {
                break;
            }
            end = i + next.len_utf8();
            chars.next();
        }
        if is_ident_start(c) {
            out.push((start, &text[start..end]));
        }
    }
    out
}

/// Keywords and ubiquitous builtins of the supported languages: useless for lookups.
pub(crate) fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "abstract"
            | "and"
            | "as"
            | "assert"
            | "async"
            | "auto"
            | "await"
            | "bool"
            | "boolean"
            | "break"
            | "byte"
            | "case"
            | "catch"
            | "char"
            | "chan"
            | "class"
            | "const"
            | "constexpr"
            | "continue"
            | "crate"
            | "def"
            | "default"
            | "defer"
            | "del"
            | "delete"
            | "do"
            | "double"
            | "dyn"
            | "elif"
            | "else"
            | "enum"
            | "except"
            | "export"
            | "extends"
            | "extern"
            | "false"
            | "False"
            | "final"
            | "finally"
            | "float"
            | "fn"
            | "for"
            | "from"
            | "func"
            | "function"
            | "global"
            | "go"
            | "goto"
            | "if"
            | "impl"
            | "implements"
            | "import"
            | "in"
            | "include"
            | "int"
            | "interface"
            | "is"
            | "lambda"
            | "let"
            | "long"
            | "loop"
            | "map"
            | "match"
            | "mod"
            | "move"
            | "mut"
            | "namespace"
            | "new"
            | "nil"
            | "None"
            | "nonlocal"
            | "not"
            | "null"
            | "nullptr"
            | "or"
            | "package"
            | "pass"
            | "private"
            | "protected"
            | "pub"
            | "public"
            | "raise"
            | "range"
            | "ref"
            | "return"
            | "self"
            | "Self"
            | "short"
            | "signed"
            | "sizeof"
            | "static"
            | "str"
            | "string"
            | "struct"
            | "super"
            | "switch"
            | "template"
            | "this"
            | "throw"
            | "throws"
            | "trait"
            | "true"
            | "True"
            | "try"
            | "type"
            | "typedef"
            | "typename"
            | "typeof"
            | "undefined"
            | "union"
            | "unsafe"
            | "unsigned"
            | "use"
            | "using"
            | "var"
            | "virtual"
            | "void"
            | "volatile"
            | "where"
            | "while"
            | "with"
            | "yield"
            | "usize"
            | "isize"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "i8"
            | "i16"
            | "i32"
            | "i64"
            | "f32"
            | "f64"
            | "number"
            | "any"
            | "of"
            | "let_"
            | "std"
            | "len"
            | "print"
            | "println"
            | "Some"
            | "Ok"
            | "Err"
            | "Option"
            | "Result"
            | "String"
            | "Vec"
            | "error"
            | "err"
            | "define"
            | "ifdef"
            | "ifndef"
            | "endif"
    )
}

/// Identifiers near `cursor_byte` in `text`: those on the cursor line and the ~15 lines
/// before it, most recent (closest before the cursor) first, then the rest of the cursor line;
/// without duplicates, keywords, and names the window itself declares (`let x`, `x = ...`,
/// `x := ...`), except names that are called (`name(`). At most 32.
pub fn identifiers_near(text: &str, cursor_byte: usize) -> Vec<String> {
    let mut cursor = cursor_byte.min(text.len());
    while !text.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let mut start = cursor;
    for _ in 0..=NEAR_LINES {
        match text[..start].rfind('\n') {
            Some(i) => start = i,
            None => {
                start = 0;
                break;
            }
        }
    }
    let end = text[cursor..].find('\n').map_or(text.len(), |i| cursor + i);
    let window = &text[start..end];
    let words = identifiers(window);
    let locals = locals_declared(window, &words);
    let split = cursor - start;
    let before = words.iter().rev().filter(|(at, _)| *at < split);
    let after = words.iter().filter(|(at, _)| *at >= split);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (_, word) in before.chain(after) {
        if word.len() < 2 || is_keyword(word) || locals.contains(word) || !seen.insert(*word) {
            continue;
        }
        out.push((*word).to_owned());
        if out.len() == MAX_NEAR {
            break;
        }
    }
    out
}

/// Names `window` declares as locals, cheaply: after `let`/`var`/`const`/`for`/`mut`, or
/// followed by `:=`, or alone at the start of a line followed by `=` (not `==`). A name that
/// is also called somewhere in the window (`name(`) is kept as a possible definition.
fn locals_declared<'a>(window: &'a str, words: &[(usize, &'a str)]) -> HashSet<&'a str> {
    let mut locals = HashSet::new();
    let mut called = HashSet::new();
    for (i, &(at, word)) in words.iter().enumerate() {
        let rest = window[at + word.len()..].trim_start_matches([' ', '\t']);
        if rest.starts_with('(') {
            called.insert(word);
        }
        let previous = i.checked_sub(1).map(|p| words[p].1);
        let line_head = window[..at].rsplit('\n').next().unwrap_or("");
        let declared = matches!(previous, Some("let" | "var" | "const" | "for" | "mut")) && !line_head.trim_end().ends_with('.')
            || rest.starts_with(":=")
            || (line_head.trim().is_empty() && rest.starts_with('=') && !rest.starts_with("=="));
        if declared {
            locals.insert(word);
        }
    }
    locals.retain(|w| !called.contains(w));
    locals
}

/// The identifier characters that end `text_before` (the word being typed), if any.
pub(crate) fn partial_word(text_before: &str) -> &str {
    let start = text_before.char_indices().rev().take_while(|(_, c)| is_ident_char(*c)).last().map_or(text_before.len(), |(i, _)| i);
    &text_before[start..]
}

/// Lowercase tokens for BM25: every identifier of two or more characters that is not a
/// keyword, plus its parts when it is `snake_case` or `camelCase` (parts of 3+ characters).
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, word) in identifiers(text) {
        if word.len() < 2 || is_keyword(word) {
            continue;
        }
        let lower = word.to_lowercase();
        let parts = subwords(word);
        if parts.len() > 1 {
            out.extend(parts.into_iter().filter(|p| p.len() >= 3 && *p != lower));
        }
        out.push(lower);
    }
    out
}

/// `computeTaxRate` / `compute_tax_rate` → `["compute", "tax", "rate"]` (lowercase).
fn subwords(word: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in word.chars() {
        if c == '_' {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// The modules `text` imports, as written (`billing.tax`, `./format`, `crate::geometry`,
/// `example.com/app/shapes`, `util/str.h`, `com.acme.Money`). A simple per-language
/// line scanner: no parse, so it also works on a prefix window.
pub fn imports_of(language: Language, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    match language {
        Language::Python => python_imports(text, &mut out),
        Language::Rust => statements(text, &["use ", "pub use ", "pub(crate) use ", "mod ", "pub mod "], ';', &mut out),
        Language::Java => statements(text, &["import "], ';', &mut out),
        Language::JavaScript | Language::TypeScript | Language::Tsx => js_imports(text, &mut out),
        Language::Go => go_imports(text, &mut out),
        Language::C | Language::Cpp => {
            for line in text.lines() {
                let line = line.trim_start();
                if let Some(rest) = line.strip_prefix('#').map(str::trim_start).and_then(|l| l.strip_prefix("include")) {
                    let name = rest.trim().trim_matches(['"', '<', '>']);
                    if !name.is_empty() {
                        out.push(name.to_owned());
                    }
                }
            }
        }
        Language::Other => {}
    }
    out.truncate(256);
    out
}

/// Statements starting with one of `starts` and ending at `end` (up to 20 lines), keyword
/// removed: `use a::{b,\n c};` → `a::{b, c}`.
fn statements(text: &str, starts: &[&str], end: char, out: &mut Vec<String>) {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start();
        let Some(rest) = starts.iter().find_map(|s| line.strip_prefix(s)) else {
            continue;
        };
        if rest.contains('{') && !rest.contains("::") {
            continue; // `mod tests {`: an inline module, not an import.
        }
        let mut statement = rest.to_owned();
        let mut taken = 0;
        while !statement.contains(end) && taken < 20 {
            let Some(next) = lines.next() else { break };
            statement.push(' ');
            statement.push_str(next.trim());
            taken += 1;
        }
        let statement = statement.split(end).next().unwrap_or("").trim();
        let statement = statement.strip_prefix("static ").unwrap_or(statement);
        if !statement.is_empty() {
            out.push(statement.to_owned());
        }
    }
}

fn python_imports(text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("import ") {
            for part in rest.split(',') {
                let module = part.split(" as ").next().unwrap_or("").trim();
                if !module.is_empty() {
                    out.push(module.to_owned());
                }
            }
        } else if let Some(rest) = line.strip_prefix("from ") {
            let Some((module, names)) = rest.split_once(" import ") else { continue };
            let module = module.trim();
            out.push(module.to_owned());
            for name in names.trim_matches(['(', ')', ' ']).split(',') {
                let name = name.split(" as ").next().unwrap_or("").trim();
                if !name.is_empty() && name != "*" && name.chars().all(is_ident_char) {
                    out.push(format!("{}.{name}", module.trim_end_matches('.')));
                }
            }
        }
    }
}

fn js_imports(text: &str, out: &mut Vec<String>) {
    for needle in ["from ", "require(", "import(", "import "] {
        let mut rest = text;
        while let Some(at) = rest.find(needle) {
            rest = &rest[at + needle.len()..];
            let trimmed = rest.trim_start();
            let Some(quote) = trimmed.chars().next().filter(|c| matches!(c, '\'' | '"' | '`')) else {
                continue;
            };
            let body = &trimmed[1..];
            if let Some(close) = body.find(quote) {
                let module = &body[..close];
                if !module.is_empty() && !module.contains('\n') && !out.iter().any(|m| m == module) {
                    out.push(module.to_owned());
                }
            }
        }
    }
}

fn go_imports(text: &str, out: &mut Vec<String>) {
    let mut in_block = false;
    for line in text.lines() {
        let line = line.trim();
        let spec = if in_block {
            if line.starts_with(')') {
                in_block = false;
                continue;
            }
            line
        } else if let Some(rest) = line.strip_prefix("import") {
            let rest = rest.trim();
            if rest.starts_with('(') {
                in_block = true;
                rest.trim_start_matches('(')
            } else {
                rest
            }
        } else {
            continue;
        };
        let mut quoted = spec.split('"');
        if let (Some(_), Some(path)) = (quoted.next(), quoted.next()) {
            if !path.is_empty() {
                out.push(path.to_owned());
            }
        }
    }
}

/// The lowercase module-name segments of `imports` that can match a file stem or folder name
/// (`crate::billing::{tax, Rate}` → `billing`, `tax`, `rate`), minus noise such as `crate`.
pub(crate) fn import_segments(imports: &[String]) -> HashSet<String> {
    let mut out = HashSet::new();
    for import in imports {
        for (_, word) in identifiers(import) {
            let word = word.to_lowercase();
            let noise = matches!(
                word.as_str(),
                "crate"
                    | "self"
                    | "super"
                    | "std"
                    | "core"
                    | "alloc"
                    | "h"
                    | "hpp"
                    | "js"
                    | "ts"
                    | "py"
                    | "com"
                    | "org"
                    | "net"
                    | "java"
                    | "javax"
                    | "github"
                    | "www"
            );
            if !noise && word.len() >= 2 {
                out.insert(word);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_identifiers_are_most_recent_first_without_locals_or_keywords() {
        let text = "def f(order):\n    subtotal = order.amount\n    for item in order.items:\n        pass\n    return compute_tax(subtotal, order.rate) + fee";
        let cursor = text.find("(subtotal").unwrap_or(0) + 1;
        let near = identifiers_near(text, cursor);
        assert_eq!(near[0], "compute_tax");
        assert!(!near.contains(&"subtotal".to_owned()), "{near:?}");
        assert!(!near.contains(&"item".to_owned()), "{near:?}");
        assert!(!near.contains(&"return".to_owned()), "{near:?}");
        assert!(near.contains(&"order".to_owned()) && near.contains(&"fee".to_owned()), "{near:?}");
        assert!(identifiers_near("", 10).is_empty());
        assert_eq!(identifiers_near("é = foo(", 1), vec!["foo".to_owned()]);
    }

    #[test]
    fn tokens_split_compound_names() {
        assert_eq!(tokens("computeTaxRate(x1)"), vec!["compute", "tax", "rate", "computetaxrate", "x1"]);
        assert_eq!(tokens("MAX_POINTS 42 _"), vec!["max", "points", "max_points"]);
        assert_eq!(partial_word("let x = comp"), "comp");
        assert_eq!(partial_word("x("), "");
    }

    #[test]
    fn imports_per_language() {
        assert_eq!(
            imports_of(Language::Python, "import os.path as p, sys\nfrom .billing.tax import compute_tax, Rate as R\n"),
            vec!["os.path", "sys", ".billing.tax", ".billing.tax.compute_tax", ".billing.tax.Rate"]
        );
        assert_eq!(
            imports_of(Language::Rust, "use crate::geometry::{\n    Point,\n    origin,\n};\nmod shapes;\n"),
            vec!["crate::geometry::{ Point, origin, }", "shapes"]
        );
        assert_eq!(
            imports_of(Language::TypeScript, "import { a,\n b } from './format';\nconst x = require(\"lodash\");\n"),
            vec!["./format", "lodash"]
        );
        assert_eq!(
            imports_of(Language::Go, "import (\n\t\"fmt\"\n\tsh \"example.com/app/shapes\"\n)\nimport \"os\"\n"),
            vec!["fmt", "example.com/app/shapes", "os"]
        );
        assert_eq!(imports_of(Language::C, "#include <stdio.h>\n# include \"util/str.h\"\n"), vec!["stdio.h", "util/str.h"]);
        assert_eq!(
            imports_of(Language::Java, "import static com.acme.Money.of;\nimport java.util.List;\n"),
            vec!["com.acme.Money.of", "java.util.List"]
        );
        let segments = import_segments(&["crate::billing::{tax, Rate}".to_owned(), "./format.js".to_owned()]);
        let mut segments: Vec<_> = segments.into_iter().collect();
        segments.sort();
        assert_eq!(segments, vec!["billing", "format", "rate", "tax"]);
    }
}
