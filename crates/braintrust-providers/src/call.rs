//! [`LlmCallSpan`]: one `llm` span per provider call, under the current span (or the current
//! logger or experiment). The built-in clients use it; so can code calling any other client.
//!
//! ```
//! use braintrust_providers::{LlmCallSpan, openai};
//! use serde_json::json;
//!
//! let request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
//! let call = LlmCallSpan::start(openai::CHAT_SPAN_NAME, "my-client", openai::chat_request_fields(&request));
//! // … send the request with your client …
//! let response = json!({"model": "m-1", "choices": []});
//! call.finish(openai::chat_response_fields(&response));
//! ```

use std::borrow::Cow;
use std::time::Instant;

use braintrust_core::attachment::Attachment;
use braintrust_core::event::{Event, SpanAttributes, SpanType};
use braintrust_core::inline_media::convert_inline_media;
use braintrust_core::span::{DeferredEvent, Span, SpanOrigin, StartSpan};
use serde_json::Value;

use crate::fields::LlmSpanFields;

/// An `llm` span in progress: started with the request's fields, ended with the response's
/// (or an error). Dropping it unfinished ends the span with what was logged so far.
#[derive(Debug)]
pub struct LlmCallSpan {
    span: Span,
    started: Instant,
    first_token: Option<f64>,
    /// Attachments made from inline media, alive until their rows are logged.
    attachments: Vec<Attachment>,
}

impl LlmCallSpan {
    /// Starts the span named `name` (an `llm` span), created by `instrumentation` (the
    /// `context.span_origin.instrumentation.name`), and logs the request's fields. Inline media in
    /// the input is logged as attachments; `request_fields` itself is not modified.
    pub fn start(
        name: &str,
        instrumentation: impl Into<Cow<'static, str>>,
        request_fields: LlmSpanFields,
    ) -> LlmCallSpan {
        LlmCallSpan::begin(name, instrumentation, |call, options| {
            // The request's fields go in the span's first row (one row fewer than logging them).
            options.event(call.event(request_fields))
        })
    }

    /// Like [`LlmCallSpan::start`], but `request_fields` runs later, on the sender's thread,
    /// when the span's first row is built: the caller only queues the closure. Give it data it
    /// can own cheaply, such as the request bytes sent:
    ///
    /// ```
    /// use braintrust_providers::{LlmCallSpan, openai};
    ///
    /// let sent: Vec<u8> = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#.to_vec();
    /// let call = LlmCallSpan::start_with(openai::CHAT_SPAN_NAME, "my-client", move || {
    ///     openai::chat_request_fields(&serde_json::from_slice(&sent).unwrap_or_default())
    /// });
    /// let received: Vec<u8> = br#"{"model":"m-1","choices":[]}"#.to_vec();
    /// call.finish_with(move || {
    ///     openai::chat_response_fields(&serde_json::from_slice(&received).unwrap_or_default())
    /// });
    /// ```
    pub fn start_with(
        name: &str,
        instrumentation: impl Into<Cow<'static, str>>,
        request_fields: impl FnOnce() -> LlmSpanFields + Send + 'static,
    ) -> LlmCallSpan {
        LlmCallSpan::begin(name, instrumentation, |_, options| {
            options.deferred_event(deferred(request_fields, None, None))
        })
    }

    fn begin(
        name: &str,
        instrumentation: impl Into<Cow<'static, str>>,
        fields: impl FnOnce(&mut LlmCallSpan, StartSpan) -> StartSpan,
    ) -> LlmCallSpan {
        let started = Instant::now();
        let mut call = LlmCallSpan {
            span: Span::noop(),
            started,
            first_token: None,
            attachments: Vec::new(),
        };
        if !braintrust_core::context::is_enabled() {
            return call;
        }
        let options = StartSpan::new()
            .attributes(SpanAttributes::named(name).with_type(SpanType::Llm))
            .origin(SpanOrigin {
                instrumentation: instrumentation.into(),
                caller: None,
            })
            .set_current(false);
        let options = fields(&mut call, options);
        call.span = braintrust_transport::logger::start_span(options);
        // The row is queued: the sink found the attachments while they were alive.
        call.attachments.clear();
        call
    }

