//! Spans for the official AWS SDK for Bedrock Runtime (`aws-sdk-bedrockruntime`), through its
//! interceptor API (feature `aws-sdk-bedrock`).
//!
//! Add a [`BedrockInterceptor`] to the client's config and call the SDK as before: each
//! `Converse` and `ConverseStream` call logs one `llm` span (`bedrock.converse` /
//! `bedrock.converse-stream`) under the current span, built by the [`bedrock`] span builders
//! from the request and response exactly as they crossed the wire. Other operations are not
//! recorded. Nothing the SDK sends or receives is changed; errors are logged as the span's
//! `error` and reach the caller as the SDK reports them. A stream's span ends when the SDK has
//! read the last event, or with what arrived when the stream is dropped.
//!
//! ```no_run
//! use aws_sdk_bedrockruntime::config::{BehaviorVersion, Region};
//! use braintrust_providers::bedrock_sdk::BedrockInterceptor;
//!
//! // With aws-config: `aws_sdk_bedrockruntime::config::Builder::from(&sdk_config)`.
//! let config = aws_sdk_bedrockruntime::Config::builder()
//!     .behavior_version(BehaviorVersion::latest())
//!     .region(Region::new("us-east-1"))
//!     .interceptor(BedrockInterceptor::new())
//!     .build();
//! let client = aws_sdk_bedrockruntime::Client::from_conf(config);
//! # let _ = client;
//! ```

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextMut,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serde_json::Value;

use crate::StreamAggregate;
use crate::bedrock::{self, ConverseStream};
use crate::call::LlmCallSpan;
use crate::eventstream::Decoder;
use crate::fields::LlmSpanFields;

/// The instrumentation name of spans from this interceptor
/// (`context.span_origin.instrumentation.name`).
pub const INSTRUMENTATION: &str = "braintrust::providers::bedrock_sdk";

/// An AWS SDK interceptor that records Bedrock Runtime `Converse` and `ConverseStream` calls as
/// `llm` spans.
#[derive(Debug, Clone, Default)]
pub struct BedrockInterceptor {
    _private: (),
}

impl BedrockInterceptor {
    /// A new interceptor.
    pub fn new() -> BedrockInterceptor {
        BedrockInterceptor::default()
    }
}

/// Which recorded operation a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Converse,
    ConverseStream,
}

impl Operation {
    fn of(cfg: &ConfigBag) -> Option<Operation> {
        let metadata = cfg.load::<Metadata>()?;
        // The SDK names the service "Bedrock Runtime".
        let service: String = metadata
            .service()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !service.eq_ignore_ascii_case("BedrockRuntime") {
            return None;
        }
        match metadata.name() {
            "Converse" => Some(Operation::Converse),
            "ConverseStream" => Some(Operation::ConverseStream),
            _ => None,
        }
    }
}

/// The span of one call, shared by the interceptor's hooks and (for streams) the response body.
type SharedCall = Arc<Mutex<Option<LlmCallSpan>>>;

fn take(call: &SharedCall) -> Option<LlmCallSpan> {
    call.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The per-call state kept in the SDK's config bag.
#[derive(Clone)]
struct CallState {
    operation: Operation,
    call: SharedCall,
    /// The response's span fields, once a non-streaming response was read.
    response: Arc<Mutex<Option<LlmSpanFields>>>,
}

impl fmt::Debug for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallState")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl Storable for CallState {
    type Storer = StoreReplace<Self>;
}

