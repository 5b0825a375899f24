//! Fields logged on a span on their way to a request body.
//!
//! [`Span::log`](super::Span::log) writes the large values it is given (input, output,
//! metadata, …) as JSON text on the logging thread. The values are then freed on the thread that
//! made them, and the batcher only copies their text into the request body
//! ([`super::BatchRow::write_json`]). Merging a value into one that is held as text parses the
//! text back first, so the row sent is always what merging the values would give.

use std::borrow::Cow;
use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::merge::{merge_fields, union_tags};

/// The JSON text of a value, written by this crate (so it is valid JSON).
///
/// Texts written on one thread share 64 KiB blocks (see [`JsonText::of`]): the thread that
/// sends them frees one block for dozens of texts, not one allocation each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Bytes);

/// The size of the blocks texts are copied into; a longer text gets an allocation of its own.
const BLOCK_BYTES: usize = 64 << 10;

/// Above this size the scratch buffer that values are written into is not kept for the next.
const SCRATCH_KEPT_BYTES: usize = 64 << 10;

/// Where a thread writes texts.
#[derive(Default)]
struct TextWriter {
    /// Where a value is written first: simd-json writes into a `Vec` fastest.
    scratch: Vec<u8>,
    /// The rest of the block texts are copied into and shared from.
    block: BytesMut,
}

impl TextWriter {
    fn write(&mut self, value: &Value) -> Option<JsonText> {
        self.scratch.clear();
        let written = simd_json::serde::to_writer(&mut self.scratch, value);
        // Checked with SIMD: the text is as long as the value's strings.
        let valid = written.is_ok() && simdutf8::basic::from_utf8(&self.scratch).is_ok();
        let text = valid.then(|| self.share());
        self.trim();
        text
    }

    /// Writes any serialisable value: with simd-json, or with serde_json where simd-json
    /// refuses it (map keys that are numbers, 128-bit integers); serde_json's error otherwise.
    fn write_serialize<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<JsonText, serde_json::Error> {
        self.scratch.clear();
        if simd_json::serde::to_writer(&mut self.scratch, value).is_err()
            || simdutf8::basic::from_utf8(&self.scratch).is_err()
        {
            self.scratch.clear();
            if let Err(e) = serde_json::to_writer(&mut self.scratch, value) {
                self.trim();
                return Err(e);
            }
        }
        let text = self.share();
        self.trim();
        Ok(text)
    }

    /// Lets a scratch buffer grown by a large value go.
    fn trim(&mut self) {
        if self.scratch.capacity() > SCRATCH_KEPT_BYTES {
            self.scratch = Vec::new();
        }
    }

    /// The scratch buffer's text, copied into the block.
    fn share(&mut self) -> JsonText {
        let text = &self.scratch[..];
        if text.len() > BLOCK_BYTES {
            return JsonText(Bytes::copy_from_slice(text));
        }
        if self.block.capacity() < text.len() {
            self.block = BytesMut::with_capacity(BLOCK_BYTES);
        }
        self.block.extend_from_slice(text);
        JsonText(self.block.split().freeze())
    }
}

thread_local! {
    static TEXT_WRITER: RefCell<TextWriter> = RefCell::new(TextWriter::default());
}

impl JsonText {
    /// The text of `value`, written by simd-json: compact JSON that parses back to the same
    /// value as `serde_json`'s (a few floats are spelled differently, e.g. `1e82` for `1e+82`),
    /// written faster.
    ///
    /// Texts are copied one after the other into a block of this thread's and shared from it,
    /// so writing one allocates nothing most of the time, and the block is freed once its last
    /// text is dropped (usually on the sender's thread, where freeing one block instead of each
    /// text matters: glibc's malloc locks for memory another thread allocated).
    pub fn of(value: &Value) -> Option<JsonText> {
        TEXT_WRITER
            .try_with(|writer| match writer.try_borrow_mut() {
                Ok(mut writer) => writer.write(value),
                Err(_) => TextWriter::default().write(value),
            })
            .unwrap_or_else(|_| TextWriter::default().write(value))
    }

    /// The text of any serialisable value, written as [`JsonText::of`] writes values (serde_json
    /// writes what simd-json refuses, such as maps with number keys). Fails where serde_json
    /// fails: a map key that is not a string or number, or the value's own serialisation error.
    pub fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<JsonText, serde_json::Error> {
        TEXT_WRITER
            .try_with(|writer| match writer.try_borrow_mut() {
                Ok(mut writer) => writer.write_serialize(value),
                Err(_) => TextWriter::default().write_serialize(value),
            })
            .unwrap_or_else(|_| TextWriter::default().write_serialize(value))
    }

