//! Row ingestion: `/logs3` (rows or an overflow reference), `/logs3/overflow` and the signed
//! upload target.

mod body;

use std::sync::Arc;

use body::{BodyError, NumberObject, RowItem, RowsField, StringArray, conforms, rows_field, text};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use braintrust_core::id::new_uuid_v4;
use braintrust_core::object::ObjectIds;
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, query_map};
use crate::error::ApiError;
use crate::store::RowWrite;

pub(crate) async fn logs3(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let rows = rows_field(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match rows {
        RowsField::Rows(rows) => ingest(&state, rows),
        RowsField::Object(reference) => {
            let (key, bytes) = overflow_payload(&state, &reference)?;
            match rows_field(&bytes) {
                Ok(RowsField::Rows(rows)) => ingest(&state, rows),
                Ok(_) | Err(BodyError::MissingRows) => Err(ApiError::bad_request(format!(
                    "overflow payload `{key}` has no `rows` array"
                ))),
                Err(e) => Err(ApiError::bad_request(format!(
                    "overflow payload `{key}`: {e}"
                ))),
            }
        }
        RowsField::Other => Err(ApiError::bad_request(
            "`rows` must be an array of rows or a logs3_overflow reference",
        )),
    }
}

/// Validates every row, then writes them all in one transaction.
fn ingest(state: &AppState, rows: Vec<RowItem<'_>>) -> ApiResult {
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

/// The fields naming a row's object.
const OBJECT_ID_FIELDS: [&str; 5] = [
    "experiment_id",
    "dataset_id",
    "project_id",
    "prompt_session_id",
    "log_id",
];

/// Checks a row's fields without building values from them (small fields are checked by
/// parsing them into nothing, large ones by their first byte) and takes its id and object.
fn validate_row(i: usize, row: RowItem<'_>) -> Result<RowWrite<'_>, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("rows[{i}]: {msg}"));
    let RowItem::Row(raw) = row else {
        return Err(bad("a row must be a JSON object".into()));
    };
    let field = |key: &str| raw.get(key).map(|v| v.get());
    let row_id = match field("id").map(text) {
        Some(Some(id)) if !id.is_empty() => id.into_owned(),
        _ => return Err(bad("`id` must be a non-empty string".into())),
    };
    let ids = OBJECT_ID_FIELDS.map(|key| field(key).and_then(text));
    let object = ObjectIds::from_fields(|key| {
        let at = OBJECT_ID_FIELDS.iter().position(|k| *k == key)?;
        ids[at].as_deref()
    })
    .ok_or_else(|| {
        bad("missing object ids: expected `experiment_id`, `dataset_id`, `project_id` with `log_id: \"g\"`, or `prompt_session_id` with `log_id: \"x\"`".into())
    })?;
    let check = |key: &str, ok: fn(&str) -> bool, expected: &str| match field(key) {
        Some(v) if !ok(v) => Err(bad(format!("`{key}` must be {expected}"))),
        _ => Ok(()),
    };
    // Large fields: the kind of value shows in its first byte.
    fn starts(v: &str, firsts: &[u8]) -> bool {
        v == "null" || v.as_bytes().first().is_some_and(|b| firsts.contains(b))
    }
    let is_bool = |v: &str| v == "true" || v == "false";
    let is_string = |v: &str| v.starts_with('"');
    check("_is_merge", is_bool, "a boolean")?;
    check("_object_delete", is_bool, "a boolean")?;
    check("span_id", is_string, "a string")?;
    check("root_span_id", is_string, "a string")?;
    check("created", is_string, "a string")?;
    check(
        "span_parents",
        conforms::<Option<StringArray>>,
        "null or an array of strings",
    )?;
    check("tags", |v| starts(v, b"["), "null or an array")?;
    check("metadata", |v| starts(v, b"{"), "null or an object")?;
    check("span_attributes", |v| starts(v, b"{"), "null or an object")?;
    check(
        "scores",
        conforms::<Option<NumberObject>>,
        "an object of numbers or nulls",
    )?;
    check(
        "metrics",
        conforms::<Option<NumberObject>>,
        "an object of numbers or nulls",
    )?;
    check(
        "_merge_paths",
        conforms::<Option<Vec<StringArray>>>,
        "an array of paths (arrays of strings)",
    )?;
    check("_array_delete", |v| starts(v, b"["), "an array")?;
    Ok(RowWrite {
        object,
        row_id,
        fields: raw,
    })
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
