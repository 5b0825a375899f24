//! Spans for the [`async-openai`](https://docs.rs/async-openai) client (feature `async-openai`).
//!
//! [`wrap`] a `async_openai::Client` and call it as before: `chat().create`,
//! `chat().create_stream`, `responses().create` and `responses().create_stream` each log one
//! `llm` span (`Chat Completion` or `openai.responses.create`) under the current span, built by
//! the [`openai`] span builders from the typed request and response. Requests
//! are sent unchanged; errors are logged as the span's `error` and returned as they came.
//! Streams yield the client's chunks and end their span when they end, fail, or are dropped.
//!
//! ```no_run
//! use async_openai::types::chat::CreateChatCompletionRequest;
//! use braintrust_providers::async_openai::wrap;
//!
//! # async fn run(request: CreateChatCompletionRequest) -> Result<(), async_openai::error::OpenAIError> {
//! let client = wrap(async_openai::Client::new());
//! let response = client.chat().create(request).await?;
//! println!("{:?}", response.choices.first().map(|c| &c.message.content));
//! # Ok(())
//! # }
//! ```
//!
//! Any other call goes through [`TracedClient::inner`], unrecorded.

use std::pin::Pin;
use std::task::{Context, Poll};

use ::async_openai::Client;
use ::async_openai::config::Config;
use ::async_openai::error::OpenAIError;
use ::async_openai::types::chat::{
    CreateChatCompletionRequest, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
};
use ::async_openai::types::responses::{CreateResponse, Response, ResponseStreamEvent};
use serde::Serialize;
use serde_json::Value;

use crate::call::{LlmCallSpan, RecordedStream};
use crate::client::Fold;
use crate::fields::LlmSpanFields;
use crate::openai;

/// The instrumentation name of spans from this wrapper
/// (`context.span_origin.instrumentation.name`).
pub const INSTRUMENTATION: &str = "braintrust::providers::async_openai";

/// Wraps `client` so that its chat and responses calls log `llm` spans.
pub fn wrap<C: Config>(client: Client<C>) -> TracedClient<C> {
    TracedClient { inner: client }
}

/// An `async_openai::Client` whose chat and responses calls log `llm` spans.
#[derive(Debug, Clone)]
pub struct TracedClient<C: Config> {
    inner: Client<C>,
}

impl<C: Config> TracedClient<C> {
    /// The wrapped client, for calls this wrapper does not record.
    pub fn inner(&self) -> &Client<C> {
        &self.inner
    }

    /// The wrapped client.
    pub fn into_inner(self) -> Client<C> {
        self.inner
    }

    /// Chat completions, recorded.
    pub fn chat(&self) -> TracedChat<'_, C> {
        TracedChat {
            client: &self.inner,
        }
    }

    /// The Responses API, recorded.
    pub fn responses(&self) -> TracedResponses<'_, C> {
        TracedResponses {
            client: &self.inner,
        }
    }
}

/// Recorded chat completions (`client.chat()`).
#[derive(Debug)]
pub struct TracedChat<'c, C: Config> {
    client: &'c Client<C>,
}

impl<C: Config> TracedChat<'_, C> {
    /// `chat().create`, as one `Chat Completion` span.
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        let call = start(
            &request,
            openai::CHAT_SPAN_NAME,
            openai::chat_request_fields,
        );
        let result = self.client.chat().create(request).await;
        finish(call, &result, openai::chat_response_fields);
        result
    }

    /// `chat().create_stream`, as one `Chat Completion` span covering the whole stream.
    pub async fn create_stream(
        &self,
        mut request: CreateChatCompletionRequest,
    ) -> Result<TracedStream<CreateChatCompletionStreamResponse>, OpenAIError> {
        // async-openai sets this itself before sending; set it first so the span shows it.
        request.stream = Some(true);
        let call = start(
            &request,
            openai::CHAT_SPAN_NAME,
            openai::chat_request_fields,
        );
        match self.client.chat().create_stream(request).await {
            Ok(stream) => Ok(TracedStream::new(
                stream,
                call,
                RecordedStream::fields::<openai::ChatStream>,
            )),
            Err(error) => {
                call.fail_with(LlmSpanFields::default, &error);
                Err(error)
            }
        }
    }
}

