//! Prompts and functions: `POST/GET /v1/prompt`, `POST/GET /v1/function` (every create or
//! update is a new `_xact_id` version; older versions stay loadable), and
//! `POST /function/invoke` (JSON or server-sent events).
//!
//! Invoking runs a handler registered for the function's slug (or global name): in-process
//! with [`LocalServerBuilder::function`](crate::LocalServerBuilder::function), or declared in
//! a functions file ([`FunctionsFile`]). A prompt without a handler renders its prompt with the
//! input as variables and returns the rendered request (the arguments of the LLM call, without
//! `span_info`); no LLM is called, unless an OpenAI-compatible endpoint is configured
//! ([`LocalServerBuilder::llm_endpoint`](crate::LocalServerBuilder::llm_endpoint)): then the
//! request goes there and the output is the answer's message content (or the message when it
//! calls tools; the text for completion prompts). With a parent slug, each invocation logs a `function` span
//! under it, so it lands in the caller's trace.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use braintrust_core::id::{IdFormat, new_row_id, new_uuid_v4};
use braintrust_core::object::ObjectIds;
use braintrust_core::span_components::{SlugObject, SpanComponents};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, opt_str, query_map};
use crate::error::ApiError;
use crate::registry::{get_or_create_project, now, project_id_for};
use crate::store::{ObjectKind, RowWrite};

/// What a function handler receives.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The slug or global name the call resolved to.
    pub name: String,
    /// The input.
    pub input: Value,
    /// Extra messages, if sent.
    pub messages: Option<Value>,
    /// The metadata sent (`null` if none).
    pub metadata: Value,
    /// The stored function row, when the function exists in the store.
    pub function: Option<Value>,
}

/// A function implementation: the output, or an error message.
pub type FunctionHandler = Arc<dyn Fn(&Invocation) -> Result<Value, String> + Send + Sync>;

/// Handlers by slug or global name, shared by the server and its handle.
#[derive(Default, Clone)]
pub(crate) struct Handlers(Arc<RwLock<HashMap<String, FunctionHandler>>>);

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        f.debug_tuple("Handlers").field(&names).finish()
    }
}

impl Handlers {
    pub(crate) fn insert(&self, name: String, handler: FunctionHandler) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, handler);
    }

    fn get(&self, name: &str) -> Option<FunctionHandler> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// A functions file for the binary's `--functions` option: prompts to create at start and
/// declarative handlers.
///
/// ```json
/// {"prompts": [{"project_name": "demo", "slug": "greeter", "name": "Greeter",
///               "prompt_data": {"prompt": {"type": "chat", "messages": [
///                   {"role": "user", "content": "Say hi to {{name}}."}]},
///                               "options": {"model": "gpt-4o-mini"}}}],
///  "functions": [{"name": "shout", "template": "{{input}}!"},
///                {"name": "answer", "output": 42},
///                {"name": "echo", "echo": true}]}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionsFile {
    /// Prompts (or prompt-type functions) stored at start, as `POST /v1/prompt` bodies with a
    /// `project_name` or `project_id`.
    #[serde(default)]
    pub prompts: Vec<Map<String, Value>>,
    /// Handlers.
    #[serde(default)]
    pub functions: Vec<DeclaredFunction>,
}

/// A handler declared in a [`FunctionsFile`]: exactly one of `output`, `echo`, `template`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredFunction {
    /// The slug or global name it serves.
    pub name: String,
    /// Always return this value.
    #[serde(default)]
    pub output: Option<Value>,
    /// Return the input.
    #[serde(default)]
    pub echo: bool,
    /// Render this mustache template with `{input, metadata}` and return the text.
    #[serde(default)]
    pub template: Option<String>,
}

impl DeclaredFunction {
    /// The handler it declares.
    pub fn handler(&self) -> Result<FunctionHandler, String> {
        match (&self.output, self.echo, &self.template) {
            (Some(output), false, None) => {
                let output = output.clone();
                Ok(Arc::new(move |_: &Invocation| Ok(output.clone())))
            }
            (None, true, None) => Ok(Arc::new(|call: &Invocation| Ok(call.input.clone()))),
            (None, false, Some(template)) => {
                let template = template.clone();
                Ok(Arc::new(move |call: &Invocation| {
                    let data = json!({"input": call.input, "metadata": call.metadata});
                    braintrust_functions::mustache::render(
                        &template,
                        &data,
                        braintrust_functions::mustache::Strictness::Lenient,
                    )
                    .map(Value::String)
                    .map_err(|e| e.to_string())
                }))
            }
            _ => Err(format!(
                "function `{}` must have exactly one of `output`, `echo: true`, `template`",
                self.name
            )),
        }
    }
}

