//! The languages inkling knows ([`Language`]): detection from an LSP language id or a file
//! path, their tree-sitter grammars, and small per-language facts (name, line comment).

/// A programming language, as far as inkling cares: the grammar used to parse it and a few
/// facts used when building prompts. [`Language::Other`] is plain text (no grammar).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
    /// JavaScript, including JSX (the JavaScript grammar parses JSX).
    JavaScript,
    TypeScript,
    /// TypeScript with JSX (`.tsx`), which needs its own grammar.
    Tsx,
    Go,
    C,
    Cpp,
    Java,
    /// Anything else: completed as plain text, without a syntax tree.
    Other,
}

impl Language {
    /// Every language, [`Language::Other`] last. Handy for tests and listings.
    pub const ALL: [Language; 10] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::Java,
        Language::Other,
    ];

    /// The language named by an LSP `languageId` (as sent in `textDocument/didOpen`), or
    /// `None` for ids inkling has no grammar for.
    pub fn from_language_id(id: &str) -> Option<Language> {
        let language = match id {
            "rust" => Language::Rust,
            "python" => Language::Python,
            "javascript" | "javascriptreact" => Language::JavaScript,
            "typescript" => Language::TypeScript,
            "typescriptreact" => Language::Tsx,
            "go" => Language::Go,
            "c" => Language::C,
            "cpp" => Language::Cpp,
            "java" => Language::Java,
            _ => return None,
        };
        Some(language)
    }

    /// The language of a file, judged by its extension (case-insensitive);
    /// [`Language::Other`] when the extension is unknown or missing.
    pub fn from_path(path: &str) -> Language {
        let file_name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let Some((stem, extension)) = file_name.rsplit_once('.') else {
            return Language::Other;
        };
        if stem.is_empty() {
            // A dot file such as `.rs` has no extension, only a name.
            return Language::Other;
        }
        match extension.to_ascii_lowercase().as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => Language::Cpp,
            "java" => Language::Java,
            _ => Language::Other,
        }
    }

    /// The language of a document: the LSP language id when inkling knows it, else the path.
    pub fn detect(language_id: &str, path: &str) -> Language {
        Language::from_language_id(language_id).unwrap_or_else(|| Language::from_path(path))
    }

    /// A short lowercase name, e.g. `"python"`, `"tsx"`; `"text"` for [`Language::Other`].
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Java => "java",
            Language::Other => "text",
        }
    }

    /// The tree-sitter grammar, or `None` for [`Language::Other`].
    pub fn ts_language(self) -> Option<tree_sitter::Language> {
        let grammar = match self {
            Language::Rust => tree_sitter_rust::LANGUAGE,
            Language::Python => tree_sitter_python::LANGUAGE,
            Language::JavaScript => tree_sitter_javascript::LANGUAGE,
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX,
            Language::Go => tree_sitter_go::LANGUAGE,
            Language::C => tree_sitter_c::LANGUAGE,
            Language::Cpp => tree_sitter_cpp::LANGUAGE,
            Language::Java => tree_sitter_java::LANGUAGE,
            Language::Other => return None,
        };
        Some(grammar.into())
    }

    /// The token that starts a line comment, or `None` when the language has none
    /// (or is [`Language::Other`]).
    pub fn line_comment(self) -> Option<&'static str> {
        match self {
            Language::Python => Some("#"),
            Language::Rust
            | Language::JavaScript
            | Language::TypeScript
            | Language::Tsx
            | Language::Go
            | Language::C
            | Language::Cpp
            | Language::Java => Some("//"),
            Language::Other => None,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Language;

    #[test]
    fn language_ids() {
        assert_eq!(Language::from_language_id("rust"), Some(Language::Rust));
        assert_eq!(Language::from_language_id("javascriptreact"), Some(Language::JavaScript));
        assert_eq!(Language::from_language_id("typescriptreact"), Some(Language::Tsx));
        assert_eq!(Language::from_language_id("cpp"), Some(Language::Cpp));
        assert_eq!(Language::from_language_id("plaintext"), None);
        assert_eq!(Language::from_language_id(""), None);
    }

    #[test]
    fn paths() {
        let cases = [
            ("/src/main.rs", Language::Rust),
            ("stubs/os.pyi", Language::Python),
            ("a/b.c/index.MJS", Language::JavaScript),
            ("x.cts", Language::TypeScript),
            ("App.tsx", Language::Tsx),
            ("main.go", Language::Go),
            ("include/stdio.h", Language::C),
            ("C:\\code\\vec.HPP", Language::Cpp),
            ("Main.java", Language::Java),
            ("Makefile", Language::Other),
            ("dir.rs/README", Language::Other),
            (".rs", Language::Other),
            ("", Language::Other),
            ("trailing.", Language::Other),
        ];
        for (path, expected) in cases {
            assert_eq!(Language::from_path(path), expected, "{path}");
        }
    }

    #[test]
    fn detect_prefers_the_id() {
        assert_eq!(Language::detect("python", "script.rs"), Language::Python);
        assert_eq!(Language::detect("plaintext", "script.rs"), Language::Rust);
        assert_eq!(Language::detect("", "notes.txt"), Language::Other);
    }

    #[test]
    fn facts() {
        assert_eq!(Language::Python.name(), "python");
        assert_eq!(Language::Python.line_comment(), Some("#"));
        assert_eq!(Language::Go.line_comment(), Some("//"));
        assert_eq!(Language::Other.line_comment(), None);
        assert!(Language::Other.ts_language().is_none());
        for language in Language::ALL {
            assert_eq!(language.ts_language().is_some(), language != Language::Other);
        }
    }
}
