//! A fake model backend for in-process tests: it "generates" a scripted answer one character per
//! token, honouring cancellation, stop rules and deadlines like the real one.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inkling::engine::{Backend, CancelToken, GenerateRequest, Generated, Loader, StopReason};

/// Builds the answer from the request: by default `<answer for: LINE_HEAD>`.
pub type Script = fn(&GenerateRequest) -> String;

pub struct FakeBackend {
    pub script: Script,
    pub per_token: Duration,
}

pub fn echo_line_head(req: &GenerateRequest) -> String {
    // A Python string literal, so the completion is valid code where tests ask for it.
    format!("'{}'", req.text.line_head.trim().replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Backend for FakeBackend {
    fn describe(&self) -> String {
        "fake model".into()
    }

    fn reset(&mut self) {}

    fn generate(&mut self, req: &GenerateRequest, cancel: &CancelToken) -> anyhow::Result<Generated> {
        let started = Instant::now();
        let answer = (self.script)(req);
        if answer == "PANIC" {
            panic!("scripted panic");
        }
        if answer == "FAIL" {
            anyhow::bail!("scripted failure");
        }
        let mut text = String::new();
        let mut stop = StopReason::EndOfText;
        for c in answer.chars() {
            if cancel.is_cancelled() {
                break;
            }
            std::thread::sleep(self.per_token);
            text.push(c);
            if req.single_line && c == '\n' {
                stop = StopReason::EndOfLine;
                break;
            }
            if text.chars().count() >= req.max_new_tokens {
                stop = StopReason::MaxTokens;
                break;
            }
            if started.elapsed() >= req.time_budget {
                stop = StopReason::TimeBudget;
                break;
            }
        }
        let n = text.chars().count();
        Ok(Generated {
            text,
            stop,
            prompt_tokens: 0,
            reused_tokens: 0,
            moved_tokens: 0,
            new_tokens: n,
            prefill_ms: 0.0,
            decode_ms: started.elapsed().as_secs_f64() * 1e3,
            draft_tokens: 0,
            draft_accepted: 0,
            signals: Default::default(),
        })
    }
}

/// A loader that ignores the path (except `missing*`, which fails like a missing file).
pub fn loader(script: Script, per_token: Duration) -> Loader {
    Box::new(move |path: &Path| {
        if path.to_string_lossy().contains("missing") {
            anyhow::bail!("model file {} does not exist", path.display());
        }
        Ok(Box::new(FakeBackend { script, per_token }) as Box<dyn Backend>)
    })
}

/// A backend that behaves like [`FakeBackend`] unless the line head asks otherwise:
/// `panic-late` emits a few tokens then panics mid-job; `fail-late` errors mid-job.
pub struct Scripted {
    pub inner: FakeBackend,
}

impl Backend for Scripted {
    fn describe(&self) -> String {
        "scripted fake model".into()
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn generate(&mut self, req: &GenerateRequest, cancel: &CancelToken) -> anyhow::Result<Generated> {
        let head = req.text.line_head.clone();
        if head.contains("panic-late") || head.contains("fail-late") {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(10));
                if cancel.is_cancelled() {
                    break;
                }
            }
            if head.contains("panic-late") {
                let v: Vec<u8> = Vec::new();
                let _ = v[head.len()]; // an index out of bounds, as a real bug would
            }
            anyhow::bail!("tensor shape mismatch (scripted)");
        }
        self.inner.generate(req, cancel)
    }
}

/// A loader that counts its calls; loads fail for paths containing `missing`, and every load
/// after the first panics for paths containing `explode`.
pub fn counting_loader(script: Script, per_token: Duration) -> (Loader, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let loader: Loader = Box::new(move |path: &Path| {
        let before = seen.fetch_add(1, Ordering::SeqCst);
        let p = path.to_string_lossy();
        if p.contains("missing") {
            anyhow::bail!("model file {} does not exist", path.display());
        }
        if p.contains("explode") && before >= 1 {
            panic!("loader exploded on {}", path.display());
        }
        Ok(Box::new(Scripted { inner: FakeBackend { script, per_token } }) as Box<dyn Backend>)
    });
    (loader, count)
}
