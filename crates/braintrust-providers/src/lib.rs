//! LLM provider calls as Braintrust `llm` spans: one span per call (streams included), under the
//! current span, shaped as the cross-language llm-span specification requires.
//!
//! Everything is built on provider-neutral **span builders**: pure functions turning a request
//! JSON and its response JSON into the span's input, output, metadata and metrics, and stream
//! aggregators that rebuild the non-streaming response from the stream's events.
//!
//! | provider | builders | span name |
//! |---|---|---|
//! | OpenAI chat completions | [`openai::chat_completion_span`], [`openai::ChatStream`] | `Chat Completion` |
//! | OpenAI responses | [`openai::responses_span`], [`openai::ResponsesStream`] | `openai.responses.create` |
//! | Anthropic messages | [`anthropic::messages_span`], [`anthropic::MessagesStream`] | `anthropic.messages.create` / `.stream` |
//! | Gemini | [`gemini::generate_content_span`], [`gemini::GenerateContentStream`] | `generate_content` |
//! | Bedrock converse | [`bedrock::converse_span`], [`bedrock::ConverseStream`] | `bedrock.converse` / `-stream` |
//!
//! On top of them: built-in raw-JSON clients (features `openai`, `anthropic`, `gemini`,
//! `bedrock`), a wrapper for the `async-openai` client (feature `async-openai`, module
//! `async_openai`) and an interceptor for the AWS SDK's Bedrock Runtime client (feature
//! `aws-sdk-bedrock`, module `bedrock_sdk`).
//!
//! [`LlmCallSpan`] records one call with them: start it with the request's fields, finish it
//! with the response's (or fail it with the error). Users of any other Rust client (rig, genai,
//! community Anthropic crates, …) get conformant spans this way:
//!
//! ```
//! use braintrust_providers::{LlmCallSpan, anthropic};
//! use serde_json::json;
//!
//! let request = json!({"model": "claude-x", "max_tokens": 64,
//!     "messages": [{"role": "user", "content": "hi"}]});
//! let call = LlmCallSpan::start(
//!     anthropic::MESSAGES_SPAN_NAME,
//!     "my_app::anthropic",
//!     anthropic::messages_request_fields(&request),
//! );
//! let response = json!({"model": "claude-x-1", "role": "assistant",
//!     "content": [{"type": "text", "text": "hello"}],
//!     "usage": {"input_tokens": 9, "output_tokens": 2}});
//! call.finish(anthropic::messages_response_fields(&response));
//! ```
//!
//! Code that has the bytes of its calls can leave building the fields to the background sender
//! instead, as the built-in clients and the async-openai wrapper do:
//! [`LlmCallSpan::start_with`] / [`LlmCallSpan::finish_with`] take closures run on the sender's
//! thread, and [`RecordedStream`] keeps a stream's events for a [`StreamAggregate`] to fold
//! there.
//!
//! Inline base64 media in the logged input and output becomes attachments
//! ([`braintrust_core::inline_media`]); the request sent to the provider is never modified.

pub mod anthropic;
#[cfg(feature = "anthropic")]
mod anthropic_client;
#[cfg(feature = "async-openai")]
pub mod async_openai;
pub mod bedrock;
#[cfg(feature = "bedrock")]
mod bedrock_client;
#[cfg(feature = "aws-sdk-bedrock")]
pub mod bedrock_sdk;
mod call;
#[cfg_attr(
    not(any(
        feature = "openai",
        feature = "anthropic",
        feature = "gemini",
        feature = "bedrock"
    )),
    allow(dead_code)
)]
mod client;
#[cfg(any(feature = "bedrock", feature = "aws-sdk-bedrock"))]
mod eventstream;
mod fields;
pub mod gemini;
#[cfg(feature = "gemini")]
mod gemini_client;
pub mod openai;
#[cfg(feature = "openai")]
mod openai_client;

pub use call::{LlmCallSpan, RecordedStream, StreamAggregate};
pub use client::{ClientOptions, LlmStream, ProviderError};
pub use fields::{ALLOWED_METADATA, ALLOWED_METRICS, LlmSpanFields, Provider};
