//! Making a completion fit the file: the file's indentation characters, and brackets the
//! completion opened but did not close.

use crate::context::IndentStyle;

/// Rewrites the leading whitespace of every line after the first in the file's style: tabs
/// become spaces in a space-indented file, and runs of four spaces become tabs in a
/// tab-indented one (models indent with four spaces by default).
pub fn reindent(text: &str, style: IndentStyle) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start_matches([' ', '\t']);
        let lead = &line[..line.len() - body.len()];
        if i == 0 || lead.is_empty() {
            out.push_str(line);
            continue;
        }
        match style {
            IndentStyle::Tabs if lead.contains(' ') => {
                let width: usize = lead.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum();
                out.push_str(&"\t".repeat(width / 4));
                out.push_str(&" ".repeat(width % 4));
            }
            IndentStyle::Spaces(n) if lead.contains('\t') => {
                for c in lead.chars() {
                    if c == '\t' {
                        out.push_str(&" ".repeat(n));
                    } else {
                        out.push(c);
                    }
                }
            }
            _ => out.push_str(lead),
        }
        out.push_str(body);
    }
    out
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// Brackets opened in `text` and not closed there, innermost last (quoted text is skipped).
fn unclosed(text: &str) -> Vec<char> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' if stack.last().map(|&o| closer(o)) == Some(c) => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack
}

/// For a one-line completion: closes the brackets it opened that the rest of the line does not
/// close, unless it ends right after an opener (a call or block that continues on the next
/// line).
pub fn balance(text: &str, line_tail: &str) -> String {
    let open = unclosed(text);
    if open.is_empty() || text.trim_end().ends_with(['(', '[', '{']) {
        return text.to_string();
    }
    let mut needed: Vec<char> = open.iter().rev().map(|&o| closer(o)).collect();
    // Closers already after the cursor (an editor's auto-pairs) close the innermost first.
    for c in line_tail.chars().filter(|c| matches!(c, ')' | ']' | '}')) {
        if needed.first() == Some(&c) {
            needed.remove(0);
        }
    }
    let mut out = text.trim_end().to_string();
    out.extend(needed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindents_to_the_file_style() {
        assert_eq!(reindent("x\n    y\n        z", IndentStyle::Tabs), "x\n\ty\n\t\tz");
        assert_eq!(reindent("x\n\ty\n\t\tz", IndentStyle::Spaces(2)), "x\n  y\n    z");
        assert_eq!(reindent("x\n    y", IndentStyle::Spaces(4)), "x\n    y");
        // The first line continues the cursor line and is left alone.
        assert_eq!(reindent("    x", IndentStyle::Tabs), "    x");
    }

    #[test]
    fn closes_what_the_completion_opened() {
        assert_eq!(balance("compute(a, b", ""), "compute(a, b)");
        assert_eq!(balance("f(g(x", ""), "f(g(x))");
        assert_eq!(balance("f(g(x", ")"), "f(g(x)");
        assert_eq!(balance("items[0", ""), "items[0]");
        assert_eq!(balance("print(\"(\"", ""), "print(\"(\")");
        // Balanced, or deliberately continued on the next line: unchanged.
        assert_eq!(balance("f(x)", ""), "f(x)");
        assert_eq!(balance("call(", ""), "call(");
        assert_eq!(balance("if x {", ""), "if x {");
    }
}