impl Intercept for BedrockInterceptor {
    fn name(&self) -> &'static str {
        "BraintrustBedrockInterceptor"
    }

    // The first hook after the operation's configuration (which names it) is in the bag.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(operation) = Operation::of(cfg) else {
            return Ok(());
        };
        let name = match operation {
            Operation::Converse => bedrock::CONVERSE_SPAN_NAME,
            Operation::ConverseStream => bedrock::CONVERSE_STREAM_SPAN_NAME,
        };
        let call = LlmCallSpan::start(name, INSTRUMENTATION, LlmSpanFields::default());
        cfg.interceptor_state().store_put(CallState {
            operation,
            call: Arc::new(Mutex::new(Some(call))),
            response: Arc::default(),
        });
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<CallState>() else {
            return Ok(());
        };
        let request = context.request();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        let model_id = model_id(request.uri()).unwrap_or_default();
        if let Some(call) = state
            .call
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            call.log(bedrock::converse_request_fields(&model_id, &body));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<CallState>() else {
            return Ok(());
        };
        let response = context.response_mut();
        if state.operation == Operation::ConverseStream && response.status().is_success() {
            // The SDK reads the events from the body: read them on the way through.
            let body = std::mem::replace(response.body_mut(), SdkBody::taken());
            *response.body_mut() = SdkBody::from_body_1_x(RecordedEvents {
                body,
                decoder: Decoder::default(),
                events: ConverseStream::new(),
                call: state.call.clone(),
            });
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<CallState>() else {
            return Ok(());
        };
        if state.operation == Operation::Converse && context.output_or_error().is_ok() {
            let response: Value = context
                .response()
                .body()
                .bytes()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            *state.response.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(bedrock::converse_response_fields(&response));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(state) = cfg.load::<CallState>() else {
            return Ok(());
        };
        let response = state
            .response
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match context.output_or_error() {
            Some(Ok(_)) => {
                // A stream's body holds the span from here on and ends it.
                if state.operation == Operation::Converse
                    && let Some(call) = take(&state.call)
                {
                    call.finish(response.unwrap_or_default());
                }
            }
            Some(Err(error)) => {
                if let Some(call) = take(&state.call) {
                    let message = context
                        .response()
                        .and_then(service_error)
                        .unwrap_or_else(|| error.to_string());
                    call.fail(LlmSpanFields::default(), &message);
                }
            }
            None => {
                if let Some(call) = take(&state.call) {
                    call.fail(LlmSpanFields::default(), &"the call ended without a result");
                }
            }
        }
        Ok(())
    }
}

/// The model id of a `/model/{modelId}/converse[-stream]` URI, percent-decoded.
fn model_id(uri: &str) -> Option<String> {
    let path = uri.split(['?', '#']).next()?;
    let after_scheme = path.split_once("://").map_or(path, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or(after_scheme, |i| &after_scheme[i..]);
    let rest = path.strip_prefix("/model/")?;
    let segment = rest.split('/').next()?;
    Some(
        percent_encoding::percent_decode_str(segment)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// `"<status> <error type>: <message>"` of an error response, when the body says more than the
/// SDK's error display.
fn service_error(response: &HttpResponse) -> Option<String> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return None;
    }
    let body: Value = serde_json::from_slice(response.body().bytes()?).ok()?;
    let message = body
        .get("message")
        .or_else(|| body.get("Message"))?
        .as_str()?;
    let kind = response
        .headers()
        .get("x-amzn-errortype")
        .map(|t| t.split(':').next().unwrap_or(t).to_owned());
    Some(match kind {
        Some(kind) => format!("{status} {kind}: {message}"),
        None => format!("{status}: {message}"),
    })
}

/// A `ConverseStream` response body: passes every frame to the SDK unchanged and decodes the
/// event-stream messages into the call's span, which it ends when the body ends or is dropped.
struct RecordedEvents {
    body: SdkBody,
    decoder: Decoder,
    events: ConverseStream,
    call: SharedCall,
}

impl RecordedEvents {
    fn read(&mut self, data: &[u8]) {
        let mut call = self.call.lock().unwrap_or_else(|e| e.into_inner());
        if call.is_none() {
            return;
        }
        self.decoder.feed(data);
        let failure = loop {
            match self.decoder.next_message() {
                // The SDK reports exceptions to the caller; the span records them too.
                Ok(Some(message)) if message.message_type != "event" => {
                    break Some(format!(
                        "{}: {}",
                        message.event_type,
                        String::from_utf8_lossy(&message.payload)
                    ));
                }
                Ok(Some(message)) => {
                    if let Ok(payload) = serde_json::from_slice::<Value>(&message.payload) {
                        if let Some(span) = call.as_mut() {
                            span.mark_first_token();
                        }
                        StreamAggregate::push(&mut self.events, &message.event_type, &payload);
                    }
                }
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        if let Some(error) = failure
            && let Some(span) = call.take()
        {
            span.fail(self.events.fields(), &error);
        }
    }

    fn end(&mut self) {
        if let Some(call) = take(&self.call) {
            call.finish(self.events.fields());
        }
    }
}

impl Body for RecordedEvents {
    type Data = Bytes;
    type Error = aws_smithy_types::body::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read(data);
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(call) = take(&this.call) {
                    call.fail(this.events.fields(), error);
                }
            }
            Poll::Ready(None) => this.end(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for RecordedEvents {
    fn drop(&mut self) {
        // A stream dropped before its end ends its span with what arrived.
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_id_is_read_from_the_path_and_percent_decoded() {
        assert_eq!(
            model_id("https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-lite-v1%3A0/converse")
                .as_deref(),
            Some("us.amazon.nova-lite-v1:0")
        );
        assert_eq!(
            model_id("/model/m/converse-stream?x=1").as_deref(),
            Some("m")
        );
        assert_eq!(model_id("https://host/other/path"), None);
    }
}
