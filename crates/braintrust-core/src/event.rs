//! Logged events: the fields a caller logs on a span, validated before they become row fields.
//!
//! ```
//! use braintrust_core::event::Event;
//! use serde_json::json;
//!
//! let fields = Event::new()
//!     .input(json!({"question": "1+1"}))
//!     .output(json!("2"))
//!     .score("correct", true)
//!     .metadata_entry("model", json!("small"))
//!     .into_fields()?;
//! assert_eq!(fields["scores"], json!({"correct": 1}));
//!
//! // Loosely typed input is validated the same way.
//! let err = Event::from_value(json!({"scores": {"bad": 1.5}})).unwrap_err();
//! assert!(err.to_string().contains("bad"));
//! # Ok::<(), braintrust_core::event::EventError>(())
//! ```

use std::borrow::Cow;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::span::{JsonText, LoggedValue};

/// The type of a span (`span_attributes.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanType {
    /// A call to a language model.
    Llm,
    /// A scorer.
    Score,
    /// A Braintrust function.
    Function,
    /// The root span of an eval case.
    Eval,
    /// A unit of work (the default root type for loggers).
    Task,
    /// A tool call.
    Tool,
    /// An automation.
    Automation,
    /// A facet.
    Facet,
    /// A preprocessor.
    Preprocessor,
    /// A classifier.
    Classifier,
    /// A review.
    Review,
}

impl SpanType {
    /// Every span type.
    pub const ALL: [SpanType; 11] = [
        SpanType::Llm,
        SpanType::Score,
        SpanType::Function,
        SpanType::Eval,
        SpanType::Task,
        SpanType::Tool,
        SpanType::Automation,
        SpanType::Facet,
        SpanType::Preprocessor,
        SpanType::Classifier,
        SpanType::Review,
    ];

    /// The wire name (`llm`, `score`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanType::Llm => "llm",
            SpanType::Score => "score",
            SpanType::Function => "function",
            SpanType::Eval => "eval",
            SpanType::Task => "task",
            SpanType::Tool => "tool",
            SpanType::Automation => "automation",
            SpanType::Facet => "facet",
            SpanType::Preprocessor => "preprocessor",
            SpanType::Classifier => "classifier",
            SpanType::Review => "review",
        }
    }
}

impl std::fmt::Display for SpanType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SpanType {
    type Err = EventError;

    fn from_str(s: &str) -> Result<SpanType, EventError> {
        SpanType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| EventError::InvalidSpanType(s.to_owned()))
    }
}

/// `span_attributes` of a span: name, type, purpose and any extra keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanAttributes {
    /// The span's name (borrowed when it is a literal, as `#[traced]` gives it).
    pub name: Option<Cow<'static, str>>,
    /// The span's type.
    pub span_type: Option<SpanType>,
    /// `"scorer"` for scorer spans and their descendants.
    pub purpose: Option<String>,
    /// Other keys, kept as given.
    pub extra: Map<String, Value>,
}

impl SpanAttributes {
    /// Attributes with a name.
    pub fn named(name: impl Into<String>) -> SpanAttributes {
        SpanAttributes {
            name: Some(Cow::Owned(name.into())),
            ..SpanAttributes::default()
        }
    }

    /// Sets the type.
    pub fn with_type(mut self, span_type: SpanType) -> SpanAttributes {
        self.span_type = Some(span_type);
        self
    }

