//! Spans: handles that write a span's rows to a [`SpanSink`] (a logger or an experiment).
//!
//! A [`Span`] is a cheap, clonable handle. Starting it, logging to it and ending it hand
//! [`PendingRow`]s to its sink and never wait on the network. A span ends when [`Span::end`] is
//! called or, failing that, when its last handle is dropped. The no-op span ([`Span::noop`]) —
//! what [`crate::context::current_span`] returns when nothing is traced — accepts every call,
//! sends nothing and exports `""`.
//!
//! Rows whose object is not known yet (a project named but not yet registered) carry an
//! [`ObjectRef`] that the sink resolves in the background before sending.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arrayvec::ArrayVec;
use serde_json::{Map, Value};

use crate::attachment::Attachment;
use crate::event::{Event, EventError, SpanAttributes, SpanType};
use crate::id::IdFormat;
use crate::merge::merge_fields;
use crate::object::{ObjectIds, ObjectType};
use crate::origin::{CallerLocation, LOGGER_INSTRUMENTATION};
use crate::row::{Row, SpanIdentity, SpanParents, format_created, next_exec_counter};
use crate::span_components::{SlugObject, SlugVersion, SpanComponents, SpanObjectType, SpanRowIds};

mod batch;
mod logged;

pub use batch::{BatchRow, RowBatch};
pub use logged::{JsonText, LoggedFields, LoggedValue};

/// The object rows go to: known ids, or a project to resolve by name first.
#[derive(Clone)]
pub struct ObjectRef(Arc<ObjectCell>);

struct ObjectCell {
    object_type: ObjectType,
    ids: OnceLock<ObjectIds>,
    /// `compute_object_metadata_args` of a lazily resolved project, or the registration request
    /// of an experiment or dataset.
    lazy_args: Option<Map<String, Value>>,
    /// The server's description of a registered experiment or dataset.
    registration: OnceLock<Map<String, Value>>,
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ids() {
            Some(ids) => write!(f, "ObjectRef({} {})", ids.object_type(), ids.id()),
            None => write!(f, "ObjectRef(lazy {:?})", self.0.lazy_args),
        }
    }
}

impl ObjectRef {
    /// An object whose ids are known.
    pub fn resolved(ids: ObjectIds) -> ObjectRef {
        let cell = OnceLock::new();
        let object_type = ids.object_type();
        let _ = cell.set(ids);
        ObjectRef(Arc::new(ObjectCell {
            object_type,
            ids: cell,
            lazy_args: None,
            registration: OnceLock::new(),
        }))
    }

    /// Project logs of the project called `name`, registered (get-or-create) before sending.
    pub fn project_named(name: impl Into<String>) -> ObjectRef {
        let mut args = Map::new();
        args.insert("project_name".into(), Value::String(name.into()));
        args.insert("project_id".into(), Value::Null);
        ObjectRef::lazy(args)
    }

    /// Project logs resolved from `compute_object_metadata_args` (as found in export slugs).
    /// A non-null `project_id` in the arguments makes the object resolved at once.
    pub fn lazy(args: Map<String, Value>) -> ObjectRef {
        if let Some(id) = args.get("project_id").and_then(Value::as_str) {
            return ObjectRef::resolved(ObjectIds::project_logs(id));
        }
        ObjectRef(Arc::new(ObjectCell {
            object_type: ObjectType::ProjectLogs,
            ids: OnceLock::new(),
            lazy_args: Some(args),
            registration: OnceLock::new(),
        }))
    }

    /// An experiment or dataset that the sink registers before sending its first rows.
    /// `request` is the registration request: `project_name` or `project_id` plus the
    /// object's fields (`name`, `description`, …), as the sink understands them.
    pub fn registering(object_type: ObjectType, request: Map<String, Value>) -> ObjectRef {
        ObjectRef(Arc::new(ObjectCell {
            object_type,
            ids: OnceLock::new(),
            lazy_args: Some(request),
            registration: OnceLock::new(),
        }))
    }

    /// What the server answered when the object was registered (its name, ids, creation
    /// time, …), once known.
    pub fn registration(&self) -> Option<&Map<String, Value>> {
        self.0.registration.get()
    }

    /// Records the server's answer to the registration (the first one wins).
    pub fn set_registration(&self, registration: Map<String, Value>) {
        let _ = self.0.registration.set(registration);
    }

    /// The kind of object.
    pub fn object_type(&self) -> ObjectType {
        self.0.object_type
    }

    /// The ids, once known.
    pub fn ids(&self) -> Option<&ObjectIds> {
        self.0.ids.get()
    }

    /// Records the resolved ids (the first resolution wins).
    pub fn set_ids(&self, ids: ObjectIds) {
        let _ = self.0.ids.set(ids);
    }

    /// The arguments of a lazily resolved project (or the registration request of an
    /// experiment or dataset), if this is one.
    pub fn lazy_args(&self) -> Option<&Map<String, Value>> {
        self.0.lazy_args.as_ref()
    }

    /// The project name of a lazily resolved object.
    pub fn project_name(&self) -> Option<&str> {
        self.lazy_args()?.get("project_name")?.as_str()
    }

    /// Whether two references denote the same object.
    pub fn same_object(&self, other: &ObjectRef) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        match (self.ids(), other.ids()) {
            (Some(a), Some(b)) => a == b,
            // Two registrations of an experiment or dataset are different objects even with
            // equal requests; lazily named project logs are the same project.
            (None, None) => {
                self.object_type() == ObjectType::ProjectLogs
                    && other.object_type() == ObjectType::ProjectLogs
                    && self.lazy_args() == other.lazy_args()
            }
            _ => false,
        }
    }

    /// The slug object part, or `None` for objects spans cannot live in (datasets).
    fn slug_object(&self) -> Option<(SpanObjectType, SlugObject)> {
        let object_type = match self.object_type() {
            ObjectType::Experiment => SpanObjectType::Experiment,
            ObjectType::ProjectLogs => SpanObjectType::ProjectLogs,
            ObjectType::PlaygroundLogs => SpanObjectType::PlaygroundLogs,
            ObjectType::Dataset => return None,
        };
        let object = match (self.ids(), self.lazy_args()) {
            (Some(ids), _) => SlugObject::Id(ids.id().to_owned()),
            // Only project logs are exported by name; other objects need their id.
            (None, Some(args)) if object_type == SpanObjectType::ProjectLogs => {
                SlugObject::Lazy(args.clone())
            }
            (None, _) => return None,
        };
        Some((object_type, object))
    }

    /// The object-only export (`logger.export()`): the ids once known, else the lazy arguments.
    pub fn export(&self, version: SlugVersion) -> String {
        match self.slug_object() {
            Some((object_type, object)) => SpanComponents {
                object_type,
                object,
                row: None,
                propagated_event: None,
            }
            .encode(version),
            None => String::new(),
        }
    }
}

