//! HTTP behind a small trait of ours, so users can plug in their own client; the default is
//! hyper's pooled client with rustls (ring, webpki roots plus any extra root certificates),
//! HTTP/1.1 and HTTP/2, optionally through an HTTP proxy.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower_service::Service;

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

/// A request body: bytes shared, not copied, between a request's attempts (and taken over
/// without a copy from a `Vec<u8>` or `String`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RequestBody(Bytes);

impl RequestBody {
    /// An empty body.
    pub fn new() -> RequestBody {
        RequestBody::default()
    }

    /// The bytes, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }

    fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl std::ops::Deref for RequestBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for RequestBody {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestBody({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(bytes: Vec<u8>) -> RequestBody {
        RequestBody(Bytes::from(bytes))
    }
}

impl From<String> for RequestBody {
    fn from(text: String) -> RequestBody {
        RequestBody(Bytes::from(text))
    }
}

impl From<&'static [u8]> for RequestBody {
    fn from(bytes: &'static [u8]) -> RequestBody {
        RequestBody(Bytes::from_static(bytes))
    }
}

impl From<&'static str> for RequestBody {
    fn from(text: &'static str) -> RequestBody {
        RequestBody(Bytes::from_static(text.as_bytes()))
    }
}

impl From<Arc<[u8]>> for RequestBody {
    fn from(bytes: Arc<[u8]>) -> RequestBody {
        RequestBody(Bytes::from_owner(bytes))
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
    pub body: RequestBody,
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
            body: RequestBody::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<RequestBody>) -> HttpRequest {
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
    /// The connection failed or broke (refused, reset, TLS failure, proxy refusal, …).
    #[error("connection failed: {0}")]
    Connection(String),
    /// The client's settings cannot be used (a malformed proxy URL or certificate, …).
    #[error("invalid HTTP client settings: {0}")]
    Settings(String),
}

/// The future an [`HttpClient`] returns.
pub type ResponseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'a>>;

/// An HTTP client the SDK can send through. Implement it to use your own client; requests are
/// sent from the SDK's own tokio runtime.
pub trait HttpClient: Send + Sync + fmt::Debug {
    /// Sends a request and reads the whole response.
    fn send(&self, request: HttpRequest) -> ResponseFuture<'_>;

    /// Sends a request and returns as soon as the status and headers arrive; the body is read
    /// as it comes (server-sent events). The default reads the whole body with
    /// [`HttpClient::send`] and yields it as one chunk.
    fn send_streaming(&self, request: HttpRequest) -> StreamingFuture<'_> {
        Box::pin(async move {
            let response = self.send(request).await?;
            Ok(StreamingResponse {
                status: response.status,
                headers: response.headers,
                body: BodyStream::once(response.body),
            })
        })
    }
}

/// The future [`HttpClient::send_streaming`] returns.
pub type StreamingFuture<'a> =
    Pin<Box<dyn Future<Output = Result<StreamingResponse, HttpError>> + Send + 'a>>;

/// A response whose body is still arriving.
#[derive(Debug)]
pub struct StreamingResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, chunk by chunk.
    pub body: BodyStream,
}

impl StreamingResponse {
    /// Reads the rest of the body into one response (for error statuses and JSON answers).
    pub async fn collect(mut self) -> Result<HttpResponse, HttpError> {
        let mut body = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| self.body.poll_chunk(cx)).await {
            body.extend_from_slice(&chunk?);
        }
        Ok(HttpResponse {
            status: self.status,
            headers: self.headers,
            body,
        })
    }
}

/// A response body as a stream of byte chunks (`futures_core::Stream`).
pub struct BodyStream {
    inner: Pin<Box<dyn futures_core::Stream<Item = Result<Vec<u8>, HttpError>> + Send>>,
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream").finish_non_exhaustive()
    }
}

