//! Rows: the JSON objects sent to `/logs3`, and the rows a span's lifecycle writes.
//!
//! A span writes one full row when it starts (`_is_merge: false`, `created`, ids, attributes,
//! `metrics.start`, `context`), merge rows for each later `log` (`_is_merge: true`), and a merge row
//! with `metrics.end` when it ends. Rows with equal [`RowKey`]s are merged before sending
//! ([`crate::merge`]).
//!
//! ```
//! use braintrust_core::event::{SpanAttributes, SpanType};
//! use braintrust_core::id::IdFormat;
//! use braintrust_core::object::ObjectIds;
//! use braintrust_core::row::{Row, SpanIdentity};
//! use std::time::SystemTime;
//!
//! let project = ObjectIds::project_logs("747ebc7b-6a9b-597e-94f2-512cce481000");
//! let root = SpanIdentity::root(IdFormat::Hex);
//! let child = root.child(IdFormat::Hex);
//! let start = Row::span_start(
//!     &child,
//!     &project,
//!     &SpanAttributes::named("step").with_type(SpanType::Tool),
//!     None,
//!     SystemTime::now(),
//!     Default::default(),
//! );
//! assert_eq!(start.as_map()["span_parents"][0], root.span_id.as_str());
//! assert_eq!(start.as_map()["root_span_id"], root.root_span_id.as_str());
//! assert!(!start.is_merge());
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Number, Value};

use crate::event::SpanAttributes;
use crate::id::{IdFormat, new_row_id};
use crate::object::ObjectIds;
use crate::span_components::SpanRowIds;

/// The ids that place a span in its trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanIdentity {
    /// The row id (UUID v4 by default).
    pub row_id: String,
    /// The span id.
    pub span_id: String,
    /// The trace id.
    pub root_span_id: String,
    /// The parent span ids (empty for a root span).
    pub span_parents: Vec<String>,
}

impl SpanIdentity {
    /// A new root span: fresh row, span and trace ids.
    pub fn root(format: IdFormat) -> SpanIdentity {
        let span_id = format.new_span_id();
        SpanIdentity {
            row_id: new_row_id(),
            root_span_id: format.new_root_span_id(&span_id),
            span_id,
            span_parents: Vec::new(),
        }
    }

    /// A new child of this span, in the same trace.
    pub fn child(&self, format: IdFormat) -> SpanIdentity {
        SpanIdentity {
            row_id: new_row_id(),
            span_id: format.new_span_id(),
            root_span_id: self.root_span_id.clone(),
            span_parents: vec![self.span_id.clone()],
        }
    }

    /// A new span under a remote parent named by an export slug.
    pub fn child_of_remote(parent: &SpanRowIds, format: IdFormat) -> SpanIdentity {
        SpanIdentity {
            row_id: new_row_id(),
            span_id: format.new_span_id(),
            root_span_id: parent.root_span_id.clone(),
            span_parents: vec![parent.span_id.clone()],
        }
    }

    /// Writes `id`, `span_id`, `root_span_id` and (for non-roots) `span_parents` into a row.
    pub fn write_to(&self, row: &mut Map<String, Value>) {
        row.insert("id".into(), Value::String(self.row_id.clone()));
        row.insert("span_id".into(), Value::String(self.span_id.clone()));
        row.insert(
            "root_span_id".into(),
            Value::String(self.root_span_id.clone()),
        );
        if !self.span_parents.is_empty() {
            let parents = self.span_parents.iter().cloned().map(Value::String);
            row.insert("span_parents".into(), Value::Array(parents.collect()));
        }
    }
}

/// The next value of the process-wide span counter (`span_attributes.exec_counter`), from 1.
pub fn next_exec_counter() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `created` timestamp: RFC 3339, UTC, microseconds (`2026-11-21T12:56:37.315226Z`).
pub fn format_created(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

/// Unix time in float seconds, as used by `metrics.start` and `metrics.end`.
pub fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn seconds_value(time: SystemTime) -> Value {
    Number::from_f64(unix_seconds(time)).map_or(Value::Null, Value::Number)
}

/// The fields that identify a row for merging: org, object ids and row id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    parts: [Option<String>; 7],
}

/// Keys of a row that make up its [`RowKey`], in order.
const KEY_FIELDS: [&str; 7] = [
    "org_id",
    "project_id",
    "experiment_id",
    "dataset_id",
    "prompt_session_id",
    "log_id",
    "id",
];

/// A row: one JSON object of a `/logs3` request.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Row(Map<String, Value>);

impl Row {
    /// Wraps a JSON object.
    pub fn from_map(map: Map<String, Value>) -> Row {
        Row(map)
    }

