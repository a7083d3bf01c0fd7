//! Definitions in one file, found by walking its tree-sitter tree and matching node kinds per
//! language ([`extract`]): functions, methods, classes, structs, traits, interfaces, types,
//! enums, top-level constants and macros. Each gets a compact snippet (see `snippet`).
//!
//! The walk descends into containers (modules, namespaces, `impl` blocks, class bodies,
//! `#ifdef` blocks, `export`/decorator/template wrappers) but never into function bodies, so
//! local helpers are not indexed. A file's snippets get [`FILE_SNIPPET_BYTES`] in full; past
//! that, definitions keep only their first line.

use tree_sitter::{Node, Tree};

use super::snippet::{self, Source};
use crate::syntax::Language;

/// What a definition defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefKind {
    Function,
    Method,
    Class,
    Struct,
    Enum,
    Trait,
    Interface,
    /// A Rust `impl` block, named after its type.
    Impl,
    Type,
    Const,
    Macro,
}

impl DefKind {
    pub fn name(self) -> &'static str {
        match self {
            DefKind::Function => "function",
            DefKind::Method => "method",
            DefKind::Class => "class",
            DefKind::Struct => "struct",
            DefKind::Enum => "enum",
            DefKind::Trait => "trait",
            DefKind::Interface => "interface",
            DefKind::Impl => "impl",
            DefKind::Type => "type",
            DefKind::Const => "const",
            DefKind::Macro => "macro",
        }
    }

    /// Kinds whose snippet is an outline (header + member signatures), not the first lines.
    fn is_outlined(self) -> bool {
        matches!(self, DefKind::Class | DefKind::Trait | DefKind::Interface | DefKind::Impl)
    }
}

/// One definition in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub kind: DefKind,
    /// Zero-based first line of the definition (decorators, `export`, `template<>` included).
    pub start_line: u32,
    /// Zero-based last line, inclusive.
    pub end_line: u32,
    /// Signature and short body (or, for classes, header and member signatures); ends in `\n`.
    pub snippet: String,
}

/// The definitions in `source`, parsed as `tree` of `language`, in file order.
pub(crate) fn extract(language: Language, source: &str, tree: &Tree) -> Vec<Definition> {
    let mut walk = Walk { language, src: Source::new(source, language), out: Vec::new(), bytes: 0 };
    walk.children(tree.root_node(), None, 0);
    walk.out
}

/// The class-like definition a member sits in: its name and its header line.
#[derive(Clone, Copy)]
struct Container<'n> {
    node: Node<'n>,
}

struct Walk<'s> {
    language: Language,
    src: Source<'s>,
    out: Vec<Definition>,
    /// Snippet bytes so far.
    bytes: usize,
}

/// Snippet bytes one file may use in full; later definitions keep only their first line, so a
/// generated file with thousands of definitions (bindings, tables) cannot fill the index.
const FILE_SNIPPET_BYTES: usize = 32 * 1024;
/// Most definitions kept from one file.
const MAX_FILE_DEFS: usize = 5_000;

/// Deeper nesting than this is not walked (pathological or generated code).
const MAX_DEPTH: usize = 48;

