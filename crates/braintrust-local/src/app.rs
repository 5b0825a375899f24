//! The HTTP API: routes, authentication and request recording.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::functions;
use crate::logs;
use crate::read;
use crate::record::{RecordedRequest, parse_query};
use crate::registry;
use crate::store::Store;

/// Largest request body accepted (overflow uploads included).
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Server settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) api_key: String,
    pub(crate) org_name: String,
    pub(crate) org_id: String,
    pub(crate) user_id: String,
    pub(crate) payload_limit: Option<u64>,
}

/// Shared state of a running server.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Mutex<Store>,
    pub(crate) settings: Settings,
    pub(crate) base_url: String,
    pub(crate) recorder: Option<Mutex<Vec<RecordedRequest>>>,
    pub(crate) faults: crate::faults::Faults,
    pub(crate) handlers: crate::functions::Handlers,
    pub(crate) llm: Option<crate::functions::LlmEndpoint>,
    /// Where attachment bytes are kept.
    pub(crate) attachments: crate::attachments::BlobDir,
}

impl AppState {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) type ApiResult = Result<Response, ApiError>;

pub(crate) fn ok(value: Value) -> ApiResult {
    Ok(axum::Json(value).into_response())
}

/// Builds the router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/apikey/login", post(login))
        .route("/ping", get(ping))
        .route("/version", get(version))
        .route(
            "/v1/project",
            post(registry::create_project).get(registry::list_projects),
        )
        .route("/v1/project/{id}", get(registry::get_project))
        .route("/api/project/register", post(registry::register_project))
        .route("/api/project", get(registry::legacy_get_project))
        .route(
            "/v1/experiment",
            post(registry::create_experiment).get(registry::list_experiments),
        )
        .route("/v1/experiment/{id}", get(registry::get_experiment))
        .route(
            "/v1/experiment/{id}/summarize",
            get(crate::summary::summarize_experiment),
        )
        .route(
            "/experiment-comparison2",
            get(crate::summary::experiment_comparison),
        )
        .route(
            "/api/base_experiment/get_id",
            post(crate::summary::base_experiment_id),
        )
        .route(
            "/api/experiment/register",
            post(registry::register_experiment),
        )
        .route(
            "/api/experiment/get",
            post(registry::legacy_get_experiments),
        )
        .route(
            "/v1/dataset",
            post(registry::create_dataset).get(registry::list_datasets),
        )
        .route("/v1/dataset/{id}", get(registry::get_dataset))
        .route(
            "/v1/dataset/{id}/summarize",
            get(crate::summary::summarize_dataset),
        )
        .route("/api/dataset/register", post(registry::register_dataset))
        .route(
            "/v1/prompt",
            post(functions::create_prompt)
                .put(functions::create_prompt)
                .get(functions::list_prompts),
        )
        .route("/v1/prompt/{id}", get(functions::get_prompt))
        .route(
            "/v1/function",
            post(functions::create_function)
                .put(functions::create_function)
                .get(functions::list_prompts),
        )
        .route("/v1/function/{id}", get(functions::get_prompt))
        .route("/function/invoke", post(functions::invoke))
        .route("/logs3", post(logs::logs3))
        .route("/logs3/overflow", post(logs::overflow_request))
        .route(
            "/objstore/{*key}",
            put(logs::upload_object).get(crate::attachments::get_object),
        )
        .route(
            "/attachment",
            post(crate::attachments::request_upload).get(crate::attachments::describe),
        )
        .route("/attachment/status", post(crate::attachments::set_status))
        .route(
            "/v1/{object_type}/{id}/fetch",
            post(read::fetch_post).get(read::fetch_get),
        )
        .route("/btql", post(read::btql))
        .route(
            "/environment-object/{object_type}/{id}/{environment}",
            get(read::environment_version)
                .put(read::set_environment_version)
                .post(read::set_environment_version),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::faults::inject,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {method} {}", uri.path()))
}

/// Paths served without an API key: the feature probe and signed upload URLs.
fn is_public(path: &str) -> bool {
    path == "/version" || path.starts_with("/objstore/")
}

async fn authenticate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(key) if key == state.settings.api_key => next.run(req).await,
        Some(_) => ApiError::unauthorized(
            "Invalid API key: this braintrust-local server was started with a different key",
        )
        .into_response(),
        None => ApiError::unauthorized(
            "Missing API key: send `Authorization: Bearer <key>` with the key this braintrust-local server was started with",
        )
        .into_response(),
    }
}

async fn record(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(recorder) = &state.recorder else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("request body could not be read: {e}"),
            }
            .into_response();
        }
    };
    let json = if bytes.is_empty() {
        None
    } else {
        serde_json::from_slice::<Value>(&bytes).ok()
    };
    let text = match (&json, bytes.is_empty()) {
        (None, false) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        _ => None,
    };
    {
        let mut log = recorder.lock().unwrap_or_else(|e| e.into_inner());
        let n = log.len() + 1;
        log.push(RecordedRequest {
            t: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parse_query(parts.uri.query()),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            json,
            text,
            body_len: bytes.len(),
            n,
        });
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn login(State(state): State<Arc<AppState>>) -> ApiResult {
    let s = &state.settings;
    ok(json!({"org_info": [{
        "id": s.org_id,
        "name": s.org_name,
        "api_url": state.base_url,
        "proxy_url": state.base_url,
        "realtime_url": null,
        "is_universal_api": true,
        // Everything but the diff, which can be large.
        "git_metadata": {"collect": "some", "fields": [
            "commit", "branch", "tag", "dirty", "author_name", "author_email",
            "commit_message", "commit_time"]},
    }]}))
}

async fn ping(State(state): State<Arc<AppState>>) -> ApiResult {
    ok(json!({
        "id": state.settings.user_id,
        "given_name": "Local",
        "family_name": "User",
        "email": "local@braintrust.local",
        "org_id": state.settings.org_id,
        "org_name": state.settings.org_name,
    }))
}

async fn version(State(state): State<Arc<AppState>>) -> ApiResult {
    let mut body = Map::new();
    body.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    body.insert("server".into(), json!("braintrust-local"));
    if let Some(limit) = state.settings.payload_limit {
        body.insert("logs3_payload_max_bytes".into(), json!(limit));
    }
    ok(Value::Object(body))
}

// === request helpers shared by the handlers ===

/// Parses a JSON object body; an empty body is an empty object.
pub(crate) fn object_body(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

/// Query parameters as a map (last value wins).
pub(crate) fn query_map(query: &RawQuery) -> Map<String, Value> {
    crate::record::form_pairs(query.0.as_deref().unwrap_or(""))
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// An optional string field; present but not a string (or null) is an error.
pub(crate) fn opt_str(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("`{field}` must be a string"))),
    }
}

/// An optional boolean field.
pub(crate) fn opt_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{field}` must be a boolean"
        ))),
    }
}

/// An optional object field.
pub(crate) fn opt_object(body: &Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(ApiError::bad_request(format!(
            "`{field}` must be an object"
        ))),
    }
}

/// An optional array-of-strings field.
pub(crate) fn opt_strings(body: &Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            Ok(Value::Array(items.clone()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "`{field}` must be an array of strings"
        ))),
    }
}
