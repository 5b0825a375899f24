//! What the built-in raw-JSON clients share: options, errors, sending, and the traced stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use braintrust_transport::api::{ApiError, BackgroundHttp};
use braintrust_transport::http::{BodyStream, HttpClient, HttpRequest, Method, RequestBody};
use braintrust_transport::sse::SseParser;
use serde_json::Value;

use crate::call::{LlmCallSpan, RecordedStream};
use crate::fields::LlmSpanFields;

/// Why a provider call failed. Provider answers are returned as they came.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No API key (or credentials) were configured.
    #[error("{0}")]
    Config(String),
    /// The request got no response (connection, timeout, runtime).
    #[error("provider request failed: {0}")]
    Request(#[from] ApiError),
    /// The provider answered with an error status; `body` is its answer, unchanged.
    #[error("HTTP {status} from the provider: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// Response headers (lower-case names).
        headers: Vec<(String, String)>,
        /// The response body.
        body: String,
    },
    /// The provider's answer (or a streamed event) is not the JSON it should be.
    #[error("invalid response from the provider: {message}")]
    InvalidResponse {
        /// What was wrong.
        message: String,
        /// The offending text.
        body: String,
    },
    /// The stream broke off.
    #[error("the provider stream failed: {0}")]
    Stream(String),
}

impl ProviderError {
    /// The HTTP status, when the provider answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The provider's error body parsed as JSON, when it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        match self {
            ProviderError::Status { body, .. } => serde_json::from_str(body).ok(),
            _ => None,
        }
    }
}

/// Settings of a built-in client; unset values come from the provider's usual environment
/// variables.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    pub(crate) base_url: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) http: Option<Arc<dyn HttpClient>>,
}

impl ClientOptions {
    /// Options from the environment.
    pub fn new() -> ClientOptions {
        ClientOptions::default()
    }

    /// The base URL (for OpenAI it includes `/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> ClientOptions {
        self.base_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The API key.
    pub fn api_key(mut self, key: impl Into<String>) -> ClientOptions {
        self.api_key = Some(key.into());
        self
    }

    /// A header sent with every request, unchanged (e.g. `anthropic-beta`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> ClientOptions {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends through your own [`HttpClient`] instead of the default hyper client.
    pub fn http_client(mut self, http: Arc<dyn HttpClient>) -> ClientOptions {
        self.http = Some(http);
        self
    }

