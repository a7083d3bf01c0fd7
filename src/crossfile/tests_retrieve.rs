//! Tests of retrieval: the definition being called comes first, the budget holds, the current
//! file is never shown, the layout survives keystrokes, and one snapshot per language.

use super::fixture::{indexed_fixture, path_in, APP_TS, FORMAT_TS, MAIN_GO, MAIN_RS, REPORT_PY, TAX_PY};
use super::*;

fn query_at_end(cross_dir: &tempfile::TempDir, relative: &str, text: &str, budget: usize) -> Query {
    let path = path_in(cross_dir, relative);
    Query::new(&path, Language::from_path(&path), text.trim_end(), "\n", budget)
}

fn render(chunks: &[ContextChunk]) -> String {
    chunks.iter().map(|c| format!("=== {}\n{}", c.path, c.text)).collect()
}

fn total_cost(chunks: &[ContextChunk]) -> usize {
    chunks.iter().map(chunk_cost).sum()
}

#[test]
fn the_called_definition_comes_first_within_budget() {
    let (dir, cross, _) = indexed_fixture();
    let query = query_at_end(&dir, "billing/report.py", REPORT_PY, 2_000);
    assert_eq!(query.identifiers[0], "compute_tax");
    let scored = cross.retrieve_scored(&query);
    assert_eq!(scored[0].chunk.path, "billing/tax.py");
    assert!(matches!(&scored[0].source, ChunkSource::Definition { name, exact: true, .. } if name == "compute_tax"), "{scored:?}");
    assert!(scored[0].chunk.text.starts_with("def compute_tax(amount: float"), "{}", scored[0].chunk.text);
    let chunks = cross.retrieve(&query);
    assert!(total_cost(&chunks) <= 2_000);
    assert!(chunks.contains(&scored[0].chunk));
    // A budget that fits only the best chunk gets only that chunk.
    let tight = Query { budget_bytes: chunk_cost(&scored[0].chunk), ..query.clone() };
    assert_eq!(cross.retrieve(&tight), vec![scored[0].chunk.clone()]);
    let none = Query { budget_bytes: 10, ..query };
    assert!(cross.retrieve(&none).is_empty());
}

#[test]
fn the_current_file_is_never_returned() {
    let (dir, cross, _) = indexed_fixture();
    let report = path_in(&dir, "billing/report.py");
    // Recent edits in the current file and a definition named like an identifier there.
    cross.note_edit(&report, REPORT_PY, 3);
    cross.update_file(&report, REPORT_PY);
    let text = format!("{}\n    report(invoice)\n    compute_tax(", REPORT_PY.trim_end());
    let query = Query::new(&report, Language::Python, &text, "", 100_000);
    assert!(query.identifiers.contains(&"report".to_owned()));
    let chunks = cross.retrieve(&query);
    assert!(!chunks.is_empty());
    assert!(chunks.iter().all(|c| c.path != "billing/report.py"), "{chunks:?}");
    // Definitions in other languages are not shown either.
    assert!(chunks.iter().all(|c| c.path.ends_with(".py")), "{chunks:?}");
}

#[test]
fn the_layout_is_stable_while_typing() {
    let (dir, cross, _) = indexed_fixture();
    cross.note_edit(&path_in(&dir, "billing/tax.py"), TAX_PY, 18);
    cross.note_view(&path_in(&dir, "web/format.ts"), FORMAT_TS, 3);
    let report = path_in(&dir, "billing/report.py");
    let base = REPORT_PY.trim_end();
    let first = cross.retrieve(&Query::new(&report, Language::Python, base, "\n", 4_000));
    assert!(first.len() >= 2, "{first:?}");
    // Typing on the cursor line: chunks that stay keep their order at the front; a chunk that
    // enters the selection is appended, so the token prefix (and the KV cache) survives.
    let mut previous = first.clone();
    for typed in ["a", "am", "amo", "amou", "amoun", "amount"] {
        let text = format!("{base}{typed}");
        let next = cross.retrieve(&Query::new(&report, Language::Python, &text, ")\n", 4_000));
        let kept: Vec<&ContextChunk> = previous.iter().filter(|c| next.contains(c)).collect();
        assert_eq!(next[..kept.len()].iter().collect::<Vec<_>>(), kept, "after typing {typed:?}");
        assert!(kept.len() + 1 >= previous.len(), "after typing {typed:?}: {next:?}");
        assert!(total_cost(&next) <= 4_000);
        previous = next;
    }
    // The same query twice gives the same layout.
    let again = format!("{base}amount");
    assert_eq!(cross.retrieve(&Query::new(&report, Language::Python, &again, ")\n", 4_000)), previous);
    // The selection uses the score, the layout does not: a chunk that newly enters goes last.
    let mut text = format!("{base}amount)\n    invoice.total + Invoice(");
    let more = cross.retrieve(&Query::new(&report, Language::Python, &text, "\n", 8_000));
    let kept: Vec<&ContextChunk> = more.iter().filter(|c| previous.contains(c)).collect();
    let previous_kept: Vec<&ContextChunk> = previous.iter().filter(|c| more.contains(c)).collect();
    assert_eq!(kept, previous_kept);
    assert_eq!(more[..kept.len()].iter().collect::<Vec<_>>(), kept);
    text.push('x');
    assert_eq!(cross.retrieve(&Query::new(&report, Language::Python, &text, "\n", 8_000)), more);
}