    /// The JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The JSON object, mutably.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.0
    }

    /// Unwraps the JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// The merge key of this row.
    pub fn key(&self) -> RowKey {
        RowKey {
            parts: KEY_FIELDS.map(|k| match self.0.get(k) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            }),
        }
    }

    /// Whether `_is_merge` is true (absent means false).
    pub fn is_merge(&self) -> bool {
        self.0.get("_is_merge").and_then(Value::as_bool) == Some(true)
    }

    /// The first row of a span: a full row with ids, `created`, attributes, `metrics.start`,
    /// `context` and any fields logged at start (already validated, e.g. by
    /// [`crate::event::Event::into_fields`]).
    pub fn span_start(
        identity: &SpanIdentity,
        object: &ObjectIds,
        attributes: &SpanAttributes,
        context: Option<Map<String, Value>>,
        start: SystemTime,
        fields: Map<String, Value>,
    ) -> Row {
        let mut row = Map::new();
        identity.write_to(&mut row);
        row.insert("_is_merge".into(), Value::Bool(false));
        row.insert("created".into(), Value::String(format_created(start)));
        object.write_to(&mut row);
        row.insert("span_attributes".into(), Value::Object(attributes.to_map()));
        let mut metrics = Map::new();
        metrics.insert("start".into(), seconds_value(start));
        row.insert("metrics".into(), Value::Object(metrics));
        if let Some(context) = context {
            row.insert("context".into(), Value::Object(context));
        }
        let mut row = Row(row);
        crate::merge::merge_fields(&mut row.0, fields);
        row
    }

    /// A merge row adding `fields` to a span (`span.log(…)`).
    pub fn span_update(
        identity: &SpanIdentity,
        object: &ObjectIds,
        fields: Map<String, Value>,
    ) -> Row {
        let mut row = Map::new();
        identity.write_to(&mut row);
        object.write_to(&mut row);
        for (k, v) in fields {
            row.insert(k, v);
        }
        row.insert("_is_merge".into(), Value::Bool(true));
        Row(row)
    }

    /// The merge row that ends a span (`metrics.end`).
    pub fn span_end(identity: &SpanIdentity, object: &ObjectIds, end: SystemTime) -> Row {
        let mut metrics = Map::new();
        metrics.insert("end".into(), seconds_value(end));
        let mut fields = Map::new();
        fields.insert("metrics".into(), Value::Object(metrics));
        Row::span_update(identity, object, fields)
    }
}

impl Row {
    /// A row deleting record `row_id` of an object (`_object_delete: true`), as a dataset's
    /// `delete` sends it.
    pub fn delete(object: &ObjectIds, row_id: &str, at: SystemTime) -> Row {
        let mut row = Map::new();
        row.insert("id".into(), Value::String(row_id.to_owned()));
        row.insert("created".into(), Value::String(format_created(at)));
        object.write_to(&mut row);
        row.insert("_object_delete".into(), Value::Bool(true));
        Row(row)
    }

    /// Whether the row deletes its record (`_object_delete: true`).
    pub fn is_delete(&self) -> bool {
        self.0.get("_object_delete").and_then(Value::as_bool) == Some(true)
    }
}

impl From<Row> for Value {
    fn from(row: Row) -> Value {
        Value::Object(row.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn created_has_microseconds_in_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_265_797_315_226);
        assert_eq!(format_created(t), "2026-11-21T12:56:37.315226Z");
        assert!((unix_seconds(t) - 1_795_265_797.315_226).abs() < 1e-6);
    }

    #[test]
    fn start_row_has_the_observed_shape() {
        let id = SpanIdentity::root(IdFormat::Hex);
        let start = UNIX_EPOCH + Duration::from_secs(100);
        let mut fields = Map::new();
        fields.insert("input".into(), json!({"a": 1}));
        fields.insert("metrics".into(), json!({"tokens": 3}));
        let row = Row::span_start(
            &id,
            &ObjectIds::experiment("e"),
            &SpanAttributes::named("root"),
            None,
            start,
            fields,
        );
        let map = row.as_map();
        assert_eq!(map["_is_merge"], json!(false));
        assert_eq!(map["experiment_id"], json!("e"));
        assert_eq!(map["metrics"], json!({"start": 100.0, "tokens": 3}));
        assert_eq!(map["input"], json!({"a": 1}));
        assert!(!map.contains_key("span_parents"), "roots omit span_parents");
    }

    #[test]
    fn rows_of_one_span_share_a_key() {
        let id = SpanIdentity::root(IdFormat::Hex);
        let obj = ObjectIds::project_logs("p");
        let start = Row::span_start(
            &id,
            &obj,
            &SpanAttributes::default(),
            None,
            SystemTime::now(),
            Map::new(),
        );
        let end = Row::span_end(&id, &obj, SystemTime::now());
        assert_eq!(start.key(), end.key());
        assert!(end.is_merge());
        let other = Row::span_end(&id.child(IdFormat::Hex), &obj, SystemTime::now());
        assert_ne!(start.key(), other.key());
    }

    #[test]
    fn delete_rows_have_the_observed_shape() {
        let row = Row::delete(&ObjectIds::dataset("d"), "r1", UNIX_EPOCH);
        assert!(row.is_delete());
        assert_eq!(
            Value::from(row),
            json!({"id": "r1", "created": "1970-01-01T00:00:00.000000Z",
                   "dataset_id": "d", "_object_delete": true})
        );
    }

    #[test]
    fn exec_counter_increases() {
        let a = next_exec_counter();
        let b = next_exec_counter();
        assert!(b > a);
    }
}
