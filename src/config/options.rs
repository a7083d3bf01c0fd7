//! Every setting, declared once in [`settings!`]: its field, client name, JSON type, default,
//! meaning and check. From that one table come [`Settings`] (validated values), [`Options`]
//! (what a client sends, every field optional), their defaults, the validation, and
//! [`OPTION_DOCS`] (what `inkling options` prints and the editor clients are tested against).

use std::path::PathBuf;
use std::sync::LazyLock;

use serde::Deserialize;

use super::Multiline;

/// Why a settings object was refused. The message is shown to the user as is.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("inkling settings are invalid: {0}")]
    Malformed(String),
    #[error("inkling setting `{name}` is {value}, but it must be between {min} and {max}")]
    OutOfRange { name: &'static str, value: u64, min: u64, max: u64 },
    #[error("inkling setting `{name}` is {value}, but it must be a number from 0 to 1")]
    NotAProbability { name: &'static str, value: f64 },
    #[error("inkling settings maxPrefixTokens + maxSuffixTokens + maxContextTokens + maxNewTokens add up to {total}, but the model's cache holds {max}")]
    TooManyTokens { total: usize, max: usize },
}

/// The model's KV cache ([`crate::engine::DEFAULT_MAX_CONTEXT`] positions) minus room for the FIM
/// markers, the repository header and the chunk headers.
pub const MAX_PROMPT_AND_ANSWER_TOKENS: usize = crate::engine::DEFAULT_MAX_CONTEXT - 96;
/// The most tokens one budget may have (the others need room too).
const MAX_BUDGET: u64 = MAX_PROMPT_AND_ANSWER_TOKENS as u64 - 100;

/// One documented option: the name clients use, its JSON type, default (as JSON text) and
/// meaning.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptionDoc {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub json_type: &'static str,
    pub default: String,
    pub description: &'static str,
}

