//! Type-through: while the user types exactly what the visible suggestion shows, answer with
//! the rest of that suggestion without asking the model. When the suggestion runs out, the next
//! request goes to the engine, whose cache still holds the suggestion's tokens, so decoding
//! continues from there instead of starting over.
//!
//! The same holds for the suggestion still being generated: on a CPU a generation takes longer
//! than the pause between two keystrokes, so a keystroke that only types more of the cursor line
//! *joins* the running generation ([`TypeThrough::joinable`]) instead of cancelling it, and is
//! answered from it when it ends, if what was typed matches it. A keystroke that contradicts
//! what the generation has written so far does not join: it starts the next generation at once
//! (which cancels the contradicted one) instead of waiting for an answer that cannot be shown.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Outcome;
use crate::context::CompletionContext;
use crate::engine::{EngineError, Written};
use crate::sync::lock;

/// Where a running generation's outcome arrives (`None` until it ends).
pub type Pending = watch::Receiver<Option<Result<Outcome, EngineError>>>;

/// The generation running for the last request that started one.
#[derive(Debug)]
struct Running {
    path: String,
    prefix: String,
    suffix: String,
    line_head: String,
    outcome: Pending,
    written: Arc<Written>,
}

/// The last suggestion shown, with the text around it when it was made.
#[derive(Clone, Debug)]
struct Shown {
    path: String,
    prefix: String,
    suffix: String,
    line_head: String,
    text: String,
}

/// Remembers the last suggestion per server, and the generation running.
#[derive(Debug, Default)]
pub struct TypeThrough {
    last: Mutex<Option<Shown>>,
    running: Mutex<Option<Running>>,
}

impl TypeThrough {
    /// The rest of the shown suggestion, if the context is the shown one plus typed characters
    /// that match it (and some of it is left).
    pub fn answer(&self, ctx: &CompletionContext) -> Option<String> {
        let guard = lock(&self.last);
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
        *lock(&self.last) = Some(Shown {
            path: ctx.path.clone(),
            prefix: ctx.text.prefix.clone(),
            suffix: ctx.text.suffix.clone(),
            line_head: ctx.text.line_head.clone(),
            text: text.to_string(),
        });
    }

    /// Records the generation started for `ctx`, whose text so far is kept in `written`.
    pub fn started(&self, ctx: &CompletionContext, outcome: Pending, written: Arc<Written>) {
        *lock(&self.running) = Some(Running {
            path: ctx.path.clone(),
            prefix: ctx.text.prefix.clone(),
            suffix: ctx.text.suffix.clone(),
            line_head: ctx.text.line_head.clone(),
            outcome,
            written,
        });
    }

    /// The running (or last) generation `ctx` may wait for instead of starting its own: made for
    /// the same text around the cursor line, with a line head that `ctx`'s extends by what the
    /// generation has written so far, or by the start of it. Returns whether the line heads are
    /// equal (the outcome is then `ctx`'s own) and where it arrives.
    pub fn joinable(&self, ctx: &CompletionContext) -> Option<(bool, Pending)> {
        let guard = lock(&self.running);
        let running = guard.as_ref()?;
        let same_text = running.path == ctx.path && running.prefix == ctx.text.prefix && running.suffix == ctx.text.suffix;
        let typed = ctx.text.line_head.strip_prefix(running.line_head.as_str())?;
        let so_far = running.written.get();
        let fits = so_far.starts_with(typed) || typed.starts_with(so_far.as_str());
        (same_text && fits).then(|| (typed.is_empty(), running.outcome.clone()))
    }

    /// Forgets the suggestion (e.g. after it was rejected by an edit elsewhere).
    pub fn forget(&self) {
        *lock(&self.last) = None;
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
            text: PromptText {
                prefix: "def add(a, b):\n".into(),
                suffix: suffix.into(),
                line_head: line_head.into(),
                ..PromptText::default()
            },
            mode: Mode::SingleLine,
            language: Language::Python,
            path: "a.py".into(),
            indent: "    ".into(),
            line_tail: String::new(),
            cursor_node: "block",
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

    #[test]
    fn a_keystroke_on_the_same_line_may_join_the_running_generation() {
        let t = TypeThrough::default();
        assert!(t.joinable(&ctx("    return ", "\n")).is_none());
        let (_tx, rx) = watch::channel(None);
        t.started(&ctx("    return ", "\n"), rx, Arc::default());
        assert!(matches!(t.joinable(&ctx("    return ", "\n")), Some((true, _))));
        assert!(matches!(t.joinable(&ctx("    return a", "\n")), Some((false, _))));
        // Deleted a character, or the text around changed: a new generation.
        assert!(t.joinable(&ctx("    return", "\n")).is_none());
        assert!(t.joinable(&ctx("    return a", "\nmore\n")).is_none());
    }

    #[test]
    fn a_keystroke_that_contradicts_what_the_generation_wrote_so_far_does_not_join_it() {
        let t = TypeThrough::default();
        let (_tx, rx) = watch::channel(None);
        let written = Arc::new(Written::default());
        t.started(&ctx("    ", "\n"), rx, Arc::clone(&written));
        written.set("return a");
        // Typed the start of it, or all of it and more: still joinable.
        assert!(matches!(t.joinable(&ctx("    ret", "\n")), Some((false, _))));
        assert!(matches!(t.joinable(&ctx("    return a + b", "\n")), Some((false, _))));
        // Typed something else: its answer cannot be shown, so the keystroke asks anew.
        assert!(t.joinable(&ctx("    if", "\n")).is_none());
        assert!(matches!(t.joinable(&ctx("    ", "\n")), Some((true, _))), "the request that started it still waits for it");
    }
}
