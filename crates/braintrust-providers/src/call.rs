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
use braintrust_core::span::{Span, SpanOrigin, StartSpan};
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
        // The request's fields go in the span's first row (one row fewer than logging them).
        let event = call.event(request_fields);
        let options = StartSpan::new()
            .attributes(SpanAttributes::named(name).with_type(SpanType::Llm))
            .origin(SpanOrigin {
                instrumentation: instrumentation.into(),
                caller: None,
            })
            .set_current(false)
            .event(event);
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
    fn event(&mut self, mut fields: LlmSpanFields) -> Event {
        for slot in [&mut fields.input, &mut fields.output] {
            if let Some(value) = slot.as_ref()
                && let Some(converted) = convert_inline_media(value)
            {
                *slot = Some(converted.value);
                self.attachments.extend(converted.attachments);
            }
        }
        fields.into_event()
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

    /// Logs `error` (and any fields known so far) and ends the span.
    pub fn fail(mut self, fields: LlmSpanFields, error: &dyn std::fmt::Display) {
        self.log(fields);
        let _ = self
            .span
            .log(Event::new().error(Value::String(error.to_string())));
        self.span.end();
    }
}

impl Drop for LlmCallSpan {
    fn drop(&mut self) {
        self.span.end();
    }
}