#[test]
fn chunks_are_pinned_while_the_cursor_stays_on_its_line() {
    let (dir, cross, _) = indexed_fixture();
    let report = path_in(&dir, "billing/report.py");
    let base = REPORT_PY.trim_end();
    let above = base.rsplit_once('\n').map_or("", |(above, _)| above);
    let query = |text: &str| Query::new(&report, Language::Python, text, "\n", 4_000);
    let key = line_key(above, 4_000);
    let first = cross.retrieve_on_line(&report, key, || query(base));
    assert!(!first.is_empty());
    // Something new to show: an edit in another file.
    let notes: String = (0..100).map(|i| format!("note_{i} = {i}\n")).collect();
    cross.note_edit(&path_in(&dir, "billing/notes.py"), &notes, 50);
    let typed = format!("{base}amount");
    let fresh: Vec<ContextChunk> = cross.retrieve_scored(&query(&typed)).into_iter().map(|c| c.chunk).collect();
    assert!(fresh.iter().any(|c| c.path == "billing/notes.py"), "a fresh selection shows the edit: {fresh:?}");
    // On the same line, the chunks stay exactly the same...
    assert_eq!(cross.retrieve_on_line(&report, key, || query(&typed)), first);
    // (without even building the query)
    assert_eq!(cross.retrieve_on_line(&report, key, || unreachable!("a pinned line needs no query")), first);
    // ...and on another line (the text above differs) retrieval starts afresh.
    let next_line = format!("{typed})\n    ");
    let moved = cross.retrieve_on_line(&report, line_key(&format!("{typed})\n"), 4_000), || query(&next_line));
    assert!(moved.iter().any(|c| c.path == "billing/notes.py"), "{moved:?}");
    // Chunks still chosen keep their place at the front.
    let kept: Vec<&ContextChunk> = first.iter().filter(|c| moved.contains(c)).collect();
    assert_eq!(moved[..kept.len()].iter().collect::<Vec<_>>(), kept);
    // The key includes the budget: a new setting is a new selection.
    assert_ne!(line_key(above, 4_000), line_key(above, 8_000));
}

#[test]
fn recent_chunks_of_other_files_are_shown() {
    let (dir, cross, _) = indexed_fixture();
    let notes = path_in(&dir, "billing/notes.py");
    let text: String = (0..100).map(|i| format!("note_{i} = {i}\n")).collect();
    cross.note_edit(&notes, &text, 50);
    let query = query_at_end(&dir, "billing/report.py", REPORT_PY, 3_000);
    let scored = cross.retrieve_scored(&query);
    let recent = scored.iter().find(|c| matches!(c.source, ChunkSource::Recent { edited: true }));
    let recent = recent.map(|c| c.chunk.text.clone()).unwrap_or_default();
    assert!(recent.starts_with("note_30 = 30\n") && recent.ends_with("note_69 = 69\n"), "{recent}");
}

