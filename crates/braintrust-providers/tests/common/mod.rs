//! The shared test fixture: a loopback stub provider (answers every request with the configured
//! status and body, records what it received) and a logger writing to an in-process
//! braintrust-local.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use braintrust_core::context::SpanFutureExt;
use braintrust_core::env_file::EnvLookup;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::StartSpan;
use braintrust_local::LocalServer;
use braintrust_transport::logger::{Logger, LoggerOptions, init_logger};
use serde_json::Value;

/// What the stub answers, and what it received.
#[derive(Default)]
pub(crate) struct Stub {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    pub(crate) received: Vec<(HeaderMap, Bytes)>,
}

pub(crate) type Shared = Arc<Mutex<Stub>>;

async fn answer(State(stub): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut stub = stub.lock().unwrap();
    stub.received.push((headers, body));
    Response::builder()
        .status(stub.status)
        .header("content-type", stub.content_type.clone())
        .body(axum::body::Body::from(stub.body.clone()))
        .unwrap()
        .into_response()
}

pub(crate) struct Fixture {
    pub(crate) stub: Shared,
    pub(crate) url: String,
    pub(crate) server: LocalServer,
    pub(crate) logger: Logger,
    pub(crate) runtime: tokio::runtime::Runtime,
}

pub(crate) fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let stub: Shared = Arc::new(Mutex::new(Stub {
        status: 200,
        content_type: "application/json".into(),
        ..Stub::default()
    }));
    let app = Router::new().fallback(answer).with_state(stub.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await });
    let server = LocalServer::builder().in_memory().start().unwrap();
    let logger = init_logger(
        LoggerOptions::new()
            .project("providers")
            .api_key(server.api_key())
            .app_url(server.url())
            .api_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([]))
            .set_current(false),
    )
    .unwrap();
    Fixture {
        stub,
        url,
        server,
        logger,
        runtime,
    }
}

impl Fixture {
    pub(crate) fn respond(&self, status: u16, content_type: &str, body: impl Into<Vec<u8>>) {
        let mut stub = self.stub.lock().unwrap();
        stub.status = status;
        stub.content_type = content_type.into();
        stub.body = body.into();
    }

    /// Runs `f` under a root span of the logger; returns the llm spans of that trace.
    pub(crate) fn traced<T>(&self, f: impl std::future::Future<Output = T>) -> (T, Vec<Value>) {
        let root = self.logger.start_span(StartSpan::named("root"));
        let out = self.runtime.block_on(f.in_span(root.clone()));
        root.end();
        self.logger.flush().unwrap();
        let project = self.logger.resolve().unwrap();
        let rows = self.server.rows(&ObjectIds::project_logs(project)).unwrap();
        let spans = rows
            .into_iter()
            .filter(|r| r["root_span_id"] == root.root_span_id())
            .filter(|r| r["span_attributes"]["type"] == "llm")
            .collect();
        (out, spans)
    }
}
