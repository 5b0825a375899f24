//! Row ingestion: `/logs3` (rows or an overflow reference), `/logs3/overflow` and the signed
//! upload target.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use braintrust_core::id::new_uuid_v4;
use braintrust_core::object::ObjectIds;
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, query_map};
use crate::error::ApiError;
use crate::store::RowWrite;

pub(crate) async fn logs3(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let mut body = object_body(&body)?;
    let rows = match body.shift_remove("rows") {
        Some(Value::Array(rows)) => rows,
        Some(Value::Object(reference)) => overflow_rows(&state, &reference)?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`rows` must be an array of rows or a logs3_overflow reference",
            ));
        }
        None => return Err(ApiError::bad_request("missing `rows`")),
    };
    let writes = validate_rows(rows)?;
    let mut store = state.store();
    let xact = store.apply_rows(writes)?;
    ok(json!({ "xact_id": xact.to_string() }))
}

/// Rows of an uploaded overflow payload named by `{"type": "logs3_overflow", "key": …}`.
fn overflow_rows(state: &AppState, reference: &Map<String, Value>) -> Result<Vec<Value>, ApiError> {
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
    let mut payload = object_body(&Bytes::from(bytes))
        .map_err(|e| ApiError::bad_request(format!("overflow payload `{key}`: {}", e.message)))?;
    match payload.shift_remove("rows") {
        Some(Value::Array(rows)) => Ok(rows),
        _ => Err(ApiError::bad_request(format!(
            "overflow payload `{key}` has no `rows` array"
        ))),
    }
}

/// Validates every row before anything is written, so a bad batch changes nothing.
fn validate_rows(rows: Vec<Value>) -> Result<Vec<RowWrite>, ApiError> {
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| validate_row(i, row))
        .collect()
}

fn validate_row(i: usize, row: Value) -> Result<RowWrite, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("rows[{i}]: {msg}"));
    let Value::Object(fields) = row else {
        return Err(bad("a row must be a JSON object".into()));
    };
    let row_id = match fields.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err(bad("`id` must be a non-empty string".into())),
    };
    let object = ObjectIds::from_row(&fields).ok_or_else(|| {
        bad("missing object ids: expected `experiment_id`, `dataset_id`, `project_id` with `log_id: \"g\"`, or `prompt_session_id` with `log_id: \"x\"`".into())
    })?;
    let kind_ok = |field: &str, ok: fn(&Value) -> bool, expected: &str| match fields.get(field) {
        Some(v) if !ok(v) => Err(bad(format!("`{field}` must be {expected}"))),
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
    kind_ok("tags", |v| v.is_null() || v.is_array(), "null or an array")?;
    kind_ok(
        "metadata",
        |v| v.is_null() || v.is_object(),
        "null or an object",
    )?;
    kind_ok(
        "span_attributes",
        |v| v.is_null() || v.is_object(),
        "null or an object",
    )?;
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
    kind_ok("_array_delete", |v| v.is_null() || v.is_array(), "an array")?;
    Ok(RowWrite {
        object,
        row_id,
        fields,
    })
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