impl BodyStream {
    /// A body from any stream of chunks (for custom [`HttpClient`]s).
    pub fn new(
        stream: impl futures_core::Stream<Item = Result<Vec<u8>, HttpError>> + Send + 'static,
    ) -> BodyStream {
        BodyStream {
            inner: Box::pin(stream),
        }
    }

    /// A body that is one chunk (empty: no chunk at all).
    pub fn once(body: Vec<u8>) -> BodyStream {
        let mut body = (!body.is_empty()).then_some(body);
        BodyStream::new(futures_util::stream::poll_fn(move |_| {
            Poll::Ready(body.take().map(Ok))
        }))
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>, HttpError>>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl futures_core::Stream for BodyStream {
    type Item = Result<Vec<u8>, HttpError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

/// Settings of the default client.
///
/// ```
/// use std::time::Duration;
/// use braintrust_transport::http::{HttpOptions, Proxy};
///
/// let options = HttpOptions::default()
///     .request_timeout(Duration::from_secs(30))
///     .proxy(Proxy::url("http://proxy.internal:3128"));
/// assert_eq!(options.connect_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, response body included (`BRAINTRUST_HTTP_TIMEOUT`).
    pub request_timeout: Duration,
    /// Which proxy to connect through (default: the standard environment variables).
    pub proxy: Proxy,
    /// PEM text of extra trusted root certificates (each entry may hold several), trusted in
    /// addition to the webpki roots: for a TLS-inspecting proxy or a self-hosted deployment
    /// with a private CA.
    pub root_certificates_pem: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> HttpOptions {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            proxy: Proxy::default(),
            root_certificates_pem: Vec::new(),
        }
    }
}

impl HttpOptions {
    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> HttpOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the whole-request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> HttpOptions {
        self.request_timeout = timeout;
        self
    }

    /// Sets the proxy.
    pub fn proxy(mut self, proxy: Proxy) -> HttpOptions {
        self.proxy = proxy;
        self
    }

    /// Trusts the root certificates in `pem` (PEM text, one or more certificates) as well.
    pub fn add_root_certificates_pem(mut self, pem: impl Into<String>) -> HttpOptions {
        self.root_certificates_pem.push(pem.into());
        self
    }

    /// Trusts the root certificates in the PEM file at `path` as well.
    pub fn add_root_certificates_file(
        self,
        path: impl AsRef<Path>,
    ) -> Result<HttpOptions, HttpError> {
        let path = path.as_ref();
        let pem = std::fs::read_to_string(path).map_err(|e| {
            HttpError::Settings(format!(
                "cannot read certificates from {}: {e}",
                path.display()
            ))
        })?;
        Ok(self.add_root_certificates_pem(pem))
    }
}

/// Which HTTP proxy the default client connects through. Requests go through an HTTP
/// `CONNECT` tunnel, for `https` and `http` destinations alike.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Proxy {
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (or their lower-case forms) by the
    /// destination's scheme, except hosts matching `NO_PROXY`. As in Go's standard library,
    /// loopback destinations (`localhost`, `127.0.0.0/8`, `::1`) never use an environment proxy.
    #[default]
    FromEnvironment,
    /// Connect directly, whatever the environment says.
    Direct,
    /// Every request through the proxy at `url` (`http://[user:password@]host:port`; the
    /// credentials are sent as `Proxy-Authorization: Basic`), except hosts matching
    /// `no_proxy` (a comma-separated list in `NO_PROXY` syntax).
    Url {
        /// The proxy's URL.
        url: String,
        /// Hosts to reach directly.
        no_proxy: Option<String>,
    },
}

impl Proxy {
    /// Every request through the proxy at `url`.
    pub fn url(url: impl Into<String>) -> Proxy {
        Proxy::Url {
            url: url.into(),
            no_proxy: None,
        }
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proxy::FromEnvironment => f.write_str("FromEnvironment"),
            Proxy::Direct => f.write_str("Direct"),
            Proxy::Url { url, no_proxy } => f
                .debug_struct("Url")
                .field("url", &mask_url_password(url))
                .field("no_proxy", no_proxy)
                .finish(),
        }
    }
}

