//! HTTP behind a small trait of ours, so users can plug in their own client; the default is
//! hyper's pooled client with rustls (ring, webpki roots), HTTP/1.1 and HTTP/2.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An HTTP method used by the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// A request to send. `Debug` hides credentials (`Authorization` shows masked).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none). Shared, so retrying a request does not copy it.
    pub body: Arc<[u8]>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if name.eq_ignore_ascii_case("authorization") {
                    let key = value.strip_prefix("Bearer ").unwrap_or(value);
                    format!("Bearer {}", crate::config::mask_api_key(key))
                } else {
                    value.clone()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Arc::from([] as [u8; 0]),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Arc<[u8]>>) -> HttpRequest {
        self.body = body.into();
        self
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL or a header could not be used.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No response within the request timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke (refused, reset, TLS failure, …).
    #[error("connection failed: {0}")]
    Connection(String),
}

/// The future an [`HttpClient`] returns.
pub type ResponseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

/// An HTTP client the SDK can send through. Implement it to use your own client; requests are
/// sent from the SDK's own tokio runtime.
pub trait HttpClient: Send + Sync + fmt::Debug {
    /// Sends a request and reads the whole response.
    fn send(&self, request: HttpRequest) -> ResponseFuture<'_>;
}

/// Settings of the default client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, response body included (`BRAINTRUST_HTTP_TIMEOUT`).
    pub request_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The default client: hyper's pooled client over rustls, HTTP/1.1 and HTTP/2 (by ALPN).
/// It must be used from within a tokio runtime.
pub struct HyperClient {
    client: Client<Connector, Full<Bytes>>,
    options: HttpOptions,
}

impl fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HyperClient {
    /// A client with the given timeouts, trusting the webpki root certificates. TLS uses the
    /// ring provider explicitly, whatever other rustls providers the program enables.
    pub fn new(options: HttpOptions) -> Result<HyperClient, HttpError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::InvalidRequest(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(HyperClient { client, options })
    }

    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let req = builder
            .body(Full::new(Bytes::from_owner(request.body)))
            .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
        let response = self
            .client
            .request(req)
            .await
            .map_err(|e| HttpError::Connection(error_chain(&e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::Connection(error_chain(&e)))?
            .to_bytes()
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl HttpClient for HyperClient {
    fn send(&self, request: HttpRequest) -> ResponseFuture<'_> {
        let timeout = self.options.request_timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, self.execute(request))
                .await
                .unwrap_or(Err(HttpError::Timeout(timeout)))
        })
    }
}