    /// The JSON object sent as `span_attributes`.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(name) = &self.name {
            map.insert("name".into(), Value::String(name.to_string()));
        }
        if let Some(t) = self.span_type {
            map.insert("type".into(), Value::String(t.as_str().into()));
        }
        if let Some(purpose) = &self.purpose {
            map.insert("purpose".into(), Value::String(purpose.clone()));
        }
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        map
    }

    /// Validates a JSON `span_attributes` object (the type must be a known span type).
    pub fn from_map(map: &Map<String, Value>) -> Result<SpanAttributes, EventError> {
        let mut attrs = SpanAttributes::default();
        for (k, v) in map {
            match (k.as_str(), v) {
                ("name", Value::String(s)) => attrs.name = Some(Cow::Owned(s.clone())),
                ("type", Value::String(s)) => attrs.span_type = Some(s.parse()?),
                ("purpose", Value::String(s)) => attrs.purpose = Some(s.clone()),
                ("name" | "type" | "purpose", Value::Null) => {}
                ("name" | "type" | "purpose", _) => {
                    return Err(EventError::WrongType {
                        field: "span_attributes",
                        expected: "string values for name, type and purpose",
                    });
                }
                _ => {
                    attrs.extra.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(attrs)
    }
}

/// Why an event was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// A key that events may not carry.
    #[error("unknown event field `{0}`")]
    UnknownField(String),
    /// A field of the wrong JSON type.
    #[error("event field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A score that is not a number in [0, 1], a boolean or null.
    #[error("score `{name}` must be a number between 0 and 1, a boolean or null (got {value})")]
    InvalidScore {
        /// The score's name.
        name: String,
        /// The offending value, as JSON text.
        value: String,
    },
    /// A metric that is not a finite number.
    #[error("metric `{name}` must be a finite number (got {value})")]
    InvalidMetric {
        /// The metric's name.
        name: String,
        /// The offending value, as JSON text.
        value: String,
    },
    /// A tag that is not a string, or a repeated tag.
    #[error("tags must be distinct strings (offending tag: {0})")]
    InvalidTag(String),
    /// A span type outside the known set.
    #[error(
        "unknown span type `{0}` (expected one of: llm, score, function, eval, task, tool, automation, facet, preprocessor, classifier, review)"
    )]
    InvalidSpanType(String),
    /// The event is not a JSON object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// A value given to be serialised (`Event::input_serialized`, …) could not be.
    #[error("event field `{field}` could not be serialised as JSON: {reason}")]
    NotSerializable {
        /// The field.
        field: &'static str,
        /// serde_json's reason.
        reason: String,
    },
}

/// Keys a logged event may carry.
const EVENT_KEYS: &[&str] = &[
    "input",
    "output",
    "expected",
    "error",
    "scores",
    "metadata",
    "metrics",
    "tags",
    "span_attributes",
    "context",
    "origin",
    "classifications",
    "id",
    "dataset_record_id",
    "created",
];

/// Fields to log on a span (or a dataset record), validated by [`Event::into_fields`].
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// The fields set, each once, in the order first set, named by [`EVENT_KEYS`]' own names
    /// (so that setting one allocates no name and finds it without hashing). Values given by
    /// reference are held as their JSON text.
    fields: Vec<(&'static str, LoggedValue)>,
    /// The first fault met while building (a name no event field has, a value that could not
    /// be serialised): the error validation reports.
    rejected: Option<EventError>,
}

impl PartialEq for Event {
    /// The same fields with the same values, in any order (as JSON objects compare; text is
    /// compared as the value it holds).
    fn eq(&self, other: &Event) -> bool {
        self.rejected == other.rejected
            && self.fields.len() == other.fields.len()
            && self.fields.iter().all(|(key, value)| {
                other
                    .position(key)
                    .is_some_and(|at| as_value(value) == as_value(&other.fields[at].1))
            })
    }
}

/// A field's value, parsed when it is held as text.
fn as_value(value: &LoggedValue) -> Cow<'_, Value> {
    match value {
        LoggedValue::Value(value) => Cow::Borrowed(value),
        LoggedValue::Json(text) => Cow::Owned(text.to_value()),
    }
}

/// Room an event's fields take with the first: the usual fields (input, output, expected,
/// metadata, metrics, scores, tags, error) without growing field by field. An empty event
/// allocates nothing.
const USUAL_FIELDS: usize = 8;

/// The event field named `key`, by its name in [`EVENT_KEYS`].
fn event_key(key: &str) -> Option<&'static str> {
    EVENT_KEYS.iter().copied().find(|known| *known == key)
}

