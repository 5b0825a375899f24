//! Folding a batch of pending rows into one row per key before it is sent.
//!
//! A span's first row stays typed while its logs and end fold into it: its ids, attributes,
//! `metrics` and `context` are written straight to the request body, and only the fields the
//! user logged are kept as JSON values. A row that folds in anything else (a field the first row
//! sets itself, a control field) turns the span's row into a plain [`Row`] first, so the result
//! is always what building every row and merging them gives.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::SystemTime;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::{
    LoggedFields, LoggedValue, ObjectRef, PendingKind, PendingRow, SpanOrigin, SpanStartRow,
    seconds,
};
use crate::attachment::Attachment;
use crate::event::SpanAttributes;
use crate::merge::{merge_fields, merge_row_into};
use crate::origin::{ContextObject, span_context};
use crate::row::{
    KEY_FIELDS, KeyParts, Row, SpanIdentity, format_created, key_parts_of, write_created,
};

/// Builds a batch of pending rows into one row per key: what [`merge_row_batch`] gives for
/// their rows, in the same order, but a span's later rows (logs, its end) fold straight into its
/// first row when that is in the batch, without being built as rows of their own.
///
/// [`merge_row_batch`]: crate::merge::merge_row_batch
#[derive(Debug, Default)]
pub struct RowBatch {
    rows: Vec<BatchRow>,
    /// Indices in `rows` by their rows' keys (hashed from [`BatchRow::key_parts`], which
    /// borrows them from the rows instead of copying them into keys of their own).
    by_key: HashTable<usize>,
    key_hasher: RandomState,
    /// Spans whose first row is in `rows`, by their identity's serial number, with their object.
    spans: HashMap<u64, (Option<ObjectRef>, usize), RandomState>,
    added: usize,
}

impl RowBatch {
    /// An empty batch.
    pub fn new() -> RowBatch {
        RowBatch::default()
    }

    /// An empty batch with room for `rows` rows (fewer when a span's rows fold together) and
    /// their spans.
    pub fn with_capacity(rows: usize) -> RowBatch {
        RowBatch {
            rows: Vec::with_capacity(rows),
            by_key: HashTable::with_capacity(rows),
            key_hasher: RandomState::default(),
            spans: HashMap::with_capacity_and_hasher(rows, RandomState::default()),
            added: 0,
        }
    }

    /// Adds a row, running its [`DeferredEvent`](super::DeferredEvent) if it has one
    /// (attachments it makes go to `attachments`). Returns the index of the row it is now part
    /// of.
    pub fn push(&mut self, row: PendingRow, attachments: &mut Vec<Attachment>) -> usize {
        self.added += 1;
        let PendingRow { object, mut kind } = row;
        if let PendingKind::SpanUpdate { span, .. } | PendingKind::SpanEnd { span, .. } = &kind
            && let Some((start_object, i)) = self.spans.get(&span.serial())
            && same_object(start_object, &object)
            && !self.rows[*i].is_merge()
        {
            let i = *i;
            // The usual end, with nothing logged along, goes straight into the typed first row.
            if let PendingKind::SpanEnd {
                end,
                fields,
                output,
                deferred: None,
                ..
            } = &mut kind
                && fields.is_empty()
                && let Some(draft) = &mut self.rows[i].draft
            {
                draft.end(*end, output.take());
                return i;
            }
            let kind = match kind.into_span_body(attachments) {
                Ok((_, body)) if !body.contains_key("id") => {
                    self.rows[i].merge_row(body);
                    return i;
                }
                // A log naming another row id is a row of its own.
                Ok((span, body)) => PendingKind::SpanUpdate { span, fields: body },
                Err(kind) => kind,
            };
            return self.push_row(BatchRow::from(
                PendingRow { object, kind }.build(attachments),
            ));
        }
        let PendingKind::SpanStart(start) = kind else {
            return self.push_row(BatchRow::from(
                PendingRow { object, kind }.build(attachments),
            ));
        };
        let identity = start.span.clone();
        let row = BatchRow::first_row(object.clone(), start, attachments);
        // Later rows fold in only where they would merge: a first row logged with another id
        // is a row of its own.
        let own_id = row.has_row_id(identity.row_id());
        let i = self.push_row(row);
        if own_id {
            self.spans.insert(identity.serial(), (object, i));
        }
        i
    }