    /// The text.
    pub fn get(&self) -> &str {
        // Checked when written; the fallback is unreachable.
        simdutf8::basic::from_utf8(&self.0).unwrap_or_default()
    }

    /// The text's bytes, without checking them again.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value (the text was written from a value, so it parses; `null` is the unreachable
    /// fallback).
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }
}

/// One logged field's value.
#[derive(Debug, Clone)]
pub enum LoggedValue {
    /// A JSON value.
    Value(Value),
    /// The JSON text of a value, written where it was logged.
    Json(JsonText),
}

impl LoggedValue {
    /// The value (parsing it when it is held as text).
    pub fn into_value(self) -> Value {
        match self {
            LoggedValue::Value(value) => value,
            LoggedValue::Json(text) => text.to_value(),
        }
    }

    pub(crate) fn is_object(&self) -> bool {
        match self {
            LoggedValue::Value(value) => value.is_object(),
            LoggedValue::Json(text) => text.as_bytes().first() == Some(&b'{'),
        }
    }

    fn is_array(&self) -> bool {
        match self {
            LoggedValue::Value(value) => value.is_array(),
            LoggedValue::Json(text) => text.as_bytes().first() == Some(&b'['),
        }
    }

    /// Appends the value's JSON: text as it is, values written by simd-json.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            LoggedValue::Value(value) => {
                // Writing a value into memory cannot fail.
                let _ = simd_json::serde::to_writer(out, value);
            }
            LoggedValue::Json(text) => out.extend_from_slice(text.as_bytes()),
        }
    }
}

impl Serialize for LoggedValue {
    /// Text is parsed back into a value for serialisers; [`LoggedValue::write_json`] copies it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LoggedValue::Value(value) => value.serialize(serializer),
            LoggedValue::Json(text) => text.to_value().serialize(serializer),
        }
    }
}

/// A logged field's name: an event field's own (`'static`) or one read from a map.
type FieldName = Cow<'static, str>;

/// Fields logged on a span, in the order they were logged, each key once.
#[derive(Debug, Clone, Default)]
pub struct LoggedFields(Vec<(FieldName, LoggedValue)>);

impl From<Map<String, Value>> for LoggedFields {
    /// The fields as values.
    fn from(map: Map<String, Value>) -> LoggedFields {
        LoggedFields::of_values(owned_names(map))
    }
}

/// A map's entries with their names as [`FieldName`]s.
fn owned_names(map: Map<String, Value>) -> impl Iterator<Item = (FieldName, Value)> {
    map.into_iter().map(|(key, value)| (Cow::Owned(key), value))
}

impl LoggedFields {
    /// No fields.
    pub fn new() -> LoggedFields {
        LoggedFields::default()
    }

    /// No fields, with room for `fields` of them.
    pub(crate) fn with_capacity(fields: usize) -> LoggedFields {
        LoggedFields(Vec::with_capacity(fields))
    }

    /// The fields, with the values of fields the user logs (not `metrics`, control fields or
    /// the fields that identify a row) written as JSON text now when they are strings, arrays or
    /// objects. Values stay values while any attachment is alive (a sink finds attachments in
    /// values) or a masking function is installed (it edits values).
    pub fn written_now(map: Map<String, Value>) -> LoggedFields {
        LoggedFields::written_now_from_logged(
            owned_names(map).map(|(key, value)| (key, LoggedValue::Value(value))),
        )
    }