/// A check: turns what the client sent into the setting's value, or says why it cannot.
type Check<R, T> = fn(&'static str, R) -> Result<T, SettingsError>;

fn as_is<T>(_: &'static str, value: T) -> Result<T, SettingsError> {
    Ok(value)
}

fn in_range<const MIN: u64, const MAX: u64>(name: &'static str, value: u64) -> Result<usize, SettingsError> {
    in_range_u64::<MIN, MAX>(name, value).map(|v| v as usize)
}

fn in_range_u64<const MIN: u64, const MAX: u64>(name: &'static str, value: u64) -> Result<u64, SettingsError> {
    if (MIN..=MAX).contains(&value) {
        Ok(value)
    } else {
        Err(SettingsError::OutOfRange { name, value, min: MIN, max: MAX })
    }
}

/// An empty path means the default model.
fn model_path(_: &'static str, path: String) -> Result<Option<PathBuf>, SettingsError> {
    Ok(if path.trim().is_empty() { None } else { Some(PathBuf::from(path)) })
}

/// A share from 0 to 1.
fn probability(name: &'static str, value: f64) -> Result<Option<f64>, SettingsError> {
    if (0.0..=1.0).contains(&value) {
        Ok(Some(value))
    } else {
        Err(SettingsError::NotAProbability { name, value })
    }
}

/// 0 means all cores.
fn thread_count(name: &'static str, value: u64) -> Result<Option<usize>, SettingsError> {
    if value == 0 {
        return Ok(None);
    }
    in_range::<1, 256>(name, value).map(Some)
}

/// Declares the settings: `field: Type = default, from RawType, by check, "clientName", "json type", "meaning";`.
macro_rules! settings {
    ($( $field:ident : $ty:ty = $default:expr, from $raw:ty, by $check:expr, $name:literal, $json_type:literal, $doc:literal; )*) => {
        /// Validated settings. Build with [`Options::validate`] or [`Settings::default`].
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        pub struct Settings {
            $( #[doc = $doc] pub $field: $ty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $( $field: $default, )* }
            }
        }

        /// Raw options as a client sends them (camelCase JSON). Every field is optional; a
        /// missing field keeps its current value.
        #[derive(Clone, Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Options {
            $( #[serde(rename = $name)] pub $field: Option<$raw>, )*
        }

        impl Options {
            /// Each field sent, checked and written over `s`.
            fn apply(&self, s: &mut Settings) -> Result<(), SettingsError> {
                $(
                    if let Some(raw) = self.$field.clone() {
                        let check: Check<$raw, $ty> = $check;
                        s.$field = check($name, raw)?;
                    }
                )*
                Ok(())
            }
        }

        /// Every option the server accepts, with its real default. Editor clients are tested
        /// against this list.
        pub static OPTION_DOCS: LazyLock<Vec<OptionDoc>> = LazyLock::new(|| {
            let defaults = Settings::default();
            vec![ $( OptionDoc {
                name: $name,
                json_type: $json_type,
                default: serde_json::to_string(&defaults.$field).unwrap_or_else(|_| "null".into()),
                description: $doc,
            }, )* ]
        });
    };
}

settings! {
    enabled: bool = true, from bool, by as_is, "enabled", "boolean",
        "Offer completions.";
    model_path: Option<PathBuf> = None, from String, by model_path, "modelPath", "string",
        "Path to a GGUF file or a Hugging Face folder. Empty: the default model in the cache.";
    max_prefix_tokens: usize = 1024, from u64, by in_range::<16, MAX_BUDGET>, "maxPrefixTokens", "integer",
        "Tokens of text before the cursor shown to the model.";
    max_suffix_tokens: usize = 256, from u64, by in_range::<0, MAX_BUDGET>, "maxSuffixTokens", "integer",
        "Tokens of text after the cursor shown to the model.";
    max_new_tokens: usize = 96, from u64, by in_range::<1, 1_024>, "maxNewTokens", "integer",
        "Most tokens one completion may generate.";
    time_budget_ms: u64 = 10_000, from u64, by in_range_u64::<10, 120_000>, "timeBudgetMs", "integer",
        "Stop generating after this many milliseconds (after reading the prompt) and answer with what is there.";
    latency_target_ms: u64 = 1_000, from u64, by in_range_u64::<0, 120_000>, "latencyTargetMs", "integer",
        "When reading the whole prompt would take longer than this (the model's own measured speed), a smaller prompt is read first and pauses grow it (prewarm); a multi-line answer still running after this long ends at its last whole line. 0: always the full prompt, no such end.";
    prewarm: bool = true, from bool, by as_is, "prewarm", "boolean",
        "When you pause, read the prompt the next suggestion will need (the full context, where a latency target shortened it) in the background; any request interrupts it.";
    multiline: Multiline = Multiline::Auto, from Multiline, by as_is, "multiline", "string",
        "When a completion may span several lines: auto, never or always.";
    complete_in_comments: bool = false, from bool, by as_is, "completeInComments", "boolean",
        "Also complete inside comments and strings.";
    threads: Option<usize> = None, from u64, by thread_count, "threads", "integer",
        "CPU threads for the model. Empty or 0: all cores. Read when the server starts (from initializationOptions, or --threads, which wins); a later change applies at the next start.";
    max_document_bytes: usize = 4 * 1024 * 1024, from u64, by in_range::<1024, { 256 * 1024 * 1024 }>, "maxDocumentBytes", "integer",
        "Documents larger than this are not completed.";
    cross_file_context: bool = true, from bool, by as_is, "crossFileContext", "boolean",
        "Show the model code from other files: recently edited chunks and definitions used near the cursor.";
    max_context_tokens: usize = 1024, from u64, by in_range::<0, MAX_BUDGET>, "maxContextTokens", "integer",
        "Tokens of code from other files shown to the model.";
    max_index_files: usize = 20_000, from u64, by in_range::<0, 1_000_000>, "maxIndexFiles", "integer",
        "Most workspace files indexed for definitions.";
    kv_cache_mb: usize = 512, from u64, by in_range::<0, 65_536>, "kvCacheMb", "integer",
        "Memory (MiB) for the saved model state of recently used files, so switching files is fast.";
    filter_path: Option<PathBuf> = None, from String, by model_path, "filterPath", "string",
        "The quality filter (`python -m inkling_finetune filter`): suggestions it scores under minConfidence are not shown. Empty: the filter beside the model (model.inkling-filter.json, or inkling-filter.json in a model folder), when there is one.";
    min_confidence: Option<f64> = None, from f64, by probability, "minConfidence", "number",
        "Suggestions the quality filter scores under this (0 to 1) are not shown (or go to routerModelPath). Empty: the threshold chosen when the filter was fitted.";
    router_model_path: Option<PathBuf> = None, from String, by model_path, "routerModelPath", "string",
        "A bigger local model (GGUF file or Hugging Face folder) that answers when the quality filter scores the first model's suggestion under minConfidence. Empty: none. Both models keep their files' state within kvCacheMb.";
    log_suggestions: bool = false, from bool, by as_is, "logSuggestions", "boolean",
        "Keep a local log of the suggestions shown, accepted, dismissed and filtered, with their features (suggestions.jsonl in inkling's state folder; never sent anywhere; delete it whenever you like).";
}

impl Options {
    /// Parses client JSON like [`Options::from_json`], but ignores keys that are not options
    /// (clients often send their own keys along) and returns their names.
    pub fn from_json_lenient(value: &serde_json::Value) -> Result<(Options, Vec<String>), SettingsError> {
        let inner = match value {
            serde_json::Value::Object(map) if map.len() == 1 && map.contains_key("inkling") => &map["inkling"],
            other => other,
        };
        let serde_json::Value::Object(map) = inner else {
            return Options::from_json(value).map(|o| (o, Vec::new()));
        };
        let (known, unknown): (serde_json::Map<_, _>, serde_json::Map<_, _>) =
            map.clone().into_iter().partition(|(k, _)| OPTION_DOCS.iter().any(|d| d.name == k));
        let options = Options::from_json(&serde_json::Value::Object(known))?;
        Ok((options, unknown.into_iter().map(|(k, _)| k).collect()))
    }

    /// Parses client JSON. Accepts the options either at the top level or under an `inkling` key
    /// (`workspace/didChangeConfiguration` sends `{ "inkling": { ... } }`). `null` means "no change".
    pub fn from_json(value: &serde_json::Value) -> Result<Options, SettingsError> {
        let value = match value {
            serde_json::Value::Null => return Ok(Options::default()),
            serde_json::Value::Object(map) => match map.get("inkling") {
                Some(inner) if map.len() == 1 => inner,
                _ => value,
            },
            _ => value,
        };
        if value.is_null() {
            return Ok(Options::default());
        }
        Options::deserialize(value).map_err(|e| SettingsError::Malformed(e.to_string()))
    }

    /// Applies these options on top of `base`, checking every range. On error nothing changes.
    pub fn validate(&self, base: &Settings) -> Result<Settings, SettingsError> {
        let mut s = base.clone();
        self.apply(&mut s)?;
        let total = s.max_prefix_tokens + s.max_suffix_tokens + s.max_context_tokens + s.max_new_tokens;
        if total > MAX_PROMPT_AND_ANSWER_TOKENS {
            return Err(SettingsError::TooManyTokens { total, max: MAX_PROMPT_AND_ANSWER_TOKENS });
        }
        Ok(s)
    }
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn accepts_nested_and_top_level_options() {
        let base = Settings::default();
        let a = Options::from_json(&json!({"inkling": {"maxNewTokens": 12}})).unwrap().validate(&base).unwrap();
        let b = Options::from_json(&json!({"maxNewTokens": 12})).unwrap().validate(&base).unwrap();
        assert_eq!(a.max_new_tokens, 12);
        assert_eq!(a, b);
    }

    #[test]
    fn wrong_types_are_a_clear_error() {
        let err = Options::from_json(&json!({"maxNewTokens": "lots"})).unwrap_err();
        assert!(err.to_string().contains("maxNewTokens") || err.to_string().contains("invalid type"), "{err}");
        let err = Options::from_json(&json!({"maxNewTokenz": 3})).unwrap_err();
        assert!(err.to_string().contains("unknown field `maxNewTokenz`"), "{err}");
        let err = Options::from_json(&json!({"multiline": "sometimes"})).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn lenient_parsing_ignores_and_names_unknown_keys() {
        let (opts, unknown) = Options::from_json_lenient(&json!({"inkling": {"maxNewTokens": 7, "serverPath": "/x"}})).unwrap();
        assert_eq!(opts.max_new_tokens, Some(7));
        assert_eq!(unknown, vec!["serverPath".to_string()]);
        assert!(Options::from_json_lenient(&json!({"maxNewTokens": "x"})).is_err());
    }

    #[test]
    fn budgets_that_cannot_fit_the_cache_are_refused() {
        let err = Options::from_json(&json!({"maxPrefixTokens": 3000, "maxSuffixTokens": 1000}))
            .unwrap()
            .validate(&Settings::default())
            .unwrap_err();
        assert!(matches!(err, SettingsError::TooManyTokens { .. }), "{err}");
        assert!(err.to_string().contains("maxPrefixTokens"));
    }

    #[test]
    fn zero_threads_means_all_cores() {
        let base = Settings { threads: Some(4), ..Settings::default() };
        assert_eq!(Options::from_json(&json!({"threads": 0})).unwrap().validate(&base).unwrap().threads, None);
    }

    #[test]
    fn out_of_range_is_refused_and_names_the_setting() {
        let err = Options::from_json(&json!({"maxNewTokens": 0})).unwrap().validate(&Settings::default()).unwrap_err();
        assert_eq!(err, SettingsError::OutOfRange { name: "maxNewTokens", value: 0, min: 1, max: 1024 });
    }

    #[test]
    fn docs_list_every_field_with_its_default() {
        // Every documented option deserializes, and the documented defaults are the real ones.
        let defaults = Settings::default();
        for doc in OPTION_DOCS.iter() {
            let value: serde_json::Value = serde_json::from_str(&doc.default).unwrap();
            let opts = Options::from_json(&json!({ doc.name: value })).unwrap();
            assert_eq!(opts.validate(&defaults).unwrap(), defaults, "default of {}", doc.name);
        }
        // A name that is not an Options field is refused (deny_unknown_fields), so every doc names a field.
        let names: std::collections::HashSet<_> = OPTION_DOCS.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), OPTION_DOCS.len(), "option names are unique");
    }
}
