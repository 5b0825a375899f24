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

use crate::StreamAggregate;
use crate::call::LlmCallSpan;
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
        let call = LlmCallSpan::start(
            openai::CHAT_SPAN_NAME,
            INSTRUMENTATION,
            openai::chat_request_fields(&json_of(&request)),
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
        let call = LlmCallSpan::start(
            openai::CHAT_SPAN_NAME,
            INSTRUMENTATION,
            openai::chat_request_fields(&json_of(&request)),
        );
        match self.client.chat().create_stream(request).await {
            Ok(stream) => Ok(TracedStream::new(
                stream,
                call,
                Box::new(openai::ChatStream::new()),
            )),
            Err(error) => {
                call.fail(LlmSpanFields::default(), &error);
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
        let call = LlmCallSpan::start(
            openai::RESPONSES_SPAN_NAME,
            INSTRUMENTATION,
            openai::responses_request_fields(&json_of(&request)),
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
        let call = LlmCallSpan::start(
            openai::RESPONSES_SPAN_NAME,
            INSTRUMENTATION,
            openai::responses_request_fields(&json_of(&request)),
        );
        match self.client.responses().create_stream(request).await {
            Ok(stream) => Ok(TracedStream::new(
                stream,
                call,
                Box::new(openai::ResponsesStream::new()),
            )),
            Err(error) => {
                call.fail(LlmSpanFields::default(), &error);
                Err(error)
            }
        }
    }
}

/// The JSON form of a typed request or response (`null` if it cannot be serialised, which
/// async-openai's types always can).
fn json_of(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Ends `call` with the response's fields, or with the error.
fn finish<T: Serialize>(
    call: LlmCallSpan,
    result: &Result<T, OpenAIError>,
    fields: fn(&Value) -> LlmSpanFields,
) {
    match result {
        Ok(response) => call.finish(fields(&json_of(response))),
        Err(error) => call.fail(LlmSpanFields::default(), error),
    }
}

type Inner<T> = Pin<Box<dyn futures_core::Stream<Item = Result<T, OpenAIError>> + Send>>;

/// A recorded async-openai stream: yields the client's items unchanged and ends the call's span
/// when the stream ends, fails, or is dropped (with what arrived).
pub struct TracedStream<T> {
    inner: Inner<T>,
    call: Option<LlmCallSpan>,
    fold: Box<dyn StreamAggregate>,
}

impl<T> std::fmt::Debug for TracedStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedStream")
            .field("ended", &self.call.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> TracedStream<T> {
    fn new(inner: Inner<T>, call: LlmCallSpan, fold: Box<dyn StreamAggregate>) -> TracedStream<T> {
        TracedStream {
            inner,
            call: Some(call),
            fold,
        }
    }

    fn end(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(self.fold.fields());
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
                    this.fold.push("", &json_of(item));
                }
            }
            Poll::Ready(Some(Err(error))) => {
                if let Some(call) = this.call.take() {
                    call.fail(this.fold.fields(), error);
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
