//! An in-process server like [`super::inprocess::TestServer`], but with any model loader (to
//! count loads, panic part-way through a job, fail a reload, ...).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_lsp_server::LspService;

use inkling::engine::{Backend, CancelToken, EngineState, GenerateRequest, Generated, Loader};
use inkling::server::{build_service, Server, ServerOptions};

use super::fake::FakeBackend;

pub struct CustomServer {
    pub service: LspService<Server>,
    pub from_server: mpsc::UnboundedReceiver<Value>,
    next_id: i64,
}

impl CustomServer {
    pub async fn start(loader: Loader, model: &str) -> CustomServer {
        let options = ServerOptions { model: Some(model.into()), loader, ..ServerOptions::default() };
        let (service, socket) = build_service(options);
        let (tx, from_server) = mpsc::unbounded_channel();
        let (mut requests, mut responses) = socket.split();
        tokio::spawn(async move {
            while let Some(req) = requests.next().await {
                let value = serde_json::to_value(&req).unwrap_or(Value::Null);
                if let Some(id) = req.id().cloned() {
                    let _ = responses.send(Response::from_ok(id, Value::Null)).await;
                }
                let _ = tx.send(value);
            }
        });
        CustomServer { service, from_server, next_id: 0 }
    }

    /// Starts, initializes (utf-16) with `options` and waits until the model is ready.
    pub async fn ready(loader: Loader, model: &str, options: Value) -> CustomServer {
        let mut s = CustomServer::start(loader, model).await;
        let resp = s.request("initialize", json!({"capabilities": {}, "initializationOptions": options})).await;
        assert!(resp.is_ok(), "{resp:?}");
        s.notify("initialized", json!({})).await;
        s.wait_state(|st| matches!(st, EngineState::Ready { .. }), Duration::from_secs(10)).await;
        s
    }

    pub fn state(&self) -> EngineState {
        self.service.inner().engine_state()
    }

    /// Waits until the engine state satisfies `pred`; panics after `timeout`.
    pub async fn wait_state(&self, pred: impl Fn(&EngineState) -> bool, timeout: Duration) -> EngineState {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let st = self.state();
            if pred(&st) {
                return st;
            }
            assert!(tokio::time::Instant::now() < deadline, "engine state still {st:?} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn request_message(&mut self, method: &str, params: Value) -> (i64, Request) {
        self.next_id += 1;
        let req = Request::build(method.to_string()).params(params).id(self.next_id).finish();
        (self.next_id, req)
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let (_, req) = self.request_message(method, params);
        let fut = self.service.ready().await.expect("service ready").call(req);
        let resp = fut.await.expect("service call").expect("a request gets a response");
        let (_, result) = resp.into_parts();
        result.map_err(|e| serde_json::to_value(e).unwrap_or(Value::Null))
    }

    pub fn start_call(&mut self, req: Request) -> futures::future::BoxFuture<'static, Option<Response>> {
        let fut = self.service.call(req);
        Box::pin(async move { fut.await.expect("service call") })
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        let req = Request::build(method.to_string()).params(params).finish();
        let fut = self.service.ready().await.expect("service ready").call(req);
        let resp = fut.await.expect("service call");
        assert!(resp.is_none(), "a notification got a response: {resp:?}");
    }

    pub async fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}))
            .await;
    }

    pub fn drain_messages(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(m) = self.from_server.try_recv() {
            out.push(m);
        }
        out
    }
}

/// `(method, message)` of server-to-client notifications among `messages`.
pub fn texts(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter_map(|m| Some((m["method"].as_str()?.to_string(), m["params"]["message"].as_str()?.to_string())))
        .collect()
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
pub fn counting_loader(script: super::fake::Script, per_token: Duration) -> (Loader, Arc<AtomicUsize>) {
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