/// `url` with the password of its user info (if any) replaced by `***`.
fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// Which destinations go through which proxy.
#[derive(Debug)]
struct ProxyRules {
    matcher: Matcher,
    /// Whether loopback destinations are always reached directly.
    bypass_loopback: bool,
}

impl ProxyRules {
    /// The rules for `proxy`, reading environment variables through `env`.
    fn new(
        proxy: &Proxy,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ProxyRules>, HttpError> {
        match proxy {
            Proxy::Direct => Ok(None),
            Proxy::Url { url, no_proxy } => {
                check_proxy_url(url)?;
                let matcher = Matcher::builder()
                    .all(url.clone())
                    .no(no_proxy.clone().unwrap_or_default())
                    .build();
                Ok(Some(ProxyRules {
                    matcher,
                    bypass_loopback: false,
                }))
            }
            Proxy::FromEnvironment => {
                let first = |names: [&str; 2]| {
                    names
                        .into_iter()
                        .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
                };
                let all = first(["ALL_PROXY", "all_proxy"]);
                let http = first(["HTTP_PROXY", "http_proxy"]);
                let https = first(["HTTPS_PROXY", "https_proxy"]);
                if all.is_none() && http.is_none() && https.is_none() {
                    return Ok(None);
                }
                for url in [&all, &http, &https].into_iter().flatten() {
                    check_proxy_url(url)?;
                }
                let matcher = Matcher::builder()
                    .all(all.unwrap_or_default())
                    .http(http.unwrap_or_default())
                    .https(https.unwrap_or_default())
                    .no(first(["NO_PROXY", "no_proxy"]).unwrap_or_default())
                    .build();
                Ok(Some(ProxyRules {
                    matcher,
                    bypass_loopback: true,
                }))
            }
        }
    }

    /// The proxy for `destination` and its `Proxy-Authorization` value, if one applies.
    fn proxy_for(&self, destination: &Uri) -> Option<(Uri, Option<hyper::header::HeaderValue>)> {
        if self.bypass_loopback && destination.host().is_some_and(is_loopback_host) {
            return None;
        }
        let intercept = self.matcher.intercept(destination)?;
        Some((intercept.uri().clone(), intercept.basic_auth().cloned()))
    }
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Only `http://` proxies with a host are supported.
fn check_proxy_url(url: &str) -> Result<(), HttpError> {
    let shown = mask_url_password(url);
    let uri: Uri = url
        .parse()
        .map_err(|e| HttpError::Settings(format!("invalid proxy URL {shown}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(HttpError::Settings(format!(
            "unsupported proxy URL {shown}: only http:// proxies are supported"
        )));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(HttpError::Settings(format!(
            "proxy URL {shown} has no host"
        )));
    }
    Ok(())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP connections, directly or through a `CONNECT` tunnel by the proxy rules; TLS goes on top.
#[derive(Clone)]
struct ProxyConnector {
    http: HttpConnector,
    rules: Option<Arc<ProxyRules>>,
}

impl Service<Uri> for ProxyConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, destination: Uri) -> Self::Future {
        let proxy = self
            .rules
            .as_ref()
            .and_then(|rules| rules.proxy_for(&destination));
        match proxy {
            None => {
                let connecting = self.http.call(destination);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Some((proxy, auth)) => {
                let mut tunnel = Tunnel::new(proxy, self.http.clone());
                if let Some(auth) = auth {
                    tunnel = tunnel.with_auth(auth);
                }
                Box::pin(async move {
                    std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
                    tunnel
                        .call(destination)
                        .await
                        .map_err(|e| format!("through the proxy: {e:?}").into())
                })
            }
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<ProxyConnector>;

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
    /// A client with the given settings, trusting the webpki root certificates and any extra
    /// ones given. TLS uses the ring provider explicitly, whatever other rustls providers the
    /// program enables. Environment proxies are read from the process environment now.
    pub fn new(options: HttpOptions) -> Result<HyperClient, HttpError> {
        HyperClient::with_env(options, |name| std::env::var(name).ok())
    }

    /// [`HyperClient::new`] reading proxy variables through `env` instead of the process
    /// environment.
    pub fn with_env(
        options: HttpOptions,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<HyperClient, HttpError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        let rules = ProxyRules::new(&options.proxy, env)?.map(Arc::new);
        let mut roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for pem in &options.root_certificates_pem {
            let mut found = false;
            for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let certificate = certificate.map_err(|e| {
                    HttpError::Settings(format!("invalid PEM root certificate: {e}"))
                })?;
                roots
                    .add(certificate)
                    .map_err(|e| HttpError::Settings(format!("unusable root certificate: {e}")))?;
                found = true;
            }
            if !found {
                return Err(HttpError::Settings(
                    "no certificate found in the PEM text of a root certificate".to_owned(),
                ));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Settings(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let http = ProxyConnector { http, rules };
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
        let (status, headers, body) = self.start(request).await?;
        let body = body
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

    /// Sends the request and returns the status, headers and the unread body.
    async fn start(
        &self,
        request: HttpRequest,
    ) -> Result<(u16, Vec<(String, String)>, hyper::body::Incoming), HttpError> {
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let req = builder
            .body(Full::new(request.body.into_bytes()))
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
        Ok((status, headers, response.into_body()))
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

    /// The request timeout covers the wait for the response head only; the body may stream
    /// for as long as the server keeps sending.
    fn send_streaming(&self, request: HttpRequest) -> StreamingFuture<'_> {
        let timeout = self.options.request_timeout;
        Box::pin(async move {
            let (status, headers, mut body) = tokio::time::timeout(timeout, self.start(request))
                .await
                .unwrap_or(Err(HttpError::Timeout(timeout)))?;
            let chunks = futures_util::stream::poll_fn(move |cx| {
                loop {
                    return match hyper::body::Body::poll_frame(Pin::new(&mut body), cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(None) => Poll::Ready(None),
                        Poll::Ready(Some(Err(e))) => {
                            Poll::Ready(Some(Err(HttpError::Connection(error_chain(&e)))))
                        }
                        Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) if !data.is_empty() => Poll::Ready(Some(Ok(data.to_vec()))),
                            // Empty data frames and trailers carry nothing for the caller.
                            _ => continue,
                        },
                    };
                }
            });
            Ok(StreamingResponse {
                status,
                headers,
                body: BodyStream::new(chunks),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_take_over_their_bytes_and_share_them() {
        let bytes = b"{\"rows\":[]}".to_vec();
        let at = bytes.as_ptr();
        let body = RequestBody::from(bytes);
        assert_eq!(
            body.as_ptr(),
            at,
            "a Vec's buffer is taken over, not copied"
        );
        let shared = body.clone();
        assert_eq!(shared.as_ptr(), at, "clones share the bytes");
        let text = String::from("text");
        let at = text.as_ptr();
        assert_eq!(RequestBody::from(text).as_ptr(), at);
        let arc: Arc<[u8]> = Arc::from(&b"arc"[..]);
        let at = arc.as_ptr();
        assert_eq!(RequestBody::from(arc).as_ptr(), at);
        assert_eq!(&*RequestBody::from("static"), b"static");
        assert_eq!(RequestBody::from(&b"bytes"[..]).to_vec(), b"bytes");
        assert!(RequestBody::new().is_empty());
        assert_eq!(format!("{body:?}"), "RequestBody(11 bytes)");
        let request = HttpRequest::new(Method::Post, "http://h/").body(body);
        assert_eq!(&*request.body, b"{\"rows\":[]}");
        assert!(format!("{request:?}").contains("body_bytes: 11"));
    }
}
