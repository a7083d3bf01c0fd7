//! Tests of the corpus: filters, the split by file, and cursor sampling on the fixture repo.

use expect_test::expect;

use super::fixture::fixture_copy;
use super::sample::pick;
use super::split::heldout_count;
use super::*;
use crate::config::Settings;
use crate::rng;

#[test]
fn filters_drop_what_is_not_hand_written_code() {
    let dir = fixture_copy();
    let corpus = Corpus::load(dir.path()).unwrap();
    let paths: Vec<&str> = corpus.files.iter().map(|f| f.path.as_str()).collect();
    expect![[r#"
        [
            "go/cache.go",
            "go/words.go",
            "js/format.ts",
            "js/router.js",
            "js/stats.js",
            "py/calc.py",
            "py/inventory.py",
            "py/shapes.py",
            "py/text_utils.py",
            "rs/geometry.rs",
            "rs/queue.rs",
            "rs/tokens.rs",
        ]
    "#]]
    .assert_debug_eq(&paths);
    expect![[r#"
        FilterCounts {
            listed: 20,
            not_source_language: 2,
            vendored_or_build: 1,
            unreadable: 0,
            too_large: 1,
            binary: 1,
            empty: 0,
            generated: 1,
            minified: 1,
            duplicate: 1,
            kept: 12,
        }
    "#]]
    .assert_debug_eq(&corpus.filters);
}

#[test]
fn split_holds_out_the_newest_files_deterministically() {
    let dir = fixture_copy();
    let a = Corpus::load(dir.path()).unwrap();
    let b = Corpus::load(dir.path()).unwrap();
    assert_eq!(a.split, b.split);
    let held = a.heldout_paths();
    assert_eq!(held, ["py/shapes.py", "py/text_utils.py", "rs/geometry.rs", "rs/queue.rs", "rs/tokens.rs"]);
    assert!(held.len() * 10 >= a.files.len() && held.len() >= 5);
    assert!(a.train_paths().iter().all(|p| !held.contains(p)));
    assert_eq!(a.train_paths().len() + held.len(), a.files.len());
    assert_eq!((heldout_count(3), heldout_count(12), heldout_count(100), heldout_count(101)), (3, 5, 10, 11));
}

#[test]
fn git_repositories_use_tracked_files_and_commit_times() {
    if std::process::Command::new("git").arg("--version").output().is_err() {
        return; // no git here
    }
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str], date: &str| {
        let ok = std::process::Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"], "2020-01-01T00:00:00Z");
    for (i, name) in ["a.py", "b.py", "c.py", "d.py", "e.py", "f.py"].iter().enumerate() {
        std::fs::write(dir.path().join(name), format!("def f{i}():\n    return {i}\n")).unwrap();
        git(&["add", name], "2020-01-01T00:00:00Z");
        git(&["commit", "-qm", name], &format!("2020-01-0{}T00:00:00Z", 6 - i));
    }
    std::fs::write(dir.path().join("untracked.py"), "x = 1\n").unwrap();
    let corpus = Corpus::load(dir.path()).unwrap();
    assert_eq!(corpus.files.len(), 6, "untracked files are left out");
    // a.py was committed last (Jan 6), f.py first (Jan 1): f.py is the one kept for training.
    assert_eq!(corpus.train_paths(), ["f.py"]);
    assert!(corpus.files[0].changed > corpus.files[5].changed);
}

fn render(samples: &[Sample]) -> String {
    samples.iter().map(|s| format!("{} {:?}\n", s.id, s.target)).collect()
}

#[test]
fn sampling_by_kind_is_deterministic_and_server_realistic() {
    let dir = fixture_copy();
    let corpus = Corpus::load(dir.path()).unwrap();
    let foreign = cross_file::names_defined_in(corpus.train());
    let parsed: Vec<ParsedFile<'_>> = corpus.heldout().map(|f| ParsedFile::new(f).with_foreign_names(&foreign)).collect();
    let settings = Settings::default();
    let take = |kind, n| pick(&parsed, kind, n, 7, &mut |s: &Sample| s.server_completes(&settings));
    let mut all = String::new();
    // The fixture's held-out files use no name that another file of their language defines:
    // `cross_file` has its own test below.
    assert!(take(SpanKind::CrossFile, 3).is_empty());
    for kind in SpanKind::EVAL.into_iter().filter(|&k| k != SpanKind::CrossFile) {
        let samples = take(kind, 3);
        assert_eq!(samples, take(kind, 3), "same seed, same samples");
        assert_eq!(samples.len(), 3, "{kind:?}");
        for s in &samples {
            assert_eq!(s.prefix.clone() + &s.target + &s.suffix, parsed.iter().find(|p| p.file.path == s.path).unwrap().file.text);
            assert_eq!(s.kind == SpanKind::Empty, s.target.is_empty());
        }
        all += &format!("{}:\n{}", kind.name(), render(&samples));
    }
    expect![[r#"
        rest_of_line:
        rs/geometry.rs:25:19 ".len() as f64;"
        rs/tokens.rs:14:24 "ut.push(Token::Word(piece.to_string())),"
        py/shapes.py:10:12 "a(self):"
        node:
        py/shapes.py:34:12 "best"
        rs/queue.rs:12:45 "capacity"
        rs/tokens.rs:13:31 "Token::Number(n)"
        block:
        py/text_utils.py:13:5 "lowered = title.strip().lower()\n    parts = words(lowered)\n    return \"-\".join(parts)"
        rs/tokens.rs:13:13 "Ok(n) => out.push(Token::Number(n)),\n            Err(_) => out.push(Token::Word(piece.to_string())),"
        py/shapes.py:32:9 "if best is None or shape.area() > best.area():\n            best = shape"
        random_span:
        rs/tokens.rs:23:15 " Token::Number(n) = token {\n            total += n"
        rs/queue.rs:26:22 "elf) -> Option<T> {"
        rs/geometry.rs:15:28 "ther.x"
        empty:
        rs/tokens.rs:24:24 ""
        py/text_utils.py:13:36 ""
        rs/queue.rs:13:36 ""
    "#]]
    .assert_eq(&all);
}

#[test]
fn spans_of_each_kind_have_their_shape() {
    let file = SourceFile {
        path: "m.py".into(),
        language: crate::syntax::Language::Python,
        text: "def f(a, b):\n    x = g(a)\n    if x > b:\n        return x\n    return b\n\nprint(f(1, 2))\n".into(),
        changed: 0,
    };
    let parsed = ParsedFile::new(&file);
    let mut rng = rng::Rng::new(1);
    let targets = |kind, rng: &mut rng::Rng| -> Vec<String> {
        parsed.candidates(kind, rng).iter().map(|s| file.text[s.start..s.end].to_string()).collect()
    };
    assert_eq!(targets(SpanKind::Node, &mut rng), ["g(a)", "a", "x > b", "x", "b", "f(1, 2)", "1, 2"]);
    assert_eq!(targets(SpanKind::Block, &mut rng), ["x = g(a)\n    if x > b:\n        return x\n    return b"]);
    assert_eq!(targets(SpanKind::Empty, &mut rng), ["", ""]);
    for s in targets(SpanKind::RestOfLine, &mut rng) {
        assert!(!s.contains('\n') && !s.trim().is_empty());
    }
}

#[test]
fn cross_file_spans_start_at_names_other_files_define() {
    let file =
        |path: &str, text: &str| SourceFile { path: path.into(), language: crate::syntax::Language::Python, text: text.into(), changed: 0 };
    let lib = file("lib.py", "def compute_total(items):\n    return sum(items)\n\nclass Store:\n    def fetch(self, key):\n        return key\n\n    def __init__(self):\n        pass\n");
    let app = file(
        "app.py",
        "from lib import compute_total, Store\n\ndef helper(x):\n    return x\n\ndef fetch(k):\n    return k\n\nclass App(Store):\n    def __init__(self):\n        super().__init__()\n        # compute_total in a comment\n        self.total = compute_total([1, 2])\n        self.v = helper(self.total)\n        self.w = self.fetch(3)\n",
    );
    let foreign = cross_file::names_defined_in([&lib]);
    let python = &foreign[&crate::syntax::Language::Python];
    assert!(python.contains("compute_total") && python.contains("Store") && python.contains("fetch"), "{foreign:?}");
    assert!(!python.contains("__init__"), "dunder names say nothing about another file");
    assert!(!foreign.contains_key(&crate::syntax::Language::Rust), "names are per language");
    let parsed = ParsedFile::new(&app).with_foreign_names(&foreign);
    let mut rng = rng::Rng::new(3);
    let targets: Vec<String> =
        parsed.candidates(SpanKind::CrossFile, &mut rng).iter().map(|s| app.text[s.start..s.end].to_string()).collect();
    // One use per line; `fetch` is defined in app.py too, `helper` only there, and the comment
    // is not code.
    let import_line = ["Store", "compute_total, Store"];
    assert_eq!(targets.len(), 3, "{targets:?}");
    assert!(targets.contains(&"Store):".to_string()) && targets.contains(&"compute_total([1, 2])".to_string()), "{targets:?}");
    assert!(targets.iter().any(|t| import_line.contains(&t.as_str())), "{targets:?}");
}
