//! The raw, client-facing option names and their validation.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Multiline, Settings};

/// Raw options as a client sends them (camelCase JSON). Every field is optional; a missing field
/// keeps its current value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    pub enabled: Option<bool>,
    pub model_path: Option<String>,
    pub max_prefix_tokens: Option<u64>,
    pub max_suffix_tokens: Option<u64>,
    pub max_new_tokens: Option<u64>,
    pub time_budget_ms: Option<u64>,
    pub latency_target_ms: Option<u64>,
    pub multiline: Option<Multiline>,
    pub complete_in_comments: Option<bool>,
    pub threads: Option<u64>,
    pub max_document_bytes: Option<u64>,
    pub cross_file_context: Option<bool>,
    pub max_context_tokens: Option<u64>,
    pub max_index_files: Option<u64>,
    pub kv_cache_mb: Option<u64>,
}

/// Why a settings object was refused. The message is shown to the user as is.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("inkling settings are invalid: {0}")]
    Malformed(String),
    #[error("inkling setting `{name}` is {value}, but it must be between {min} and {max}")]
    OutOfRange { name: &'static str, value: u64, min: u64, max: u64 },
    #[error("inkling settings maxPrefixTokens + maxSuffixTokens + maxContextTokens + maxNewTokens add up to {total}, but the model's cache holds {max}")]
    TooManyTokens { total: usize, max: usize },
}

/// The model's KV cache (4096 positions) minus room for the FIM markers and repo header.
pub const MAX_PROMPT_AND_ANSWER_TOKENS: usize = 4000;

/// One documented option: the name clients use, its JSON type, default and meaning.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct OptionDoc {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub json_type: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every option the server accepts. Editor clients are tested against this list.
pub const OPTION_DOCS: &[OptionDoc] = &[
    OptionDoc { name: "enabled", json_type: "boolean", default: "true", description: "Offer completions." },
    OptionDoc { name: "modelPath", json_type: "string", default: "null", description: "Path to a GGUF file or a Hugging Face folder. Empty: the default model in the cache." },
    OptionDoc { name: "maxPrefixTokens", json_type: "integer", default: "1024", description: "Tokens of text before the cursor shown to the model." },
    OptionDoc { name: "maxSuffixTokens", json_type: "integer", default: "256", description: "Tokens of text after the cursor shown to the model." },
    OptionDoc { name: "maxNewTokens", json_type: "integer", default: "96", description: "Most tokens one completion may generate." },
    OptionDoc { name: "timeBudgetMs", json_type: "integer", default: "10000", description: "Stop generating after this many milliseconds (after reading the prompt) and answer with what is there." },
    OptionDoc { name: "latencyTargetMs", json_type: "integer", default: "1000", description: "When reading the whole prompt would take longer than this (the model's own measured speed), a smaller prompt is read first and the context grows with the next requests. 0: always the full prompt." },
    OptionDoc { name: "multiline", json_type: "string", default: "\"auto\"", description: "When a completion may span several lines: auto, never or always." },
    OptionDoc { name: "completeInComments", json_type: "boolean", default: "false", description: "Also complete inside comments and strings." },
    OptionDoc { name: "threads", json_type: "integer", default: "null", description: "CPU threads for the model. Empty or 0: all cores. Read when the server starts (from initializationOptions, or --threads, which wins); a later change applies at the next start." },
    OptionDoc { name: "maxDocumentBytes", json_type: "integer", default: "4194304", description: "Documents larger than this are not completed." },
    OptionDoc { name: "crossFileContext", json_type: "boolean", default: "true", description: "Show the model code from other files: recently edited chunks and definitions used near the cursor." },
    OptionDoc { name: "maxContextTokens", json_type: "integer", default: "1024", description: "Tokens of code from other files shown to the model." },
    OptionDoc { name: "maxIndexFiles", json_type: "integer", default: "20000", description: "Most workspace files indexed for definitions." },
    OptionDoc { name: "kvCacheMb", json_type: "integer", default: "512", description: "Memory (MiB) for the saved model state of recently used files, so switching files is fast." },
];

fn bounded(name: &'static str, value: Option<u64>, min: u64, max: u64, current: usize) -> Result<usize, SettingsError> {
    match value {
        None => Ok(current),
        Some(v) if (min..=max).contains(&v) => Ok(v as usize),
        Some(v) => Err(SettingsError::OutOfRange { name, value: v, min, max }),
    }
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
        if let Some(v) = self.enabled {
            s.enabled = v;
        }
        if let Some(p) = &self.model_path {
            s.model_path = if p.trim().is_empty() { None } else { Some(PathBuf::from(p)) };
        }
        s.max_prefix_tokens = bounded("maxPrefixTokens", self.max_prefix_tokens, 16, 3_900, s.max_prefix_tokens)?;
        s.max_suffix_tokens = bounded("maxSuffixTokens", self.max_suffix_tokens, 0, 3_900, s.max_suffix_tokens)?;
        s.max_new_tokens = bounded("maxNewTokens", self.max_new_tokens, 1, 1_024, s.max_new_tokens)?;
        s.time_budget_ms = bounded("timeBudgetMs", self.time_budget_ms, 10, 120_000, s.time_budget_ms as usize)? as u64;
        s.latency_target_ms = bounded("latencyTargetMs", self.latency_target_ms, 0, 120_000, s.latency_target_ms as usize)? as u64;
        if let Some(m) = self.multiline {
            s.multiline = m;
        }
        if let Some(v) = self.complete_in_comments {
            s.complete_in_comments = v;
        }
        match self.threads {
            None => {}
            Some(0) => s.threads = None, // 0: all cores
            Some(_) => s.threads = Some(bounded("threads", self.threads, 1, 256, 1)?),
        }
        s.max_document_bytes =
            bounded("maxDocumentBytes", self.max_document_bytes, 1024, 256 * 1024 * 1024, s.max_document_bytes)?;
        if let Some(v) = self.cross_file_context {
            s.cross_file_context = v;
        }
        s.max_context_tokens = bounded("maxContextTokens", self.max_context_tokens, 0, 3_900, s.max_context_tokens)?;
        s.max_index_files = bounded("maxIndexFiles", self.max_index_files, 0, 1_000_000, s.max_index_files)?;
        s.kv_cache_mb = bounded("kvCacheMb", self.kv_cache_mb, 0, 65_536, s.kv_cache_mb)?;
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
        let err = Options::from_json(&json!({"maxPrefixTokens": 3000, "maxSuffixTokens": 1000})).unwrap().validate(&Settings::default()).unwrap_err();
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
        for doc in OPTION_DOCS {
            let value: serde_json::Value = serde_json::from_str(doc.default).unwrap();
            let opts = Options::from_json(&json!({ doc.name: value })).unwrap();
            assert_eq!(opts.validate(&defaults).unwrap(), defaults, "default of {}", doc.name);
        }
        // A name that is not an Options field is refused (deny_unknown_fields), so every doc names a field;
        // and Options has exactly as many fields as there are docs.
        assert_eq!(OPTION_DOCS.len(), 15, "update OPTION_DOCS when Options changes");
    }
}