/// How a new span records where it came from (`context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanOrigin {
    /// `span_origin.instrumentation.name`: the module that created the span.
    pub instrumentation: Cow<'static, str>,
    /// Where in the user's code the span started, when known.
    pub caller: Option<CallerLocation>,
}

/// A row on its way to a sink: built lazily in the background, where object ids are known.
#[derive(Debug)]
pub struct PendingRow {
    /// The object, when the row does not carry its ids itself.
    pub object: Option<ObjectRef>,
    /// What to write.
    pub kind: PendingKind,
}

/// A span's first row, as [`PendingKind::SpanStart`] carries it.
#[derive(Debug)]
pub struct SpanStartRow {
    /// The span.
    pub span: SpanIdentity,
    /// Name, type and other attributes.
    pub attributes: SpanAttributes,
    /// `span_attributes.exec_counter`.
    pub exec_counter: u64,
    /// Where the span came from.
    pub origin: SpanOrigin,
    /// Start time.
    pub start: SystemTime,
    /// Fields logged at start (validated).
    pub fields: Map<String, Value>,
    /// `input`, when it was given on its own (traced calls): the row is built on the
    /// sender's thread instead of the caller's.
    pub input: Option<CapturedInput>,
    /// Fields computed on the sender's thread, merged after `fields`.
    pub deferred: Option<DeferredEvent>,
}

/// The kinds of [`PendingRow`].
// Boxing the start variant would cost an allocation per span on the caller's path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum PendingKind {
    /// A span's first row.
    SpanStart(SpanStartRow),
    /// Fields logged on a span (a merge row).
    SpanUpdate {
        /// The span.
        span: SpanIdentity,
        /// Validated fields.
        fields: LoggedFields,
    },
    /// A span's end (`metrics.end`), with any fields logged at the end in the same row.
    SpanEnd {
        /// The span.
        span: SpanIdentity,
        /// End time.
        end: SystemTime,
        /// Validated fields logged with the end (usually none).
        fields: LoggedFields,
        /// `output`, when it was given on its own (traced calls).
        output: Option<Value>,
        /// Fields computed on the sender's thread, merged after `fields`.
        deferred: Option<DeferredEvent>,
    },
    /// Any other row (feedback, dataset records, updates by id); object ids are added.
    Fields(Map<String, Value>),
    /// A complete row, sent as is.
    Row(Row),
}

impl PendingRow {
    /// A complete row that already carries its object ids.
    pub fn row(row: Row) -> PendingRow {
        PendingRow {
            object: None,
            kind: PendingKind::Row(row),
        }
    }

    /// Builds the `/logs3` row, with the object's ids once they are known (complete rows are
    /// returned as they are). Attachments made by a [`DeferredEvent`] are dropped: sinks that
    /// upload attachments use [`PendingRow::into_row_and_attachments`].
    pub fn into_row(self) -> Row {
        self.into_row_and_attachments().0
    }

    /// Builds the `/logs3` row (see [`PendingRow::into_row`]), running its [`DeferredEvent`]
    /// if it has one, and returns the attachments that event made.
    pub fn into_row_and_attachments(self) -> (Row, Vec<Attachment>) {
        let mut attachments = Vec::new();
        let row = self.build(&mut attachments);
        (row, attachments)
    }

    fn build(self, attachments: &mut Vec<Attachment>) -> Row {
        let PendingRow { object, kind } = self;
        let ids = object.as_ref().and_then(ObjectRef::ids);
        let write_ids = |map: &mut Map<String, Value>| {
            if let Some(ids) = ids {
                ids.write_to(map);
            }
        };
        match kind {
            PendingKind::Row(row) => row,
            PendingKind::Fields(mut map) => {
                write_ids(&mut map);
                Row::from_map(map)
            }
            PendingKind::SpanStart(start) => {
                BatchRow::first_row(object, start, attachments).into_row()
            }
            kind @ (PendingKind::SpanUpdate { .. } | PendingKind::SpanEnd { .. }) => {
                let mut map = Map::new();
                if let Ok((span, body)) = kind.into_span_body(attachments) {
                    span.write_to(&mut map);
                    write_ids(&mut map);
                    merge_fields(&mut map, body.into_map());
                }
                map.insert("_is_merge".into(), Value::Bool(true));
                Row::from_map(map)
            }
        }
    }
}

impl PendingKind {
    /// A span's later row (a log or its end) as its span and the fields it merges into the
    /// span's first row, without the span's and object's ids (running a [`DeferredEvent`]).
    /// Other kinds come back unchanged.
    // The error is the kind handed back as it came; boxing it would allocate per row.
    #[allow(clippy::result_large_err)]
    fn into_span_body(
        self,
        attachments: &mut Vec<Attachment>,
    ) -> Result<(SpanIdentity, LoggedFields), PendingKind> {
        match self {
            PendingKind::SpanUpdate { span, fields } => Ok((span, fields)),
            PendingKind::SpanEnd {
                span,
                end,
                fields,
                output,
                deferred,
            } => {
                let mut body = LoggedFields::new();
                let mut metrics = Map::new();
                metrics.insert("end".into(), seconds(end));
                body.insert("metrics", LoggedValue::Value(Value::Object(metrics)));
                body.merge(fields, false);
                if let Some(output) = output {
                    body.insert("output", LoggedValue::Value(output));
                }
                if let Some(deferred) = deferred {
                    body.merge(LoggedFields::from(deferred.compute(attachments)), false);
                }
                Ok((span, body))
            }
            other => Err(other),
        }
    }
}

