//! Row ingestion: `/logs3` (rows or an overflow reference), `/logs3/overflow` and the signed
//! upload target.

mod body;

use std::borrow::Cow;
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

/// A check of a field's JSON text.
type FieldCheck = fn(&str) -> bool;

/// The fields whose kind a row's check looks at, in the order their errors take precedence:
/// name, check, what the field must be.
const CHECKED_FIELDS: [(&str, FieldCheck, &str); 13] = [
    ("_is_merge", is_bool, "a boolean"),
    ("_object_delete", is_bool, "a boolean"),
    ("span_id", is_string, "a string"),
    ("root_span_id", is_string, "a string"),
    ("created", is_string, "a string"),
    (
        "span_parents",
        conforms::<Option<StringArray>>,
        "null or an array of strings",
    ),
    ("tags", is_null_or_array, "null or an array"),
    ("metadata", is_null_or_object, "null or an object"),
    ("span_attributes", is_null_or_object, "null or an object"),
    (
        "scores",
        conforms::<Option<NumberObject>>,
        "an object of numbers or nulls",
    ),
    (
        "metrics",
        conforms::<Option<NumberObject>>,
        "an object of numbers or nulls",
    ),
    (
        "_merge_paths",
        conforms::<Option<Vec<StringArray>>>,
        "an array of paths (arrays of strings)",
    ),
    ("_array_delete", is_null_or_array, "an array"),
];

