//! The built-in OpenAI client: chat completions and responses, plain and streamed.

use serde_json::Value;

use crate::call::RecordedStream;
use crate::client::{
    ClientOptions, Endpoint, LlmStream, ProviderError, body, sse, start_call, streaming_body,
    traced_json, traced_stream,
};
use crate::openai::{
    CHAT_SPAN_NAME, ChatStream, RESPONSES_SPAN_NAME, ResponsesStream, chat_request_fields,
    chat_response_fields, responses_request_fields, responses_response_fields,
};

/// `context.span_origin.instrumentation.name` of spans from this client.
pub const INSTRUMENTATION: &str = "braintrust::providers::openai";

/// A raw-JSON OpenAI client whose calls are `llm` spans. The base URL comes from the options,
/// else `OPENAI_BASE_URL`, else `https://api.openai.com/v1`; the key from the options, else
/// `OPENAI_API_KEY`.
///
/// ```no_run
/// # async fn run() -> Result<(), braintrust_providers::ProviderError> {
/// use braintrust_providers::{ClientOptions, openai::OpenAiClient};
/// use serde_json::json;
///
/// let client = OpenAiClient::new(ClientOptions::new())?;
/// let response = client
///     .chat_completions(&json!({"model": "gpt-4o-mini",
///         "messages": [{"role": "user", "content": "Hello"}]}))
///     .await?;
/// println!("{}", response["choices"][0]["message"]["content"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiClient {
    endpoint: Endpoint,
}

impl OpenAiClient {
    /// A client with `options` (unset values from the environment).
    pub fn new(options: ClientOptions) -> Result<OpenAiClient, ProviderError> {
        let base_url = options.resolved_base_url(&["OPENAI_BASE_URL"], "https://api.openai.com/v1");
        let key = options
            .resolved_api_key(&["OPENAI_API_KEY"])
            .ok_or_else(|| {
                ProviderError::Config(
                    "no OpenAI API key: pass ClientOptions::api_key or set OPENAI_API_KEY".into(),
                )
            })?;
        let mut headers = vec![("Authorization".to_owned(), format!("Bearer {key}"))];
        headers.extend(options.headers.iter().cloned());
        Ok(OpenAiClient {
            endpoint: Endpoint {
                http: options.background_http()?,
                base_url,
                headers,
            },
        })
    }

    /// `POST /chat/completions`; the request is sent as given.
    pub async fn chat_completions(&self, request: &Value) -> Result<Value, ProviderError> {
        let http = self
            .endpoint
            .request("/chat/completions", body(request), "application/json");
        let call = start_call(
            CHAT_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            chat_request_fields,
        );
        traced_json(&self.endpoint, http, call, chat_response_fields).await
    }

    /// `POST /chat/completions` streamed: the chunks as they arrive. The request should carry
    /// `"stream": true` (added when absent) and `stream_options.include_usage` for token
    /// metrics.
    pub async fn chat_completions_stream(
        &self,
        request: &Value,
    ) -> Result<LlmStream, ProviderError> {
        let http = self
            .endpoint
            .request(
                "/chat/completions",
                streaming_body(request),
                "application/json",
            )
            .header("Accept", "text/event-stream");
        let call = start_call(
            CHAT_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            chat_request_fields,
        );
        traced_stream(
            &self.endpoint,
            http,
            call,
            sse(),
            RecordedStream::fields::<ChatStream>,
        )
        .await
    }

    /// `POST /responses`.
    pub async fn responses(&self, request: &Value) -> Result<Value, ProviderError> {
        let http = self
            .endpoint
            .request("/responses", body(request), "application/json");
        let call = start_call(
            RESPONSES_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            responses_request_fields,
        );
        traced_json(&self.endpoint, http, call, responses_response_fields).await
    }

    /// `POST /responses` streamed: the events as they arrive.
    pub async fn responses_stream(&self, request: &Value) -> Result<LlmStream, ProviderError> {
        let http = self
            .endpoint
            .request("/responses", streaming_body(request), "application/json")
            .header("Accept", "text/event-stream");
        let call = start_call(
            RESPONSES_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            responses_request_fields,
        );
        traced_stream(
            &self.endpoint,
            http,
            call,
            sse(),
            RecordedStream::fields::<ResponsesStream>,
        )
        .await
    }
}