    /// [`LoggedFields::written_now`] for fields named by `'static` names too, some of which may
    /// be text already (an event's fields given by reference): while values must stay values,
    /// that text is parsed back.
    pub(crate) fn written_now_from_logged(
        fields: impl IntoIterator<Item = (FieldName, LoggedValue)>,
    ) -> LoggedFields {
        let keep_values = crate::attachment::any_alive() || crate::mask::is_masking();
        LoggedFields(
            fields
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        LoggedValue::Json(text) if keep_values => {
                            LoggedValue::Value(text.to_value())
                        }
                        LoggedValue::Value(value) if !keep_values => written(&key, value),
                        value => value,
                    };
                    (key, value)
                })
                .collect(),
        )
    }

    /// The fields as values.
    pub(crate) fn of_values(fields: impl IntoIterator<Item = (FieldName, Value)>) -> LoggedFields {
        LoggedFields(
            fields
                .into_iter()
                .map(|(key, value)| (key, LoggedValue::Value(value)))
                .collect(),
        )
    }

    /// [`LoggedFields::written_now`] without its checks.
    #[cfg(test)]
    pub(crate) fn write_values(map: Map<String, Value>) -> LoggedFields {
        LoggedFields(
            owned_names(map)
                .map(|(key, value)| {
                    let value = written(&key, value);
                    (key, value)
                })
                .collect(),
        )
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &LoggedValue)> {
        self.0.iter().map(|(key, value)| (key.as_ref(), value))
    }

    /// The values not held as text (text never references a live attachment: see
    /// [`LoggedFields::written_now`]).
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().filter_map(|(_, value)| match value {
            LoggedValue::Value(value) => Some(value),
            LoggedValue::Json(_) => None,
        })
    }

    /// Whether any value is held as JSON text.
    pub fn has_json_text(&self) -> bool {
        self.0
            .iter()
            .any(|(_, value)| matches!(value, LoggedValue::Json(_)))
    }

    /// Sets `key`, in place when it is already set.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: LoggedValue) {
        let key = key.into();
        match self.position(&key) {
            Some(at) => self.0[at].1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<LoggedValue> {
        let at = self.position(key)?;
        Some(self.0.remove(at).1)
    }

    /// The fields as a JSON object (parsing what is held as text).
    pub fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(key, value)| (key.into_owned(), value.into_value()))
            .collect()
    }

    /// Deep-merges `incoming` in as [`merge_fields`] does; with `tags_union`, two arrays of
    /// `tags` are united as a merge row's are (see [`crate::merge`]).
    pub fn merge(&mut self, incoming: LoggedFields, tags_union: bool) {
        if self.is_empty() {
            *self = incoming;
            return;
        }
        for (key, value) in incoming.0 {
            self.merge_member(key, value, tags_union);
        }
    }

    /// Merges a map's members in as [`LoggedFields::merge`] does, without uniting `tags`.
    pub(crate) fn merge_map(&mut self, incoming: Map<String, Value>) {
        for (key, value) in incoming {
            self.merge_member(Cow::Owned(key), LoggedValue::Value(value), false);
        }
    }

    /// Merges one member in: objects merge deeply, `tags` unite when asked, anything else
    /// replaces the value in its place.
    pub(crate) fn merge_member(&mut self, key: FieldName, value: LoggedValue, tags_union: bool) {
        let Some(at) = self.position(&key) else {
            self.0.push((key, value));
            return;
        };
        let existing = &mut self.0[at].1;
        if tags_union && key == "tags" && existing.is_array() && value.is_array() {
            let old = std::mem::replace(existing, LoggedValue::Value(Value::Null));
            if let (Value::Array(mut old), Value::Array(new)) =
                (old.into_value(), value.into_value())
            {
                union_tags(&mut old, new);
                *existing = LoggedValue::Value(Value::Array(old));
            }
        } else if existing.is_object() && value.is_object() {
            let old = std::mem::replace(existing, LoggedValue::Value(Value::Null));
            if let (Value::Object(mut old), Value::Object(new)) =
                (old.into_value(), value.into_value())
            {
                merge_fields(&mut old, new);
                *existing = LoggedValue::Value(Value::Object(old));
            }
        } else {
            *existing = value;
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }
}

impl Serialize for LoggedFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// `value` as text when [`is_written`] says so (and it can be), else as it is.
fn written(key: &str, value: Value) -> LoggedValue {
    if !is_written(key, &value) {
        return LoggedValue::Value(value);
    }
    match JsonText::of(&value) {
        Some(text) => LoggedValue::Json(text),
        None => LoggedValue::Value(value),
    }
}

