//! The default client through HTTP `CONNECT` proxies (explicit and from the environment) and
//! against a TLS server whose certificate is signed by a private CA.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use braintrust_local::LocalServer;
use braintrust_transport::http::{
    HttpClient, HttpError, HttpOptions, HttpRequest, HyperClient, Method, Proxy,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn options() -> HttpOptions {
    HttpOptions::default()
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(10))
}

/// Reads an HTTP/1.1 request head (up to the blank line).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// One `CONNECT` a test proxy received: the requested target and its `Proxy-Authorization`.
#[derive(Debug, Clone, PartialEq)]
struct Tunnelled {
    target: String,
    authorization: Option<String>,
}

/// A `CONNECT` proxy on loopback that records each tunnel request and connects it to
/// `upstream` whatever the target (so tests need no DNS), or refuses every tunnel with
/// `refuse_status`.
struct TestProxy {
    url: String,
    seen: Arc<Mutex<Vec<Tunnelled>>>,
}

impl TestProxy {
    async fn start(upstream: SocketAddr, refuse_status: Option<u16>) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let head = read_head(&mut client).await;
                    let mut lines = head.lines();
                    let request_line = lines.next().unwrap_or_default().to_owned();
                    let headers: HashMap<String, String> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let mut parts = request_line.split_whitespace();
                    let (method, target) = (parts.next(), parts.next());
                    log.lock().unwrap().push(Tunnelled {
                        target: target.unwrap_or_default().to_owned(),
                        authorization: headers.get("proxy-authorization").cloned(),
                    });
                    if method != Some("CONNECT") {
                        let _ = client
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    }
                    if let Some(status) = refuse_status {
                        let reply =
                            format!("HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\n\r\n");
                        let _ = client.write_all(reply.as_bytes()).await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        TestProxy { url, seen }
    }

    fn seen(&self) -> Vec<Tunnelled> {
        self.seen.lock().unwrap().clone()
    }
}

fn server_addr(server: &LocalServer) -> SocketAddr {
    server.url().trim_start_matches("http://").parse().unwrap()
}

async fn get_version(client: &HyperClient, url: &str) -> Result<u16, HttpError> {
    let response = client
        .send(HttpRequest::new(Method::Get, format!("{url}/version")))
        .await?;
    if response.status == 200 {
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["server"], "braintrust-local");
    }
    Ok(response.status)
}

#[test]
fn explicit_proxy_tunnels_requests_and_sends_its_credentials() {
    let server = LocalServer::start().unwrap();
    let upstream = server_addr(&server);
    runtime().block_on(async {
        let proxy = TestProxy::start(upstream, None).await;
        let with_credentials = proxy.url.replace("http://", "http://user:s3cret@");
        let client = HyperClient::new(options().proxy(Proxy::url(with_credentials))).unwrap();
        assert_eq!(get_version(&client, server.url()).await.unwrap(), 200);
        let seen = proxy.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].target, upstream.to_string());
        // base64("user:s3cret")
        assert_eq!(
            seen[0].authorization.as_deref(),
            Some("Basic dXNlcjpzM2NyZXQ=")
        );
    });
}

#[test]
fn no_proxy_hosts_are_reached_directly() {
    let server = LocalServer::start().unwrap();
    runtime().block_on(async {
        let proxy = TestProxy::start(server_addr(&server), None).await;
        let client = HyperClient::new(options().proxy(Proxy::Url {
            url: proxy.url.clone(),
            no_proxy: Some("example.com, 127.0.0.1".to_owned()),
        }))
        .unwrap();
        assert_eq!(get_version(&client, server.url()).await.unwrap(), 200);
        assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    });
}

#[test]
fn environment_proxy_serves_remote_hosts_but_never_loopback() {
    let server = LocalServer::start().unwrap();
    let port = server_addr(&server).port();
    runtime().block_on(async {
        let proxy = TestProxy::start(server_addr(&server), None).await;
        let env: HashMap<&str, String> = HashMap::from([
            ("https_proxy", "http://unused.invalid:1".to_owned()),
            ("HTTP_PROXY", proxy.url.clone()),
            ("NO_PROXY", "internal.example".to_owned()),
        ]);
        let client = HyperClient::with_env(options(), |name| env.get(name).cloned()).unwrap();

        // A remote name is tunnelled: the proxy resolves it (here: to the local server).
        let remote = format!("http://braintrust.example:{port}");
        assert_eq!(get_version(&client, &remote).await.unwrap(), 200);
        assert_eq!(proxy.seen().len(), 1);
        assert_eq!(proxy.seen()[0].target, format!("braintrust.example:{port}"));
        assert_eq!(proxy.seen()[0].authorization, None);

        // Loopback goes direct, with or without NO_PROXY.
        assert_eq!(get_version(&client, server.url()).await.unwrap(), 200);
        let localhost = format!("http://localhost:{port}");
        assert_eq!(get_version(&client, &localhost).await.unwrap(), 200);
        assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.seen());

        // NO_PROXY entries go direct too (and fail to resolve here, proving no tunnel).
        let excluded = format!("http://api.internal.example:{port}");
        assert!(get_version(&client, &excluded).await.is_err());
        assert_eq!(proxy.seen().len(), 1, "{:?}", proxy.seen());

        // Proxy::Direct ignores the environment.
        let direct = HyperClient::with_env(options().proxy(Proxy::Direct), |name| {
            env.get(name).cloned()
        })
        .unwrap();
        assert!(get_version(&direct, &remote).await.is_err());
        assert_eq!(proxy.seen().len(), 1);
    });
}