    /// The base URL: the option, else the first non-blank variable of `vars`, else `default`.
    pub(crate) fn resolved_base_url(&self, vars: &[&str], default: &str) -> String {
        self.base_url
            .clone()
            .or_else(|| env_value(vars))
            .unwrap_or_else(|| default.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }

    /// The API key: the option, else the first non-blank variable of `vars`.
    #[cfg(any(feature = "openai", feature = "anthropic", feature = "gemini"))]
    pub(crate) fn resolved_api_key(&self, vars: &[&str]) -> Option<String> {
        self.api_key.clone().or_else(|| env_value(vars))
    }

    pub(crate) fn background_http(&self) -> Result<BackgroundHttp, ProviderError> {
        match &self.http {
            Some(http) => Ok(BackgroundHttp::new(http.clone())),
            None => BackgroundHttp::from_env()
                .map_err(|e| ProviderError::Config(format!("cannot build the HTTP client: {e}"))),
        }
    }
}

pub(crate) fn env_value(vars: &[&str]) -> Option<String> {
    vars.iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
}

/// A base URL, authentication headers and the HTTP client of one provider client.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) http: BackgroundHttp,
    pub(crate) base_url: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Endpoint {
    pub(crate) fn request(&self, path: &str, body: Vec<u8>, content_type: &str) -> HttpRequest {
        let mut request = HttpRequest::new(Method::Post, format!("{}{path}", self.base_url))
            .header("Content-Type", content_type)
            .header(
                "User-Agent",
                concat!("braintrust-rust/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &self.headers {
            request = request.header(name.clone(), value.clone());
        }
        request.body(body)
    }

    /// Sends a request and returns its JSON answer with the bytes it was read from, or the
    /// provider's error as it came.
    pub(crate) async fn send_json(
        &self,
        request: HttpRequest,
    ) -> Result<(Value, Vec<u8>), ProviderError> {
        let response = self.http.send(request).await?;
        let text = || String::from_utf8_lossy(&response.body).into_owned();
        if !(200..300).contains(&response.status) {
            return Err(ProviderError::Status {
                status: response.status,
                headers: response.headers.clone(),
                body: text(),
            });
        }
        match serde_json::from_slice(&response.body) {
            Ok(value) => Ok((value, response.body)),
            Err(e) => Err(ProviderError::InvalidResponse {
                message: e.to_string(),
                body: text(),
            }),
        }
    }

    /// Sends a request and returns the streaming body once the head arrives.
    pub(crate) async fn send_streaming(
        &self,
        request: HttpRequest,
    ) -> Result<BodyStream, ProviderError> {
        let response = self.http.send_streaming(request).await?;
        if !(200..300).contains(&response.status) {
            let status = response.status;
            let response = response
                .collect()
                .await
                .map_err(|e| ProviderError::Stream(e.to_string()))?;
            return Err(ProviderError::Status {
                status,
                headers: response.headers,
                body: String::from_utf8_lossy(&response.body).into_owned(),
            });
        }
        Ok(response.body)
    }
}

/// Starts the `llm` span of a call whose request is `http`, sent for the caller's `request`.
/// The span's request fields are built by `fields` on the sender's thread, from the bytes sent
/// (shared, not copied) — or from the caller's full request when the body left its `span_info`
/// out.
pub(crate) fn start_call(
    name: &str,
    instrumentation: &'static str,
    request: &Value,
    http: &HttpRequest,
    fields: impl FnOnce(&Value) -> LlmSpanFields + Send + 'static,
) -> LlmCallSpan {
    let seen: RequestBody = if request.get("span_info").is_some() {
        serde_json::to_vec(request).unwrap_or_default().into()
    } else {
        http.body.clone()
    };
    LlmCallSpan::start_with(name, instrumentation, move || {
        fields(&serde_json::from_slice(&seen).unwrap_or(Value::Null))
    })
}

/// Sends `request` under `call`: the response's fields (built on the sender's thread from the
/// bytes received) end the span, or the error fails it.
pub(crate) async fn traced_json(
    endpoint: &Endpoint,
    request: HttpRequest,
    call: LlmCallSpan,
    response_fields: fn(&Value) -> LlmSpanFields,
) -> Result<Value, ProviderError> {
    match endpoint.send_json(request).await {
        Ok((response, bytes)) => {
            call.finish_with(move || {
                response_fields(&serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            });
            Ok(response)
        }
        Err(e) => {
            call.fail_with(LlmSpanFields::default, &e);
            Err(e)
        }
    }
}

/// The request's bytes, exactly as serialised from the caller's value — except for a
/// Braintrust prompt's `span_info` (see [`crate::fields::prompt_metadata`]), which is for the
/// span and never sent to the provider.
pub(crate) fn body(request: &Value) -> Vec<u8> {
    match request.as_object() {
        Some(map) if map.contains_key("span_info") => {
            let mut map = map.clone();
            map.shift_remove("span_info");
            serde_json::to_vec(&map).unwrap_or_default()
        }
        _ => serde_json::to_vec(request).unwrap_or_default(),
    }
}

/// The request with `"stream": true` when the caller left it out.
#[cfg(any(feature = "openai", feature = "anthropic"))]
pub(crate) fn streaming_body(request: &Value) -> Vec<u8> {
    match request.get("stream") {
        Some(Value::Bool(true)) => body(request),
        _ => {
            let mut request = request.clone();
            if let Some(map) = request.as_object_mut() {
                map.insert("stream".into(), Value::Bool(true));
            }
            body(&request)
        }
    }
}

/// Sends a streaming request under `call`: the stream of its events, decoded by `decoder` and
/// folded into `aggregate`; on an error answer the span fails and the error is returned.
pub(crate) async fn traced_stream(
    endpoint: &Endpoint,
    request: HttpRequest,
    call: LlmCallSpan,
    decoder: Decoder,
    fold: Fold,
) -> Result<LlmStream, ProviderError> {
    match endpoint.send_streaming(request).await {
        Ok(body) => Ok(LlmStream::new(body, decoder, fold, call)),
        Err(e) => {
            call.fail_with(LlmSpanFields::default, &e);
            Err(e)
        }
    }
}

/// How a stream's recorded events become span fields: [`RecordedStream::fields`] of the
/// provider's aggregator.
pub(crate) type Fold = fn(&RecordedStream) -> LlmSpanFields;

/// A server-sent-events decoder.
#[cfg(any(feature = "openai", feature = "anthropic", feature = "gemini"))]
pub(crate) fn sse() -> Decoder {
    Decoder::Sse(SseParser::default())
}

/// How a stream's bytes become events.
pub(crate) enum Decoder {
    /// Server-sent events with JSON data (`[DONE]` ends the stream).
    #[cfg_attr(
        not(any(feature = "openai", feature = "anthropic", feature = "gemini")),
        allow(dead_code)
    )]
    Sse(SseParser),
    /// The AWS event-stream binary framing.
    #[cfg(feature = "bedrock")]
    EventStream(crate::eventstream::Decoder),
}

impl Decoder {
    /// The body ended: an SSE event without its final blank line still counts.
    fn finish(&mut self) {
        match self {
            Decoder::Sse(parser) => parser.finish(),
            #[cfg(feature = "bedrock")]
            Decoder::EventStream(_) => {}
        }
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decoder::Sse(_) => "Sse",
            #[cfg(feature = "bedrock")]
            Decoder::EventStream(_) => "EventStream",
        })
    }
}