impl FunctionsFile {
    /// Reads and parses a functions file.
    pub fn read(path: &Path) -> Result<FunctionsFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("invalid functions file {}: {e}", path.display()))
    }
}

// === storage ===

/// Validates a create body and stores a new version.
pub(crate) fn create(
    state: &AppState,
    body: Map<String, Value>,
    default_type: Option<&str>,
) -> Result<Value, ApiError> {
    let mut store = state.store();
    let project_id = match opt_str(&body, "project_id")? {
        Some(id) => id,
        None => match opt_str(&body, "project_name")? {
            Some(name) => get_or_create_project(state, &store, &name)?["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            None => {
                return Err(ApiError::bad_request(
                    "`project_id` (or `project_name`) is required",
                ));
            }
        },
    };
    if store
        .object_by_id(ObjectKind::Project, &project_id)?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "project {project_id} not found"
        )));
    }
    let slug = opt_str(&body, "slug")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("`slug` is required"))?;
    let name = opt_str(&body, "name")?.unwrap_or_else(|| slug.clone());
    let prompt_data = match body.get("prompt_data") {
        None | Some(Value::Null) => Value::Null,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(ApiError::bad_request("`prompt_data` must be an object")),
    };
    let function_data = body.get("function_data").cloned().unwrap_or(Value::Null);
    if prompt_data.is_null() && function_data.is_null() {
        return Err(ApiError::bad_request(
            "one of `prompt_data` or `function_data` is required",
        ));
    }
    let mut row = Map::new();
    row.insert("id".into(), json!(new_uuid_v4()));
    row.insert("_xact_id".into(), Value::Null);
    row.insert("project_id".into(), json!(project_id));
    row.insert("org_id".into(), json!(state.settings.org_id));
    row.insert("log_id".into(), json!("p"));
    row.insert("name".into(), json!(name));
    row.insert("slug".into(), json!(slug));
    row.insert(
        "description".into(),
        body.get("description").cloned().unwrap_or(Value::Null),
    );
    row.insert("created".into(), json!(now()));
    row.insert(
        "tags".into(),
        body.get("tags").cloned().unwrap_or(Value::Null),
    );
    row.insert(
        "metadata".into(),
        body.get("metadata").cloned().unwrap_or(Value::Null),
    );
    row.insert("prompt_data".into(), prompt_data);
    if !function_data.is_null() {
        row.insert("function_data".into(), function_data);
    }
    let function_type = opt_str(&body, "function_type")?.or(default_type.map(str::to_owned));
    if let Some(function_type) = function_type {
        row.insert("function_type".into(), json!(function_type));
    }
    Ok(store.put_function_version(row)?)
}

/// Rows as served: the JS SDK rejects `origin.project_id: null`, so null keys of `origin` go.
fn served(mut row: Value) -> Value {
    if let Some(Value::Object(origin)) = row.pointer_mut("/prompt_data/origin") {
        origin.retain(|_, v| !v.is_null());
    }
    row
}

fn parse_version(text: Option<String>) -> Result<Option<u64>, ApiError> {
    text.map(|v| {
        v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("`version` must be a transaction id, not {v:?}"))
        })
    })
    .transpose()
}

/// The version an explicit `version` or an `environment` selects for `id` (`version` wins).
fn selected_version(
    state: &AppState,
    id: &str,
    query: &Map<String, Value>,
) -> Result<Option<u64>, ApiError> {
    if let Some(version) = parse_version(opt_str(query, "version")?)? {
        return Ok(Some(version));
    }
    let Some(environment) = opt_str(query, "environment")? else {
        return Ok(None);
    };
    match state
        .store()
        .environment_version("prompt", id, &environment)?
    {
        Some(v) => parse_version(Some(v)),
        None => Err(ApiError::not_found(format!(
            "no version of prompt {id} is assigned to environment `{environment}`"
        ))),
    }
}

