//! Fault injection for tests of clients: answer chosen requests with an error status, delay
//! them, or drop the connection mid-response, a given number of times.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

/// A fault the server injects into a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a JSON error body, without processing the request.
    Status(u16),
    /// Answer with this status and a `Retry-After: <seconds>` header, without processing.
    StatusRetryAfter(u16, u64),
    /// Wait this long, then process the request normally.
    Delay(Duration),
    /// Send the response head, then abort the connection without processing the request.
    DropConnection,
}

#[derive(Debug)]
pub(crate) struct FaultRule {
    pub(crate) path: String,
    pub(crate) fault: Fault,
    pub(crate) remaining: u64,
}

/// Injected faults and how many have fired.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) rules: std::sync::Mutex<Vec<FaultRule>>,
    pub(crate) fired: AtomicU64,
}

impl Faults {
    /// The fault for a request to `path`, consuming one use of the first matching rule.
    fn take(&self, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.path == path)?;
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        rules.retain(|r| r.remaining > 0);
        self.fired.fetch_add(1, Ordering::Relaxed);
        Some(fault)
    }
}

pub(crate) async fn inject(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(fault) = state.faults.take(req.uri().path()) else {
        return next.run(req).await;
    };
    match fault {
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        Fault::Status(status) => error_response(status, None),
        Fault::StatusRetryAfter(status, seconds) => error_response(status, Some(seconds)),
        Fault::DropConnection => {
            let mut response = Response::new(Body::new(FailingBody));
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

fn error_response(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        axum::Json(json!({"error": format!("injected fault: HTTP {}", status.as_u16())})),
    )
        .into_response();
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
    response
}

/// A response body that fails at once, so the server aborts the connection mid-response.
struct FailingBody;

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected fault: connection dropped",
        ))))
    }
}