    /// The span (e.g. to make it the parent of tool spans).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Records the arrival of the first streamed chunk (`time_to_first_token`); later calls do
    /// nothing.
    pub fn mark_first_token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed().as_secs_f64());
        }
    }

    /// Logs more fields (input and output with inline media converted to attachments).
    pub fn log(&mut self, fields: LlmSpanFields) {
        if self.span.is_noop() {
            return;
        }
        let event = self.event(fields);
        if let Err(e) = self.span.log(event) {
            tracing::debug!("braintrust: llm span fields rejected: {e}");
        }
        // The row is queued: the sink found the attachments while they were alive.
        self.attachments.clear();
    }

    /// The event for `fields`, with inline media replaced by attachments kept in `self`.
    fn event(&mut self, fields: LlmSpanFields) -> Event {
        into_event(fields, &mut self.attachments)
    }

    /// Logs the response's fields (and `time_to_first_token` when a first token was marked) and
    /// ends the span, in one row.
    pub fn finish(mut self, mut fields: LlmSpanFields) {
        if self.span.is_noop() {
            return;
        }
        if let Some(ttft) = self.first_token {
            fields
                .metrics
                .insert("time_to_first_token".into(), Value::from(ttft));
        }
        let event = self.event(fields);
        if let Err(e) = self.span.log_and_end(event) {
            tracing::debug!("braintrust: llm span fields rejected: {e}");
            self.span.end();
        }
        self.attachments.clear();
    }

    /// Like [`LlmCallSpan::finish`], but `response_fields` runs later, on the sender's thread,
    /// when the row is built (see [`LlmCallSpan::start_with`]).
    pub fn finish_with(self, response_fields: impl FnOnce() -> LlmSpanFields + Send + 'static) {
        if self.span.is_noop() {
            return;
        }
        self.span
            .end_with_deferred(deferred(response_fields, self.first_token, None));
    }

    /// Logs `error` (and any fields known so far) and ends the span.
    pub fn fail(mut self, fields: LlmSpanFields, error: &dyn std::fmt::Display) {
        self.log(fields);
        let _ = self
            .span
            .log(Event::new().error(Value::String(error.to_string())));
        self.span.end();
    }

    /// Like [`LlmCallSpan::fail`], but the fields known so far are built later, on the sender's
    /// thread; the error and the end go in the same row.
    pub fn fail_with(
        self,
        fields: impl FnOnce() -> LlmSpanFields + Send + 'static,
        error: &dyn std::fmt::Display,
    ) {
        if self.span.is_noop() {
            return;
        }
        self.span
            .end_with_deferred(deferred(fields, self.first_token, Some(error.to_string())));
    }
}

/// The event of `fields`, with inline media in the input and output replaced by attachments
/// (added to `attachments`).
fn into_event(mut fields: LlmSpanFields, attachments: &mut Vec<Attachment>) -> Event {
    for slot in [&mut fields.input, &mut fields.output] {
        if let Some(value) = slot.as_ref()
            && let Some(converted) = convert_inline_media(value)
        {
            *slot = Some(converted.value);
            attachments.extend(converted.attachments);
        }
    }
    fields.into_event()
}

/// The deferred event of `fields`, with `time_to_first_token` and an error when given.
fn deferred(
    fields: impl FnOnce() -> LlmSpanFields + Send + 'static,
    first_token: Option<f64>,
    error: Option<String>,
) -> DeferredEvent {
    DeferredEvent::new(move |attachments| {
        let mut fields = fields();
        if let Some(ttft) = first_token {
            fields
                .metrics
                .insert("time_to_first_token".into(), Value::from(ttft));
        }
        let event = into_event(fields, attachments);
        match error {
            Some(error) => event.error(Value::String(error)),
            None => event,
        }
    })
}

/// Folds a stream's events into the span fields of the non-streaming response. Each provider's
/// stream aggregator implements it ([`crate::openai::ChatStream`], …).
pub trait StreamAggregate: Send + 'static {
    /// Adds one event: its name (SSE `event:` or the event-stream `:event-type`, empty when
    /// there is none) and its JSON data.
    fn push(&mut self, event: &str, data: &Value);
    /// The span fields of what arrived so far.
    fn fields(&self) -> LlmSpanFields;
}

/// A stream's events kept as they arrived (event name and JSON text), for the span to fold on
/// the sender's thread when the call finishes: per event, the caller only stores the bytes it
/// already has.
///
/// ```
/// use braintrust_providers::{LlmCallSpan, RecordedStream, openai};
///
/// let mut call = LlmCallSpan::start_with(openai::CHAT_SPAN_NAME, "my-client", Default::default);
/// let mut events = RecordedStream::new();
/// for data in [r#"{"model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
///              r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#] {
///     call.mark_first_token();
///     events.push("", data);
/// }
/// assert_eq!(events.fields::<openai::ChatStream>().output.unwrap()[0]["message"]["content"], "Hello");
/// call.finish_with(move || events.fields::<openai::ChatStream>());
/// ```
#[derive(Debug, Default, Clone)]
pub struct RecordedStream {
    events: Vec<(String, Vec<u8>)>,
}

impl RecordedStream {
    /// No events yet.
    pub fn new() -> RecordedStream {
        RecordedStream::default()
    }

    /// Keeps one event: its name and its JSON data (text or bytes, taken as they are).
    pub fn push(&mut self, event: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.events.push((event.into(), data.into()));
    }

    /// How many events were kept.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event was kept.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Folds the events into `A`'s span fields; events whose data is not JSON are skipped.
    pub fn fields<A: StreamAggregate + Default>(&self) -> LlmSpanFields {
        let mut aggregate = A::default();
        for (event, data) in &self.events {
            if let Ok(value) = serde_json::from_slice::<Value>(data) {
                aggregate.push(event, &value);
            }
        }
        aggregate.fields()
    }
}

impl Drop for LlmCallSpan {
    fn drop(&mut self) {
        self.span.end();
    }
}
