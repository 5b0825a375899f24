//! Row ingestion: `/logs3` (rows or an overflow reference), `/logs3/overflow` and the signed
//! upload target.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use braintrust_core::id::new_uuid_v4;
use braintrust_core::object::ObjectIds;
use indexmap::IndexMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, query_map};
use crate::error::ApiError;
use crate::store::RowWrite;

pub(crate) async fn logs3(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let rows = rows_field(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match rows.get().as_bytes().first() {
        Some(b'[') => ingest(&state, rows),
        Some(b'{') => {
            let reference: Map<String, Value> = serde_json::from_str(rows.get())
                .map_err(|e| ApiError::bad_request(format!("`rows`: {e}")))?;
            let (key, bytes) = overflow_payload(&state, &reference)?;
            match rows_field(&bytes) {
                Ok(rows) if rows.get().starts_with('[') => ingest(&state, rows),
                Ok(_) | Err(BodyError::MissingRows) => Err(ApiError::bad_request(format!(
                    "overflow payload `{key}` has no `rows` array"
                ))),
                Err(e) => Err(ApiError::bad_request(format!(
                    "overflow payload `{key}`: {e}"
                ))),
            }
        }
        _ => Err(ApiError::bad_request(
            "`rows` must be an array of rows or a logs3_overflow reference",
        )),
    }
}

/// Why a body's `rows` could not be found.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("missing `rows`")]
    MissingRows,
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(serde_json::Error),
}

/// The `rows` member of a JSON object body, unparsed.
fn rows_field(body: &[u8]) -> Result<&RawValue, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Say why, as for other bodies: nothing, not JSON, or not an object.
        return match first {
            None => Err(BodyError::MissingRows),
            Some(_) => match serde_json::from_slice::<&RawValue>(body) {
                Ok(_) => Err(BodyError::NotAnObject),
                Err(e) => Err(BodyError::InvalidJson(e)),
            },
        };
    }
    let mut members: IndexMap<String, &RawValue> =
        serde_json::from_slice(body).map_err(BodyError::InvalidJson)?;
    members.shift_remove("rows").ok_or(BodyError::MissingRows)
}

/// Validates every row, then writes them all in one transaction.
fn ingest(state: &AppState, rows: &RawValue) -> ApiResult {
    let rows: Vec<&RawValue> = serde_json::from_str(rows.get())
        .map_err(|e| ApiError::bad_request(format!("`rows`: {e}")))?;
    let writes = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| validate_row(i, row))
        .collect::<Result<Vec<_>, _>>()?;
    let xact = state.store().apply_rows(writes)?;
    ok(json!({ "xact_id": xact.to_string() }))
}

/// The uploaded payload named by `{"type": "logs3_overflow", "key": …}`, with its key.
fn overflow_payload(
    state: &AppState,
    reference: &Map<String, Value>,
) -> Result<(String, Vec<u8>), ApiError> {
    if reference.get("type").and_then(Value::as_str) != Some("logs3_overflow") {
        return Err(ApiError::bad_request(
            "`rows` object must be {\"type\": \"logs3_overflow\", \"key\": …}",
        ));
    }
    let key = reference
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("logs3_overflow reference needs a string `key`"))?;
    let bytes = state.store().blob(key)?.ok_or_else(|| {
        ApiError::bad_request(format!("overflow payload `{key}` was not uploaded"))
    })?;
    Ok((key.to_owned(), bytes))
}

/// Fields checked by parsing them (all small); the large ones are checked by their first byte.
const PARSED_FIELDS: [&str; 15] = [
    "id",
    "experiment_id",
    "dataset_id",
    "project_id",
    "prompt_session_id",
    "log_id",
    "span_id",
    "root_span_id",
    "created",
    "span_parents",
    "scores",
    "metrics",
    "_is_merge",
    "_object_delete",
    "_merge_paths",
];