fn seconds(time: SystemTime) -> Value {
    serde_json::Number::from_f64(crate::row::unix_seconds(time)).map_or(Value::Null, Value::Number)
}

/// Why a flush did not deliver everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// Rows failed delivery (or were dropped) since the previous flush.
    #[error("{rows} rows were not delivered since the last flush; last error: {last_error}")]
    Undelivered {
        /// How many rows.
        rows: u64,
        /// The last error seen.
        last_error: String,
    },
    /// Attachment uploads failed since the previous flush (the rows referencing them were
    /// delivered; their attachments' status is `error`).
    #[error(
        "{attachments} attachment uploads failed since the last flush; last error: {last_error}"
    )]
    AttachmentsFailed {
        /// How many attachments.
        attachments: u64,
        /// The last error seen.
        last_error: String,
    },
    /// Attachment uploads were still running when the flush's deadline passed (they go on in
    /// the background).
    #[error("{attachments} attachment uploads were still running at the flush deadline")]
    AttachmentsPending {
        /// How many attachments.
        attachments: u64,
    },
    /// The background sender is gone.
    #[error("the background sender has stopped")]
    Stopped,
}

/// Why a permalink could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The slug could not be parsed.
    #[error(transparent)]
    Slug(#[from] crate::span_components::SlugError),
    /// Login or project resolution failed.
    #[error("cannot resolve the link: {0}")]
    Resolve(String),
    /// The object has no permalink (a dataset).
    #[error("objects of type {0} have no span permalink")]
    Unsupported(String),
}

/// Where spans write their rows: a logger, an experiment, or a test double.
pub trait SpanSink: Send + Sync + fmt::Debug {
    /// Queues a row. Must not wait on the network.
    fn submit(&self, row: PendingRow);
    /// Delivers everything submitted so far.
    fn flush(&self) -> Result<(), FlushError>;
    /// The id format of new spans.
    fn id_format(&self) -> IdFormat {
        IdFormat::Hex
    }
    /// The type given to root spans that set none (`task` for loggers, `eval` for experiments).
    fn default_root_type(&self) -> Option<SpanType> {
        None
    }
    /// A permalink to a span or object (may log in and resolve the object).
    fn permalink(&self, components: &SpanComponents) -> Result<String, LinkError>;
    /// Registers `object` now if it is not resolved yet, waiting for the answer. Exports of
    /// spans in experiments need the experiment's id; the default does nothing.
    fn resolve_object(&self, object: &ObjectRef) -> Result<(), LinkError> {
        let _ = object;
        Ok(())
    }
}

/// Options of a new span (all optional). Build with the setters:
/// `StartSpan::named("retrieve").span_type(SpanType::Tool)`.
///
/// Cloning copies every option except a [`StartSpan::deferred_event`], which runs once.
#[derive(Debug, Default)]
pub struct StartSpan {
    pub(crate) attributes: SpanAttributes,
    pub(crate) parent: Option<Parent>,
    pub(crate) start_time: Option<SystemTime>,
    pub(crate) fields: Map<String, Value>,
    pub(crate) invalid_event: Option<EventError>,
    pub(crate) propagated_event: Option<Map<String, Value>>,
    pub(crate) set_current: Option<bool>,
    pub(crate) origin: Option<SpanOrigin>,
    /// `input` given on its own (see [`PendingKind::SpanStart`]).
    pub(crate) input: Option<CapturedInput>,
    /// Fields computed on the sender's thread.
    pub(crate) deferred: Option<DeferredEvent>,
}

impl Clone for StartSpan {
    fn clone(&self) -> StartSpan {
        StartSpan {
            attributes: self.attributes.clone(),
            parent: self.parent.clone(),
            start_time: self.start_time,
            fields: self.fields.clone(),
            invalid_event: self.invalid_event.clone(),
            propagated_event: self.propagated_event.clone(),
            set_current: self.set_current,
            origin: self.origin.clone(),
            input: self.input.clone(),
            deferred: None,
        }
    }
}

/// Span fields computed when the row is built, on the sender's thread, instead of on the
/// caller's: for fields that are costly to build (an LLM call's request and response, parsed
/// from the bytes that went over the wire). The closure also collects the attachments its
/// event references, so that they are uploaded with the row.
pub struct DeferredEvent(Box<BuildEvent>);

/// The closure of a [`DeferredEvent`].
type BuildEvent = dyn FnOnce(&mut Vec<Attachment>) -> Event + Send;

impl DeferredEvent {
    /// Fields that `build` computes later. An event that fails validation is reported through
    /// `tracing` and left out of the row.
    pub fn new(build: impl FnOnce(&mut Vec<Attachment>) -> Event + Send + 'static) -> Self {
        DeferredEvent(Box::new(build))
    }

    /// Runs the closure: the validated fields, or none.
    pub fn compute(self, attachments: &mut Vec<Attachment>) -> Map<String, Value> {
        match (self.0)(attachments).into_fields() {
            Ok(fields) => fields,
            Err(e) => {
                tracing::warn!("braintrust: invalid deferred span fields left out: {e}");
                Map::new()
            }
        }
    }
}

impl fmt::Debug for DeferredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeferredEvent(..)")
    }
}

/// A span's `input` as a traced call captured it: turned into JSON when the row is built, on
/// the sender's thread, so the caller does not build a map per call.
// Boxing the arguments would cost the allocation they are held inline to avoid.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CapturedInput {
    /// A ready value.
    Value(Value),
    /// Named arguments, logged as an object in this order.
    Args(CapturedArgs),
}

impl CapturedInput {
    /// The captured values (to look for attachments in).
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        let (one, args) = match self {
            CapturedInput::Value(value) => (Some(value), None),
            CapturedInput::Args(args) => (None, Some(args.iter().map(|(_, v)| v))),
        };
        one.into_iter().chain(args.into_iter().flatten())
    }

    /// The JSON `input`.
    pub fn into_value(self) -> Value {
        match self {
            CapturedInput::Value(value) => value,
            CapturedInput::Args(args) => Value::Object(
                args.inline
                    .into_iter()
                    .chain(args.more)
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect(),
            ),
        }
    }
}

