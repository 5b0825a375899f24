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
//! assert_eq!(start.as_map()["span_parents"][0], root.span_id());
//! assert_eq!(start.as_map()["root_span_id"], root.root_span_id());
//! assert!(!start.is_merge());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arrayvec::ArrayString;
use serde_json::{Map, Number, Value};

use crate::event::SpanAttributes;
use crate::id::{IdFormat, IdString, hex_id_text, uuid_v4_text};
use crate::object::ObjectIds;
use crate::span_components::SpanRowIds;

/// The ids that place a span in its trace: row id, span id, trace id (`root_span_id`) and parent
/// span ids.
///
/// The ids are kept back to back in one buffer, held inline when they are the default size (a
/// UUID row id, hex span and trace ids, at most one parent): a new span then allocates nothing
/// for them, and the rows it sends carry copies.
#[derive(Clone)]
pub struct SpanIdentity {
    /// The row id, span id, trace id and parent ids, back to back.
    text: IdText,
    /// Where the row id, span id and trace id end in `text`; the parents follow.
    ends: [u32; 3],
    /// How many parent ids follow the trace id.
    parent_count: u32,
    /// Where each parent but the last ends (`None` for fewer than two parents).
    parent_ends: Option<Arc<[u32]>>,
    /// Tells this span apart from every other identity made in this process (clones share it).
    serial: u64,
}

/// Room for the default ids: a UUID row id, a 16-digit span id, a 32-digit trace id and a
/// 16-digit parent. (Legacy UUID span ids go to the heap.)
const INLINE_ID_BYTES: usize = 36 + 16 + 32 + 16;

#[derive(Clone)]
enum IdText {
    Inline(ArrayString<INLINE_ID_BYTES>),
    Shared(Arc<str>),
}

impl IdText {
    fn as_str(&self) -> &str {
        match self {
            IdText::Inline(text) => text.as_str(),
            IdText::Shared(text) => text,
        }
    }
}

fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// Offsets into the id text: ids longer than 4 GiB are not ids.
fn offset(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl SpanIdentity {
    /// A span with these ids.
    pub fn new<'a>(
        row_id: &str,
        span_id: &str,
        root_span_id: &str,
        span_parents: impl IntoIterator<Item = &'a str>,
    ) -> SpanIdentity {
        let parents: Vec<&str> = span_parents.into_iter().collect();
        let mut text = IdBuffer::default();
        let row_end = text.push_str(row_id);
        let span_end = text.push_str(span_id);
        let root_end = text.push_str(root_span_id);
        let mut parent_ends = Vec::new();
        for (i, parent) in parents.iter().enumerate() {
            if i > 0 {
                parent_ends.push(offset(text.len()));
            }
            text.push_str(parent);
        }
        SpanIdentity {
            text: text.finish(),
            ends: [row_end, span_end, root_end],
            parent_count: offset(parents.len()),
            parent_ends: (!parent_ends.is_empty()).then(|| Arc::from(parent_ends)),
            serial: next_serial(),
        }
    }

    /// A new root span: fresh row, span and trace ids.
    pub fn root(format: IdFormat) -> SpanIdentity {
        let mut text = IdBuffer::default();
        let row_end = text.push_with(uuid_v4_text);
        let span_end = text.push_span_id(format);
        let root_end = match format {
            IdFormat::Hex => text.push_with(hex_id_text::<16>),
            IdFormat::LegacyUuid => text.push_copy(row_end, span_end),
        };
        SpanIdentity {
            text: text.finish(),
            ends: [row_end, span_end, root_end],
            parent_count: 0,
            parent_ends: None,
            serial: next_serial(),
        }
    }

    /// A new child of this span, in the same trace.
    pub fn child(&self, format: IdFormat) -> SpanIdentity {
        SpanIdentity::child_with(self.span_id(), self.root_span_id(), format)
    }

    /// A new span under a remote parent named by an export slug.
    pub fn child_of_remote(parent: &SpanRowIds, format: IdFormat) -> SpanIdentity {
        SpanIdentity::child_with(&parent.span_id, &parent.root_span_id, format)
    }

    fn child_with(parent_span_id: &str, root_span_id: &str, format: IdFormat) -> SpanIdentity {
        let mut text = IdBuffer::default();
        let row_end = text.push_with(uuid_v4_text);
        let span_end = text.push_span_id(format);
        let root_end = text.push_str(root_span_id);
        text.push_str(parent_span_id);
        SpanIdentity {
            text: text.finish(),
            ends: [row_end, span_end, root_end],
            parent_count: 1,
            parent_ends: None,
            serial: next_serial(),
        }
    }

    fn text(&self) -> &str {
        self.text.as_str()
    }

    fn end(&self, i: usize) -> usize {
        self.ends[i] as usize
    }

    /// The row id (UUID v4 unless set otherwise).
    pub fn row_id(&self) -> &str {
        &self.text()[..self.end(0)]
    }

    /// The span id.
    pub fn span_id(&self) -> &str {
        &self.text()[self.end(0)..self.end(1)]
    }

    /// The trace id.
    pub fn root_span_id(&self) -> &str {
        &self.text()[self.end(1)..self.end(2)]
    }

    /// Whether the span has no parent span.
    pub fn is_root(&self) -> bool {
        self.parent_count == 0
    }

    /// The parent span ids, in order (none for a root span).
    pub fn span_parents(&self) -> SpanParents<'_> {
        SpanParents {
            identity: Some(self),
            next: 0,
        }
    }

    fn parent(&self, i: usize) -> &str {
        let parent_ends = self.parent_ends.as_deref().unwrap_or_default();
        let start = match i {
            0 => self.end(2),
            _ => parent_ends[i - 1] as usize,
        };
        let end = parent_ends
            .get(i)
            .map_or(self.text().len(), |&end| end as usize);
        &self.text()[start..end]
    }

    /// The same span under another row id (an upsert id logged at start).
    pub fn with_row_id(&self, row_id: &str) -> SpanIdentity {
        let parents: Vec<&str> = self.span_parents().collect();
        let mut identity = SpanIdentity::new(row_id, self.span_id(), self.root_span_id(), parents);
        identity.serial = self.serial;
        identity
    }

    /// A number that tells this identity (and its clones) apart from every other identity made
    /// in this process.
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    /// Writes `id`, `span_id`, `root_span_id` and (for non-roots) `span_parents` into a row.
    pub fn write_to(&self, row: &mut Map<String, Value>) {
        row.insert("id".into(), Value::String(self.row_id().to_owned()));
        row.insert("span_id".into(), Value::String(self.span_id().to_owned()));
        row.insert(
            "root_span_id".into(),
            Value::String(self.root_span_id().to_owned()),
        );
        if !self.is_root() {
            let parents = self.span_parents().map(|p| Value::String(p.to_owned()));
            row.insert("span_parents".into(), Value::Array(parents.collect()));
        }
    }
}