fn validate_row<'a>(i: usize, row: &'a RawValue) -> Result<RowWrite<'a>, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("rows[{i}]: {msg}"));
    if !row.get().starts_with('{') {
        return Err(bad("a row must be a JSON object".into()));
    }
    let raw: IndexMap<String, &RawValue> =
        serde_json::from_str(row.get()).map_err(|e| bad(e.to_string()))?;
    let mut parsed = Map::new();
    for key in PARSED_FIELDS {
        if let Some(value) = raw.get(key) {
            let value: Value = serde_json::from_str(value.get()).map_err(|e| bad(e.to_string()))?;
            parsed.insert(key.to_owned(), value);
        }
    }
    let row_id = match parsed.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(bad("`id` must be a non-empty string".into())),
    };
    let object = ObjectIds::from_row(&parsed).ok_or_else(|| {
        bad("missing object ids: expected `experiment_id`, `dataset_id`, `project_id` with `log_id: \"g\"`, or `prompt_session_id` with `log_id: \"x\"`".into())
    })?;
    let kind_ok = |field: &str, ok: fn(&Value) -> bool, expected: &str| match parsed.get(field) {
        Some(v) if !ok(v) => Err(bad(format!("`{field}` must be {expected}"))),
        _ => Ok(()),
    };
    // Large fields: the kind of value shows in its first byte.
    let starts_ok = |field: &str, firsts: &[u8], expected: &str| match raw.get(field) {
        Some(v)
            if !is_null(v)
                && !v
                    .get()
                    .as_bytes()
                    .first()
                    .is_some_and(|b| firsts.contains(b)) =>
        {
            Err(bad(format!("`{field}` must be {expected}")))
        }
        _ => Ok(()),
    };
    kind_ok("_is_merge", Value::is_boolean, "a boolean")?;
    kind_ok("_object_delete", Value::is_boolean, "a boolean")?;
    kind_ok("span_id", Value::is_string, "a string")?;
    kind_ok("root_span_id", Value::is_string, "a string")?;
    kind_ok("created", Value::is_string, "a string")?;
    kind_ok(
        "span_parents",
        |v| null_or_array_of(v, Value::is_string),
        "null or an array of strings",
    )?;
    starts_ok("tags", b"[", "null or an array")?;
    starts_ok("metadata", b"{", "null or an object")?;
    starts_ok("span_attributes", b"{", "null or an object")?;
    kind_ok(
        "scores",
        null_or_object_of_numbers,
        "an object of numbers or nulls",
    )?;
    kind_ok(
        "metrics",
        null_or_object_of_numbers,
        "an object of numbers or nulls",
    )?;
    kind_ok(
        "_merge_paths",
        |v| null_or_array_of(v, |p| null_or_array_of(p, Value::is_string) && p.is_array()),
        "an array of paths (arrays of strings)",
    )?;
    starts_ok("_array_delete", b"[", "an array")?;
    Ok(RowWrite {
        object,
        row_id,
        fields: raw
            .into_iter()
            .map(|(key, value)| (key, Cow::Borrowed(value)))
            .collect(),
    })
}

fn is_null(value: &RawValue) -> bool {
    value.get() == "null"
}

fn null_or_array_of(v: &Value, item: fn(&Value) -> bool) -> bool {
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().all(item),
        _ => false,
    }
}

fn null_or_object_of_numbers(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(map) => map.values().all(|x| x.is_number() || x.is_null()),
        _ => false,
    }
}

/// `POST /logs3/overflow`: hands out a signed URL (on this server) for an oversized payload.
pub(crate) async fn overflow_request(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let content_type = body
        .get("content_type")
        .and_then(Value::as_str)
        .unwrap_or("application/json")
        .to_owned();
    let key = format!("overflow/{}", new_uuid_v4());
    let token = new_uuid_v4();
    state
        .store()
        .create_blob_slot(&key, &token, Some(&content_type))?;
    ok(json!({
        "method": "PUT",
        "signedUrl": format!("{}/objstore/{key}?token={token}", state.base_url),
        "headers": {"Content-Type": content_type},
        "key": key,
    }))
}

/// `PUT /objstore/{key}?token=…`: the signed upload target. No API key; the token is the
/// signature.
pub(crate) async fn upload_object(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    query: RawQuery,
    body: Bytes,
) -> ApiResult {
    let query = query_map(&query);
    let token = query
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(key) = key.strip_prefix(crate::attachments::OBJECT_PREFIX) {
        return crate::attachments::upload(&state, key, token, &body);
    }
    if !state.store().put_blob(&key, token, &body)? {
        return Err(ApiError::forbidden(
            "invalid or expired upload signature for this object key",
        ));
    }
    ok(json!({}))
}
