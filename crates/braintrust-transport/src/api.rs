//! [`ApiClient`]: authenticated requests to the Braintrust API (and its proxy URL) for the
//! request/response parts of the SDK (prompts, functions, datasets), usable from any async
//! runtime or none.
//!
//! Requests run on one small background runtime shared by the process, so a client can be
//! created once and used from `#[tokio::test]`s, other executors, or plain threads alike; the
//! caller only awaits the result. Login happens on first use, once per client (concurrent first
//! requests share it), and is cached.
//!
//! ```
//! use braintrust_transport::api::ApiClient;
//!
//! let server = braintrust_local::LocalServer::start()?;
//! // `LoginOptions` with the server's key and URL; `ApiClient::shared()` reads the environment.
//! let client = ApiClient::new(server.login_options())?;
//! let org = client.org_blocking()?;
//! assert_eq!(org.org_name, server.org_name());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;
use std::sync::{Arc, OnceLock};

use braintrust_core::attachment::{
    AttachmentError, AttachmentMetadata, AttachmentReader, AttachmentReference, BoxFuture,
    ReadonlyAttachment,
};
use braintrust_core::env_file::EnvLookup;
use serde_json::Value;

use crate::config::Config;
use crate::http::{HttpClient, HttpError, HttpRequest, HyperClient, Method, StreamingResponse};
use crate::login::{LoginError, LoginOptions, OrgState, login};

/// Why an API request failed. Cloneable, so one failure can be handed to every caller that
/// waited on the same request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// Login failed (no key, a rejected key, an unknown organisation, …).
    #[error(transparent)]
    Login(Arc<LoginError>),
    /// The request got no response.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server answered with an error status.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The request URL.
        url: String,
        /// The response body (truncated to 2,000 characters).
        body: String,
    },
    /// The response was not what the API documents.
    #[error("unexpected response from {url}: {message}")]
    InvalidResponse {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The background runtime could not run the request.
    #[error("cannot run the request: {0}")]
    Runtime(String),
}

impl ApiError {
    /// Whether the server could not be reached or failed (a connection error, a timeout, a 5xx
    /// or 429 answer), as opposed to answering that the request is wrong. Caches fall back on
    /// these only.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ApiError::Http(_) | ApiError::Runtime(_) => true,
            ApiError::Status { status, .. } => crate::remote::is_retryable(*status),
            ApiError::Login(e) => match e.as_ref() {
                LoginError::Http(_) => true,
                LoginError::InvalidApiKey { status, .. } => crate::remote::is_retryable(*status),
                _ => false,
            },
            ApiError::InvalidResponse { .. } => false,
        }
    }

    /// The HTTP status the server answered with, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> ApiError {
        ApiError::Login(Arc::new(e))
    }
}

/// Which base URL a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The API URL (`/v1/*`, `/btql`, …).
    Api,
    /// The proxy URL (`/function/invoke`); the API URL when login gives none.
    Proxy,
}

struct Inner {
    config: Config,
    env: EnvLookup,
    http: Arc<dyn HttpClient>,
    org: tokio::sync::OnceCell<OrgState>,
}

/// An authenticated client of the Braintrust API. Cheap to clone; clones share the login and
/// the connection pool.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("app_url", &self.inner.config.app_url)
            .field("api_url", &self.inner.config.api_url)
            .field("org", &self.inner.org.get().map(|o| &o.org_name))
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<ApiClient> = OnceLock::new();

impl ApiClient {
    /// A client with the default HTTP client; unset options come from the environment (or
    /// `options.env`). Nothing is sent until the first request.
    pub fn new(options: LoginOptions) -> Result<ApiClient, ApiError> {
        let http_options = options.http.clone();
        let env = options.env.clone().unwrap_or_else(EnvLookup::process);
        let config = options.into_config(&env)?;
        let http = http_options.unwrap_or_else(|| config.http_options());
        let client = HyperClient::with_env(http, |name| env.get(name))?;
        Ok(ApiClient::from_parts(config, env, Arc::new(client)))
    }

