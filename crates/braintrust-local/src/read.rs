//! Reads: `/v1/{experiment,dataset,project_logs}/{id}/fetch` (cursor paging) and `/btql`
//! (the structured query form the official SDKs send).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use braintrust_core::object::{ObjectIds, ObjectType};
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, query_map};
use crate::error::ApiError;

const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

struct ReadRequest {
    object: ObjectIds,
    version: Option<u64>,
    cursor: Option<String>,
    limit: usize,
    filter: Option<Filter>,
}

fn object_for(object_type: &str, id: String) -> Result<ObjectIds, ApiError> {
    match ObjectType::from_name(object_type) {
        Some(t @ (ObjectType::Experiment | ObjectType::Dataset | ObjectType::ProjectLogs)) => {
            Ok(ObjectIds::new(t, id))
        }
        _ => Err(ApiError::not_found(format!(
            "cannot read objects of type `{object_type}` (expected experiment, dataset or project_logs)"
        ))),
    }
}

fn parse_limit(v: Option<&Value>) -> Result<usize, ApiError> {
    let limit = match v {
        None | Some(Value::Null) => return Ok(DEFAULT_LIMIT),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    match limit {
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
        _ => Err(ApiError::bad_request("`limit` must be a positive integer")),
    }
}

fn parse_version(v: Option<&Value>) -> Result<Option<u64>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            ApiError::bad_request("`version` must be a transaction id (decimal digits)")
        }),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("`version` must be a transaction id")),
        Some(_) => Err(ApiError::bad_request("`version` must be a transaction id")),
    }
}

fn parse_cursor(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(
            "`cursor` is not a cursor returned by this server",
        )),
    }
}

fn run(state: &AppState, req: &ReadRequest) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let filter = |row: &Value| req.filter.as_ref().is_none_or(|f| f.matches(row));
    let page = state.store().read_rows(
        &req.object,
        req.version,
        req.cursor.as_deref(),
        req.limit,
        &filter,
    )?;
    Ok((page.rows, page.cursor))
}

fn fetch(
    state: &AppState,
    object_type: &str,
    id: String,
    params: &Map<String, Value>,
) -> ApiResult {
    let req = ReadRequest {
        object: object_for(object_type, id)?,
        version: parse_version(params.get("version"))?,
        cursor: parse_cursor(params.get("cursor"))?,
        limit: parse_limit(params.get("limit"))?,
        filter: None,
    };
    let (events, cursor) = run(state, &req)?;
    ok(json!({ "events": events, "cursor": cursor }))
}

pub(crate) async fn fetch_post(
    State(state): State<Arc<AppState>>,
    Path((object_type, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body)?;
    fetch(&state, &object_type, id, &body)
}

pub(crate) async fn fetch_get(
    State(state): State<Arc<AppState>>,
    Path((object_type, id)): Path<(String, String)>,
    query: RawQuery,
) -> ApiResult {
    fetch(&state, &object_type, id, &query_map(&query))
}

pub(crate) async fn btql(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let query = match body.get("query") {
        Some(Value::Object(q)) => q,
        Some(Value::String(_)) => {
            return Err(ApiError::bad_request(
                "BTQL text queries are not supported by braintrust-local; send the structured query object",
            ));
        }
        _ => return Err(ApiError::bad_request("`query` must be a BTQL query object")),
    };
    match query.get("select") {
        None => {}
        Some(Value::Array(items)) if items.iter().all(|i| i["op"] == "star") => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "braintrust-local supports only `select: *` ([{\"op\": \"star\"}])",
            ));
        }
    }
    let (object_type, id) = parse_from(query.get("from"))?;
    if object_type == "project_prompts" || object_type == "project_functions" {
        return prompt_rows(&state, &body, query, &id);
    }
    let req = ReadRequest {
        object: object_for(&object_type, id)?,
        version: parse_version(body.get("version").or_else(|| query.get("version")))?,
        cursor: parse_cursor(query.get("cursor"))?,
        limit: parse_limit(query.get("limit"))?,
        filter: query
            .get("filter")
            .filter(|f| !f.is_null())
            .map(Filter::parse)
            .transpose()?,
    };
    let (data, cursor) = run(&state, &req)?;
    ok(json!({
        "data": data,
        "schema": {"type": "array", "items": {"type": "object"}},
        "cursor": cursor,
    }))
}

/// `project_prompts(<project id>)` / `project_functions(…)`: with `audit_log: true` and an
/// `id = <prompt id>` filter, one row per version (`get_prompt_versions`); otherwise the latest
/// version of each prompt of the project.
fn prompt_rows(
    state: &AppState,
    body: &Map<String, Value>,
    query: &Map<String, Value>,
    project_id: &str,
) -> ApiResult {
    let filter = query
        .get("filter")
        .filter(|f| !f.is_null())
        .map(Filter::parse)
        .transpose()?;
    let data = if body.get("audit_log").and_then(Value::as_bool) == Some(true) {
        let Some(Filter::Eq(path, Value::String(id))) = &filter else {
            return Err(ApiError::bad_request(
                "braintrust-local serves prompt audit logs only for an `id = <prompt id>` filter",
            ));
        };
        if path.len() != 1 || path[0] != "id" {
            return Err(ApiError::bad_request(
                "braintrust-local serves prompt audit logs only for an `id = <prompt id>` filter",
            ));
        }
        crate::functions::prompt_versions(state, id)?
    } else {
        let rows = state.store().functions_of_project(project_id, None, None)?;
        match &filter {
            Some(filter) => rows.into_iter().filter(|r| filter.matches(r)).collect(),
            None => rows,
        }
    };
    ok(
        json!({"data": data, "schema": {"type": "array", "items": {"type": "object"}}, "cursor": null}),
    )
}