/// What a row's member is to its check: the id, an object id (index in [`OBJECT_ID_FIELDS`]),
/// a checked field (index in [`CHECKED_FIELDS`]) or none of these.
fn member_role(key: &str) -> Option<MemberRole> {
    use MemberRole::{Checked, Id, ObjectId};
    Some(match key {
        "id" => Id,
        "experiment_id" => ObjectId(0),
        "dataset_id" => ObjectId(1),
        "project_id" => ObjectId(2),
        "prompt_session_id" => ObjectId(3),
        "log_id" => ObjectId(4),
        "_is_merge" => Checked(0),
        "_object_delete" => Checked(1),
        "span_id" => Checked(2),
        "root_span_id" => Checked(3),
        "created" => Checked(4),
        "span_parents" => Checked(5),
        "tags" => Checked(6),
        "metadata" => Checked(7),
        "span_attributes" => Checked(8),
        "scores" => Checked(9),
        "metrics" => Checked(10),
        "_merge_paths" => Checked(11),
        "_array_delete" => Checked(12),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum MemberRole {
    Id,
    ObjectId(usize),
    Checked(usize),
}

// Large fields: the kind of value shows in its first byte.
fn is_bool(v: &str) -> bool {
    v == "true" || v == "false"
}

fn is_string(v: &str) -> bool {
    v.starts_with('"')
}

fn is_null_or_array(v: &str) -> bool {
    v == "null" || v.starts_with('[')
}

fn is_null_or_object(v: &str) -> bool {
    v == "null" || v.starts_with('{')
}

/// Checks a row's fields without building values from them (small fields are checked by
/// parsing them into nothing, large ones by their first byte) and takes its id and object, in
/// one pass over its members. Errors come in a fixed order whatever the members' order: the
/// id, the object, then [`CHECKED_FIELDS`]'s.
fn validate_row(i: usize, row: RowItem<'_>) -> Result<RowWrite<'_>, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("rows[{i}]: {msg}"));
    let RowItem::Row(raw) = row else {
        return Err(bad("a row must be a JSON object".into()));
    };
    let mut id = None;
    let mut ids: [Option<Cow<'_, str>>; 5] = Default::default();
    // The first of `CHECKED_FIELDS` that fails.
    let mut failed: Option<usize> = None;
    for (key, value) in &raw {
        let value = value.get();
        match member_role(key) {
            Some(MemberRole::Id) => id = Some(text(value)),
            Some(MemberRole::ObjectId(at)) => ids[at] = text(value),
            Some(MemberRole::Checked(at))
                if failed.is_none_or(|first| at < first) && !(CHECKED_FIELDS[at].1)(value) =>
            {
                failed = Some(at);
            }
            Some(MemberRole::Checked(_)) | None => {}
        }
    }
    let row_id = match id {
        Some(Some(id)) if !id.is_empty() => id.into_owned(),
        _ => return Err(bad("`id` must be a non-empty string".into())),
    };
    let object = ObjectIds::from_fields(|key| {
        let at = OBJECT_ID_FIELDS.iter().position(|k| *k == key)?;
        ids[at].as_deref()
    })
    .ok_or_else(|| {
        bad("missing object ids: expected `experiment_id`, `dataset_id`, `project_id` with `log_id: \"g\"`, or `prompt_session_id` with `log_id: \"x\"`".into())
    })?;
    if let Some(at) = failed {
        let (key, _, expected) = CHECKED_FIELDS[at];
        return Err(bad(format!("`{key}` must be {expected}")));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The error for a body's first row, or the row's id and object.
    fn check(row: &str) -> Result<(String, ObjectIds), String> {
        let body = format!(r#"{{"rows":[{row}]}}"#);
        let Ok(RowsField::Rows(mut rows)) = rows_field(body.as_bytes()) else {
            panic!("not a rows body: {body}")
        };
        validate_row(0, rows.remove(0))
            .map(|write| (write.row_id, write.object))
            .map_err(|e| e.message)
    }

    #[test]
    fn members_are_told_apart_as_the_tables_name_them() {
        assert!(matches!(member_role("id"), Some(MemberRole::Id)));
        for (at, key) in OBJECT_ID_FIELDS.iter().enumerate() {
            assert!(
                matches!(member_role(key), Some(MemberRole::ObjectId(i)) if i == at),
                "{key}"
            );
        }
        for (at, (key, _, _)) in CHECKED_FIELDS.iter().enumerate() {
            assert!(
                matches!(member_role(key), Some(MemberRole::Checked(i)) if i == at),
                "{key}"
            );
        }
        for key in ["input", "output", "ID", "metric", "", "span_parents "] {
            assert!(member_role(key).is_none(), "{key:?}");
        }
    }

    #[test]
    fn a_row_with_several_faults_gets_the_same_error_whatever_its_member_order() {
        let faults = [
            r#""id":"""#,
            r#""log_id":"nope""#,
            r#""_is_merge":1"#,
            r#""_object_delete":"yes""#,
            r#""span_id":7"#,
            r#""root_span_id":null"#,
            r#""created":1"#,
            r#""span_parents":["a",1]"#,
            r#""tags":"t""#,
            r#""metadata":[1]"#,
            r#""span_attributes":"s""#,
            r#""scores":{"s":"high"}"#,
            r#""metrics":{"m":1e400}"#,
            r#""_merge_paths":[["a"],1]"#,
            r#""_array_delete":{}"#,
        ];
        let expected = |fault: &str| {
            let key = fault.split('"').nth(1).unwrap_or_default();
            match key {
                "id" => "`id` must be a non-empty string".to_owned(),
                "log_id" => "missing object ids".to_owned(),
                key => format!("`{key}` must be"),
            }
        };
        // A good id and object, put first or in the middle (a repeated key's last value
        // counts); a `log_id` fault leaves a project without its logs, so no object.
        let base = |faults: &[&str]| {
            if faults.iter().any(|f| f.contains("log_id")) {
                r#""id":"r","project_id":"p""#
            } else {
                r#""id":"r","experiment_id":"e""#
            }
        };
        for (a, first) in faults.iter().enumerate() {
            assert!(
                check(&format!("{{{},{first}}}", base(&[first])))
                    .unwrap_err()
                    .contains(&expected(first)),
                "{first}"
            );
            for second in &faults[a + 1..] {
                let base = base(&[first, second]);
                let one = check(&format!("{{{base},{first},{second}}}")).unwrap_err();
                let other = check(&format!("{{{second},{base},{first}}}")).unwrap_err();
                assert_eq!(one, other, "{first} with {second}");
                assert!(
                    one.contains(&expected(first)),
                    "{one} for {first} with {second}"
                );
            }
        }
    }

    #[test]
    fn good_rows_give_their_id_and_object() {
        let (id, object) = check(
            r#"{"span_parents":null,"tags":["a"],"id":"r\"1","project_id":"p","log_id":"g","metrics":{"start":1.5,"n":null},"scores":null,"_is_merge":false,"_merge_paths":[["metadata","a"]],"_array_delete":[]}"#,
        )
        .unwrap();
        assert_eq!(
            (id.as_str(), object),
            ("r\"1", ObjectIds::project_logs("p"))
        );
        let (_, object) = check(r#"{"id":"r","dataset_id":"d","experiment_id":"e"}"#).unwrap();
        assert_eq!(
            object,
            ObjectIds::experiment("e"),
            "experiment ids come first"
        );
    }
}