fn list(state: &AppState, query: RawQuery) -> ApiResult {
    let query = query_map(&query);
    let project_id = match (
        opt_str(&query, "project_id")?,
        opt_str(&query, "project_name")?,
    ) {
        (Some(id), _) => id,
        (None, Some(name)) => project_id_for(&name),
        (None, None) => {
            return Err(ApiError::bad_request(
                "one of `project_id` or `project_name` is required",
            ));
        }
    };
    let slug = opt_str(&query, "slug")?;
    let latest = state
        .store()
        .functions_of_project(&project_id, slug.as_deref(), None)?;
    let mut objects = Vec::new();
    for row in latest {
        let id = row["id"].as_str().unwrap_or_default().to_owned();
        match selected_version(state, &id, &query)? {
            None => objects.push(row),
            Some(version) => objects.extend(state.store().function_by_id(&id, Some(version))?),
        }
    }
    ok(json!({"objects": objects.into_iter().map(served).collect::<Vec<_>>()}))
}

fn by_id(state: &AppState, id: &str, query: RawQuery) -> ApiResult {
    let query = query_map(&query);
    let version = selected_version(state, id, &query)?;
    match state.store().function_by_id(id, version)? {
        Some(row) => ok(served(row)),
        None => Err(ApiError::not_found(format!("function {id} not found"))),
    }
}

pub(crate) async fn create_prompt(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    ok(create(&state, object_body(&body)?, None)?)
}

pub(crate) async fn create_function(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    ok(create(&state, object_body(&body)?, None)?)
}

/// Stores a prompt of a functions file unless its latest version already has the same content.
pub(crate) fn seed(state: &AppState, body: Map<String, Value>) -> Result<(), String> {
    let describe = |e: ApiError| format!("prompt {:?}: {}", body.get("slug"), e.message);
    let project_id = match (body.get("project_id"), body.get("project_name")) {
        (Some(Value::String(id)), _) => id.clone(),
        (_, Some(Value::String(name))) => project_id_for(name),
        _ => {
            return Err(describe(ApiError::bad_request(
                "`project_name` or `project_id` is required",
            )));
        }
    };
    let slug = body.get("slug").and_then(Value::as_str).unwrap_or_default();
    let latest = state
        .store()
        .functions_of_project(&project_id, Some(slug), None)
        .map_err(|e| describe(e.into()))?;
    let same = latest.first().is_some_and(|row| {
        ["description", "prompt_data", "function_data"]
            .iter()
            .all(|k| row.get(*k).unwrap_or(&Value::Null) == body.get(*k).unwrap_or(&Value::Null))
    });
    if !same {
        create(state, body.clone(), None).map_err(describe)?;
    }
    Ok(())
}

pub(crate) async fn list_prompts(State(state): State<Arc<AppState>>, query: RawQuery) -> ApiResult {
    list(&state, query)
}

pub(crate) async fn get_prompt(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    query: RawQuery,
) -> ApiResult {
    by_id(&state, &id, query)
}

/// The versions of one prompt for `POST /btql` on `project_prompts(<project>)` with
/// `audit_log: true` and an `id = <prompt id>` filter, as `get_prompt_versions` asks.
pub(crate) fn prompt_versions(state: &AppState, prompt_id: &str) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store()
        .function_versions(prompt_id)?
        .into_iter()
        .map(|row| {
            json!({"id": row["id"], "_xact_id": row["_xact_id"],
                   "audit_data": {"action": "upsert"}})
        })
        .collect())
}

// === invoke ===

fn seconds_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Finds the stored function an invoke body names, if it names one by id or slug.
fn resolve(state: &AppState, body: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let version = parse_version(opt_str(body, "version")?)?;
    if let Some(id) = opt_str(body, "function_id")? {
        return match state.store().function_by_id(&id, version)? {
            Some(row) => Ok(Some(row)),
            None => Err(ApiError::not_found(format!("function {id} not found"))),
        };
    }
    let Some(slug) = opt_str(body, "slug")? else {
        return Ok(None);
    };
    let project_id = match (opt_str(body, "project_id")?, opt_str(body, "project_name")?) {
        (Some(id), _) => id,
        (None, Some(name)) => project_id_for(&name),
        (None, None) => {
            return Err(ApiError::bad_request(
                "`slug` needs `project_name` or `project_id`",
            ));
        }
    };
    let rows = state
        .store()
        .functions_of_project(&project_id, Some(&slug), version)?;
    Ok(rows.into_iter().next())
}