/// Identities are equal when their ids are.
impl PartialEq for SpanIdentity {
    fn eq(&self, other: &SpanIdentity) -> bool {
        self.row_id() == other.row_id()
            && self.span_id() == other.span_id()
            && self.root_span_id() == other.root_span_id()
            && self.span_parents().eq(other.span_parents())
    }
}

impl Eq for SpanIdentity {}

impl fmt::Debug for SpanIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanIdentity")
            .field("row_id", &self.row_id())
            .field("span_id", &self.span_id())
            .field("root_span_id", &self.root_span_id())
            .field("span_parents", &self.span_parents().collect::<Vec<_>>())
            .finish()
    }
}

/// The parent span ids of a span, in order ([`SpanIdentity::span_parents`]).
#[derive(Debug, Clone, Default)]
pub struct SpanParents<'a> {
    identity: Option<&'a SpanIdentity>,
    next: usize,
}

impl<'a> Iterator for SpanParents<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let identity = self.identity?;
        if self.next >= identity.parent_count as usize {
            return None;
        }
        self.next += 1;
        Some(identity.parent(self.next - 1))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self
            .identity
            .map_or(0, |i| (i.parent_count as usize).saturating_sub(self.next));
        (left, Some(left))
    }
}

impl ExactSizeIterator for SpanParents<'_> {}

/// Builds a span's id text: inline while it fits, else on the heap.
#[derive(Default)]
struct IdBuffer {
    inline: ArrayString<INLINE_ID_BYTES>,
    /// The text, once it outgrew `inline`.
    spilled: Option<String>,
}

impl IdBuffer {
    fn len(&self) -> usize {
        self.spilled.as_ref().map_or(self.inline.len(), String::len)
    }

    /// Appends `id`; returns where the text now ends.
    fn push_str(&mut self, id: &str) -> u32 {
        match &mut self.spilled {
            Some(text) => text.push_str(id),
            None => {
                if self.inline.try_push_str(id).is_err() {
                    let mut text = String::with_capacity(self.inline.len() + id.len());
                    text.push_str(&self.inline);
                    text.push_str(id);
                    self.spilled = Some(text);
                }
            }
        }
        offset(self.len())
    }

    /// Appends a fresh id made by `make`; returns where the text now ends.
    fn push_with(&mut self, make: fn() -> IdString) -> u32 {
        self.push_str(&make())
    }

    /// Appends the text between `start` and `end` again; returns where the text now ends.
    fn push_copy(&mut self, start: u32, end: u32) -> u32 {
        let id: String = self.as_str()[start as usize..end as usize].to_owned();
        self.push_str(&id)
    }

    fn push_span_id(&mut self, format: IdFormat) -> u32 {
        match format {
            IdFormat::Hex => self.push_with(hex_id_text::<8>),
            IdFormat::LegacyUuid => self.push_with(uuid_v4_text),
        }
    }

    fn as_str(&self) -> &str {
        self.spilled.as_deref().unwrap_or(&self.inline)
    }

