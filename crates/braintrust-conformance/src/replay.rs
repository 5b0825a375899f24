//! A loopback server replaying recorded provider responses (WireMock stub mappings), matching
//! requests on method, path and canonical JSON body.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// One recorded exchange.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The mapping file's stem (`completions`, `reasoning.turn1`).
    pub name: String,
    /// `POST`, …
    pub method: String,
    /// The decoded request path.
    pub path: String,
    /// The recorded request body, when the mapping matches on one.
    pub body: Option<Value>,
    /// The response status.
    pub status: u16,
    /// The response `Content-Type`.
    pub content_type: String,
    /// The response body bytes.
    pub response: Vec<u8>,
}

/// The mappings of case `<provider>/<case>`: `<case>.mapping.json` and
/// `<case>.turn<N>.mapping.json`, each with its sibling `<stem>.body.<ext>`.
pub fn load_mappings(cassettes: &Path, provider: &str, case: &str) -> Result<Vec<Mapping>, String> {
    let dir = cassettes.join(provider);
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut stems: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter_map(|n| n.strip_suffix(".mapping.json").map(str::to_owned))
        .filter(|stem| {
            stem == case
                || stem
                    .strip_prefix(case)
                    .and_then(|rest| rest.strip_prefix(".turn"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    stems.sort_by_key(|s| {
        s.rsplit_once(".turn")
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    stems.iter().map(|stem| load_mapping(&dir, stem)).collect()
}

fn load_mapping(dir: &Path, stem: &str) -> Result<Mapping, String> {
    let path = dir.join(format!("{stem}.mapping.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mapping: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let request = &mapping["request"];
    let response = &mapping["response"];
    let url = request["url"]
        .as_str()
        .or_else(|| request["urlPath"].as_str())
        .ok_or_else(|| format!("{}: no request url", path.display()))?;
    let body = match request["bodyPatterns"][0]["equalToJson"].clone() {
        Value::String(json) => Some(
            serde_json::from_str(&json)
                .map_err(|e| format!("{}: equalToJson: {e}", path.display()))?,
        ),
        Value::Null => None,
        other => Some(other),
    };
    let prefix = format!("{stem}.body.");
    let body_file = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .find(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .ok_or_else(|| format!("no body file {prefix}* beside {}", path.display()))?;
    let bytes = std::fs::read(body_file.path()).map_err(|e| e.to_string())?;
    let content_type = response["headers"]["Content-Type"]
        .as_str()
        .unwrap_or("application/json")
        .to_owned();
    Ok(Mapping {
        name: stem.to_owned(),
        method: request["method"].as_str().unwrap_or("POST").to_owned(),
        path: decode_path(url.split('?').next().unwrap_or(url)),
        body,
        status: response["status"].as_u64().unwrap_or(200) as u16,
        content_type,
        response: bytes,
    })
}

fn decode_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// A body made comparable: `"stream": false` and `null` members dropped, Gemini's snake_case
/// media keys in camelCase.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if v.is_null() || (k == "stream" && *v == Value::Bool(false)) {
                    continue;
                }
                let key = match k.as_str() {
                    "inline_data" => "inlineData",
                    "mime_type" => "mimeType",
                    other => other,
                };
                out.insert(key.to_owned(), canonical(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(value.clone(), Value::Number),
        other => other.clone(),
    }
}

/// How responses are served.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Serve streamed bodies in random chunks of at most this many bytes.
    pub max_chunk: Option<usize>,
    /// Wait this long after the first chunk of a streamed body.
    pub first_chunk_delay: Option<Duration>,
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// The method.
    pub method: String,
    /// The decoded path.
    pub path: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The mapping served, or why none matched.
    pub matched: Result<String, String>,
}

struct ReplayState {
    mappings: Vec<Mapping>,
    options: ReplayOptions,
    received: Mutex<Vec<ReceivedRequest>>,
}

/// A running replay server; dropping it stops it.
pub struct ReplayServer {
    url: String,
    state: Arc<ReplayState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer")
            .field("url", &self.url)
            .finish()
    }
}

impl ReplayServer {
    /// Serves `mappings` on an ephemeral loopback port.
    pub fn start(mappings: Vec<Mapping>, options: ReplayOptions) -> Result<ReplayServer, String> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let state = Arc::new(ReplayState {
            mappings,
            options,
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(serve).with_state(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("conformance-replay".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .map_err(|e| e.to_string())?;
        Ok(ReplayServer {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.state
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn find<'a>(
    state: &'a ReplayState,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<&'a Mapping, String> {
    let actual: Option<Value> = serde_json::from_slice(body).ok();
    let mut reasons = Vec::new();
    for mapping in &state.mappings {
        let path_ok =
            mapping.path == path || path.strip_prefix("/v1").is_some_and(|p| p == mapping.path);
        if mapping.method != method || !path_ok {
            reasons.push(format!(
                "{}: {} {} differs",
                mapping.name, mapping.method, mapping.path
            ));
            continue;
        }
        match (&mapping.body, &actual) {
            (None, _) => return Ok(mapping),
            (Some(expected), Some(actual)) if canonical(expected) == canonical(actual) => {
                return Ok(mapping);
            }
            (Some(expected), Some(actual)) => reasons.push(format!(
                "{}: body differs: {}",
                mapping.name,
                first_difference("", &canonical(expected), &canonical(actual))
            )),
            (Some(_), None) => {
                reasons.push(format!("{}: the request body is not JSON", mapping.name));
            }
        }
    }
    Err(format!(
        "no mapping matches {method} {path}: {}",
        reasons.join("; ")
    ))
}

/// The first path where `expected` and `actual` differ.
pub fn first_difference(path: &str, expected: &Value, actual: &Value) -> String {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) if av == ev => {}
                    Some(av) => return first_difference(&format!("{path}.{k}"), ev, av),
                    None => return format!("{path}.{k}: missing in the request"),
                }
            }
            for k in a.keys() {
                if !e.contains_key(k) {
                    return format!("{path}.{k}: not in the recording");
                }
            }
            format!("{path}: equal")
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                if ev != av {
                    return first_difference(&format!("{path}[{i}]"), ev, av);
                }
            }
            format!("{path}: {} items recorded, {} sent", e.len(), a.len())
        }
        _ => format!("{path}: recorded {expected}, sent {actual}"),
    }
}

async fn serve(State(state): State<Arc<ReplayState>>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = decode_path(request.uri().path());
    let headers: Vec<(String, String)> = header_pairs(request.headers());
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024).await {
        Ok(b) => b.to_vec(),
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let found = find(&state, &method, &path, &body);
    state
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(ReceivedRequest {
            method,
            path,
            headers,
            body,
            matched: found.as_ref().map(|m| m.name.clone()).map_err(Clone::clone),
        });
    let mapping = match found {
        Ok(m) => m.clone(),
        Err(why) => return (StatusCode::NOT_FOUND, why).into_response(),
    };
    let streamed = mapping.content_type.starts_with("text/event-stream")
        || mapping
            .content_type
            .starts_with("application/vnd.amazon.eventstream");
    let body = if streamed
        && (state.options.max_chunk.is_some() || state.options.first_chunk_delay.is_some())
    {
        chunked(mapping.response, &state.options)
    } else {
        Body::from(mapping.response)
    };
    Response::builder()
        .status(mapping.status)
        .header(header::CONTENT_TYPE, mapping.content_type)
        .body(body)
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The body in random chunks, with a pause after the first.
fn chunked(bytes: Vec<u8>, options: &ReplayOptions) -> Body {
    let max = options.max_chunk.unwrap_or(bytes.len().max(1)).max(1);
    let mut chunks = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let n = fastrand::usize(1..=max.min(rest.len()));
        chunks.push(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
    }
    let delay = options.first_chunk_delay;
    let stream = futures_util::stream::unfold(
        (chunks.into_iter(), 0usize),
        move |(mut it, i)| async move {
            let chunk = it.next()?;
            if i == 1
                && let Some(d) = delay
            {
                tokio::time::sleep(d).await;
            }
            Some((Ok::<_, std::io::Error>(chunk), (it, i + 1)))
        },
    );
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_bodies_ignore_stream_false_nulls_number_forms_and_media_key_case() {
        let recorded = json!({"model": "m", "temperature": 0.0, "stream": false, "x": null,
            "parts": [{"inline_data": {"mime_type": "image/png", "data": "AA"}}]});
        let sent = json!({"temperature": 0, "model": "m",
            "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA"}}]});
        assert_eq!(canonical(&recorded), canonical(&sent));
        let other = json!({"model": "m", "temperature": 0.5});
        assert_ne!(canonical(&recorded), canonical(&other));
        assert_eq!(
            first_difference(
                "",
                &canonical(&recorded),
                &canonical(&json!({"model": "n"}))
            ),
            ".model: recorded \"m\", sent \"n\""
        );
    }
}