impl Event {
    /// An empty event.
    pub fn new() -> Event {
        Event::default()
    }

    /// An event from a JSON object with the usual keys (`input`, `output`, `scores`, …).
    /// `inputs` is accepted as an alias of `input`. The result is validated.
    pub fn from_value(value: Value) -> Result<Event, EventError> {
        let Value::Object(map) = value else {
            return Err(EventError::NotAnObject);
        };
        let mut event = Event::new();
        for (k, v) in map {
            let key = if k == "inputs" { "input" } else { &k };
            let Some(key) = event_key(key) else {
                return Err(EventError::UnknownField(k));
            };
            event = event.set(key, v);
        }
        event.validate()?;
        Ok(event)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.fields.iter().position(|(k, _)| *k == key)
    }

    /// The field's value, parsed in place first when it is held as text.
    fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let at = self.position(key)?;
        let slot = &mut self.fields[at].1;
        if let LoggedValue::Json(text) = slot {
            *slot = LoggedValue::Value(text.to_value());
        }
        match slot {
            LoggedValue::Value(value) => Some(value),
            LoggedValue::Json(_) => None,
        }
    }

    /// Sets a field, in place when it is set already.
    fn set(self, key: &'static str, value: Value) -> Event {
        self.set_logged(key, LoggedValue::Value(value))
    }

    fn set_logged(mut self, key: &'static str, value: LoggedValue) -> Event {
        match self.position(key) {
            Some(at) => self.fields[at].1 = value,
            None => {
                if self.fields.capacity() == 0 {
                    self.fields.reserve_exact(USUAL_FIELDS);
                }
                self.fields.push((key, value));
            }
        }
        self
    }

    /// Sets a field to `value`'s JSON text, written now.
    fn set_serialized<T: Serialize + ?Sized>(mut self, key: &'static str, value: &T) -> Event {
        match JsonText::serialize(value) {
            Ok(text) => self.set_logged(key, LoggedValue::Json(text)),
            Err(e) => {
                self.rejected.get_or_insert(EventError::NotSerializable {
                    field: key,
                    reason: e.to_string(),
                });
                self
            }
        }
    }

    fn object_entry(mut self, field: &'static str, name: impl Into<String>, value: Value) -> Event {
        if let Some(Value::Object(map)) = self.get_mut(field) {
            map.insert(name.into(), value);
            return self;
        }
        // Metrics and metadata entries usually come several at a time.
        let mut map = Map::with_capacity(4);
        map.insert(name.into(), value);
        self.set(field, Value::Object(map))
    }

    /// Sets `input`.
    pub fn input(self, value: Value) -> Event {
        self.set("input", value)
    }

    /// Sets `output`.
    pub fn output(self, value: Value) -> Event {
        self.set("output", value)
    }

    /// Sets `expected`.
    pub fn expected(self, value: Value) -> Event {
        self.set("expected", value)
    }

    /// Sets `error`.
    pub fn error(self, value: Value) -> Event {
        self.set("error", value)
    }

    /// Sets `input` to any serialisable value, by reference: its JSON text is written now, so
    /// the caller neither copies a value it keeps nor builds a `serde_json::Value` from a typed
    /// one. A value that cannot be serialised fails validation
    /// ([`EventError::NotSerializable`]).
    ///
    /// ```
    /// use braintrust_core::event::Event;
    /// use serde_json::json;
    ///
    /// #[derive(serde::Serialize)]
    /// struct Question<'a> {
    ///     text: &'a str,
    /// }
    ///
    /// let fields = Event::new()
    ///     .input_serialized(&Question { text: "1+1" })
    ///     .output_serialized("2")
    ///     .into_fields()?;
    /// assert_eq!(fields["input"], json!({"text": "1+1"}));
    /// assert_eq!(fields["output"], json!("2"));
    /// # Ok::<(), braintrust_core::event::EventError>(())
    /// ```
    pub fn input_serialized<T: Serialize + ?Sized>(self, value: &T) -> Event {
        self.set_serialized("input", value)
    }

    /// Sets `output` to any serialisable value, by reference (see [`Event::input_serialized`]).
    pub fn output_serialized<T: Serialize + ?Sized>(self, value: &T) -> Event {
        self.set_serialized("output", value)
    }

    /// Sets `expected` to any serialisable value, by reference (see
    /// [`Event::input_serialized`]).
    pub fn expected_serialized<T: Serialize + ?Sized>(self, value: &T) -> Event {
        self.set_serialized("expected", value)
    }

    /// Replaces `metadata` with any value serialised as a JSON object, by reference (see
    /// [`Event::input_serialized`]).
    pub fn metadata_serialized<T: Serialize + ?Sized>(self, value: &T) -> Event {
        self.set_serialized("metadata", value)
    }

    /// Adds one score: a number in [0, 1], a boolean (1 or 0) or `None` (null).
    pub fn score(self, name: impl Into<String>, value: impl Into<ScoreValue>) -> Event {
        let value = value.into().to_json();
        self.object_entry("scores", name, value)
    }

    /// Adds one metric.
    pub fn metric(self, name: impl Into<String>, value: f64) -> Event {
        let value = Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.object_entry("metrics", name, value)
    }

    /// Adds one metadata entry.
    pub fn metadata_entry(self, key: impl Into<String>, value: Value) -> Event {
        self.object_entry("metadata", key, value)
    }

    /// Replaces `metadata` (must be an object).
    pub fn metadata(self, value: Value) -> Event {
        self.set("metadata", value)
    }

    /// Sets `tags`.
    pub fn tags<S: Into<String>>(self, tags: impl IntoIterator<Item = S>) -> Event {
        let tags = tags.into_iter().map(|t| Value::String(t.into())).collect();
        self.set("tags", Value::Array(tags))
    }

    /// Sets any other allowed field (`context`, `origin`, `span_attributes`, …).
    pub fn field(mut self, key: &str, value: Value) -> Event {
        match event_key(key) {
            Some(key) => self.set(key, value),
            None => {
                self.rejected
                    .get_or_insert_with(|| EventError::UnknownField(key.to_owned()));
                self
            }
        }
    }

    /// Whether nothing was set.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.rejected.is_none()
    }

    /// Validates and returns the row fields: scores as numbers in [0, 1] or null (booleans become
    /// 1/0), metrics as finite numbers, metadata an object, tags distinct strings, a known span
    /// type.
    pub fn into_fields(self) -> Result<Map<String, Value>, EventError> {
        Ok(self
            .into_named_fields()?
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.into_value()))
            .collect())
    }

    /// [`Event::into_fields`] with the fields' names as `'static` strings, for code that keeps
    /// them (a span's log) without allocating them.
    pub(crate) fn into_named_fields(
        mut self,
    ) -> Result<Vec<(&'static str, LoggedValue)>, EventError> {
        self.validate()?;
        if let Some(Value::Object(scores)) = self.get_mut("scores") {
            for value in scores.values_mut() {
                if let Value::Bool(b) = value {
                    *value = Value::from(u8::from(*b));
                }
            }
        }
        Ok(self.fields)
    }

    fn validate(&self) -> Result<(), EventError> {
        // One pass finds the fields checked below, then they are checked in a fixed order, so
        // an event with several faults gets one answer.
        if let Some(fault) = &self.rejected {
            return Err(fault.clone());
        }
        let (mut scores, mut metrics, mut metadata, mut tags, mut attributes) =
            (None, None, None, None, None);
        for (key, value) in &self.fields {
            match *key {
                "scores" => scores = Some(as_value(value)),
                "metrics" => metrics = Some(as_value(value)),
                "metadata" => metadata = Some(value),
                "tags" => tags = Some(as_value(value)),
                "span_attributes" => attributes = Some(as_value(value)),
                _ => {}
            }
        }
        if let Some(scores) = scores {
            validate_scores(&scores)?;
        }
        if let Some(metrics) = metrics {
            let map = metrics.as_object().ok_or(EventError::WrongType {
                field: "metrics",
                expected: "an object",
            })?;
            for (name, value) in map {
                if !value.is_number() {
                    return Err(EventError::InvalidMetric {
                        name: name.clone(),
                        value: value.to_string(),
                    });
                }
            }
        }
        if metadata.is_some_and(|m| !m.is_object()) {
            return Err(EventError::WrongType {
                field: "metadata",
                expected: "an object with string keys",
            });
        }
        match tags.as_deref() {
            None | Some(Value::Null) => {}
            Some(Value::Array(tags)) => {
                let mut seen = std::collections::HashSet::new();
                for tag in tags {
                    match tag.as_str() {
                        Some(s) if seen.insert(s) => {}
                        _ => return Err(EventError::InvalidTag(tag.to_string())),
                    }
                }
            }
            Some(_) => {
                return Err(EventError::WrongType {
                    field: "tags",
                    expected: "an array of strings",
                });
            }
        }
        if let Some(attrs) = attributes {
            let map = attrs.as_object().ok_or(EventError::WrongType {
                field: "span_attributes",
                expected: "an object",
            })?;
            SpanAttributes::from_map(map)?;
        }
        Ok(())
    }
}

