//! The features of one suggestion, computed by one function for `inkling eval` and for the
//! server alike (a test compares the two): dense (the model's hidden states), lexical (units of
//! the suggestion and of the text around the cursor) and metadata (how sure the model was, how
//! long the suggestion is, where the cursor is).

use serde::{Deserialize, Serialize};

use super::lexical;
use crate::context::{CompletionContext, Mode};
use crate::engine::{Generated, StopReason};

/// Lines of the prefix, above the cursor line, whose units are context features.
const CONTEXT_LINES: usize = 2;

/// Everything the filter reads about one suggestion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// The model's final hidden state where the prompt ended, then its mean over the generated
    /// tokens (twice the model's hidden size; empty when the backend gives none).
    pub dense: Vec<f32>,
    /// Lexical units of the suggestion ([`lexical::units`]).
    pub completion_units: Vec<String>,
    /// Lexical units of the text around the cursor: the last lines above it, the cursor line.
    pub context_units: Vec<String>,
    pub numeric: Numeric,
    pub categorical: Categorical,
}

/// Metadata that is a number. Names are the filter file's keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Numeric {
    /// Mean and minimum log-probability of the tokens that wrote the suggestion, and of the
    /// first of them.
    pub mean_logprob: f64,
    pub min_logprob: f64,
    pub first_logprob: f64,
    pub chars: f64,
    pub lines: f64,
    /// Tokens that wrote the suggestion, and all the model generated.
    pub shown_tokens: f64,
    pub generated_tokens: f64,
    pub prompt_tokens: f64,
    /// Chunks of other files in the prompt.
    pub cross_file_chunks: f64,
    /// 1 when shaping cut what the model wrote (block end, suffix overlap), else 0.
    pub shaped_cut: f64,
    /// 1 when the cursor line holds only indentation before the cursor.
    pub blank_line_head: f64,
    pub line_head_chars: f64,
    /// 1 in multi-line mode.
    pub multiline: f64,
    /// Milliseconds since the user's last edit of the document; `None` where there is no
    /// editor (`inkling eval`).
    pub since_edit_ms: Option<f64>,
}

impl Numeric {
    /// The values by name, in a fixed order (`None` = missing).
    pub fn values(&self) -> [(&'static str, Option<f64>); 14] {
        [
            ("mean_logprob", Some(self.mean_logprob)),
            ("min_logprob", Some(self.min_logprob)),
            ("first_logprob", Some(self.first_logprob)),
            ("chars", Some(self.chars)),
            ("lines", Some(self.lines)),
            ("shown_tokens", Some(self.shown_tokens)),
            ("generated_tokens", Some(self.generated_tokens)),
            ("prompt_tokens", Some(self.prompt_tokens)),
            ("cross_file_chunks", Some(self.cross_file_chunks)),
            ("shaped_cut", Some(self.shaped_cut)),
            ("blank_line_head", Some(self.blank_line_head)),
            ("line_head_chars", Some(self.line_head_chars)),
            ("multiline", Some(self.multiline)),
            ("since_edit_ms", self.since_edit_ms),
        ]
    }
}

/// Metadata that is a category. Names are the filter file's keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Categorical {
    pub language: String,
    /// The syntax node around the cursor ([`crate::syntax::cursor_node_kind`]).
    pub cursor_node: String,
    /// Why generation stopped.
    pub stop: String,
}

impl Categorical {
    pub fn values(&self) -> [(&'static str, &str); 3] {
        [("language", &self.language), ("cursor_node", &self.cursor_node), ("stop", &self.stop)]
    }
}

fn stop_name(stop: StopReason) -> String {
    serde_json::to_value(stop).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// The features of `shown`, the suggestion shaped from `generated` for `ctx`. `since_edit_ms`
/// is the time since the document last changed, where an editor is there to tell.
pub fn features(ctx: &CompletionContext, generated: &Generated, shown: &str, since_edit_ms: Option<f64>) -> Features {
    let signals = &generated.signals;
    // A token wrote the suggestion when it started inside the shown text (shaping keeps a
    // prefix of the model's text, give or take trailing spaces).
    let shown_len = shown.len();
    let mut starts = std::iter::once(0).chain(signals.ends.iter().copied());
    let kept: Vec<f32> = signals.logprobs.iter().copied().take_while(|_| starts.next().is_some_and(|s| s < shown_len.max(1))).collect();
    let (mean, min, first) = if kept.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        let sum: f64 = kept.iter().map(|&x| f64::from(x)).sum();
        (sum / kept.len() as f64, kept.iter().copied().fold(f32::INFINITY, f32::min).into(), f64::from(kept[0]))
    };
    let raw = generated.text.trim_end();
    let mut dense = signals.prompt_hidden.clone();
    dense.extend_from_slice(&signals.completion_hidden);
    let head = &ctx.text.line_head;
    let above: Vec<&str> = ctx.text.prefix.lines().rev().take(CONTEXT_LINES).collect();
    let around = above.into_iter().rev().chain([head.as_str()]).collect::<Vec<_>>().join("\n");
    Features {
        dense,
        completion_units: lexical::units(shown),
        context_units: lexical::units(&around),
        numeric: Numeric {
            mean_logprob: mean,
            min_logprob: min,
            first_logprob: first,
            chars: shown.chars().count() as f64,
            lines: shown.lines().count().max(1) as f64,
            shown_tokens: kept.len() as f64,
            generated_tokens: generated.new_tokens as f64,
            prompt_tokens: generated.prompt_tokens as f64,
            cross_file_chunks: ctx.text.chunks.len() as f64,
            shaped_cut: f64::from(u8::from(shown.trim_end().len() < raw.len())),
            blank_line_head: f64::from(u8::from(head.trim().is_empty())),
            line_head_chars: head.chars().count() as f64,
            multiline: f64::from(u8::from(ctx.mode == Mode::MultiLine)),
            since_edit_ms,
        },
        categorical: Categorical {
            language: ctx.language.name().to_string(),
            cursor_node: ctx.cursor_node.to_string(),
            stop: stop_name(generated.stop),
        },
    }
}