#[test]
fn a_refused_tunnel_is_a_connection_error() {
    let server = LocalServer::start().unwrap();
    runtime().block_on(async {
        let proxy = TestProxy::start(server_addr(&server), Some(407)).await;
        let client = HyperClient::new(options().proxy(Proxy::url(proxy.url.clone()))).unwrap();
        match get_version(&client, server.url()).await {
            Err(HttpError::Connection(message)) => {
                assert!(message.contains("proxy"), "{message}");
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
        assert_eq!(proxy.seen().len(), 1);
    });
}

#[test]
fn unusable_proxy_settings_are_reported_up_front() {
    for url in [
        "socks5://127.0.0.1:1080",
        "https://proxy:3128",
        "not a url",
        "http://",
    ] {
        match HyperClient::new(options().proxy(Proxy::url(url))) {
            Err(HttpError::Settings(message)) => assert!(message.contains("proxy"), "{message}"),
            other => panic!("{url}: expected a settings error, got {other:?}"),
        }
    }
    let env = |name: &str| (name == "HTTPS_PROXY").then(|| "ftp://proxy:21".to_owned());
    assert!(matches!(
        HyperClient::with_env(options(), env),
        Err(HttpError::Settings(_))
    ));
}

#[test]
fn proxy_passwords_are_masked_in_debug_output() {
    let options = options().proxy(Proxy::url("http://alice:hunter2@proxy.internal:3128/"));
    let shown = format!("{options:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("http://alice:***@proxy.internal:3128/"),
        "{shown}"
    );
}

/// A private CA and a `localhost` server certificate it signed.
struct PrivatePki {
    ca_pem: String,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: Vec<u8>,
}

fn private_pki() -> PrivatePki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    PrivatePki {
        ca_pem: ca.pem(),
        server_chain: vec![server_cert.der().clone()],
        server_key: server_key.serialize_der(),
    }
}

/// An HTTPS server on loopback answering every request with `200 ok`.
async fn start_tls_server(pki: &PrivatePki) -> u16 {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key.clone()));
    let config = rustls::ServerConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(pki.server_chain.clone(), key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[test]
fn extra_root_certificates_are_trusted() {
    let pki = private_pki();
    runtime().block_on(async {
        let port = start_tls_server(&pki).await;
        let url = format!("https://localhost:{port}/");

        let default = HyperClient::new(options().proxy(Proxy::Direct)).unwrap();
        match default
            .send(HttpRequest::new(Method::Get, url.clone()))
            .await
        {
            Err(HttpError::Connection(message)) => {
                assert!(message.contains("certificate"), "{message}");
            }
            other => panic!("expected an untrusted-certificate error, got {other:?}"),
        }

        let trusting = HyperClient::new(
            options()
                .proxy(Proxy::Direct)
                .add_root_certificates_pem(pki.ca_pem.clone()),
        )
        .unwrap();
        let response = trusting
            .send(HttpRequest::new(Method::Get, url.clone()))
            .await
            .unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"ok"[..])
        );

        // The same from a PEM file.
        let dir = std::env::temp_dir().join(format!("bt-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, &pki.ca_pem).unwrap();
        let from_file = HyperClient::new(
            options()
                .proxy(Proxy::Direct)
                .add_root_certificates_file(&path)
                .unwrap(),
        )
        .unwrap();
        let response = from_file
            .send(HttpRequest::new(Method::Get, url))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn unusable_root_certificates_are_reported_up_front() {
    for pem in [
        "no certificate here",
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    ] {
        let result = HyperClient::new(options().add_root_certificates_pem(pem));
        assert!(matches!(result, Err(HttpError::Settings(_))), "{result:?}");
    }
    let missing = options().add_root_certificates_file("/nonexistent/ca.pem");
    assert!(matches!(missing, Err(HttpError::Settings(m)) if m.contains("/nonexistent/ca.pem")));
}

#[test]
fn a_logger_reads_proxy_variables_from_its_env_lookup_and_delivers_through_the_proxy() {
    use braintrust_core::env_file::EnvLookup;
    use braintrust_core::event::Event;
    use braintrust_core::object::ObjectIds;
    use braintrust_core::span::StartSpan;
    use braintrust_transport::logger::{LoggerOptions, init_logger};
    use serde_json::json;

    let server = LocalServer::start().unwrap();
    let port = server_addr(&server).port();
    let rt = runtime();
    let proxy = rt.block_on(TestProxy::start(server_addr(&server), None));
    // The app URL names a remote host, so the environment proxy applies; the proxy resolves it.
    let remote = format!("http://braintrust.example:{port}");
    let logger = init_logger(
        LoggerOptions::new()
            .project("via-proxy")
            .api_key(server.api_key())
            .app_url(&remote)
            .api_url(&remote)
            .env(EnvLookup::from_pairs([("HTTP_PROXY", proxy.url.as_str())]))
            .set_current(false),
    )
    .unwrap();
    let span = logger.start_span(StartSpan::named("through-the-proxy"));
    span.log(Event::new().output(json!("ok"))).unwrap();
    span.end();
    logger.flush().unwrap();

    let rows = server
        .rows(&ObjectIds::project_logs(logger.project_id().unwrap()))
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["output"], "ok");
    let targets: Vec<String> = proxy.seen().into_iter().map(|t| t.target).collect();
    assert!(!targets.is_empty());
    assert!(
        targets
            .iter()
            .all(|t| *t == format!("braintrust.example:{port}")),
        "{targets:?}"
    );
}
