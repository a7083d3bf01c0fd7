//! Parsing a [`Rope`] with tree-sitter: a [`Parser`] per document that reads the rope chunk by
//! chunk (no copy of the text), reuses the previous tree for incremental reparses, and gives up
//! after a time budget so a pathological file cannot stall typing. Also error counting on
//! trees ([`has_error`], [`count_errors`]), used to reject completions that break the parse, and a
//! pre-order walk ([`for_each_node`]).

use std::time::{Duration, Instant};

use ropey::Rope;
use tree_sitter::{Node, ParseOptions, ParseState, Tree};

use super::Language;

/// How long one parse may run before it is cancelled.
pub const DEFAULT_PARSE_BUDGET: Duration = Duration::from_millis(500);

/// Why a [`Parser`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    #[error("there is no grammar for {0} documents")]
    NoGrammar(Language),
    #[error("the {language} grammar cannot be loaded by this tree-sitter version ({source})")]
    IncompatibleGrammar {
        language: Language,
        #[source]
        source: tree_sitter::LanguageError,
    },
}

/// Why one parse produced no tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("parsing took longer than {0:?} and was cancelled")]
    TimedOut(Duration),
    #[error("tree-sitter could not parse the document")]
    Failed,
}

/// A syntax tree together with the language it was parsed as.
#[derive(Clone, Debug)]
pub struct SyntaxTree {
    tree: Tree,
    language: Language,
}

impl SyntaxTree {
    pub fn new(tree: Tree, language: Language) -> SyntaxTree {
        SyntaxTree { tree, language }
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn into_tree(self) -> Tree {
        self.tree
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn root_node(&self) -> Node<'_> {
        self.tree.root_node()
    }

    /// Whether the tree contains any ERROR or MISSING node.
    pub fn has_error(&self) -> bool {
        has_error(&self.tree)
    }
}

/// A tree-sitter parser for one language, reading from a [`Rope`] under a time budget.
/// Keep one per document: a parser holds state between calls.
pub struct Parser {
    inner: tree_sitter::Parser,
    language: Language,
    budget: Duration,
}

impl std::fmt::Debug for Parser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser").field("language", &self.language).field("budget", &self.budget).finish_non_exhaustive()
    }
}

impl Parser {
    /// A parser for `language` with [`DEFAULT_PARSE_BUDGET`]. Fails for [`Language::Other`]
    /// and for a grammar whose ABI this tree-sitter does not accept.
    pub fn new(language: Language) -> Result<Parser, SyntaxError> {
        let grammar = language.ts_language().ok_or(SyntaxError::NoGrammar(language))?;
        let mut inner = tree_sitter::Parser::new();
        inner.set_language(&grammar).map_err(|source| SyntaxError::IncompatibleGrammar { language, source })?;
        Ok(Parser { inner, language, budget: DEFAULT_PARSE_BUDGET })
    }