/// How many arguments [`CapturedArgs`] holds without allocating.
const INLINE_ARGS: usize = 3;

/// The named arguments of a traced call, in order. The first three are held inline, so
/// capturing a typical call allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct CapturedArgs {
    inline: ArrayVec<(&'static str, Value), INLINE_ARGS>,
    more: Vec<(&'static str, Value)>,
}

impl CapturedArgs {
    /// No arguments.
    pub fn new() -> CapturedArgs {
        CapturedArgs::default()
    }

    /// Adds an argument after the others.
    pub fn push(&mut self, name: &'static str, value: Value) {
        if let Err(full) = self.inline.try_push((name, value)) {
            self.more.push(full.element());
        }
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.inline.len() + self.more.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arguments, in order.
    pub fn iter(&self) -> impl Iterator<Item = &(&'static str, Value)> {
        self.inline.iter().chain(self.more.iter())
    }
}

impl FromIterator<(&'static str, Value)> for CapturedArgs {
    fn from_iter<I: IntoIterator<Item = (&'static str, Value)>>(iter: I) -> CapturedArgs {
        let mut args = CapturedArgs::new();
        for (name, value) in iter {
            args.push(name, value);
        }
        args
    }
}

impl StartSpan {
    /// Default options.
    pub fn new() -> StartSpan {
        StartSpan::default()
    }

    /// Options with a name.
    pub fn named(name: impl Into<String>) -> StartSpan {
        StartSpan::new().name(name)
    }

    /// The span's name (default: `root` for root spans, `subspan` for children).
    pub fn name(mut self, name: impl Into<String>) -> StartSpan {
        self.attributes.name = Some(Cow::Owned(name.into()));
        self
    }

    /// Options with a name known at compile time, kept without copying it.
    pub fn named_static(name: &'static str) -> StartSpan {
        let mut options = StartSpan::new();
        options.attributes.name = Some(Cow::Borrowed(name));
        options
    }

    /// The span's type.
    pub fn span_type(mut self, span_type: SpanType) -> StartSpan {
        self.attributes.span_type = Some(span_type);
        self
    }

    /// All span attributes at once (name and type included).
    pub fn attributes(mut self, attributes: SpanAttributes) -> StartSpan {
        self.attributes = attributes;
        self
    }

    /// The parent: a span, an export slug, or a remote context from
    /// [`crate::propagation::extract_trace_context`].
    pub fn parent(mut self, parent: impl Into<Parent>) -> StartSpan {
        self.parent = Some(parent.into());
        self
    }

    /// The start time (default: now).
    pub fn start_time(mut self, time: SystemTime) -> StartSpan {
        self.start_time = Some(time);
        self
    }

    /// Fields to log at start. An invalid event is reported through `tracing` when the span
    /// starts and otherwise ignored; use [`StartSpan::try_event`] to get the error instead.
    pub fn event(mut self, event: Event) -> StartSpan {
        match event.into_fields() {
            Ok(fields) => merge_fields(&mut self.fields, fields),
            Err(e) => self.invalid_event = Some(e),
        }
        self
    }

    /// Fields computed on the sender's thread, merged into the span's first row after those of
    /// [`StartSpan::event`].
    pub fn deferred_event(mut self, event: DeferredEvent) -> StartSpan {
        self.deferred = Some(event);
        self
    }

    /// Sets the span's `input` without building an event (the traced-call fast path).
    pub(crate) fn captured_input(mut self, input: CapturedInput) -> StartSpan {
        self.input = Some(input);
        self
    }

    /// Fields to log at start, validated now.
    pub fn try_event(mut self, event: Event) -> Result<StartSpan, EventError> {
        merge_fields(&mut self.fields, event.into_fields()?);
        Ok(self)
    }

    /// A partial event merged into this span's first row and those of all its descendants.
    pub fn propagated_event(mut self, event: Map<String, Value>) -> StartSpan {
        self.propagated_event = Some(event);
        self
    }

    /// Whether [`Span::enter`] / [`Span::in_scope`] make the span current (default true).
    pub fn set_current(mut self, set_current: bool) -> StartSpan {
        self.set_current = Some(set_current);
        self
    }

    /// The instrumentation name and caller location recorded in `context`
    /// (default: `braintrust-rust-logger` and no location).
    pub fn origin(mut self, origin: SpanOrigin) -> StartSpan {
        self.origin = Some(origin);
        self
    }

    /// The parent, if one was given.
    pub fn parent_ref(&self) -> Option<&Parent> {
        self.parent.as_ref()
    }
}

/// A span's parent.
#[derive(Debug, Clone)]
pub enum Parent {
    /// A span of this process.
    Span(Span),
    /// An export slug (`span.export()` here or in another SDK); `""` means no parent.
    Slug(String),
    /// A W3C trace context from [`crate::propagation::extract_trace_context`].
    Remote(crate::propagation::RemoteParent),
}

impl From<Span> for Parent {
    fn from(span: Span) -> Parent {
        Parent::Span(span)
    }
}

impl From<&Span> for Parent {
    fn from(span: &Span) -> Parent {
        Parent::Span(span.clone())
    }
}

impl From<String> for Parent {
    fn from(slug: String) -> Parent {
        Parent::Slug(slug)
    }
}

impl From<&str> for Parent {
    fn from(slug: &str) -> Parent {
        Parent::Slug(slug.to_owned())
    }
}

impl From<crate::propagation::RemoteParent> for Parent {
    fn from(parent: crate::propagation::RemoteParent) -> Parent {
        Parent::Remote(parent)
    }
}

/// Feedback on a span or row (`log_feedback`): scores, expected, tags, comment, metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feedback {
    scores: Map<String, Value>,
    expected: Option<Value>,
    tags: Option<Vec<String>>,
    comment: Option<String>,
    metadata: Option<Map<String, Value>>,
    source: Option<String>,
}

impl Feedback {
    /// Empty feedback.
    pub fn new() -> Feedback {
        Feedback::default()
    }

    /// Adds a score (a number in [0, 1], a boolean or `None`).
    pub fn score(
        mut self,
        name: impl Into<String>,
        value: impl Into<crate::event::ScoreValue>,
    ) -> Feedback {
        self.scores.insert(name.into(), value.into().to_json());
        self
    }

    /// Sets the expected value.
    pub fn expected(mut self, value: Value) -> Feedback {
        self.expected = Some(value);
        self
    }

    /// Sets tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Feedback {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a comment (a separate row pointing at the span).
    pub fn comment(mut self, text: impl Into<String>) -> Feedback {
        self.comment = Some(text.into());
        self
    }

    /// Sets `_audit_metadata`.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Feedback {
        self.metadata = Some(metadata);
        self
    }

    /// Sets `_audit_source`: `external` (default), `app` or `api`.
    pub fn source(mut self, source: impl Into<String>) -> Feedback {
        self.source = Some(source.into());
        self
    }

    /// The rows this feedback writes for row `row_id` (object ids are added by the sink).
    pub fn into_rows(self, row_id: &str) -> Result<Vec<Map<String, Value>>, EventError> {
        let source = self.source.unwrap_or_else(|| "external".to_owned());
        if !["external", "app", "api"].contains(&source.as_str()) {
            return Err(EventError::WrongType {
                field: "source",
                expected: "one of external, app, api",
            });
        }
        let audit_metadata = self.metadata.map_or(Value::Null, Value::Object);
        let mut event = Event::new();
        if !self.scores.is_empty() {
            event = event.field("scores", Value::Object(self.scores));
        }
        if let Some(expected) = self.expected {
            event = event.expected(expected);
        }
        if let Some(tags) = self.tags {
            event = event.tags(tags);
        }
        let fields = event.into_fields()?;
        let mut rows = Vec::new();
        if !fields.is_empty() {
            let mut row = fields;
            row.insert("id".into(), Value::String(row_id.to_owned()));
            row.insert("_audit_source".into(), Value::String(source.clone()));
            row.insert("_audit_metadata".into(), audit_metadata.clone());
            row.insert("_is_merge".into(), Value::Bool(true));
            rows.push(row);
        }
        if let Some(text) = self.comment {
            let mut row = Map::new();
            row.insert("id".into(), Value::String(crate::id::new_row_id()));
            row.insert(
                "created".into(),
                Value::String(format_created(SystemTime::now())),
            );
            let mut origin = Map::new();
            origin.insert("id".into(), Value::String(row_id.to_owned()));
            row.insert("origin".into(), Value::Object(origin));
            let mut comment = Map::new();
            comment.insert("text".into(), Value::String(text));
            row.insert("comment".into(), Value::Object(comment));
            row.insert("_audit_source".into(), Value::String(source));
            row.insert("_audit_metadata".into(), audit_metadata);
            rows.push(row);
        }
        Ok(rows)
    }
}

