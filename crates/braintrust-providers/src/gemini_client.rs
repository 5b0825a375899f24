//! The built-in Gemini client: `generateContent` and `streamGenerateContent`.

use braintrust_transport::api::path_segment;
use serde_json::Value;

use crate::call::RecordedStream;
use crate::client::{
    ClientOptions, Endpoint, LlmStream, ProviderError, body, sse, start_call, traced_json,
    traced_stream,
};
use crate::fields::LlmSpanFields;
use crate::gemini::{
    GENERATE_CONTENT_SPAN_NAME, GenerateContentStream, generate_content_request_fields,
    generate_content_response_fields,
};

/// `context.span_origin.instrumentation.name` of spans from this client.
pub const INSTRUMENTATION: &str = "braintrust::providers::gemini";

/// The content type Google's clients send.
const CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// A raw-JSON Gemini client whose calls are `llm` spans. The base URL comes from the options,
/// else `GEMINI_BASE_URL`, else `https://generativelanguage.googleapis.com`; the key from the
/// options, else `GEMINI_API_KEY` or `GOOGLE_API_KEY` (sent as `x-goog-api-key`).
#[derive(Debug, Clone)]
pub struct GeminiClient {
    endpoint: Endpoint,
}

impl GeminiClient {
    /// A client with `options` (unset values from the environment).
    pub fn new(options: ClientOptions) -> Result<GeminiClient, ProviderError> {
        let base_url = options.resolved_base_url(
            &["GEMINI_BASE_URL"],
            "https://generativelanguage.googleapis.com",
        );
        let key = options
            .resolved_api_key(&["GEMINI_API_KEY", "GOOGLE_API_KEY"])
            .ok_or_else(|| {
                ProviderError::Config(
                    "no Gemini API key: pass ClientOptions::api_key or set GEMINI_API_KEY".into(),
                )
            })?;
        let mut headers = vec![("x-goog-api-key".to_owned(), key)];
        headers.extend(options.headers.iter().cloned());
        Ok(GeminiClient {
            endpoint: Endpoint {
                http: options.background_http()?,
                base_url,
                headers,
            },
        })
    }

    fn path(model: &str, method: &str) -> String {
        let model = model.strip_prefix("models/").unwrap_or(model);
        format!("/v1beta/models/{}:{method}", path_segment(model))
    }

    /// `POST /v1beta/models/{model}:generateContent`.
    pub async fn generate_content(
        &self,
        model: &str,
        request: &Value,
    ) -> Result<Value, ProviderError> {
        let http = self.endpoint.request(
            &Self::path(model, "generateContent"),
            body(request),
            CONTENT_TYPE,
        );
        let call = start_call(
            GENERATE_CONTENT_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            request_fields(model),
        );
        traced_json(&self.endpoint, http, call, generate_content_response_fields).await
    }

    /// `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`: the chunks as they arrive.
    pub async fn stream_generate_content(
        &self,
        model: &str,
        request: &Value,
    ) -> Result<LlmStream, ProviderError> {
        let path = format!("{}?alt=sse", Self::path(model, "streamGenerateContent"));
        let http = self
            .endpoint
            .request(&path, body(request), CONTENT_TYPE)
            .header("Accept", "text/event-stream");
        let call = start_call(
            GENERATE_CONTENT_SPAN_NAME,
            INSTRUMENTATION,
            request,
            &http,
            request_fields(model),
        );
        traced_stream(
            &self.endpoint,
            http,
            call,
            sse(),
            RecordedStream::fields::<GenerateContentStream>,
        )
        .await
    }
}

/// The request fields of a call to `model`, from the request as sent.
fn request_fields(model: &str) -> impl FnOnce(&Value) -> LlmSpanFields + Send + 'static {
    let model = model.to_owned();
    move |request| generate_content_request_fields(&model, request)
}