/// Runs the invocation: the output, or the function's error message.
async fn run(
    state: &AppState,
    body: &Map<String, Value>,
) -> Result<(String, Result<Value, String>), ApiError> {
    let function = resolve(state, body)?;
    let name = match (
        &function,
        opt_str(body, "slug")?,
        opt_str(body, "global_function")?,
    ) {
        (Some(row), ..) => row["slug"].as_str().unwrap_or_default().to_owned(),
        (None, Some(slug), _) => slug,
        (None, None, Some(global)) => global,
        (None, None, None) => match opt_str(body, "prompt_session_function_id")? {
            Some(id) => id,
            None => {
                return Err(ApiError::bad_request(
                    "name a function: `function_id`, `project_name`/`project_id` + `slug`, `global_function`, or `prompt_session_id` + `prompt_session_function_id`",
                ));
            }
        },
    };
    let call = Invocation {
        name: name.clone(),
        input: body.get("input").cloned().unwrap_or(Value::Null),
        messages: body.get("messages").filter(|m| !m.is_null()).cloned(),
        metadata: body.get("metadata").cloned().unwrap_or(Value::Null),
        function: function.clone(),
    };
    if let Some(handler) = state.handlers.get(&name) {
        // Off the server's threads: a handler may block, even on a request to this server.
        let output = tokio::task::spawn_blocking(move || handler(&call))
            .await
            .unwrap_or_else(|e| Err(format!("the handler of `{name}` did not finish: {e}")));
        return Ok((name, output));
    }
    match function {
        Some(row) if row.get("prompt_data").is_some_and(Value::is_object) => {
            let output = braintrust_functions::Prompt::from_row(row)
                .and_then(|p| p.build(&call.input))
                .map(|built| {
                    let mut request = built.to_request();
                    if let (Some(extra), Some(Value::Array(messages))) = (
                        call.messages.as_ref().and_then(Value::as_array),
                        request.get_mut("messages"),
                    ) {
                        messages.extend(extra.iter().cloned());
                    }
                    request
                })
                .map_err(|e| e.to_string());
            let output = match (output, &state.llm) {
                (Ok(request), Some(llm)) => call_llm(llm, request).await,
                (output, _) => output,
            };
            Ok((name, output))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "function `{name}` has no handler on this braintrust-local server (register one with LocalServerBuilder::function or a --functions file)"
        ))),
        None => Err(ApiError::not_found(format!("function `{name}` not found"))),
    }
}

/// An OpenAI-compatible endpoint that prompt functions without a handler are sent to.
#[derive(Debug, Clone)]
pub(crate) struct LlmEndpoint {
    /// Base URL: `{url}/chat/completions` and `{url}/completions` are called.
    pub(crate) url: String,
    pub(crate) api_key: Option<String>,
}

/// Sends a rendered prompt to the LLM endpoint; the output is the message content (or the
/// whole message when it calls tools) for chat prompts, the text for completion prompts.
async fn call_llm(llm: &LlmEndpoint, request: Value) -> Result<Value, String> {
    use braintrust_transport::http::{HttpClient, HttpOptions, HttpRequest, HyperClient, Method};
    let chat = request.get("messages").is_some();
    let path = if chat {
        "chat/completions"
    } else {
        "completions"
    };
    let url = format!("{}/{path}", llm.url.trim_end_matches('/'));
    let client = HyperClient::new(HttpOptions::default()).map_err(|e| e.to_string())?;
    let mut http = HttpRequest::new(Method::Post, url.clone())
        .header("Content-Type", "application/json")
        .body(request.to_string().into_bytes());
    if let Some(key) = &llm.api_key {
        http = http.header("Authorization", format!("Bearer {key}"));
    }
    let response = client
        .send(http)
        .await
        .map_err(|e| format!("LLM request to {url} failed: {e}"))?;
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "LLM endpoint {url} answered {}: {}",
            response.status,
            response.text()
        ));
    }
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("LLM endpoint {url} sent invalid JSON: {e}"))?;
    let choice = body
        .pointer("/choices/0")
        .ok_or_else(|| format!("LLM endpoint {url} sent no choices"))?;
    if !chat {
        return Ok(choice.get("text").cloned().unwrap_or(Value::Null));
    }
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    if message.get("tool_calls").is_some_and(|t| !t.is_null()) {
        return Ok(message);
    }
    Ok(message.get("content").cloned().unwrap_or(Value::Null))
}