    fn push_row(&mut self, row: BatchRow) -> usize {
        let RowBatch {
            rows,
            by_key,
            key_hasher,
            ..
        } = self;
        let (hash, found) = {
            let key = row.key_parts();
            let hash = key_hasher.hash_one(&key);
            (
                hash,
                by_key.find(hash, |&i| rows[i].key_parts() == key).copied(),
            )
        };
        match found {
            Some(i) if row.is_merge() => {
                rows[i].merge_row(LoggedFields::from(row.into_row().into_map()));
                i
            }
            Some(i) => {
                rows[i] = row;
                i
            }
            None => {
                let i = rows.len();
                rows.push(row);
                by_key.insert_unique(hash, i, |&j| key_hasher.hash_one(rows[j].key_parts()));
                i
            }
        }
    }

    /// How many rows were added (before merging).
    pub fn added(&self) -> usize {
        self.added
    }

    /// The merged rows, in order of their keys' first appearance.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows.into_iter().map(BatchRow::into_row).collect()
    }

    /// The merged rows as they serialise, in order of their keys' first appearance.
    pub fn into_batch_rows(self) -> Vec<BatchRow> {
        self.rows
    }
}

fn same_object(a: &Option<ObjectRef>, b: &Option<ObjectRef>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.same_object(b),
        (None, None) => true,
        _ => false,
    }
}

/// A merged row of a [`RowBatch`]. It serialises as the row it stands for; a span's first row
/// does so without being built as a map.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// The span's first row while it is still typed; `row` is empty then.
    draft: Option<Box<SpanDraft>>,
    row: Row,
}

impl From<Row> for BatchRow {
    fn from(row: Row) -> BatchRow {
        BatchRow { draft: None, row }
    }
}

impl BatchRow {
    /// A span's first row, running its [`DeferredEvent`](super::DeferredEvent) if it has one.
    pub(super) fn first_row(
        object: Option<ObjectRef>,
        start: SpanStartRow,
        attachments: &mut Vec<Attachment>,
    ) -> BatchRow {
        let SpanStartRow {
            span,
            attributes,
            exec_counter,
            origin,
            start,
            fields,
            input,
            deferred,
        } = start;
        // Room for `start`, `end` and a few logged metrics without growing.
        let mut metrics = LoggedFields::with_capacity(6);
        metrics.insert("start", LoggedValue::Value(seconds(start)));
        let mut row = BatchRow {
            draft: Some(Box::new(SpanDraft {
                object,
                span,
                attributes,
                exec_counter,
                origin,
                start,
                metrics,
                fields: LoggedFields::new(),
                merged: false,
            })),
            row: Row::default(),
        };
        row.merge_fields(LoggedFields::from(fields));
        if let Some(input) = input {
            row.insert("input", input.into_value());
        }
        if let Some(deferred) = deferred {
            row.merge_fields(LoggedFields::from(deferred.compute(attachments)));
        }
        row
    }

    /// The row as a JSON object.
    pub fn into_row(self) -> Row {
        match self.draft {
            Some(draft) => Row::from_map(draft.into_map()),
            None => self.row,
        }
    }