/// The recorded Responses API (`client.responses()`).
#[derive(Debug)]
pub struct TracedResponses<'c, C: Config> {
    client: &'c Client<C>,
}

impl<C: Config> TracedResponses<'_, C> {
    /// `responses().create`, as one `openai.responses.create` span.
    pub async fn create(&self, request: CreateResponse) -> Result<Response, OpenAIError> {
        let call = start(
            &request,
            openai::RESPONSES_SPAN_NAME,
            openai::responses_request_fields,
        );
        let result = self.client.responses().create(request).await;
        finish(call, &result, openai::responses_response_fields);
        result
    }

    /// `responses().create_stream`, as one `openai.responses.create` span covering the stream.
    pub async fn create_stream(
        &self,
        mut request: CreateResponse,
    ) -> Result<TracedStream<ResponseStreamEvent>, OpenAIError> {
        request.stream = Some(true);
        let call = start(
            &request,
            openai::RESPONSES_SPAN_NAME,
            openai::responses_request_fields,
        );
        match self.client.responses().create_stream(request).await {
            Ok(stream) => Ok(TracedStream::new(
                stream,
                call,
                RecordedStream::fields::<openai::ResponsesStream>,
            )),
            Err(error) => {
                call.fail_with(LlmSpanFields::default, &error);
                Err(error)
            }
        }
    }
}

/// The JSON bytes of a typed request, response or event (empty if it cannot be serialised,
/// which async-openai's types always can). Serialising to bytes is the cheap part; the span
/// fields are built from them on the sender's thread.
fn bytes_of(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// `fields` of JSON bytes, later.
fn fields_of(
    bytes: Vec<u8>,
    fields: fn(&Value) -> LlmSpanFields,
) -> impl FnOnce() -> LlmSpanFields + Send + 'static {
    move || fields(&serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Starts the span of a call with `request`.
fn start(request: &impl Serialize, name: &str, fields: fn(&Value) -> LlmSpanFields) -> LlmCallSpan {
    LlmCallSpan::start_with(name, INSTRUMENTATION, fields_of(bytes_of(request), fields))
}

/// Ends `call` with the response's fields, or with the error.
fn finish<T: Serialize>(
    call: LlmCallSpan,
    result: &Result<T, OpenAIError>,
    fields: fn(&Value) -> LlmSpanFields,
) {
    match result {
        Ok(response) => call.finish_with(fields_of(bytes_of(response), fields)),
        Err(error) => call.fail_with(LlmSpanFields::default, error),
    }
}

type Inner<T> = Pin<Box<dyn futures_core::Stream<Item = Result<T, OpenAIError>> + Send>>;

/// A recorded async-openai stream: yields the client's items unchanged and ends the call's span
/// when the stream ends, fails, or is dropped (with what arrived).
pub struct TracedStream<T> {
    inner: Inner<T>,
    call: Option<LlmCallSpan>,
    /// The events so far, folded into the span's fields on the sender's thread.
    recorded: RecordedStream,
    fold: Fold,
}

impl<T> std::fmt::Debug for TracedStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedStream")
            .field("ended", &self.call.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> TracedStream<T> {
    fn new(inner: Inner<T>, call: LlmCallSpan, fold: Fold) -> TracedStream<T> {
        TracedStream {
            inner,
            call: Some(call),
            recorded: RecordedStream::new(),
            fold,
        }
    }

    fn end(&mut self) {
        if let Some(call) = self.call.take() {
            let (recorded, fold) = (std::mem::take(&mut self.recorded), self.fold);
            call.finish_with(move || fold(&recorded));
        }
    }
}

impl<T: Serialize> futures_core::Stream for TracedStream<T> {
    type Item = Result<T, OpenAIError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Pending => {}
            Poll::Ready(None) => this.end(),
            Poll::Ready(Some(Ok(item))) => {
                if let Some(call) = &mut this.call {
                    call.mark_first_token();
                    this.recorded.push("", bytes_of(item));
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(call) = this.call.take() {
                    let (recorded, fold) = (std::mem::take(&mut this.recorded), this.fold);
                    call.fail_with(move || fold(&recorded), error);
                }
            }
        }
        polled
    }
}

impl<T> Drop for TracedStream<T> {
    fn drop(&mut self) {
        // A dropped stream ends its span with what arrived.
        self.end();
    }
}