    /// The same parser with another time budget per parse.
    pub fn with_budget(mut self, budget: Duration) -> Parser {
        self.budget = budget;
        self
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Parses `rope`, reusing `old` (which must already have been [`Tree::edit`]ed to match
    /// the rope) when given. `None` when the parse failed or ran out of time.
    pub fn parse(&mut self, rope: &Rope, old: Option<&Tree>) -> Option<Tree> {
        self.try_parse(rope, old).ok()
    }

    /// Like [`Parser::parse`], saying why there is no tree.
    pub fn try_parse(&mut self, rope: &Rope, old: Option<&Tree>) -> Result<Tree, ParseError> {
        let len = rope.len_bytes();
        let mut read = |byte: usize, _point: tree_sitter::Point| -> &[u8] {
            if byte >= len {
                return &[];
            }
            let (chunk, chunk_start, _, _) = rope.chunk_at_byte(byte);
            chunk.as_bytes().get(byte - chunk_start..).unwrap_or(&[])
        };
        let started = Instant::now();
        let budget = self.budget;
        let mut timed_out = false;
        // tree-sitter calls this every so many operations; returning true cancels the parse.
        let mut progress = |_: &ParseState| {
            timed_out = started.elapsed() > budget;
            timed_out
        };
        let options = ParseOptions::new().progress_callback(&mut progress);
        let tree = self.inner.parse_with_options(&mut read, old, Some(options));
        match tree {
            Some(tree) => Ok(tree),
            None => {
                // A cancelled parser would try to resume this parse next time; start afresh.
                self.inner.reset();
                if timed_out {
                    tracing::warn!(language = %self.language, ?budget, bytes = len, "parse timed out");
                    Err(ParseError::TimedOut(budget))
                } else {
                    Err(ParseError::Failed)
                }
            }
        }
    }
}

/// Whether `tree` contains any ERROR or MISSING node.
pub fn has_error(tree: &Tree) -> bool {
    tree.root_node().has_error()
}

/// The number of ERROR and MISSING nodes in the subtree under `node` (itself included).
/// Only descends into subtrees that contain errors, so it is cheap on healthy trees.
pub fn count_errors(node: Node<'_>) -> usize {
    if !node.has_error() {
        return 0;
    }
    let mut count = 0;
    let mut cursor = node.walk();
    loop {
        let current = cursor.node();
        if current.is_error() || current.is_missing() {
            count += 1;
        }
        // Enter children only where an error hides; otherwise move on.
        if current.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.node() == node {
                return count;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return count;
            }
        }
    }
}

/// Calls `visit` on every node of `tree`, parents before children, in source order.
pub fn for_each_node<'t>(tree: &'t Tree, mut visit: impl FnMut(Node<'t>)) {
    let mut cursor = tree.walk();
    loop {
        visit(cursor.node());
        if cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(language: Language) -> &'static str {
        match language {
            Language::Rust => "fn main() {\n    let x: Vec<u8> = vec![1, 2];\n    println!(\"{x:?}\");\n}\n",
            Language::Python => "def f(x):\n    return [y * 2 for y in x if y]\n\nclass A:\n    pass\n",
            Language::JavaScript => "const App = () => <div className=\"a\">{items.map(i => i * 2)}</div>;\n",
            Language::TypeScript => "interface P { x: number }\nfunction f<T>(p: P, t: T): T { return t; }\n",
            Language::Tsx => "const C = (p: { n: number }) => <span>{p.n}</span>;\nexport default C;\n",
            Language::Go => "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\")\n}\n",
            Language::C => "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 1); return 0; }\n",
            Language::Cpp => "#include <vector>\ntemplate <typename T> T id(T t) { return t; }\nint main() { std::vector<int> v{1}; }\n",
            Language::Java => "class Main { public static void main(String[] args) { System.out.println(1); } }\n",
            Language::Other => "",
        }
    }

    #[test]
    fn every_grammar_loads_and_parses_its_language() {
        for language in Language::ALL {
            if language == Language::Other {
                assert!(matches!(Parser::new(language), Err(SyntaxError::NoGrammar(_))));
                continue;
            }
            let mut parser = Parser::new(language).unwrap_or_else(|e| panic!("{language}: {e}"));
            let tree = parser.try_parse(&Rope::from_str(sample(language)), None);
            let tree = tree.unwrap_or_else(|e| panic!("{language}: {e}"));
            assert!(!has_error(&tree), "{language}: {}", tree.root_node().to_sexp());
            assert_eq!(count_errors(tree.root_node()), 0);
        }
    }

    #[test]
    fn counts_errors_and_missing_nodes() {
        let mut parser = Parser::new(Language::Rust).unwrap();
        let tree = parser.parse(&Rope::from_str("fn main() { let x = (1 + ; }\nfn g( {}\n"), None).unwrap();
        assert!(has_error(&tree));
        let errors = count_errors(tree.root_node());
        assert!(errors >= 2, "{errors}: {}", tree.root_node().to_sexp());
        let wrapped = SyntaxTree::new(tree, Language::Rust);
        assert!(wrapped.has_error());

        let tree = parser.parse(&Rope::from_str("fn main() { let x = 1 }"), None).unwrap();
        assert!(tree.root_node().to_sexp().contains("MISSING"), "{}", tree.root_node().to_sexp());
        assert_eq!(count_errors(tree.root_node()), 1);
    }

    #[test]
    fn parses_a_rope_made_of_many_chunks() {
        let line = "x_1 = {'k': [1, 2, 3]}  # 😀 コメント\n";
        let text = line.repeat(2_000);
        let rope = Rope::from_str(&text);
        assert!(rope.chunks().count() > 10);
        let mut parser = Parser::new(Language::Python).unwrap();
        let from_rope = parser.parse(&rope, None).unwrap();
        let mut plain = tree_sitter::Parser::new();
        plain.set_language(&tree_sitter_python::LANGUAGE.into()).unwrap();
        let from_str = plain.parse(&text, None).unwrap();
        assert_eq!(from_rope.root_node().to_sexp(), from_str.root_node().to_sexp());
        assert_eq!(from_rope.root_node().end_byte(), text.len());
    }

    #[test]
    fn a_zero_budget_times_out_and_the_parser_recovers() {
        let text = "fn f() { let a = [1, 2, 3]; }\n".repeat(20_000);
        let rope = Rope::from_str(&text);
        let mut parser = Parser::new(Language::Rust).unwrap().with_budget(Duration::ZERO);
        assert_eq!(parser.try_parse(&rope, None).err(), Some(ParseError::TimedOut(Duration::ZERO)));
        let mut parser = parser.with_budget(Duration::from_secs(60));
        let small = Rope::from_str("fn g() {}\n");
        let tree = parser.parse(&small, None).unwrap();
        assert_eq!(tree.root_node().to_sexp(), "(source_file (function_item name: (identifier) parameters: (parameters) body: (block)))");
    }
}