fn validate_scores(scores: &Value) -> Result<(), EventError> {
    let map = scores.as_object().ok_or(EventError::WrongType {
        field: "scores",
        expected: "an object of score names to numbers",
    })?;
    for (name, value) in map {
        let ok = match value {
            Value::Null | Value::Bool(_) => true,
            Value::Number(n) => n.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)),
            _ => false,
        };
        if !ok {
            return Err(EventError::InvalidScore {
                name: name.clone(),
                value: value.to_string(),
            });
        }
    }
    Ok(())
}

/// A score value: a number, a boolean or null.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreValue {
    /// A number (valid when finite and within [0, 1]).
    Number(f64),
    /// A boolean, logged as 1 or 0.
    Bool(bool),
    /// No score (null): the scorer chose to skip.
    Null,
}

impl ScoreValue {
    pub(crate) fn to_json(self) -> Value {
        match self {
            // Non-finite numbers become a string so that validation reports them.
            ScoreValue::Number(f) => {
                Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
            }
            ScoreValue::Bool(b) => Value::Bool(b),
            ScoreValue::Null => Value::Null,
        }
    }
}

impl From<f64> for ScoreValue {
    fn from(v: f64) -> ScoreValue {
        ScoreValue::Number(v)
    }
}

impl From<f32> for ScoreValue {
    fn from(v: f32) -> ScoreValue {
        ScoreValue::Number(f64::from(v))
    }
}

