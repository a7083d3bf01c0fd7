//! Lexical units of code for the filter's TF-IDF features: each maximal run of letters, digits
//! and `_` is one unit, and each other character that is not white space is one. The filter's
//! trainer reads the units `inkling eval` wrote, so this is the one definition of them.

/// Most units taken from one text (a long suggestion says little more than its beginning).
pub const MAX_UNITS: usize = 256;

/// The units of `text`, in order, at most [`MAX_UNITS`].
pub fn units(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if out.len() >= MAX_UNITS {
            break;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() && out.len() < MAX_UNITS {
            out.push(c.to_string());
        }
    }
    if !word.is_empty() && out.len() < MAX_UNITS {
        out.push(word);
    }
    out
}