/// A span handle. Clones refer to the same span.
#[derive(Clone, Default)]
pub struct Span {
    inner: Option<Arc<SpanInner>>,
}

struct SpanInner {
    sink: Arc<dyn SpanSink>,
    object: ObjectRef,
    identity: SpanIdentity,
    propagated_event: Option<Arc<Map<String, Value>>>,
    set_current: bool,
    ended: AtomicBool,
}

/// An event's fields logged on a span, named without allocating: their values are written as
/// JSON text now (see [`LoggedFields::written_now`]; values given by reference are text
/// already), so that the logging thread frees the values it made and the sender only copies
/// their text into a request body.
fn logged_event(fields: Vec<(&'static str, LoggedValue)>) -> LoggedFields {
    LoggedFields::written_now_from_logged(
        fields
            .into_iter()
            .map(|(key, value)| (Cow::Borrowed(key), value)),
    )
}

impl Drop for SpanInner {
    fn drop(&mut self) {
        if !self.ended.swap(true, Ordering::AcqRel) {
            self.sink.submit(PendingRow {
                object: Some(self.object.clone()),
                kind: PendingKind::SpanEnd {
                    span: self.identity.clone(),
                    end: SystemTime::now(),
                    fields: LoggedFields::new(),
                    output: None,
                    deferred: None,
                },
            });
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Span(noop)"),
            Some(inner) => f
                .debug_struct("Span")
                .field("id", &inner.identity.row_id())
                .field("span_id", &inner.identity.span_id())
                .field("root_span_id", &inner.identity.root_span_id())
                .field("object", &inner.object)
                .finish(),
        }
    }
}

impl Span {
    /// The no-op span: accepts every call, sends nothing, exports `""`.
    pub fn noop() -> Span {
        Span { inner: None }
    }

    /// Whether this is the no-op span.
    pub fn is_noop(&self) -> bool {
        self.inner.is_none()
    }

    /// Starts a span writing to `sink` in `object`. `options.parent` decides its place: a span
    /// (its trace, object and sink win), a slug (its trace and object; a malformed slug is
    /// reported through `tracing` and the span becomes a root), a remote W3C context, or none
    /// (a root). Used by loggers and experiments; applications call their `start_span`.
    pub fn start(sink: Arc<dyn SpanSink>, object: ObjectRef, options: StartSpan) -> Span {
        let mut options = options;
        let format = sink.id_format();
        let placement = match options.parent.take() {
            None => Placement::root(object),
            Some(Parent::Span(parent)) => match parent.inner {
                None => Placement::root(object),
                Some(parent) => {
                    return Span::start_child_of(&parent, options);
                }
            },
            Some(Parent::Slug(slug)) => Placement::from_slug(&slug, object),
            Some(Parent::Remote(remote)) => Placement::from_remote(&remote, object),
        };
        let identity = match &placement.parent_ids {
            Some(ids) => SpanIdentity::child_of_remote(ids, format),
            None => SpanIdentity::root(format),
        };
        Span::begin(
            sink,
            placement.object,
            identity,
            placement.propagated_event,
            options,
        )
    }

    fn start_child_of(parent: &Arc<SpanInner>, options: StartSpan) -> Span {
        let identity = parent.identity.child(parent.sink.id_format());
        Span::begin(
            parent.sink.clone(),
            parent.object.clone(),
            identity,
            parent.propagated_event.as_deref().cloned(),
            options,
        )
    }

    fn begin(
        sink: Arc<dyn SpanSink>,
        object: ObjectRef,
        identity: SpanIdentity,
        inherited: Option<Map<String, Value>>,
        options: StartSpan,
    ) -> Span {
        let StartSpan {
            mut attributes,
            start_time,
            fields: event_fields,
            invalid_event,
            propagated_event,
            set_current,
            origin,
            parent: _,
            input,
            deferred,
        } = options;
        let is_root = identity.is_root();
        if attributes.name.is_none() {
            attributes.name = Some(Cow::Borrowed(if is_root { "root" } else { "subspan" }));
        }
        if is_root && attributes.span_type.is_none() {
            attributes.span_type = sink.default_root_type();
        }
        // The span's own propagated event adds to the inherited one.
        let propagated = match (inherited, propagated_event) {
            (None, None) => None,
            (Some(p), None) | (None, Some(p)) => Some(p),
            (Some(mut inherited), Some(own)) => {
                merge_fields(&mut inherited, own);
                Some(inherited)
            }
        };
        let mut fields = Map::new();
        if let Some(p) = &propagated {
            merge_fields(&mut fields, p.clone());
        }
        if let Some(e) = invalid_event {
            tracing::warn!("braintrust: invalid start event ignored: {e}");
        }
        merge_fields(&mut fields, event_fields);
        // Attributes logged through the propagated event (e.g. `purpose: scorer`) join the
        // span's own.
        if let Some(Value::Object(extra)) = fields.remove("span_attributes")
            && let Ok(more) = SpanAttributes::from_map(&extra)
        {
            {
                attributes.name = attributes.name.or(more.name);
                attributes.span_type = attributes.span_type.or(more.span_type);
                attributes.purpose = attributes.purpose.or(more.purpose);
                for (k, v) in more.extra {
                    attributes.extra.entry(k).or_insert(v);
                }
            }
        }
        // An `id` logged at start names the span's row (an upsert id).
        let mut identity = identity;
        if let Some(Value::String(id)) = fields.remove("id") {
            identity = identity.with_row_id(&id);
        }
        // An input given on its own is merged like an event's when the fields hold one too.
        let input = match input {
            Some(value) if fields.contains_key("input") => {
                let mut own = Map::new();
                own.insert("input".into(), value.into_value());
                merge_fields(&mut fields, own);
                None
            }
            other => other,
        };
        crate::context::enable();
        sink.submit(PendingRow {
            object: Some(object.clone()),
            kind: PendingKind::SpanStart(SpanStartRow {
                span: identity.clone(),
                attributes,
                exec_counter: next_exec_counter(),
                origin: origin.unwrap_or(SpanOrigin {
                    instrumentation: Cow::Borrowed(LOGGER_INSTRUMENTATION),
                    caller: None,
                }),
                start: start_time.unwrap_or_else(SystemTime::now),
                fields,
                input,
                deferred,
            }),
        });
        Span {
            inner: Some(Arc::new(SpanInner {
                sink,
                object,
                identity,
                propagated_event: propagated.map(Arc::new),
                set_current: set_current.unwrap_or(true),
                ended: AtomicBool::new(false),
            })),
        }
    }

    /// The row id (`""` for the no-op span).
    pub fn id(&self) -> &str {
        self.inner.as_ref().map_or("", |i| i.identity.row_id())
    }

    /// The span id (`""` for the no-op span).
    pub fn span_id(&self) -> &str {
        self.inner.as_ref().map_or("", |i| i.identity.span_id())
    }

    /// The trace id (`""` for the no-op span).
    pub fn root_span_id(&self) -> &str {
        self.inner
            .as_ref()
            .map_or("", |i| i.identity.root_span_id())
    }

    /// The parent span ids (empty for roots and the no-op span).
    pub fn span_parents(&self) -> SpanParents<'_> {
        self.inner
            .as_ref()
            .map_or_else(SpanParents::default, |i| i.identity.span_parents())
    }

    /// The object the span writes to (`None` for the no-op span).
    pub fn object(&self) -> Option<&ObjectRef> {
        self.inner.as_ref().map(|i| &i.object)
    }

    /// Whether [`Span::enter`] makes this span current.
    pub(crate) fn sets_current(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.set_current)
    }

    /// Logs fields to the span (a merge row). Never waits on the network.
    pub fn log(&self, event: Event) -> Result<(), EventError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let fields = event.into_named_fields()?;
        if fields.is_empty() {
            return Ok(());
        }
        inner.sink.submit(PendingRow {
            object: Some(inner.object.clone()),
            kind: PendingKind::SpanUpdate {
                span: inner.identity.clone(),
                fields: logged_event(fields),
            },
        });
        Ok(())
    }

    /// Adds feedback (scores, expected, tags, comment) to this span.
    pub fn log_feedback(&self, feedback: Feedback) -> Result<(), EventError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        for row in feedback.into_rows(inner.identity.row_id())? {
            inner.sink.submit(PendingRow {
                object: Some(inner.object.clone()),
                kind: PendingKind::Fields(row),
            });
        }
        Ok(())
    }

    /// Starts a child span (same trace, object and sink). The child of the no-op span is the
    /// no-op span. A parent given in `options` is ignored: this span is the parent.
    pub fn start_span(&self, options: StartSpan) -> Span {
        match &self.inner {
            None => Span::noop(),
            Some(inner) => Span::start_child_of(inner, options),
        }
    }

    /// Merges attributes (name, type, …) into `span_attributes`.
    pub fn set_attributes(&self, attributes: SpanAttributes) {
        let Some(inner) = &self.inner else { return };
        let mut fields = Map::new();
        fields.insert("span_attributes".into(), Value::Object(attributes.to_map()));
        inner.sink.submit(PendingRow {
            object: Some(inner.object.clone()),
            kind: PendingKind::SpanUpdate {
                span: inner.identity.clone(),
                fields: LoggedFields::from(fields),
            },
        });
    }

    /// Ends the span now. Later calls do nothing.
    pub fn end(&self) {
        self.end_at(SystemTime::now());
    }

    /// Ends the span at `time`. Later calls do nothing.
    pub fn end_at(&self, time: SystemTime) {
        self.end_with(time, LoggedFields::new(), None, None);
    }

    /// Logs `event` and ends the span now, in one row (cheaper than `log` then `end`). If the
    /// span already ended, the event is logged on its own.
    pub fn log_and_end(&self, event: Event) -> Result<(), EventError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if inner.ended.load(Ordering::Acquire) {
            return self.log(event);
        }
        let fields = logged_event(event.into_named_fields()?);
        self.end_with(SystemTime::now(), fields, None, None);
        Ok(())
    }

    /// Logs `output` (if any) and ends the span now, in one row, without building an event (the
    /// traced-call fast path). If the span already ended, the output is logged on its own.
    pub(crate) fn end_with_output(&self, output: Option<Value>) {
        self.end_with(SystemTime::now(), LoggedFields::new(), output, None);
    }

    /// Ends the span now with fields computed on the sender's thread, in one row. If the span
    /// already ended, they are computed now and logged on their own.
    pub fn end_with_deferred(&self, event: DeferredEvent) {
        self.end_with(SystemTime::now(), LoggedFields::new(), None, Some(event));
    }

    fn end_with(
        &self,
        time: SystemTime,
        fields: LoggedFields,
        output: Option<Value>,
        deferred: Option<DeferredEvent>,
    ) {
        let Some(inner) = &self.inner else { return };
        if inner.ended.swap(true, Ordering::AcqRel) {
            let mut fields = fields;
            if let Some(output) = output {
                fields.merge_member(Cow::Borrowed("output"), LoggedValue::Value(output), false);
            }
            // Attachments the deferred event makes stay alive until the row is queued.
            let mut attachments = Vec::new();
            if let Some(deferred) = deferred {
                fields.merge_map(deferred.compute(&mut attachments));
            }
            if !fields.is_empty() {
                inner.sink.submit(PendingRow {
                    object: Some(inner.object.clone()),
                    kind: PendingKind::SpanUpdate {
                        span: inner.identity.clone(),
                        fields,
                    },
                });
            }
            return;
        }
        inner.sink.submit(PendingRow {
            object: Some(inner.object.clone()),
            kind: PendingKind::SpanEnd {
                span: inner.identity.clone(),
                end: time,
                fields,
                output,
                deferred,
            },
        });
    }

    /// Whether the span has ended.
    pub fn is_ended(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|i| i.ended.load(Ordering::Acquire))
    }

    /// The span's components (what [`Span::export`] encodes); `None` for the no-op span.
    pub fn components(&self) -> Option<SpanComponents> {
        let inner = self.inner.as_ref()?;
        if inner.object.ids().is_none()
            && inner.object.object_type() != ObjectType::ProjectLogs
            && let Err(e) = inner.sink.resolve_object(&inner.object)
        {
            tracing::warn!("braintrust: cannot export the span: {e}");
        }
        let (object_type, object) = inner.object.slug_object()?;
        Some(SpanComponents {
            object_type,
            object,
            row: Some(SpanRowIds {
                row_id: inner.identity.row_id().to_owned(),
                span_id: inner.identity.span_id().to_owned(),
                root_span_id: inner.identity.root_span_id().to_owned(),
            }),
            propagated_event: inner.propagated_event.as_deref().cloned(),
        })
    }

    /// The export slug: pass it to another process as a parent. `""` for the no-op span.
    /// V4, or V3 with legacy UUID ids.
    pub fn export(&self) -> String {
        let Some(inner) = &self.inner else {
            return String::new();
        };
        let version = inner.sink.id_format().slug_version();
        self.components()
            .map(|c| c.encode(version))
            .unwrap_or_default()
    }

    /// A link to the span in the Braintrust app. May log in and resolve the project (blocking
    /// the caller); the no-op span gets a placeholder link.
    pub fn permalink(&self) -> Result<String, LinkError> {
        match (&self.inner, self.components()) {
            (Some(inner), Some(components)) => inner.sink.permalink(&components),
            _ => Ok(NOOP_PERMALINK.to_owned()),
        }
    }

    /// Delivers everything logged so far through this span's sink.
    pub fn flush(&self) -> Result<(), FlushError> {
        match &self.inner {
            None => Ok(()),
            Some(inner) => inner.sink.flush(),
        }
    }
}

