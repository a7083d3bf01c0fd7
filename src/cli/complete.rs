//! `inkling complete`: completions without an editor.
//!
//! * `inkling complete [--model PATH] FILE:LINE:COL` prints the completion at a position
//!   (1-based line and column, the column counted in characters) for a person.
//! * `inkling complete [--model PATH] --jsonl FILE` (`-` = stdin) reads one JSON object per line,
//!   `{"prefix": str, "suffix": str, "path": str, "language": str}`, and prints one JSON line per
//!   input, in order: `{"completion": str, "ms": float, ...}`, or `{"error": str}` for a bad line.
//!   This contract is stable: evaluation scripts depend on it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::engine::{load_backend, Engine};
use crate::models;
use crate::pipeline::{self, Outcome};
use crate::session::{ByteOffset, Document, DocumentLimits, Snapshot};
use crate::syntax::Language;

#[derive(Debug, clap::Args)]
pub struct CompleteArgs {
    /// A GGUF file or Hugging Face folder (default: the model in the cache).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Read requests from this JSONL file (`-` for standard input).
    #[arg(long, conflicts_with = "position")]
    pub jsonl: Option<String>,
    /// FILE:LINE:COL (1-based line and column).
    #[arg(required_unless_present = "jsonl")]
    pub position: Option<String>,
    /// Most tokens to generate.
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest {
    prefix: String,
    suffix: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    language: String,
}

#[derive(Debug, Serialize)]
struct JsonAnswer<'a> {
    completion: &'a str,
    ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    prompt_tokens: usize,
    new_tokens: usize,
    stop: Option<crate::engine::StopReason>,
}

fn snapshot_of(path: &str, language_id: &str, text: &str) -> Result<Snapshot> {
    let language = Language::detect(language_id, path);
    let doc = Document::open(path, language, text, 0, &DocumentLimits::default())?;
    Ok(doc.snapshot())
}

fn start_engine(model: Option<PathBuf>) -> Result<Engine> {
    let path = model.or_else(models::default_model).context("no model given and no cache folder ($HOME unset)")?;
    let engine = Engine::spawn(Box::new(load_backend));
    let started = Instant::now();
    engine
        .load_blocking(path.clone())
        .map_err(|e| anyhow::anyhow!("cannot load the model {}: {e}\nhint: {}", path.display(), models::FETCH_HINT))?;
    tracing::info!("model loaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(engine)
}

pub fn run(args: CompleteArgs) -> Result<ExitCode> {
    // One answer per cursor, each on its own: always the full prompt (no latency target).
    let mut settings = Settings { latency_target_ms: 0, ..Settings::default() };
    if let Some(n) = args.max_new_tokens {
        settings.max_new_tokens = n;
    }
    match (&args.jsonl, &args.position) {
        (Some(source), _) => {
            let engine = start_engine(args.model)?;
            run_jsonl(&engine, source, &settings)?;
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(position)) => {
            let (file, line, col) = parse_position(position)?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let offset = byte_offset(&text, line, col)?;
            let snapshot = snapshot_of(&file.to_string_lossy(), "", &text)?;
            let engine = start_engine(args.model)?;
            let started = Instant::now();
            let outcome = pipeline::complete_blocking(&engine, &snapshot, ByteOffset(offset), &settings)?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match &outcome {
                Outcome::Completed { text, .. } | Outcome::TypedThrough { text, .. } => println!("{text}"),
                Outcome::Empty(_) | Outcome::Filtered { .. } => eprintln!("(the model's answer did not fit here; nothing to suggest)"),
                Outcome::Skipped(reason) => eprintln!("(no completion at this position: {reason:?})"),
            }
            eprintln!("({ms:.0} ms)");
            Ok(ExitCode::SUCCESS)
        }
        (None, None) => bail!("give FILE:LINE:COL or --jsonl FILE"),
    }
}

/// Parses `FILE:LINE:COL` (the file name may itself contain colons).
fn parse_position(spec: &str) -> Result<(PathBuf, usize, usize)> {
    let mut parts = spec.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse::<usize>().ok());
    let line = parts.next().and_then(|l| l.parse::<usize>().ok());
    let file = parts.next();
    match (file, line, col) {
        (Some(f), Some(l), Some(c)) if l >= 1 && c >= 1 => Ok((PathBuf::from(f), l, c)),
        _ => bail!("expected FILE:LINE:COL with 1-based line and column, got `{spec}`"),
    }
}