    /// The row as a JSON object, to change in place.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        if let Some(draft) = self.draft.take() {
            self.row = Row::from_map(draft.into_map());
        }
        self.row.as_map_mut()
    }

    /// The row's merge key ([`crate::row::RowKey`]), borrowed.
    fn key_parts(&self) -> KeyParts<'_> {
        match &self.draft {
            Some(draft) => key_parts_of(draft.ids(), draft.span.row_id()),
            None => self.row.key_parts(),
        }
    }

    fn is_merge(&self) -> bool {
        self.draft.is_none() && self.row.is_merge()
    }

    /// Whether the row's id is `id`.
    fn has_row_id(&self, id: &str) -> bool {
        match &self.draft {
            Some(draft) => draft.span.row_id() == id,
            None => self.row.as_map().get("id").and_then(Value::as_str) == Some(id),
        }
    }

    /// Merges fields in as `merge_fields` would into the built row.
    fn merge_fields(&mut self, fields: LoggedFields) {
        match &mut self.draft {
            Some(draft) if SpanDraft::can_take(&fields) => draft.merge_fields(fields),
            _ => merge_fields(self.as_map_mut(), fields.into_map()),
        }
    }

    /// Merges a later row in as `merge_row_into` would into the built row.
    fn merge_row(&mut self, row: LoggedFields) {
        match &mut self.draft {
            Some(draft) if SpanDraft::can_take(&row) => draft.merge_row(row),
            _ => merge_row_into(self.as_map_mut(), row.into_map()),
        }
    }

    /// Sets a field the user logs (never one the span's first row sets itself).
    fn insert(&mut self, key: &'static str, value: Value) {
        match &mut self.draft {
            Some(draft) => draft.fields.insert(key, LoggedValue::Value(value)),
            None => {
                self.row.as_map_mut().insert(key.to_owned(), value);
            }
        }
    }

    /// Whether the row holds logged values as JSON text written by the logging thread.
    pub fn has_json_text(&self) -> bool {
        self.draft
            .as_ref()
            .is_some_and(|draft| draft.fields.has_json_text())
    }

    /// Appends the row's JSON to a request body: a span's typed row field by field, with the
    /// logged values held as text copied as they are; a built row as it is. Written by
    /// simd-json, faster than `serde_json` for strings (the `serialize_batch` bench), except a
    /// span's `metrics`, mostly floats, which `serde_json` writes faster; either parses back to
    /// the same values (see [`JsonText::of`](super::JsonText::of) for how floats may differ).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.draft {
            Some(draft) => draft.write_json(out),
            None => {
                // Writing into memory cannot fail.
                let _ = simd_json::serde::to_writer(out, &self.row);
            }
        }
    }
}

/// A span's first row with its later rows folded in: what the row sets itself stays typed;
/// what the user logged is merged into `metrics` and `fields`.
#[derive(Debug, Clone)]
struct SpanDraft {
    object: Option<ObjectRef>,
    span: SpanIdentity,
    attributes: SpanAttributes,
    exec_counter: u64,
    origin: SpanOrigin,
    start: SystemTime,
    /// `metrics`: `start`, then what was logged, merged as `merge_fields` merges maps (few
    /// members, named by constants or by the logged maps' keys, so neither hashed nor copied).
    metrics: LoggedFields,
    /// The other logged fields, none of which the first row sets itself.
    fields: LoggedFields,
    /// Whether a later row was merged in (which drops `_is_merge` from the row).
    merged: bool,
}

impl SpanDraft {
    fn ids(&self) -> Option<&crate::object::ObjectIds> {
        self.object.as_ref().and_then(ObjectRef::ids)
    }

    /// Whether merging `fields` touches only what the user logs: no field the first row sets
    /// itself, no control field, and `metrics` (if any) an object to merge into the span's.
    fn can_take(fields: &LoggedFields) -> bool {
        fields.iter().all(|(key, value)| match key {
            "metrics" => matches!(value, LoggedValue::Value(Value::Object(_))),
            key => {
                !key.starts_with('_')
                    && !KEY_FIELDS.contains(&key)
                    && !SET_BY_FIRST_ROW.contains(&key)
            }
        })
    }

    fn merge_fields(&mut self, mut fields: LoggedFields) {
        if let Some(LoggedValue::Value(Value::Object(metrics))) = fields.remove("metrics") {
            self.metrics.merge_map(metrics);
        }
        self.fields.merge(fields, false);
    }

    fn merge_row(&mut self, mut row: LoggedFields) {
        if let Some(LoggedValue::Value(Value::Object(metrics))) = row.remove("metrics") {
            self.metrics.merge_map(metrics);
        }
        // The user's fields alone merge as they would within the whole row (a full row, so
        // `tags` unite): none of the keys merging looks at besides them (`_is_merge`,
        // `_merge_paths`, the preserved ids) can be in `row`.
        self.fields.merge(row, true);
        self.merged = true;
    }

    /// Folds in an end that carries nothing but `output`: what merging its row
    /// (`{"metrics": {"end": …}, "output": …}`) does.
    fn end(&mut self, end: SystemTime, output: Option<Value>) {
        // A number replaces whatever `end` held, as merging does.
        self.metrics.insert("end", LoggedValue::Value(seconds(end)));
        if let Some(output) = output {
            self.fields
                .merge_member(Cow::Borrowed("output"), LoggedValue::Value(output), true);
        }
        self.merged = true;
    }