    fn finish(self) -> IdText {
        match self.spilled {
            Some(text) => IdText::Shared(Arc::from(text)),
            None => IdText::Inline(self.inline),
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

/// Appends [`format_created`]'s text as a JSON string (it needs no escaping).
pub(crate) fn write_created(time: SystemTime, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing into memory cannot fail.
    let _ = write!(out, "\"{}\"", humantime::format_rfc3339_micros(time));
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
pub(crate) const KEY_FIELDS: [&str; 7] = [
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

/// A [`RowKey`]'s fields as a row holds them, in [`KEY_FIELDS`] order: what compares and
/// hashes the same as the key, without copying the strings.
pub(crate) type KeyParts<'a> = [Option<Cow<'a, str>>; 7];

impl RowKey {
    /// The key of the row `row_id` of `object` (of a row carrying no other key fields).
    pub fn of(object: Option<&ObjectIds>, row_id: &str) -> RowKey {
        RowKey::owning(key_parts_of(object, row_id))
    }

    fn owning(parts: KeyParts<'_>) -> RowKey {
        RowKey {
            parts: parts.map(|part| part.map(Cow::into_owned)),
        }
    }
}

/// The [`KeyParts`] of [`RowKey::of`].
pub(crate) fn key_parts_of<'a>(object: Option<&'a ObjectIds>, row_id: &'a str) -> KeyParts<'a> {
    let mut parts: KeyParts<'a> = Default::default();
    let fields = object.into_iter().flat_map(ObjectIds::fields);
    for (key, value) in fields.chain(std::iter::once(("id", row_id))) {
        if let Some(at) = KEY_FIELDS.iter().position(|k| *k == key) {
            parts[at] = Some(Cow::Borrowed(value));
        }
    }
    parts
}

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
        RowKey::owning(self.key_parts())
    }

    /// The [`KeyParts`] of [`Row::key`]: strings as they are, other values as their JSON.
    pub(crate) fn key_parts(&self) -> KeyParts<'_> {
        KEY_FIELDS.map(|k| match self.0.get(k) {
            Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
            Some(Value::Null) | None => None,
            Some(other) => Some(Cow::Owned(other.to_string())),
        })
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
    fn identity_ids_read_back_with_any_number_of_parents() {
        // Short ids stay inline; a long row id or parent spills to the heap.
        let long = "x".repeat(INLINE_ID_BYTES + 1);
        let cases = [
            ("row", vec![]),
            ("row", vec!["p1"]),
            ("row", vec!["p1", "", "p3"]),
            ("row", vec!["", "p2"]),
            (long.as_str(), vec!["p1"]),
            ("row", vec!["p1", long.as_str(), "p3"]),
        ];
        for (row_id, parents) in cases {
            let id = SpanIdentity::new(row_id, "span", "trace", parents.iter().copied());
            assert_eq!(
                (id.row_id(), id.span_id(), id.root_span_id()),
                (row_id, "span", "trace")
            );
            assert_eq!(id.span_parents().len(), parents.len());
            assert_eq!(id.span_parents().collect::<Vec<_>>(), parents);
            assert_eq!(id.is_root(), parents.is_empty());
            let renamed = id.with_row_id("upsert-id");
            assert_eq!(renamed.row_id(), "upsert-id");
            assert_eq!(renamed.span_parents().collect::<Vec<_>>(), parents);
            assert_eq!(renamed.with_row_id(row_id), id);
            assert_eq!(renamed.serial(), id.serial());
            assert_ne!(
                SpanIdentity::new(row_id, "span", "trace", parents.iter().copied()).serial(),
                id.serial()
            );
        }
    }

    #[test]
    fn new_identities_place_children_under_their_parent() {
        for format in [IdFormat::Hex, IdFormat::LegacyUuid] {
            let root = SpanIdentity::root(format);
            assert!(root.is_root());
            assert_eq!(root.row_id().len(), 36);
            let child = root.child(format);
            let grandchild = child.child(format);
            assert_eq!(grandchild.root_span_id(), root.root_span_id());
            assert!(grandchild.span_parents().eq([child.span_id()]));
            assert_ne!(child.span_id(), grandchild.span_id());
            assert_ne!(child.row_id(), grandchild.row_id());
            let mut row = Map::new();
            grandchild.write_to(&mut row);
            assert_eq!(row["span_parents"], json!([child.span_id()]));
            assert_eq!(
                format!("{grandchild:?}"),
                format!(
                    "SpanIdentity {{ row_id: {:?}, span_id: {:?}, root_span_id: {:?}, span_parents: [{:?}] }}",
                    grandchild.row_id(),
                    grandchild.span_id(),
                    root.root_span_id(),
                    child.span_id()
                )
            );
        }
        let legacy = SpanIdentity::root(IdFormat::LegacyUuid);
        assert_eq!(legacy.root_span_id(), legacy.span_id());
        let hex = SpanIdentity::root(IdFormat::Hex);
        assert_eq!((hex.span_id().len(), hex.root_span_id().len()), (16, 32));
    }

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