/// `{"op": "function", "name": {"op": "ident", "name": ["dataset"]}, "args": [{"op": "literal", "value": id}]}`
fn parse_from(from: Option<&Value>) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "`from` must be {\"op\": \"function\", \"name\": {\"op\": \"ident\", \"name\": [<object type>]}, \"args\": [{\"op\": \"literal\", \"value\": <id>}]}",
        )
    };
    let from = from.and_then(Value::as_object).ok_or_else(bad)?;
    if from.get("op").and_then(Value::as_str) != Some("function") {
        return Err(bad());
    }
    let name = from
        .get("name")
        .and_then(|n| n.get("name"))
        .and_then(Value::as_array)
        .and_then(|parts| parts.first())
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    let id = from
        .get("args")
        .and_then(Value::as_array)
        .and_then(|args| args.first())
        .and_then(|a| a.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    Ok((name.to_owned(), id.to_owned()))
}

/// The BTQL filter subset served locally: `eq`/`ne` between a field and a literal, combined with
/// `and`/`or`.
#[derive(Debug)]
enum Filter {
    Eq(Vec<String>, Value),
    Ne(Vec<String>, Value),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    fn parse(expr: &Value) -> Result<Filter, ApiError> {
        let op = expr.get("op").and_then(Value::as_str).unwrap_or_default();
        match op {
            "eq" | "ne" => {
                let (left, right) = (expr.get("left"), expr.get("right"));
                let (path, literal) = match (ident(left), literal(right)) {
                    (Some(p), Some(l)) => (p, l),
                    _ => match (ident(right), literal(left)) {
                        (Some(p), Some(l)) => (p, l),
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "BTQL `{op}` must compare a field with a literal"
                            )));
                        }
                    },
                };
                Ok(if op == "eq" {
                    Filter::Eq(path, literal)
                } else {
                    Filter::Ne(path, literal)
                })
            }
            "and" | "or" => {
                let children: Vec<&Value> = match expr.get("children").and_then(Value::as_array) {
                    Some(children) => children.iter().collect(),
                    None => [expr.get("left"), expr.get("right")]
                        .into_iter()
                        .flatten()
                        .collect(),
                };
                let parsed = children
                    .into_iter()
                    .map(Filter::parse)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" {
                    Filter::And(parsed)
                } else {
                    Filter::Or(parsed)
                })
            }
            other => Err(ApiError::bad_request(format!(
                "unsupported BTQL filter op `{other}` (braintrust-local supports eq, ne, and, or)"
            ))),
        }
    }

    fn matches(&self, row: &Value) -> bool {
        match self {
            Filter::Eq(path, v) => lookup(row, path) == Some(v),
            Filter::Ne(path, v) => lookup(row, path) != Some(v),
            Filter::And(all) => all.iter().all(|f| f.matches(row)),
            Filter::Or(any) => any.iter().any(|f| f.matches(row)),
        }
    }
}

fn ident(v: Option<&Value>) -> Option<Vec<String>> {
    let v = v?;
    if v.get("op")?.as_str()? != "ident" {
        return None;
    }
    v.get("name")?
        .as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn literal(v: Option<&Value>) -> Option<Value> {
    let v = v?;
    (v.get("op")?.as_str()? == "literal").then(|| v.get("value").cloned().unwrap_or(Value::Null))
}

fn lookup<'a>(row: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(row, |v, key| v.get(key))
}

/// `GET /environment-object/{object_type}/{id}/{environment}`: the version pinned to an
/// environment.
pub(crate) async fn environment_version(
    State(state): State<Arc<AppState>>,
    Path((object_type, id, environment)): Path<(String, String, String)>,
) -> ApiResult {
    match state
        .store()
        .environment_version(&object_type, &id, &environment)?
    {
        Some(version) => ok(json!({ "object_version": version })),
        None => Err(ApiError::not_found(format!(
            "no version of {object_type} {id} is assigned to environment `{environment}`"
        ))),
    }
}

/// `PUT /environment-object/{object_type}/{id}/{environment}` with `{"object_version": "…"}`:
/// pins a version to an environment.
pub(crate) async fn set_environment_version(
    State(state): State<Arc<AppState>>,
    Path((object_type, id, environment)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body)?;
    let version = match body.get("object_version") {
        Some(Value::String(v)) if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() => {
            v.clone()
        }
        _ => {
            return Err(ApiError::bad_request(
                "`object_version` must be a transaction id (decimal digits)",
            ));
        }
    };
    state
        .store()
        .set_environment_version(&object_type, &id, &environment, &version)?;
    ok(json!({ "object_version": version }))
}