impl<'s> Walk<'s> {
    fn children<'n>(&mut self, node: Node<'n>, container: Option<Container<'n>>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'n>> = node.named_children(&mut cursor).collect();
        for child in children {
            self.item(child, child, container, depth + 1);
        }
    }

    /// One item: `range` is the outermost node (a wrapper such as `export` or a decorator) whose
    /// lines belong to the definition `node`.
    fn item<'n>(&mut self, node: Node<'n>, range: Node<'n>, container: Option<Container<'n>>, depth: usize) {
        use Language::*;
        let kind = node.kind();
        let in_class = container.is_some();
        let def = match (self.language, kind) {
            // Wrappers: the definition inside takes the wrapper's lines.
            (_, "decorated_definition" | "export_statement" | "template_declaration" | "ambient_declaration") => {
                let inner = node
                    .child_by_field_name("definition")
                    .or_else(|| node.child_by_field_name("declaration"))
                    .or_else(|| last_named_child(node));
                if let Some(inner) = inner.filter(|n| n.id() != node.id()) {
                    self.item(inner, range, container, depth + 1);
                }
                return;
            }
            // Containers: walk their items as if they were top-level.
            (Rust, "mod_item") | (Cpp, "namespace_definition") | (TypeScript | Tsx, "internal_module" | "module") => {
                if let Some(body) = node.child_by_field_name("body") {
                    self.children(body, None, depth);
                }
                return;
            }
            (C | Cpp, "preproc_ifdef" | "preproc_if" | "preproc_else" | "preproc_elif" | "linkage_specification" | "declaration_list")
            | (Java, "enum_body_declarations")
            | (TypeScript | Tsx, "expression_statement") => {
                self.children(node, container, depth);
                return;
            }
            (Rust, "function_item")
            | (Python, "function_definition")
            | (Go, "function_declaration")
            | (JavaScript | TypeScript | Tsx, "function_declaration" | "generator_function_declaration" | "function_signature")
            | (C | Cpp, "function_definition") => {
                if in_class {
                    DefKind::Method
                } else {
                    DefKind::Function
                }
            }
            (Rust, "function_signature_item")
            | (Go, "method_declaration")
            | (Java, "method_declaration")
            | (JavaScript | TypeScript | Tsx, "method_definition" | "abstract_method_signature") => DefKind::Method,
            (Rust, "struct_item" | "union_item") => DefKind::Struct,
            (Rust, "enum_item") | (TypeScript | Tsx, "enum_declaration") | (Java, "enum_declaration") => DefKind::Enum,
            (Rust, "trait_item") => DefKind::Trait,
            (Rust, "impl_item") => DefKind::Impl,
            (Rust, "type_item") | (TypeScript | Tsx, "type_alias_declaration") | (Cpp, "alias_declaration") => DefKind::Type,
            (Rust, "const_item" | "static_item") => DefKind::Const,
            (Rust, "macro_definition") | (C | Cpp, "preproc_function_def") => DefKind::Macro,
            (C | Cpp, "preproc_def") if !in_class => DefKind::Const,
            (Python, "class_definition")
            | (JavaScript | TypeScript | Tsx, "class_declaration" | "abstract_class_declaration" | "class")
            | (Java, "class_declaration" | "record_declaration")
            | (Cpp, "class_specifier") => DefKind::Class,
            (TypeScript | Tsx, "interface_declaration") | (Java, "interface_declaration" | "annotation_type_declaration") => {
                DefKind::Interface
            }
            (C | Cpp, "struct_specifier" | "union_specifier") if node.child_by_field_name("body").is_some() => {
                if self.language == Cpp && has_function_member(node) {
                    DefKind::Class
                } else {
                    DefKind::Struct
                }
            }
            (C | Cpp, "enum_specifier") if node.child_by_field_name("body").is_some() => DefKind::Enum,
            (C | Cpp, "type_definition") => return self.typedef(node, range),
            (C | Cpp, "declaration" | "field_declaration") => return self.c_declaration(node, range, container, depth),
            (Go, "type_declaration" | "const_declaration") => {
                let mut cursor = node.walk();
                let specs: Vec<Node<'n>> =
                    node.named_children(&mut cursor).filter(|n| n.kind().ends_with("_spec") || n.kind() == "type_alias").collect();
                let single = specs.len() == 1;
                for spec in specs {
                    let kind = match spec.child_by_field_name("type").map(|t| t.kind()) {
                        _ if spec.kind() == "const_spec" => DefKind::Const,
                        Some("struct_type") => DefKind::Struct,
                        Some("interface_type") => DefKind::Interface,
                        _ => DefKind::Type,
                    };
                    self.push(spec, if single { range } else { spec }, kind, None);
                }
                return;
            }
            (JavaScript | TypeScript | Tsx, "lexical_declaration" | "variable_declaration") if !in_class => {
                return self.js_variables(node, range);
            }
            (Python, "expression_statement") if !in_class => {
                let assignment = node.named_child(0).filter(|n| n.kind() == "assignment");
                let left = assignment.and_then(|a| a.child_by_field_name("left"));
                if let Some(left) = left.filter(|l| l.kind() == "identifier") {
                    let name = self.src.text(left);
                    if name.len() > 1 && name.chars().all(|c| c.is_uppercase() || c == '_' || c.is_ascii_digit()) {
                        self.push_named(name.to_owned(), node, range, DefKind::Const, None);
                    }
                }
                return;
            }
            _ => return,
        };
        self.push(node, range, def, container);
        if def.is_outlined() {
            if let Some(body) = node.child_by_field_name("body") {
                self.children(body, Some(Container { node }), depth);
            }
        }
    }

    fn push<'n>(&mut self, node: Node<'n>, range: Node<'n>, kind: DefKind, container: Option<Container<'n>>) {
        if let Some(name) = self.name_of(node, kind) {
            self.push_named(name, node, range, kind, container);
        }
    }

    fn push_named<'n>(&mut self, name: String, node: Node<'n>, range: Node<'n>, kind: DefKind, container: Option<Container<'n>>) {
        if name.is_empty() || name.len() > 128 || name.contains(char::is_whitespace) || self.out.len() >= MAX_FILE_DEFS {
            return;
        }
        let snippet = if self.bytes > FILE_SNIPPET_BYTES {
            snippet::first_line(&self.src, range)
        } else if kind.is_outlined() {
            snippet::outline(&self.src, node, range)
        } else {
            snippet::head(&self.src, node, range, container.map(|c| c.node))
        };
        self.bytes += snippet.len();
        self.out.push(Definition { name, kind, start_line: range.start_position().row as u32, end_line: last_row(range) as u32, snippet });
    }

    fn name_of(&self, node: Node<'_>, kind: DefKind) -> Option<String> {
        let named = match (self.language, node.kind()) {
            (Language::Rust, "impl_item") => {
                let ty = node.child_by_field_name("type")?;
                ty.child_by_field_name("type").unwrap_or(ty)
            }
            (Language::C | Language::Cpp, "function_definition" | "declaration" | "field_declaration") => {
                declarator_name(node.child_by_field_name("declarator")?)?
            }
            _ => node.child_by_field_name("name")?,
        };
        let text = self.src.text(named);
        let text = if kind == DefKind::Impl { text } else { text.rsplit("::").next().unwrap_or(text) };
        Some(text.trim().to_owned())
    }

    /// `typedef struct point { ... } point_t;`: the alias, and the struct's own name if any.
    fn typedef<'n>(&mut self, node: Node<'n>, range: Node<'n>) {
        let inner = node.child_by_field_name("type");
        let kind = match inner.filter(|t| t.child_by_field_name("body").is_some()).map(|t| t.kind()) {
            Some("struct_specifier" | "union_specifier" | "class_specifier") => DefKind::Struct,
            Some("enum_specifier") => DefKind::Enum,
            _ => DefKind::Type,
        };
        let alias = node.child_by_field_name("declarator").and_then(declarator_name);
        let alias = alias.map(|n| self.src.text(n).to_owned());
        if let Some(alias) = &alias {
            self.push_named(alias.clone(), node, range, kind, None);
        }
        if let Some(inner) = inner.filter(|_| kind != DefKind::Type) {
            let own = inner.child_by_field_name("name").map(|n| self.src.text(n).to_owned());
            if let Some(own) = own.filter(|own| Some(own) != alias.as_ref()) {
                self.push_named(own, node, range, kind, None);
            }
        }
    }

    /// C/C++ declarations: function prototypes (members of a class are left to its outline),
    /// and `struct x { ... };` written as a declaration.
    fn c_declaration<'n>(&mut self, node: Node<'n>, range: Node<'n>, container: Option<Container<'n>>, depth: usize) {
        if let Some(ty) = node.child_by_field_name("type") {
            if ty.child_by_field_name("body").is_some() {
                self.item(ty, range, container, depth + 1);
            }
        }
        let declarator = node.child_by_field_name("declarator");
        let is_function = declarator.is_some_and(|d| contains_function_declarator(d));
        if is_function && container.is_none() {
            self.push(node, range, DefKind::Function, None);
        }
    }

    /// `const x = ...`, `const f = () => ...`, `let C = class {}` at the top level.
    fn js_variables<'n>(&mut self, node: Node<'n>, range: Node<'n>) {
        let is_const = node.child(0).is_some_and(|k| self.src.text(k) == "const");
        let mut cursor = node.walk();
        let declarators: Vec<Node<'n>> = node.named_children(&mut cursor).filter(|n| n.kind() == "variable_declarator").collect();
        let single = declarators.len() == 1;
        for declarator in declarators {
            let Some(name) = declarator.child_by_field_name("name").filter(|n| n.kind() == "identifier") else { continue };
            let value = declarator.child_by_field_name("value");
            let kind = match value.map(|v| v.kind()) {
                Some("arrow_function" | "function_expression" | "function" | "generator_function") => DefKind::Function,
                Some("class") => DefKind::Class,
                _ if is_const => DefKind::Const,
                _ => continue,
            };
            let name = self.src.text(name).to_owned();
            let range = if single { range } else { declarator };
            let node = value.filter(|_| kind == DefKind::Class).unwrap_or(declarator);
            self.push_named(name, node, range, kind, None);
        }
    }
}