/// Logs the invocation as a `function` span under the parent slug, if there is one.
fn log_span(
    state: &AppState,
    body: &Map<String, Value>,
    name: &str,
    start: f64,
    output: &Result<Value, String>,
) -> Result<(), ApiError> {
    let parent = opt_str(body, "parent")?.unwrap_or_default();
    if parent.is_empty() {
        return Ok(());
    }
    let parent = SpanComponents::parse(&parent)
        .map_err(|e| ApiError::bad_request(format!("invalid `parent`: {e}")))?;
    let object = match (&parent.object, parent.object_ids()) {
        (_, Some(ids)) => ids,
        (SlugObject::Lazy(args), None) => {
            match (
                args.get("project_id").and_then(Value::as_str),
                args.get("project_name").and_then(Value::as_str),
            ) {
                (Some(id), _) => ObjectIds::project_logs(id),
                (None, Some(project)) => {
                    let store = state.store();
                    let project = get_or_create_project(state, &store, project)?;
                    ObjectIds::project_logs(project["id"].as_str().unwrap_or_default())
                }
                (None, None) => return Ok(()),
            }
        }
        (SlugObject::Id(_), None) => return Ok(()),
    };
    let span_id = IdFormat::Hex.new_span_id();
    let mut fields = Map::new();
    fields.insert("span_id".into(), json!(span_id));
    match &parent.row {
        Some(row) => {
            fields.insert("root_span_id".into(), json!(row.root_span_id));
            fields.insert("span_parents".into(), json!([row.span_id]));
        }
        None => {
            fields.insert(
                "root_span_id".into(),
                json!(IdFormat::Hex.new_root_span_id(&span_id)),
            );
        }
    }
    fields.insert(
        "span_attributes".into(),
        json!({"name": name, "type": "function"}),
    );
    fields.insert(
        "input".into(),
        body.get("input").cloned().unwrap_or(Value::Null),
    );
    match output {
        Ok(value) => fields.insert("output".into(), value.clone()),
        Err(message) => fields.insert("error".into(), json!(message)),
    };
    if let Some(metadata) = body.get("metadata").filter(|m| m.is_object()) {
        fields.insert("metadata".into(), metadata.clone());
    }
    if let Some(tags) = body.get("tags").filter(|t| t.is_array()) {
        fields.insert("tags".into(), tags.clone());
    }
    fields.insert(
        "metrics".into(),
        json!({"start": start, "end": seconds_now()}),
    );
    fields.insert("created".into(), json!(now()));
    let row_id = new_row_id();
    fields.insert("id".into(), json!(row_id));
    let write = RowWrite::from_map(object, row_id, fields)?;
    state.store().apply_rows(vec![write])?;
    Ok(())
}

/// `POST /function/invoke`.
pub(crate) async fn invoke(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let start = seconds_now();
    let (name, output) = run(&state, &body).await?;
    log_span(&state, &body, &name, start, &output)?;
    if !stream {
        return match output {
            Ok(value) => ok(value),
            Err(message) => Err(ApiError {
                status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("function `{name}` failed: {message}"),
            }),
        };
    }
    Ok(sse_response(&output))
}

/// The output as server-sent events: `start`, deltas (`text_delta` JSON string pieces for text,
/// `json_delta` pieces otherwise) or `error`, then `done`; sent in pieces that ignore event
/// boundaries, as a real network would deliver them.
fn sse_response(output: &Result<Value, String>) -> Response {
    let mut text = String::from("event: start\ndata: \n\n");
    match output {
        Ok(Value::String(s)) => {
            let chars: Vec<char> = s.chars().collect();
            for piece in chars.chunks(8) {
                let piece: String = piece.iter().collect();
                text.push_str(&format!("event: text_delta\ndata: {}\n\n", json!(piece)));
            }
        }
        Ok(value) => {
            let json = value.to_string();
            let chars: Vec<char> = json.chars().collect();
            for piece in chars.chunks(16) {
                let piece: String = piece.iter().collect();
                // A `data:` value ends at a newline; compact JSON has none.
                text.push_str(&format!("event: json_delta\ndata: {piece}\n\n"));
            }
        }
        Err(message) => {
            text.push_str(&format!("event: error\ndata: {}\n\n", json!(message)));
        }
    }
    text.push_str("event: done\ndata: \n\n");
    let bytes = text.into_bytes();
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = fastrand::usize(1..=24).min(bytes.len() - at);
        pieces.push(Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(
            &bytes[at..at + len],
        )));
        at += len;
    }
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(futures_util::stream::iter(pieces)),
    )
        .into_response()
}