/// A provider stream: the events as JSON values, each added to the call's span. The span ends
/// when the stream ends, fails, or is dropped (with what arrived).
pub struct LlmStream {
    body: BodyStream,
    decoder: Decoder,
    ready: VecDeque<Value>,
    /// The events so far, folded into the span's fields on the sender's thread.
    recorded: RecordedStream,
    fold: Fold,
    call: Option<LlmCallSpan>,
    /// An error to yield once the events decoded before it are.
    error: Option<ProviderError>,
    done: bool,
}

impl std::fmt::Debug for LlmStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmStream")
            .field("decoder", &self.decoder)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl LlmStream {
    pub(crate) fn new(
        body: BodyStream,
        decoder: Decoder,
        fold: Fold,
        call: LlmCallSpan,
    ) -> LlmStream {
        LlmStream {
            body,
            decoder,
            ready: VecDeque::new(),
            recorded: RecordedStream::new(),
            fold,
            call: Some(call),
            error: None,
            done: false,
        }
    }

    /// The non-streaming span fields of what arrived so far.
    pub fn fields(&self) -> LlmSpanFields {
        (self.fold)(&self.recorded)
    }

    fn finish(&mut self) {
        if let Some(call) = self.call.take() {
            let (recorded, fold) = (std::mem::take(&mut self.recorded), self.fold);
            call.finish_with(move || fold(&recorded));
        }
    }

    /// Fails the span now; the error is yielded after the events decoded before it.
    fn fail(&mut self, error: ProviderError) {
        self.done = true;
        if let Some(call) = self.call.take() {
            let (recorded, fold) = (std::mem::take(&mut self.recorded), self.fold);
            call.fail_with(move || fold(&recorded), &error);
        }
        self.error = Some(error);
    }

    /// Decodes a chunk into ready events.
    fn feed(&mut self, chunk: &[u8]) -> Result<(), ProviderError> {
        match &mut self.decoder {
            Decoder::Sse(parser) => {
                parser.feed(chunk);
                while let Some(event) = parser.next_event() {
                    let data = event.data.trim();
                    if data.is_empty() {
                        continue;
                    }
                    if data == "[DONE]" {
                        self.done = true;
                        continue;
                    }
                    let value: Value =
                        serde_json::from_str(data).map_err(|e| ProviderError::InvalidResponse {
                            message: format!("stream event is not JSON: {e}"),
                            body: data.to_owned(),
                        })?;
                    if let Some(call) = &mut self.call {
                        call.mark_first_token();
                        self.recorded.push(event.event, event.data);
                    }
                    self.ready.push_back(value);
                }
            }
            #[cfg(feature = "bedrock")]
            Decoder::EventStream(decoder) => {
                decoder.feed(chunk);
                while let Some(message) = decoder.next_message().map_err(ProviderError::Stream)? {
                    if message.message_type == "exception" || message.message_type == "error" {
                        return Err(ProviderError::Stream(format!(
                            "{}: {}",
                            message.event_type,
                            String::from_utf8_lossy(&message.payload)
                        )));
                    }
                    let value: Value = serde_json::from_slice(&message.payload).map_err(|e| {
                        ProviderError::InvalidResponse {
                            message: format!("stream event is not JSON: {e}"),
                            body: String::from_utf8_lossy(&message.payload).into_owned(),
                        }
                    })?;
                    if let Some(call) = &mut self.call {
                        call.mark_first_token();
                        self.recorded
                            .push(message.event_type.clone(), message.payload);
                    }
                    // Events read as the AWS SDKs' JSON shape: `{eventType: payload}`.
                    let mut wrapped = serde_json::Map::new();
                    wrapped.insert(message.event_type, value);
                    self.ready.push_back(Value::Object(wrapped));
                }
            }
        }
        Ok(())
    }
}

impl futures_core::Stream for LlmStream {
    type Item = Result<Value, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(value) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(value)));
            }
            if let Some(error) = this.error.take() {
                return Poll::Ready(Some(Err(error)));
            }
            if this.done {
                this.finish();
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.decoder.finish();
                    if let Err(e) = this.feed(&[]) {
                        this.fail(e);
                        continue;
                    }
                    this.done = true;
                }
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = this.feed(&chunk) {
                        this.fail(e);
                    }
                }
                Poll::Ready(Some(Err(e))) => this.fail(ProviderError::Stream(e.to_string())),
            }
        }
    }
}

impl Drop for LlmStream {
    fn drop(&mut self) {
        // A dropped stream ends its span with what arrived.
        self.finish();
    }
}
