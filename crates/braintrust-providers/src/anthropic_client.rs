//! The built-in Anthropic client: messages, plain and streamed.

use serde_json::Value;

use crate::anthropic::{
    MESSAGES_SPAN_NAME, MESSAGES_STREAM_SPAN_NAME, MessagesStream, messages_request_fields,
    messages_response_fields,
};
use crate::call::RecordedStream;
use crate::client::{
    ClientOptions, Endpoint, LlmStream, ProviderError, body, sse, start_call, streaming_body,
    traced_json, traced_stream,
};

/// `context.span_origin.instrumentation.name` of spans from this client.
pub const INSTRUMENTATION: &str = "braintrust::providers::anthropic";

/// The `anthropic-version` header sent unless the options set one.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// A raw-JSON Anthropic client whose calls are `llm` spans. The base URL comes from the
/// options, else `ANTHROPIC_BASE_URL`, else `https://api.anthropic.com`; the key from the
/// options, else `ANTHROPIC_API_KEY`. Extra headers (`anthropic-beta`, …) pass through as given.
#[derive(Debug, Clone)]
pub struct AnthropicClient {
    endpoint: Endpoint,
}

impl AnthropicClient {
    /// A client with `options` (unset values from the environment).
    pub fn new(options: ClientOptions) -> Result<AnthropicClient, ProviderError> {
        let base_url =
            options.resolved_base_url(&["ANTHROPIC_BASE_URL"], "https://api.anthropic.com");
        let key = options
            .resolved_api_key(&["ANTHROPIC_API_KEY"])
            .ok_or_else(|| {
                ProviderError::Config(
                    "no Anthropic API key: pass ClientOptions::api_key or set ANTHROPIC_API_KEY"
                        .into(),
                )
            })?;
        let mut headers = vec![("x-api-key".to_owned(), key)];
        if !options
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("anthropic-version"))
        {
            headers.push(("anthropic-version".to_owned(), DEFAULT_VERSION.to_owned()));
        }
        headers.extend(options.headers.iter().cloned());
        Ok(AnthropicClient {
            endpoint: Endpoint {
                http: options.background_http()?,
                base_url,
                headers,
            },
        })
    }

    /// `POST /v1/messages`.
    pub async fn messages(&self, request: &Value) -> Result<Value, ProviderError> {
        let http = self
            .endpoint
            .request("/v1/messages", body(request), "application/json");
        let call = start_call(
            MESSAGES_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            messages_request_fields,
        );
        traced_json(&self.endpoint, http, call, messages_response_fields).await
    }

    /// `POST /v1/messages` streamed (`"stream": true` added when absent): the events as they
    /// arrive.
    pub async fn messages_stream(&self, request: &Value) -> Result<LlmStream, ProviderError> {
        let http = self
            .endpoint
            .request("/v1/messages", streaming_body(request), "application/json")
            .header("Accept", "text/event-stream");
        let call = start_call(
            MESSAGES_STREAM_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            messages_request_fields,
        );
        traced_stream(
            &self.endpoint,
            http,
            call,
            sse(),
            RecordedStream::fields::<MessagesStream>,
        )
        .await
    }
}