/// The link returned for the no-op span.
pub const NOOP_PERMALINK: &str = "https://www.braintrust.dev/noop-span";

/// Where a span goes: object, remote parent ids and inherited propagated event.
struct Placement {
    object: ObjectRef,
    parent_ids: Option<SpanRowIds>,
    propagated_event: Option<Map<String, Value>>,
}

impl Placement {
    fn root(object: ObjectRef) -> Placement {
        Placement {
            object,
            parent_ids: None,
            propagated_event: None,
        }
    }

    fn from_slug(slug: &str, fallback: ObjectRef) -> Placement {
        if slug.trim().is_empty() {
            return Placement::root(fallback);
        }
        match SpanComponents::parse(slug) {
            Ok(components) => {
                let object = match components.object {
                    SlugObject::Id(id) => {
                        ObjectRef::resolved(ObjectIds::new(components.object_type.into(), id))
                    }
                    SlugObject::Lazy(args) => ObjectRef::lazy(args),
                };
                Placement {
                    object,
                    parent_ids: components.row,
                    propagated_event: components.propagated_event,
                }
            }
            Err(e) => {
                tracing::warn!(
                    "braintrust: ignoring malformed parent slug ({e}); starting a root span instead"
                );
                Placement::root(fallback)
            }
        }
    }

