//! The in-process test server (no subprocess), driven through the tower `Service` interface
//! exactly as the stdio transport drives it. It runs the fake engine from [`super::fake`] or any
//! model loader (to count loads, panic part-way through a job, fail a reload, ...).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_lsp_server::LspService;

use inkling::engine::{EngineState, Loader};
use inkling::server::{build_service, Server, ServerOptions};

use super::fake::{loader, Script};

pub struct TestServer {
    pub service: LspService<Server>,
    /// Server-to-client messages (showMessage, logMessage, ...).
    pub from_server: mpsc::UnboundedReceiver<Value>,
    next_id: i64,
}

impl TestServer {
    /// A server on the fake engine answering with `script`, `per_token` per character.
    pub async fn start(script: Script, per_token: Duration) -> TestServer {
        Self::start_with(script, per_token, false).await
    }

    /// Like [`TestServer::start`]; `type_through` turns on answering from the visible suggestion.
    pub async fn start_with(script: Script, per_token: Duration, type_through: bool) -> TestServer {
        Self::start_options(ServerOptions {
            model: Some("fake-model".into()),
            loader: loader(script, per_token),
            type_through,
            ..ServerOptions::default()
        })
    }

    /// A server whose model at `model` is loaded by `loader`.
    pub async fn start_loader(loader: Loader, model: &str) -> TestServer {
        Self::start_options(ServerOptions { model: Some(model.into()), loader, ..ServerOptions::default() })
    }

    pub fn start_options(options: ServerOptions) -> TestServer {
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
        TestServer { service, from_server, next_id: 0 }
    }

    /// Starts on the fake engine, initializes with `encoding` and `options`, and waits until
    /// the model is ready.
    pub async fn ready(script: Script, per_token: Duration, encoding: &str, options: Value) -> TestServer {
        let mut s = TestServer::start(script, per_token).await;
        s.initialize(json!({"general": {"positionEncodings": [encoding]}}), options).await;
        s
    }

    /// Starts with `loader`, initializes (utf-16) with `options`, and waits until the model is
    /// ready.
    pub async fn ready_loader(loader: Loader, model: &str, options: Value) -> TestServer {
        let mut s = TestServer::start_loader(loader, model).await;
        s.initialize(json!({}), options).await;
        s
    }

    /// Starts with `options`, initializes (utf-16) with the client's `settings`, and waits until
    /// the model is ready.
    pub async fn ready_options(options: ServerOptions, settings: Value) -> TestServer {
        let mut s = TestServer::start_options(options);
        s.initialize(json!({}), settings).await;
        s
    }

    async fn initialize(&mut self, capabilities: Value, options: Value) {
        let resp = self.request("initialize", json!({"capabilities": capabilities, "initializationOptions": options})).await;
        assert!(resp.is_ok(), "{resp:?}");
        self.notify("initialized", json!({})).await;
        self.wait_state(|st| matches!(st, EngineState::Ready { .. }), Duration::from_secs(10)).await;
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

    /// Sends a request and waits for its response (`Ok(result)` or `Err(error object)`).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let (_, req) = self.request_message(method, params);
        let resp = self.call(req).await.expect("a request gets a response");
        let (_, result) = resp.into_parts();
        result.map_err(|e| serde_json::to_value(e).unwrap_or(Value::Null))
    }

    pub async fn call(&mut self, req: Request) -> Option<Response> {
        let fut = self.service.ready().await.expect("service ready").call(req);
        fut.await.expect("service call")
    }

    /// Starts a call without waiting for it: the future owns everything it needs, as in the
    /// stdio transport, which starts calls in arrival order and polls them concurrently.
    pub fn start_call(&mut self, req: Request) -> futures::future::BoxFuture<'static, Option<Response>> {
        let fut = self.service.call(req);
        Box::pin(async move { fut.await.expect("service call") })
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        let req = Request::build(method.to_string()).params(params).finish();
        let resp = self.call(req).await;
        assert!(resp.is_none(), "a notification got a response: {resp:?}");
    }

    pub async fn open(&mut self, uri: &str, language: &str, text: &str) {
        self.notify("textDocument/didOpen", json!({"textDocument": {"uri": uri, "languageId": language, "version": 1, "text": text}}))
            .await;
    }

    /// Server-to-client messages received so far.
    pub fn drain_messages(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(m) = self.from_server.try_recv() {
            out.push(m);
        }
        out
    }
}