/// The byte offset of 1-based `line`, `col` (in characters) in `text`.
fn byte_offset(text: &str, line: usize, col: usize) -> Result<usize> {
    let mut start = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let content = l.trim_end_matches(['\n', '\r']);
            let chars = content.chars().count();
            if col > chars + 1 {
                bail!("column {col} is past the end of line {line} ({chars} characters)");
            }
            let within: usize = content.chars().take(col - 1).map(char::len_utf8).sum();
            return Ok(start + within);
        }
        start += l.len();
    }
    if line == text.split_inclusive('\n').count() + 1 && col == 1 {
        return Ok(text.len());
    }
    bail!("line {line} is past the end of the file")
}

fn run_jsonl(engine: &Engine, source: &str, settings: &Settings) -> Result<()> {
    let reader: Box<dyn BufRead> = if source == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(std::fs::File::open(Path::new(source)).with_context(|| format!("cannot open {source}"))?))
    };
    let stdout = std::io::stdout();
    for (n, line) in reader.lines().enumerate() {
        let answer = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => answer_line(engine, &line, settings),
            Err(e) => error_json(&format!("line {}: cannot read: {e}", n + 1)),
        };
        let mut out = stdout.lock();
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

fn answer_line(engine: &Engine, line: &str, settings: &Settings) -> String {
    let request: JsonRequest = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return error_json(&format!("bad request: {e}")),
    };
    let text = format!("{}{}", request.prefix, request.suffix);
    let snapshot = match snapshot_of(&request.path, &request.language, &text) {
        Ok(s) => s,
        Err(e) => return error_json(&format!("{e:#}")),
    };
    let started = Instant::now();
    let outcome = pipeline::complete_blocking(engine, &snapshot, ByteOffset(request.prefix.len()), settings);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let answer = match &outcome {
        Ok(Outcome::Completed { text, generated, .. }) => JsonAnswer {
            completion: text,
            ms,
            skipped: None,
            prompt_tokens: generated.prompt_tokens,
            new_tokens: generated.new_tokens,
            stop: Some(generated.stop),
        },
        Ok(Outcome::Empty(generated) | Outcome::Filtered { generated, .. }) => JsonAnswer {
            completion: "",
            ms,
            skipped: None,
            prompt_tokens: generated.prompt_tokens,
            new_tokens: generated.new_tokens,
            stop: Some(generated.stop),
        },
        Ok(Outcome::Skipped(reason)) => {
            JsonAnswer { completion: "", ms, skipped: Some(format!("{reason:?}")), prompt_tokens: 0, new_tokens: 0, stop: None }
        }
        Ok(Outcome::TypedThrough { text, .. }) => {
            JsonAnswer { completion: text, ms, skipped: None, prompt_tokens: 0, new_tokens: 0, stop: None }
        }
        Err(e) => return error_json(&e.to_string()),
    };
    serde_json::to_string(&answer).unwrap_or_else(|e| error_json(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_map_to_bytes() {
        assert_eq!(parse_position("a:b.py:3:5").unwrap(), (PathBuf::from("a:b.py"), 3, 5));
        assert!(parse_position("a.py:0:1").is_err());
        assert!(parse_position("a.py:x").is_err());
        let text = "ab\n😀c\nz";
        assert_eq!(byte_offset(text, 2, 2).unwrap(), 7);
        assert_eq!(byte_offset(text, 3, 2).unwrap(), text.len());
        assert!(byte_offset(text, 2, 9).is_err());
        assert!(byte_offset(text, 9, 1).is_err());
    }
}