    fn from_remote(remote: &crate::propagation::RemoteParent, fallback: ObjectRef) -> Placement {
        Placement {
            object: remote.object_ref().unwrap_or(fallback),
            parent_ids: Some(SpanRowIds {
                // A remote parent's row id is unknown; it is not needed to parent a span.
                row_id: String::new(),
                span_id: remote.span_id().to_owned(),
                root_span_id: remote.trace_id().to_owned(),
            }),
            propagated_event: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    #[derive(Debug, Default)]
    struct Rows(Mutex<Vec<Value>>);

    impl SpanSink for Rows {
        fn submit(&self, row: PendingRow) {
            let row: Value = row.into_row().into();
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(row);
        }

        fn flush(&self) -> Result<(), FlushError> {
            Ok(())
        }

        fn permalink(&self, _: &SpanComponents) -> Result<String, LinkError> {
            Err(LinkError::Unsupported("test".into()))
        }
    }

    fn start(options: StartSpan) -> (Arc<Rows>, Span) {
        let rows = Arc::new(Rows::default());
        let object = ObjectRef::resolved(ObjectIds::project_logs("p"));
        let span = Span::start(rows.clone(), object, options);
        (rows, span)
    }

    /// A sink that keeps rows pending, to build them later as a sender would.
    #[derive(Debug, Default)]
    struct Pending(Mutex<Vec<PendingRow>>);

    impl SpanSink for Pending {
        fn submit(&self, row: PendingRow) {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(row);
        }

        fn flush(&self) -> Result<(), FlushError> {
            Ok(())
        }

        fn permalink(&self, _: &SpanComponents) -> Result<String, LinkError> {
            Err(LinkError::Unsupported("test".into()))
        }
    }

    #[test]
    fn deferred_events_run_when_the_rows_are_built() {
        use std::sync::atomic::AtomicUsize;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = |runs: &Arc<AtomicUsize>, event: Event| {
            let runs = runs.clone();
            DeferredEvent::new(move |attachments| {
                runs.fetch_add(1, Ordering::SeqCst);
                attachments.push(Attachment::new(b"x".to_vec(), "x.txt", "text/plain"));
                event
            })
        };
        let sink = Arc::new(Pending::default());
        let object = ObjectRef::resolved(ObjectIds::project_logs("p"));
        let options = StartSpan::named("llm")
            .event(Event::new().metadata(json!({"a": 1})))
            .deferred_event(counted(
                &runs,
                Event::new()
                    .input(json!("question"))
                    .metadata(json!({"b": 2})),
            ));
        // A clone leaves the deferred event out: it runs once.
        let copy = options.clone();
        assert!(copy.deferred.is_none());
        drop(copy);
        let span = Span::start(sink.clone(), object, options);
        span.end_with_deferred(counted(&runs, Event::new().output(json!("answer"))));
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "nothing runs on the caller's thread"
        );

        let pending = std::mem::take(&mut *sink.0.lock().unwrap_or_else(|e| e.into_inner()));
        let built: Vec<(Value, usize)> = pending
            .into_iter()
            .map(|row| {
                let (row, attachments) = row.into_row_and_attachments();
                (row.into(), attachments.len())
            })
            .collect();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let (start, start_attachments) = &built[0];
        assert_eq!(start["metadata"], json!({"a": 1, "b": 2}));
        assert_eq!(start["input"], json!("question"));
        assert_eq!(start["span_attributes"]["name"], json!("llm"));
        assert_eq!(*start_attachments, 1);
        let (end, end_attachments) = &built[1];
        assert_eq!(end["output"], json!("answer"));
        assert!(end["metrics"]["end"].is_number());
        assert_eq!(end["_is_merge"], json!(true));
        assert_eq!(*end_attachments, 1);
    }

    #[test]
    fn a_deferred_event_after_the_end_is_logged_on_its_own_and_invalid_fields_are_left_out() {
        let (rows, span) = start(StartSpan::named("f"));
        span.end();
        span.end_with_deferred(DeferredEvent::new(|_| Event::new().output(json!("late"))));
        span.end_with_deferred(DeferredEvent::new(|_| Event::new().metadata(json!(5))));
        let rows = rows.0.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(
            rows.len(),
            3,
            "start, end, the late output; the invalid event logs nothing"
        );
        assert_eq!(rows[2]["output"], json!("late"));
        assert_eq!(rows[2]["_is_merge"], json!(true));
        assert!(rows[2].get("metrics").is_none());
    }

    /// The JSON `input` of captured arguments, and its keys in order.
    fn input_and_keys(args: CapturedArgs) -> (Value, Vec<String>) {
        let count = args.len();
        let input = CapturedInput::Args(args);
        assert_eq!(input.values().count(), count);
        let value = input.into_value();
        let keys = value
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys().cloned())
            .collect();
        (value, keys)
    }

