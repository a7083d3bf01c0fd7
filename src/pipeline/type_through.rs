//! Type-through: while the user types exactly what the visible suggestion shows, answer with
//! the rest of that suggestion without asking the model. When the suggestion runs out, the next
//! request goes to the engine, whose cache still holds the suggestion's tokens, so decoding
//! continues from there instead of starting over.

use std::sync::Mutex;

use crate::context::CompletionContext;

/// The last suggestion shown, with the text around it when it was made.
#[derive(Clone, Debug)]
struct Shown {
    path: String,
    prefix: String,
    suffix: String,
    line_head: String,
    text: String,
}

/// Remembers the last suggestion per server.
#[derive(Debug, Default)]
pub struct TypeThrough {
    last: Mutex<Option<Shown>>,
}

impl TypeThrough {
    /// The rest of the shown suggestion, if the context is the shown one plus typed characters
    /// that match it (and some of it is left).
    pub fn answer(&self, ctx: &CompletionContext) -> Option<String> {
        let guard = self.last.lock().ok()?;
        let shown = guard.as_ref()?;
        if shown.path != ctx.path || shown.prefix != ctx.text.prefix || shown.suffix != ctx.text.suffix {
            return None;
        }
        let typed = ctx.text.line_head.strip_prefix(shown.line_head.as_str())?;
        let rest = shown.text.strip_prefix(typed)?;
        if rest.trim().is_empty() {
            return None;
        }
        Some(rest.to_string())
    }

    /// Records a suggestion the model just made.
    pub fn remember(&self, ctx: &CompletionContext, text: &str) {
        if let Ok(mut guard) = self.last.lock() {
            *guard = Some(Shown {
                path: ctx.path.clone(),
                prefix: ctx.text.prefix.clone(),
                suffix: ctx.text.suffix.clone(),
                line_head: ctx.text.line_head.clone(),
                text: text.to_string(),
            });
        }
    }

    /// Forgets the suggestion (e.g. after it was rejected by an edit elsewhere).
    pub fn forget(&self) {
        if let Ok(mut guard) = self.last.lock() {
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Mode;
    use crate::prompt::PromptText;
    use crate::syntax::Language;

    fn ctx(line_head: &str, suffix: &str) -> CompletionContext {
        CompletionContext {
            text: PromptText { prefix: "def add(a, b):\n".into(), suffix: suffix.into(), line_head: line_head.into(), ..PromptText::default() },
            mode: Mode::SingleLine,
            language: Language::Python,
            path: "a.py".into(),
            indent: "    ".into(),
            line_tail: String::new(),
            indent_style: crate::context::IndentStyle::Spaces(4),
        }
    }

    #[test]
    fn typing_the_suggestion_answers_from_it() {
        let t = TypeThrough::default();
        t.remember(&ctx("    return ", "\n"), "a + b");
        assert_eq!(t.answer(&ctx("    return a", "\n")).as_deref(), Some(" + b"));
        assert_eq!(t.answer(&ctx("    return a +", "\n")).as_deref(), Some(" b"));
        // Typed something else, or the text around changed: ask the model.
        assert_eq!(t.answer(&ctx("    return x", "\n")), None);
        assert_eq!(t.answer(&ctx("    return a", "\nmore\n")), None);
        // Typed all of it: nothing left to show from memory.
        assert_eq!(t.answer(&ctx("    return a + b", "\n")), None);
        t.forget();
        assert_eq!(t.answer(&ctx("    return a", "\n")), None);
    }
}