impl From<bool> for ScoreValue {
    fn from(v: bool) -> ScoreValue {
        ScoreValue::Bool(v)
    }
}

impl<T: Into<ScoreValue>> From<Option<T>> for ScoreValue {
    fn from(v: Option<T>) -> ScoreValue {
        v.map_or(ScoreValue::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scores_accept_numbers_booleans_and_null() {
        let fields = Event::new()
            .score("a", 0.25)
            .score("b", false)
            .score("c", None::<f64>)
            .into_fields()
            .unwrap();
        assert_eq!(fields["scores"], json!({"a": 0.25, "b": 0, "c": null}));
    }

    #[test]
    fn invalid_scores_are_rejected() {
        for bad in [
            json!(1.01),
            json!(-0.1),
            json!("0.5"),
            json!([1]),
            json!({"x": 1}),
        ] {
            let err = Event::from_value(json!({"scores": {"s": bad}})).unwrap_err();
            assert!(
                matches!(err, EventError::InvalidScore { ref name, .. } if name == "s"),
                "{err}"
            );
        }
        let err = Event::new()
            .score("nan", f64::NAN)
            .into_fields()
            .unwrap_err();
        assert!(matches!(err, EventError::InvalidScore { .. }));
        assert!(Event::from_value(json!({"scores": [1]})).is_err());
    }

    #[test]
    fn metrics_metadata_and_tags_are_validated() {
        assert!(matches!(
            Event::from_value(json!({"metrics": {"m": "fast"}})),
            Err(EventError::InvalidMetric { .. })
        ));
        assert!(matches!(
            Event::from_value(json!({"metadata": [1, 2]})),
            Err(EventError::WrongType {
                field: "metadata",
                ..
            })
        ));
        assert!(matches!(
            Event::from_value(json!({"tags": ["a", "a"]})),
            Err(EventError::InvalidTag(_))
        ));
        assert!(matches!(
            Event::from_value(json!({"tags": ["a", 1]})),
            Err(EventError::InvalidTag(_))
        ));
        assert!(Event::from_value(json!({"tags": null})).is_ok());
        assert!(matches!(
            Event::new().metric("inf", f64::INFINITY).into_fields(),
            Err(EventError::InvalidMetric { .. })
        ));
    }

    #[test]
    fn unknown_fields_and_non_objects_are_rejected_and_inputs_is_an_alias() {
        assert_eq!(
            Event::from_value(json!({"outputs": 1})),
            Err(EventError::UnknownField("outputs".into()))
        );
        assert_eq!(Event::from_value(json!(3)), Err(EventError::NotAnObject));
        let fields = Event::from_value(json!({"inputs": {"a": 1}}))
            .unwrap()
            .into_fields()
            .unwrap();
        assert_eq!(fields["input"], json!({"a": 1}));
    }

    #[test]
    fn an_event_with_several_faults_gets_the_same_error_whatever_its_field_order() {
        // Unknown fields first, then scores, metrics, metadata, tags, span attributes.
        let faults = [
            ("outputs", json!(1)),
            ("scores", json!({"s": 2})),
            ("metrics", json!({"m": "x"})),
            ("metadata", json!(1)),
            ("tags", json!(1)),
            ("span_attributes", json!(1)),
        ];
        for first in 0..faults.len() {
            for second in first + 1..faults.len() {
                for (a, b) in [(first, second), (second, first)] {
                    let mut event = Map::new();
                    for i in [a, b] {
                        event.insert(faults[i].0.into(), faults[i].1.clone());
                    }
                    let err = Event::from_value(Value::Object(event.clone())).unwrap_err();
                    let expected = match faults[first].0 {
                        "outputs" => "UnknownField",
                        "scores" => "InvalidScore",
                        "metrics" => "InvalidMetric",
                        _ => "WrongType",
                    };
                    assert!(
                        format!("{err:?}").starts_with(expected),
                        "{event:?}: {err:?}"
                    );
                    if let EventError::WrongType { field, .. } = err {
                        assert_eq!(field, faults[first].0, "{event:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn fields_keep_their_first_place_and_events_compare_as_objects() {
        let event = Event::new()
            .input(json!(1))
            .output(json!(2))
            .input(json!(3));
        let fields = event.clone().into_fields().unwrap();
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["input", "output"]);
        assert_eq!(fields["input"], json!(3));
        assert_eq!(event, Event::new().output(json!(2)).input(json!(3)));
        assert_ne!(event, Event::new().output(json!(2)));
        assert_eq!(
            Event::new().field("output", json!(1)),
            Event::new().output(json!(1))
        );
        // A name no event field has is kept for validation to report, the first one given.
        let unknown = Event::new()
            .field("outputs", json!(1))
            .field("other", json!(2));
        assert!(!unknown.is_empty());
        assert_ne!(unknown, Event::new());
        assert_eq!(
            unknown.into_fields(),
            Err(EventError::UnknownField("outputs".into()))
        );
    }

    #[test]
    fn span_types_parse_and_reject_unknown_names() {
        for t in SpanType::ALL {
            assert_eq!(t.as_str().parse::<SpanType>().unwrap(), t);
        }
        assert!(matches!(
            "agent".parse::<SpanType>(),
            Err(EventError::InvalidSpanType(_))
        ));
        assert!(matches!(
            Event::from_value(json!({"span_attributes": {"type": "agent"}})),
            Err(EventError::InvalidSpanType(_))
        ));
    }

    #[test]
    fn span_attributes_keep_extra_keys_in_order() {
        let mut attrs = SpanAttributes::named("root").with_type(SpanType::Task);
        attrs.purpose = Some("scorer".into());
        attrs.extra.insert("exec_counter".into(), json!(3));
        let map = attrs.to_map();
        assert_eq!(
            Value::Object(map.clone()),
            json!({"name": "root", "type": "task", "purpose": "scorer", "exec_counter": 3})
        );
        assert_eq!(SpanAttributes::from_map(&map).unwrap(), attrs);
    }

    /// A typed value with most of serde's shapes.
    #[derive(serde::Serialize)]
    struct Typed {
        text: &'static str,
        number: f64,
        not_a_number: f64,
        wide: i128,
        letter: char,
        nothing: Option<u8>,
        pair: (u8, &'static str),
        by_number: std::collections::BTreeMap<u32, bool>,
        kinds: Vec<Kind>,
    }

    #[derive(serde::Serialize)]
    enum Kind {
        Unit,
        Newtype(u8),
        Tuple(u8, u8),
        Struct { x: i8 },
    }

    fn typed() -> Typed {
        Typed {
            text: "a \"quoted\" line\n",
            number: 0.5,
            not_a_number: f64::NAN,
            wide: i128::from(i64::MIN),
            letter: 'é',
            nothing: None,
            pair: (1, "one"),
            by_number: [(2, true), (10, false)].into_iter().collect(),
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(1),
                Kind::Tuple(1, 2),
                Kind::Struct { x: -1 },
            ],
        }
    }

    #[test]
    fn values_given_by_reference_log_what_serde_json_makes_of_them() {
        let typed = typed();
        let expected = serde_json::to_value(&typed).unwrap();
        // serde_json's own reading of a few shapes, so that the comparison means something.
        assert_eq!(expected["not_a_number"], Value::Null);
        assert_eq!(expected["by_number"], json!({"2": true, "10": false}));
        assert_eq!(expected["kinds"][3], json!({"Struct": {"x": -1}}));

        let event = Event::new()
            .input_serialized(&typed)
            .output_serialized("done")
            .expected_serialized(&[1, 2])
            .metadata_serialized(&json!({"model": "m"}));
        assert_eq!(
            event,
            Event::new()
                .input(expected.clone())
                .output(json!("done"))
                .expected(json!([1, 2]))
                .metadata(json!({"model": "m"}))
        );
        let fields = event.into_fields().unwrap();
        assert_eq!(fields["input"], expected);
        assert_eq!(fields["output"], json!("done"));
        assert_eq!(fields["expected"], json!([1, 2]));
    }

    #[test]
    fn metadata_given_by_reference_must_be_an_object_and_takes_more_entries() {
        let err = Event::new()
            .metadata_serialized(&[1, 2])
            .into_fields()
            .unwrap_err();
        assert_eq!(
            err,
            EventError::WrongType {
                field: "metadata",
                expected: "an object with string keys"
            }
        );
        let fields = Event::new()
            .metadata_serialized(&json!({"model": "m"}))
            .metadata_entry("user", json!("u"))
            .into_fields()
            .unwrap();
        assert_eq!(fields["metadata"], json!({"model": "m", "user": "u"}));
    }

    #[test]
    fn a_value_that_cannot_be_serialised_fails_validation_with_the_reason() {
        // JSON object keys are strings (or numbers, written as strings); a pair is neither.
        let by_pair: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        let event = Event::new()
            .input_serialized(&by_pair)
            .output(json!("fine"));
        assert!(!event.is_empty());
        match event.into_fields() {
            Err(EventError::NotSerializable { field, reason }) => {
                assert_eq!(field, "input");
                assert!(reason.contains("key must be a string"), "{reason}");
            }
            other => panic!("expected NotSerializable, got {other:?}"),
        }
    }
}