    fn span_attributes(&self) -> Map<String, Value> {
        let mut attributes = self.attributes.to_map();
        attributes.insert("exec_counter".into(), Value::from(self.exec_counter));
        attributes
    }

    fn context(&self) -> ContextObject<'_> {
        ContextObject {
            instrumentation: &self.origin.instrumentation,
            caller: self.origin.caller,
        }
    }

    /// The row as a JSON object, its keys in the order [`SpanDraft`]'s `Serialize` writes them
    /// (the folding proptest checks that both agree).
    fn into_map(self) -> Map<String, Value> {
        let mut map = Map::new();
        self.span.write_to(&mut map);
        if !self.merged {
            map.insert("_is_merge".into(), Value::Bool(false));
        }
        map.insert("created".into(), Value::String(format_created(self.start)));
        if let Some(ids) = self.ids() {
            ids.write_to(&mut map);
        }
        map.insert(
            "span_attributes".into(),
            Value::Object(self.span_attributes()),
        );
        map.insert("metrics".into(), Value::Object(self.metrics.into_map()));
        map.insert(
            "context".into(),
            Value::Object(span_context(
                &self.origin.instrumentation,
                self.origin.caller,
            )),
        );
        for (key, value) in self.fields.into_map() {
            map.insert(key, value);
        }
        map
    }
}

/// Fields a span's first row sets itself besides its key fields ([`KEY_FIELDS`]), control
/// fields (which start with `_`) and `metrics` (which merges).
pub(super) const SET_BY_FIRST_ROW: [&str; 6] = [
    "span_id",
    "root_span_id",
    "span_parents",
    "created",
    "span_attributes",
    "context",
];

impl SpanDraft {
    /// Writes the row, its keys in the order of [`SpanDraft::into_map`]'s.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::open(out);
        object.entry("id", self.span.row_id());
        object.entry("span_id", self.span.span_id());
        object.entry("root_span_id", self.span.root_span_id());
        if !self.span.is_root() {
            object.entry("span_parents", &Parents(&self.span));
        }
        if !self.merged {
            object.entry("_is_merge", &false);
        }
        write_created(self.start, object.name("created"));
        if let Some(ids) = self.ids() {
            for (key, value) in ids.fields() {
                object.entry(key, value);
            }
        }
        object.entry("span_attributes", &Attributes(self));
        // Mostly floats, which serde_json writes in a fraction of simd-json's time (zmij, not
        // ryu); writing into memory cannot fail.
        let _ = serde_json::to_writer(object.name("metrics"), &self.metrics);
        self.context().write_json(object.name("context"));
        for (key, value) in self.fields.iter() {
            value.write_json(object.key(key));
        }
        object.close();
    }
}

/// Writes a JSON object's members one by one.
struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    fn open(out: &'a mut Vec<u8>) -> ObjectWriter<'a> {
        out.push(b'{');
        ObjectWriter { out, empty: true }
    }

    fn comma(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
    }

    /// Writes `"key":` (after a comma unless first) and returns where its value goes.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        self.comma();
        // Writing into memory cannot fail.
        let _ = simd_json::serde::to_writer(&mut *self.out, key);
        self.out.push(b':');
        self.out
    }

    /// [`ObjectWriter::key`] for a member name of this module's rows: plain ASCII that JSON
    /// writes as it is, so it is copied without checking.
    fn name(&mut self, name: &'static str) -> &mut Vec<u8> {
        self.comma();
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A member named by this module (see [`ObjectWriter::name`]).
    fn entry<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) {
        let out = self.name(name);
        let _ = simd_json::serde::to_writer(out, value);
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// `span_parents`, written from the span's identity.
struct Parents<'a>(&'a SpanIdentity);

impl Serialize for Parents<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for parent in self.0.span_parents() {
            seq.serialize_element(parent)?;
        }
        seq.end()
    }
}