/// Whether a logged field's value is worth writing as text now: a string, array or object of a
/// field the user logs (`metrics` merges into the span's own; control and key fields are read by
/// the sender).
fn is_written(key: &str, value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Array(_) | Value::Object(_))
        && key != "metrics"
        && !key.starts_with('_')
        && !crate::row::KEY_FIELDS.contains(&key)
        && !super::batch::SET_BY_FIRST_ROW.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn user_fields_are_written_as_text_and_the_rest_stay_values() {
        let fields = LoggedFields::write_values(map(json!({
            "input": {"q": "a \"quoted\" question"},
            "output": "answer",
            "tags": ["t"],
            "metrics": {"tokens": 3},
            "scores": {"s": 1},
            "span_attributes": {"name": "n"},
            "id": "row",
            "_is_merge": true,
            "error": null,
            "weight": 2,
        })));
        let kinds: Vec<(&str, bool)> = fields
            .iter()
            .map(|(key, value)| (key, matches!(value, LoggedValue::Json(_))))
            .collect();
        assert_eq!(
            kinds,
            [
                ("input", true),
                ("output", true),
                ("tags", true),
                ("metrics", false),
                ("scores", true),
                ("span_attributes", false),
                ("id", false),
                ("_is_merge", false),
                ("error", false),
                ("weight", false),
            ]
        );
        assert!(fields.has_json_text());
        assert_eq!(
            serde_json::to_value(&fields).ok(),
            Some(json!({
                "input": {"q": "a \"quoted\" question"}, "output": "answer", "tags": ["t"],
                "metrics": {"tokens": 3}, "scores": {"s": 1}, "span_attributes": {"name": "n"},
                "id": "row", "_is_merge": true, "error": null, "weight": 2,
            }))
        );
    }

    /// Merging gives what merging the values gives, whichever side is text.
    #[test]
    fn merging_text_equals_merging_values() {
        let first = json!({
            "input": {"a": 1, "b": {"c": 2}}, "output": [1], "tags": ["x", "y"],
            "metadata": {"m": 1}, "expected": "e",
        });
        let second = json!({
            "input": {"b": {"d": 3}}, "output": {"o": 1}, "tags": ["y", "z"],
            "metadata": "flat", "expected": {"e": 1}, "error": "new",
        });
        for tags_union in [false, true] {
            let mut expected = LoggedFields::from(map(first.clone()));
            expected.merge(LoggedFields::from(map(second.clone())), tags_union);
            let expected = Value::Object(expected.into_map());
            for (text_first, text_second) in [(true, false), (false, true), (true, true)] {
                let side = |v: &Value, text: bool| {
                    if text {
                        LoggedFields::write_values(map(v.clone()))
                    } else {
                        LoggedFields::from(map(v.clone()))
                    }
                };
                let mut merged = side(&first, text_first);
                merged.merge(side(&second, text_second), tags_union);
                // Compared as text: the order of keys must match too.
                assert_eq!(
                    serde_json::to_string(&merged).ok(),
                    Some(expected.to_string()),
                    "tags_union {tags_union}, text {text_first} {text_second}"
                );
                assert_eq!(Value::Object(merged.into_map()), expected);
            }
        }
        let mut tags = LoggedFields::write_values(map(json!({"tags": ["x", "y"]})));
        tags.merge(
            LoggedFields::write_values(map(json!({"tags": ["y", "z"]}))),
            true,
        );
        assert_eq!(
            Value::Object(tags.into_map()),
            json!({"tags": ["x", "y", "z"]})
        );
    }

    /// The text is what `serde_json` writes, for values with escapes and non-ASCII text, and
    /// for one larger than a block and one after it.
    #[test]
    fn text_is_what_serde_json_writes() {
        let large = "x".repeat(BLOCK_BYTES + 10);
        let values = [
            json!({"q": "a \"quoted\"\nline \u{1} é 日本 🎉", "n": [1, -2, 0.5, null, true]}),
            json!(large),
            json!(["after", {"the": "large one"}]),
            json!({}),
        ];
        for value in values {
            let text = JsonText::of(&value).map(|t| t.get().to_owned());
            assert_eq!(text, serde_json::to_string(&value).ok());
        }
    }

    /// Texts written one after another on a thread lie one after another in one block; a value
    /// larger than a block gets a block of its own, which is not written into afterwards.
    #[test]
    fn texts_share_a_block() {
        let end = |text: &JsonText| text.as_bytes().as_ptr_range().end;
        let first = JsonText::of(&json!({"a": "first"}));
        let second = JsonText::of(&json!(["second"]));
        let (Some(first), Some(second)) = (first, second) else {
            panic!("both values are written");
        };
        assert_eq!(end(&first), second.as_bytes().as_ptr());
        assert_eq!(second.get(), r#"["second"]"#);

        let large = JsonText::of(&json!("x".repeat(BLOCK_BYTES * 2)));
        let after = JsonText::of(&json!("after"));
        let (Some(large), Some(after)) = (large, after) else {
            panic!("both values are written");
        };
        assert_eq!(large.as_bytes().len(), BLOCK_BYTES * 2 + 2);
        assert_ne!(end(&large), after.as_bytes().as_ptr());
        // Dropping texts leaves the others intact.
        drop(first);
        assert_eq!(second.get(), r#"["second"]"#);
        assert_eq!(after.get(), r#""after""#);
    }

    #[test]
    fn insert_and_remove_keep_order() {
        let mut fields = LoggedFields::from(map(json!({"a": 1, "b": 2, "c": 3})));
        fields.insert("b", LoggedValue::Value(json!(20)));
        fields.insert("d", LoggedValue::Value(json!(4)));
        assert!(matches!(fields.remove("a"), Some(LoggedValue::Value(v)) if v == json!(1)));
        assert!(fields.remove("a").is_none());
        assert_eq!(
            serde_json::to_string(&fields).ok().as_deref(),
            Some(r#"{"b":20,"c":3,"d":4}"#)
        );
        assert_eq!(fields.len(), 3);
        assert!(fields.contains_key("d") && !fields.contains_key("a"));
    }
}