    /// A client sending through your own [`HttpClient`].
    pub fn with_http_client(
        options: LoginOptions,
        http: Arc<dyn HttpClient>,
    ) -> Result<ApiClient, ApiError> {
        let env = options.env.clone().unwrap_or_else(EnvLookup::process);
        let config = options.into_config(&env)?;
        Ok(ApiClient::from_parts(config, env, http))
    }

    pub(crate) fn from_parts(
        config: Config,
        env: EnvLookup,
        http: Arc<dyn HttpClient>,
    ) -> ApiClient {
        ApiClient {
            inner: Arc::new(Inner {
                config,
                env,
                http,
                org: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The process-wide client configured from the environment, created on first use.
    pub fn shared() -> Result<ApiClient, ApiError> {
        if let Some(client) = SHARED.get() {
            return Ok(client.clone());
        }
        let client = ApiClient::new(LoginOptions::default())?;
        Ok(SHARED.get_or_init(|| client).clone())
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where settings are read from.
    pub fn env(&self) -> &EnvLookup {
        &self.inner.env
    }

    /// The organisation, logging in on first use (concurrent callers share one login).
    pub async fn org(&self) -> Result<OrgState, ApiError> {
        let client = self.clone();
        run(async move { client.org_here().await }).await
    }

    /// [`ApiClient::org`] for synchronous code (blocks the calling thread).
    pub fn org_blocking(&self) -> Result<OrgState, ApiError> {
        block_on(self.org())
    }

    async fn org_here(&self) -> Result<OrgState, ApiError> {
        let inner = &self.inner;
        inner
            .org
            .get_or_try_init(|| async { login(inner.http.as_ref(), &inner.config).await })
            .await
            .cloned()
            .map_err(ApiError::from)
    }

    async fn base_url(&self, host: Host) -> Result<String, ApiError> {
        let config = &self.inner.config;
        match (host, &config.api_url, &config.proxy_url) {
            (Host::Api, Some(url), _) | (Host::Proxy, _, Some(url)) => Ok(url.clone()),
            (Host::Api, None, _) => Ok(self.org_here().await?.api_url),
            (Host::Proxy, _, None) => Ok(self.org_here().await?.proxy_url),
        }
    }

    /// A request to `path` (with its query string) on `host`, with the API key and our
    /// `User-Agent`; `headers` are added after them.
    fn request(&self, method: Method, url: String) -> HttpRequest {
        crate::remote::api_request(
            method,
            url,
            self.inner.config.api_key.as_deref().unwrap_or_default(),
        )
    }

    /// `GET {api}{path}?{query}` and the JSON answer.
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let path = with_query(path, query);
        let client = self.clone();
        run(async move {
            let url = format!("{}{path}", client.base_url(Host::Api).await?);
            let request = client.request(Method::Get, url.clone());
            let response = client.inner.http.send(request).await?;
            json_answer(&url, response.status, &response.body)
        })
        .await
    }

    /// `POST {host}{path}` with a JSON body and extra headers; the JSON answer.
    pub async fn post_json(
        &self,
        host: Host,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        let (path, body, headers) = (path.to_owned(), body.to_string(), owned_headers(headers));
        let client = self.clone();
        run(async move {
            let (url, request) = client
                .post_request(host, path, body.into_bytes(), headers, "application/json")
                .await?;
            let response = client.inner.http.send(request).await?;
            json_answer(&url, response.status, &response.body)
        })
        .await
    }

    /// `POST {host}{path}` with a JSON body, returning once the response head arrives; the body
    /// streams (`Accept: text/event-stream`). Error statuses are read whole and returned as
    /// [`ApiError::Status`].
    pub async fn post_streaming(
        &self,
        host: Host,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<StreamingResponse, ApiError> {
        let (path, body, headers) = (path.to_owned(), body.to_string(), owned_headers(headers));
        let client = self.clone();
        run(async move {
            let (url, request) = client
                .post_request(host, path, body.into_bytes(), headers, "text/event-stream")
                .await?;
            let response = client.inner.http.send_streaming(request).await?;
            if !(200..300).contains(&response.status) {
                let response = response.collect().await?;
                return Err(status_error(&url, response.status, &response.body));
            }
            // The body is read on the background runtime too, whoever polls the stream.
            Ok(forward_body(response))
        })
        .await
    }

    async fn post_request(
        &self,
        host: Host,
        path: String,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        accept: &'static str,
    ) -> Result<(String, HttpRequest), ApiError> {
        let url = format!("{}{path}", self.base_url(host).await?);
        let mut request = self
            .request(Method::Post, url.clone())
            .header("Accept", accept)
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        Ok((url, request.body(body)))
    }
}

/// Reading attachments back: `GET /attachment` for the download URL and status, then a plain
/// `GET` of the download URL (without the API key).
impl ApiClient {
    /// A handle on the attachment `reference` (from a fetched row), downloaded on first use.
    ///
    /// ```
    /// use braintrust_core::attachment::{AttachmentReference, ReadonlyAttachment};
    /// use braintrust_transport::api::ApiClient;
    ///
    /// let server = braintrust_local::LocalServer::start()?;
    /// let client = ApiClient::new(server.login_options())?;
    /// let row = serde_json::json!({"input": {"doc": {"type": "external_attachment",
    ///     "filename": "a.pdf", "content_type": "application/pdf", "url": "s3://b/a.pdf"}}});
    /// let found: Vec<ReadonlyAttachment> = client.attachments_in(&row);
    /// assert_eq!(found[0].reference().filename(), "a.pdf");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attachment(&self, reference: AttachmentReference) -> ReadonlyAttachment {
        let reader: Arc<dyn AttachmentReader> = Arc::new(self.clone());
        ReadonlyAttachment::new(reference, reader)
    }

    /// Handles on every attachment referenced inside `value` (a fetched row or part of one).
    pub fn attachments_in(&self, value: &Value) -> Vec<ReadonlyAttachment> {
        let reader: Arc<dyn AttachmentReader> = Arc::new(self.clone());
        ReadonlyAttachment::all_in(value, &reader)
    }

    async fn attachment_metadata(
        &self,
        reference: &AttachmentReference,
    ) -> Result<AttachmentMetadata, ApiError> {
        let org = self.org().await?;
        let mut query = vec![
            ("filename", reference.filename()),
            ("content_type", reference.content_type()),
            ("org_id", org.org_id.as_str()),
        ];
        match reference {
            AttachmentReference::Braintrust { key, .. } => query.push(("key", key)),
            AttachmentReference::External { url, .. } => query.push(("url", url)),
        }
        let answer = self.get_json("/attachment", &query).await?;
        let invalid = |message: &str| ApiError::InvalidResponse {
            url: "/attachment".into(),
            message: message.into(),
        };
        let download_url = answer
            .get("downloadUrl")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("the response lacks `downloadUrl`"))?
            .to_owned();
        let status = serde_json::from_value(answer.get("status").cloned().unwrap_or_default())
            .map_err(|e| invalid(&format!("invalid `status`: {e}")))?;
        Ok(AttachmentMetadata {
            download_url,
            status,
        })
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, ApiError> {
        let client = self.clone();
        let url = url.to_owned();
        run(async move {
            let request = HttpRequest::new(Method::Get, url.clone())
                .header("User-Agent", crate::remote::USER_AGENT);
            let response = client.inner.http.send(request).await?;
            if !(200..300).contains(&response.status) {
                return Err(status_error(&url, response.status, &response.body));
            }
            Ok(response.body)
        })
        .await
    }
}

impl AttachmentReader for ApiClient {
    fn metadata<'a>(
        &'a self,
        reference: &'a AttachmentReference,
    ) -> BoxFuture<'a, Result<AttachmentMetadata, AttachmentError>> {
        Box::pin(async move {
            self.attachment_metadata(reference)
                .await
                .map_err(|e| AttachmentError::Request(e.to_string()))
        })
    }

    fn download<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AttachmentError>> {
        Box::pin(async move {
            ApiClient::download(self, url)
                .await
                .map_err(|e| AttachmentError::Request(e.to_string()))
        })
    }
}

fn owned_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Appends percent-encoded query parameters to `path`.
/// Characters escaped in a URL path segment (all but the unreserved ones).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` escaped for use as one URL path segment (ids in `/v1/{type}/{id}` paths).
pub fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut out = path.to_owned();
    for (i, (key, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.extend(utf8_percent_encode(key, NON_ALPHANUMERIC));
        out.push('=');
        out.extend(utf8_percent_encode(value, NON_ALPHANUMERIC));
    }
    out
}

fn status_error(url: &str, status: u16, body: &[u8]) -> ApiError {
    ApiError::Status {
        status,
        url: url.to_owned(),
        body: crate::remote::truncate(&String::from_utf8_lossy(body), 2000).to_owned(),
    }
}

fn json_answer(url: &str, status: u16, body: &[u8]) -> Result<Value, ApiError> {
    if !(200..300).contains(&status) {
        return Err(status_error(url, status, body));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidResponse {
        url: url.to_owned(),
        message: format!("invalid JSON: {e}"),
    })
}

/// Moves the reading of a streaming body onto the background runtime, handing chunks over a
/// channel, so the caller's executor never polls hyper's I/O.
fn forward_body(response: StreamingResponse) -> StreamingResponse {
    use futures_util::StreamExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, HttpError>>(16);
    let mut body = response.body;
    tokio::spawn(async move {
        while let Some(chunk) = body.next().await {
            if tx.send(chunk).await.is_err() {
                break; // the caller dropped the stream
            }
        }
    });
    StreamingResponse {
        status: response.status,
        headers: response.headers,
        body: crate::http::BodyStream::new(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })),
    }
}