/// `span_attributes` with `exec_counter`, as [`SpanDraft::span_attributes`] builds it.
struct Attributes<'a>(&'a SpanDraft);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let draft = self.0;
        let attributes = &draft.attributes;
        let clash =
            |key: &String| matches!(key.as_str(), "name" | "type" | "purpose" | "exec_counter");
        if attributes.extra.keys().any(clash) {
            // Extra keys that replace the typed ones in place: build the map.
            return draft.span_attributes().serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        if let Some(name) = &attributes.name {
            map.serialize_entry("name", name)?;
        }
        if let Some(span_type) = attributes.span_type {
            map.serialize_entry("type", span_type.as_str())?;
        }
        if let Some(purpose) = &attributes.purpose {
            map.serialize_entry("purpose", purpose)?;
        }
        for (key, value) in &attributes.extra {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("exec_counter", &draft.exec_counter)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    use super::super::DeferredEvent;
    use crate::event::Event;
    use crate::id::IdFormat;
    use crate::merge::merge_row_batch;
    use crate::object::ObjectIds;
    use proptest::prelude::*;
    use serde_json::json;

    /// One row of a span: 0 start, 1 log, 2 end; with a pick of fields.
    type Op = (usize, u8, u8);

    fn fields(pick: u8) -> Map<String, Value> {
        let v = match pick % 12 {
            0 => json!({}),
            1 => json!({"input": {"q": pick}, "metadata": {"a": 1}}),
            2 => json!({"output": [pick], "metadata": {"b": {"c": 2}}}),
            3 => json!({"metrics": {"tokens": 3}, "tags": ["x"]}),
            4 => json!({"tags": ["y", "x"], "scores": {"s": 0.5}}),
            5 => json!({"id": "another-row", "output": 1}),
            6 => json!({"created": "2020-01-01T00:00:00Z", "metadata": {"a": {"d": 4}}}),
            7 => json!({"metadata": null, "error": "e"}),
            8 => json!({"metrics": null, "output": "o"}),
            9 => json!({"metrics": {"start": 5, "end": 6}, "expected": {"x": [1]}}),
            10 => json!({"span_attributes": {"name": "renamed"}, "_merge_paths": [["metadata"]]}),
            _ => json!({"metadata": {"a": {"e": pick}}, "tags": null}),
        };
        v.as_object().cloned().unwrap_or_default()
    }

    /// A later row's fields: values, or (for half the picks) written as text where a span's
    /// log writes them.
    fn logged(pick: u8) -> LoggedFields {
        if pick >= 12 {
            LoggedFields::write_values(fields(pick))
        } else {
            LoggedFields::from(fields(pick))
        }
    }

    fn pending(spans: &[SpanIdentity], object: &ObjectRef, (span, kind, pick): Op) -> PendingRow {
        let span = spans[span % spans.len()].clone();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + u64::from(pick));
        let kind = match kind % 3 {
            0 => PendingKind::SpanStart(SpanStartRow {
                span,
                attributes: match pick % 5 {
                    0 => SpanAttributes::default(),
                    1 => SpanAttributes {
                        span_type: Some(crate::event::SpanType::Llm),
                        purpose: Some("scorer".into()),
                        extra: json!({"k": [1]}).as_object().cloned().unwrap_or_default(),
                        ..SpanAttributes::named("s")
                    },
                    // Extra keys that replace typed ones.
                    2 | 3 => SpanAttributes {
                        extra: if pick % 5 == 2 {
                            json!({"a": 1, "name": "x"})
                        } else {
                            json!({"exec_counter": 9, "b": 2})
                        }
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                        ..SpanAttributes::named("s")
                    },
                    _ => SpanAttributes::named("s"),
                },
                exec_counter: 1,
                origin: SpanOrigin {
                    instrumentation: Cow::Borrowed("test"),
                    caller: (pick % 2 == 1).then_some(crate::origin::CallerLocation {
                        function: (pick % 4 == 1).then_some("f"),
                        file: "a \"quoted\" file.rs",
                        line: u32::from(pick),
                    }),
                },
                input: (pick % 3 == 1)
                    .then(|| super::super::CapturedInput::Value(json!({"in": pick}))),
                start: at,
                fields: fields(pick),
                deferred: (pick % 4 == 2).then(|| {
                    DeferredEvent::new(move |_| Event::new().output(json!({"early": pick})))
                }),
            }),
            1 => PendingKind::SpanUpdate {
                span,
                fields: logged(pick),
            },
            _ => PendingKind::SpanEnd {
                span,
                end: at,
                fields: logged(pick),
                // Picks 0 and 12 log nothing: an end with and without `output` alone.
                output: ((pick % 2 == 0) != (pick == 12)).then(|| json!("out")),
                deferred: (pick % 6 == 3).then(|| {
                    DeferredEvent::new(move |_| Event::new().metadata(json!({"late": pick})))
                }),
            },
        };
        PendingRow {
            object: Some(object.clone()),
            kind,
        }
    }

    /// Three root spans and two children (one of the first, one of that child), in a project or
    /// an experiment.
    fn spans() -> Vec<SpanIdentity> {
        let roots: Vec<SpanIdentity> = (0..3)
            .map(|_| SpanIdentity::root(IdFormat::default()))
            .collect();
        let child = roots[0].child(IdFormat::default());
        let grandchild = child.child(IdFormat::default());
        roots.into_iter().chain([child, grandchild]).collect()
    }

    proptest! {
        /// Folding a span's later rows into its first row gives what building every row and
        /// merging the batch gives, as rows and as the JSON sent.
        #[test]
        fn folding_equals_building_and_merging(
            ops in proptest::collection::vec((0usize..5, 0u8..3, 0u8..24), 0..14),
            experiment in any::<bool>(),
        ) {
            let object = ObjectRef::resolved(if experiment {
                ObjectIds::experiment("e")
            } else {
                ObjectIds::project_logs("p")
            });
            let spans = spans();
            let built: Vec<Row> = ops
                .iter()
                .map(|op| pending(&spans, &object, *op).into_row())
                .collect();
            // Compared as text: the order of keys must match too.
            let text = |rows: Vec<Row>| -> Vec<String> {
                rows.into_iter().map(|r| Value::from(r).to_string()).collect()
            };
            let expected = text(merge_row_batch(built));
            let batch = |ops: &[Op]| {
                let mut batch = RowBatch::new();
                let mut attachments = Vec::new();
                for op in ops {
                    batch.push(pending(&spans, &object, *op), &mut attachments);
                }
                batch
            };
            let folded = batch(&ops);
            prop_assert_eq!(folded.added(), ops.len());
            prop_assert_eq!(&text(folded.into_rows()), &expected);
            let written = |row: &BatchRow| {
                let mut out = Vec::new();
                row.write_json(&mut out);
                String::from_utf8(out).unwrap_or_default()
            };
            let sent: Vec<String> = batch(&ops).into_batch_rows().iter().map(written).collect();
            prop_assert_eq!(&sent, &expected);
            let edited: Vec<String> = batch(&ops)
                .into_batch_rows()
                .into_iter()
                .map(|mut row| {
                    row.as_map_mut();
                    written(&row)
                })
                .collect();
            prop_assert_eq!(edited, expected);
        }
    }

    #[test]
    fn a_span_folds_into_one_typed_row_until_a_row_sets_what_its_first_row_sets() {
        let object = ObjectRef::resolved(ObjectIds::project_logs("p"));
        let spans = spans();
        let mut batch = RowBatch::new();
        let mut attachments = Vec::new();
        // Start, a log, an end: one row, still typed.
        for op in [(3, 0, 3), (3, 1, 1), (3, 2, 4)] {
            assert_eq!(
                batch.push(pending(&spans, &object, op), &mut attachments),
                0
            );
        }
        assert!(batch.rows[0].draft.is_some());
        // A log setting `created` (kept from the first row) builds the row.
        batch.push(pending(&spans, &object, (3, 1, 6)), &mut attachments);
        assert!(batch.rows[0].draft.is_none());
        let rows = batch.into_rows();
        assert_eq!(rows.len(), 1);
        let row = rows[0].as_map();
        assert_eq!(row["span_parents"], json!([spans[0].span_id()]));
        assert_eq!(row["metrics"]["tokens"], 3);
        assert!(row["metrics"]["end"].is_number());
        assert_eq!(
            row["created"],
            json!(format_created(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_003)
            ))
        );
        assert!(
            row.get("_is_merge").is_none(),
            "merged rows drop `_is_merge`"
        );
    }
}