    #[test]
    fn captured_arguments_become_an_input_object_in_order() {
        let args = CapturedArgs::from_iter([("b", json!(2)), ("a", json!({"x": 1}))]);
        assert_eq!(args.len(), 2);
        let (value, keys) = input_and_keys(args);
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(value, json!({"b": 2, "a": {"x": 1}}));

        // Past the inline ones, arguments keep their order.
        let names = ["a", "b", "c", "d", "e"];
        let many = CapturedArgs::from_iter(names.iter().map(|n| (*n, json!(n))));
        assert_eq!(many.len(), 5);
        let (value, keys) = input_and_keys(many);
        assert_eq!(keys, names);
        assert_eq!(value["e"], "e");
    }

    #[test]
    fn a_captured_input_is_deep_merged_with_an_event_input() {
        let options = StartSpan::named("f")
            .event(Event::new().input(json!({"from_event": 1})))
            .captured_input(CapturedInput::Args(CapturedArgs::from_iter([(
                "arg",
                json!(2),
            )])));
        let (rows, span) = start(options);
        span.end_with_output(Some(json!("done")));
        let rows = rows.0.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(rows[0]["input"], json!({"from_event": 1, "arg": 2}));
        assert_eq!(rows[1]["output"], json!("done"));
        assert_eq!(rows[1]["_is_merge"], json!(true));
        assert!(rows[1]["metrics"]["end"].is_number());
    }

    #[test]
    fn an_output_after_the_end_is_logged_on_its_own() {
        let (rows, span) = start(StartSpan::named("f"));
        span.end();
        span.end_with_output(Some(json!(7)));
        let rows = rows.0.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["output"], json!(7));
        assert!(rows[2].get("metrics").is_none());
    }
}