/// The last row holding text of `node` (a node ending with its line break ends at column 0).
pub(crate) fn last_row(node: Node<'_>) -> usize {
    let end = node.end_position();
    if end.column == 0 && end.row > node.start_position().row {
        end.row - 1
    } else {
        end.row
    }
}

fn last_named_child(node: Node<'_>) -> Option<Node<'_>> {
    let count = node.named_child_count();
    node.named_child(count.checked_sub(1)?)
}

/// The name inside a C/C++ declarator: `*f(int)` → `f`, `Foo::bar(...)` → `Foo::bar`.
fn declarator_name(node: Node<'_>) -> Option<Node<'_>> {
    let mut node = node;
    for _ in 0..16 {
        match node.kind() {
            "identifier"
            | "field_identifier"
            | "type_identifier"
            | "qualified_identifier"
            | "destructor_name"
            | "operator_name"
            | "primitive_type" => return Some(node),
            _ => node = node.child_by_field_name("declarator").or_else(|| node.named_child(0))?,
        }
    }
    None
}

fn contains_function_declarator(node: Node<'_>) -> bool {
    let mut node = node;
    for _ in 0..16 {
        if node.kind() == "function_declarator" {
            return true;
        }
        match node.child_by_field_name("declarator") {
            Some(inner) => node = inner,
            None => return false,
        }
    }
    false
}

/// Whether a C++ `struct` body declares functions (then it is outlined like a class).
fn has_function_member(node: Node<'_>) -> bool {
    let Some(body) = node.child_by_field_name("body") else { return false };
    let mut cursor = body.walk();
    let found = body
        .named_children(&mut cursor)
        .any(|m| m.kind() == "function_definition" || m.child_by_field_name("declarator").is_some_and(contains_function_declarator));
    found
}