#[test]
fn one_retrieval_per_language() {
    let (dir, cross, _) = indexed_fixture();
    let python = cross.retrieve(&query_at_end(&dir, "billing/report.py", REPORT_PY, 1_500));
    expect_test::expect![[r#"
        === billing/tax.py
        RATE = 0.2
        === billing/tax.py
        def compute_tax(amount: float, rate: float = RATE) -> float:
            """The tax on `amount`."""
            return round(amount * rate, 2)
        === billing/tax.py
        class Invoice:
            currency = "EUR"
            def __init__(self, lines): ...
            @property
            def total(self) -> float: ...
        === billing/tax.py
        class Invoice:
            @property
            def total(self) -> float:
                subtotal = sum(line.amount for line in self.lines)
                return subtotal + compute_tax(subtotal)
    "#]]
    .assert_eq(&render(&python));
    let rust = cross.retrieve(&query_at_end(&dir, "src/main.rs", MAIN_RS, 1_500));
    expect_test::expect![[r#"
        === src/geometry.rs
        /// Most points a shape may have.
        pub const MAX_POINTS: usize = 1024;
        === src/geometry.rs
        /// A point in the plane.
        #[derive(Clone, Copy, Debug)]
        pub struct Point {
            pub x: f64,
            pub y: f64,
        }
        === src/geometry.rs
        impl Point {
            pub fn new(x: f64, y: f64) -> Point { ... }
            pub fn distance(&self, other: &Point) -> f64 { ... }
        }
        === src/geometry.rs
        impl Point {
            /// Euclidean distance.
            pub fn distance(&self, other: &Point) -> f64 {
                ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
            }
        }
        === src/geometry.rs
        pub trait Shape {
            fn area(&self) -> f64;
            fn name(&self) -> &str { ... }
        }
        === src/geometry.rs
        pub fn origin() -> Point {
            Point::new(0.0, 0.0)
        }
        === src/geometry.rs
        macro_rules! point {
            ($x:expr, $y:expr) => {
                Point::new($x, $y)
            };
        }
    "#]]
    .assert_eq(&render(&rust));
    let typescript = cross.retrieve(&query_at_end(&dir, "web/app.ts", APP_TS, 1_500));
    expect_test::expect![[r#"
        === web/format.ts
        export interface Money {
          amount: number;
          currency: string;
        }
        === web/format.ts
        export const DEFAULT_CURRENCY = "EUR";
        === web/format.ts
        export type Cents = number;
        === web/format.ts
        export enum Rounding {
          Up,
          Down,
        }
        === web/format.ts
        /** Formats an amount of money. */
        export function formatMoney(money: Money, digits = 2): string {
          return `${money.amount.toFixed(digits)} ${money.currency}`;
        }
        === web/format.ts
        export class Formatter {
          private readonly locale: string;
          constructor(locale: string) { ... }
          format(money: Money): string { ... }
        }
        === web/format.ts
        export class Formatter {
          format(money: Money): string {
            return formatMoney(money);
          }
        }
        === web/format.ts
        export const toCents = (money: Money): Cents => Math.round(money.amount * 100);
    "#]]
    .assert_eq(&render(&typescript));
    let go = cross.retrieve(&query_at_end(&dir, "go/main.go", MAIN_GO, 1_500));
    expect_test::expect![[r#"
        === go/shapes/shapes.go
        // MaxSide is the largest side a rectangle may have.
        const MaxSide = 100
        === go/shapes/shapes.go
        // Rect is a rectangle.
        type Rect struct {
        	W, H float64
        }
        === go/shapes/shapes.go
        // Shape has an area.
        type Shape interface {
        	Area() float64
        }
        === go/shapes/shapes.go
        // Area of the rectangle.
        func (r Rect) Area() float64 {
        	return r.W * r.H
        }
        === go/shapes/shapes.go
        // NewRect makes a rectangle.
        func NewRect(w, h float64) Rect {
        	return Rect{W: w, H: h}
        }
    "#]]
    .assert_eq(&render(&go));
    for chunks in [&python, &rust, &typescript, &go] {
        assert!(total_cost(chunks) <= 1_500);
    }
}

#[test]
fn the_current_file_is_named_relative_to_the_workspace() {
    let (dir, cross, _) = indexed_fixture();
    assert_eq!(cross.display_path(&path_in(&dir, "billing/report.py")), "billing/report.py");
    assert_eq!(cross.display_path("/elsewhere/x.py"), "/elsewhere/x.py");
}

/// A handler module; its twin below is being written.
const HANDLERS_PY: &str = r#"import json


def handle_create(request, store):
    payload = json.loads(request.body)
    if "name" not in payload:
        return error_response(400, "name is required")
    record = store.insert(payload["name"], payload.get("tags", []))
    audit_log("create", record.id, request.user)
    return json_response(201, record.to_dict())


def handle_delete(request, store):
    record = store.find(request.params["id"])
    if record is None:
        return error_response(404, "no such record")
    store.remove(record.id)
    audit_log("delete", record.id, request.user)
    return json_response(204, {})
"#;

#[test]
fn similar_code_elsewhere_is_shown_with_what_follows_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("api")).expect("mkdir");
    std::fs::write(dir.path().join("api/records.py"), HANDLERS_PY).expect("write");
    std::fs::write(dir.path().join("api/unrelated.py"), "def area(width, height):\n    return width * height\n").expect("write");
    let cross = CrossFile::new(CrossFileLimits::default());
    cross.index_workspace(dir.path(), |_, _| {}).expect("indexer").join();
    let users = path_in(&dir, "api/users.py");
    let typed = "import json\n\n\ndef handle_update(request, store):\n    record = store.find(request.params[\"id\"])\n    if record is None:\n        return error_response(404, \"no such record\")\n    ";
    let scored = cross.retrieve_scored(&Query::new(&users, Language::Python, typed, "\n", 2_000));
    let similar = scored.iter().find(|c| matches!(c.source, ChunkSource::Similar { .. })).expect("a similar-code chunk");
    assert_eq!(similar.chunk.path, "api/records.py");
    // The window that matches and the lines after it: how the twin goes on.
    assert!(similar.chunk.text.contains("record = store.find(request.params[\"id\"])"), "{}", similar.chunk.text);
    assert!(similar.chunk.text.contains("    store.remove(record.id)\n    audit_log(\"delete\""), "{}", similar.chunk.text);
    assert!(scored.iter().all(|c| c.chunk.path != "api/unrelated.py"), "{scored:?}");
    // Nothing like the lines above the cursor anywhere: no similar-code chunk.
    let other = cross.retrieve_scored(&Query::new(&users, Language::Python, "def unrelated_thing(alpha, beta, gamma):\n    ", "\n", 2_000));
    assert!(other.iter().all(|c| !matches!(c.source, ChunkSource::Similar { .. })), "{other:?}");
}