/// An [`HttpClient`] whose requests run on the SDK's background runtime, so that they can be
/// awaited from any executor (or blocked on from plain threads). Streamed bodies are read there
/// too. The provider clients use it.
#[derive(Debug, Clone)]
pub struct BackgroundHttp {
    http: Arc<dyn HttpClient>,
}

impl BackgroundHttp {
    /// Requests sent through `http`.
    pub fn new(http: Arc<dyn HttpClient>) -> BackgroundHttp {
        BackgroundHttp { http }
    }

    /// The default hyper client, configured from the environment (proxy, timeouts).
    pub fn from_env() -> Result<BackgroundHttp, HttpError> {
        let client = HyperClient::with_env(crate::http::HttpOptions::default(), |name| {
            std::env::var(name).ok()
        })?;
        Ok(BackgroundHttp::new(Arc::new(client)))
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&self, request: HttpRequest) -> Result<crate::http::HttpResponse, ApiError> {
        let http = self.http.clone();
        run(async move { Ok(http.send(request).await?) }).await
    }

    /// Sends `request` and returns when the response head arrives; the body streams.
    pub async fn send_streaming(
        &self,
        request: HttpRequest,
    ) -> Result<StreamingResponse, ApiError> {
        let http = self.http.clone();
        run(async move { Ok(forward_body(http.send_streaming(request).await?)) }).await
    }
}

/// The runtime all [`ApiClient`] requests run on: one worker thread, started on first use.
fn io_runtime() -> Result<&'static tokio::runtime::Runtime, ApiError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("braintrust-api")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ApiError::Runtime(format!("cannot start the background runtime: {e}")))
}

/// Runs `future` on the background runtime and awaits it from any executor.
pub(crate) async fn run<T: Send + 'static>(
    future: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    let handle = io_runtime()?.spawn(future);
    handle
        .await
        .map_err(|e| ApiError::Runtime(format!("the request task failed: {e}")))?
}

/// Blocks the calling thread on `future` (for synchronous callers of the async API; the work
/// itself runs on the background runtime, so this is safe inside another runtime's thread only
/// where blocking is allowed).
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    futures_executor::block_on(future)
}
