//! The default HTTP client against loopback servers: success, timeouts and refused connections.

use std::time::{Duration, Instant};

use braintrust_local::LocalServer;
use braintrust_transport::http::{
    HttpClient, HttpError, HttpOptions, HttpRequest, HyperClient, Method,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(request_timeout: Duration) -> HyperClient {
    HyperClient::new(
        HttpOptions::default()
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(request_timeout),
    )
    .unwrap()
}

#[test]
fn sends_requests_and_reads_responses() {
    let server = LocalServer::start().unwrap();
    let client = client(Duration::from_secs(10));
    runtime().block_on(async {
        let version = client
            .send(HttpRequest::new(
                Method::Get,
                format!("{}/version", server.url()),
            ))
            .await
            .unwrap();
        assert_eq!(version.status, 200);
        assert_eq!(version.header("Content-Type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&version.body).unwrap();
        assert_eq!(body["server"], "braintrust-local");

        let project = client
            .send(
                HttpRequest::new(Method::Post, format!("{}/v1/project", server.url()))
                    .header("Authorization", format!("Bearer {}", server.api_key()))
                    .header("Content-Type", "application/json")
                    .body(br#"{"name":"p"}"#.to_vec()),
            )
            .await
            .unwrap();
        assert_eq!(project.status, 200, "{}", project.text());

        let unauthorized = client
            .send(HttpRequest::new(
                Method::Post,
                format!("{}/v1/project", server.url()),
            ))
            .await
            .unwrap();
        assert_eq!(unauthorized.status, 401);
    });
}

#[test]
fn a_server_that_never_answers_times_out() {
    let rt = runtime();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accept and hold connections without ever answering.
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let started = Instant::now();
        let err = client(Duration::from_millis(200))
            .send(HttpRequest::new(
                Method::Get,
                format!("http://{addr}/version"),
            ))
            .await
            .unwrap_err();
        assert_eq!(err, HttpError::Timeout(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(5));
        hold.abort();
    });
}

#[test]
fn refused_connections_and_bad_urls_are_errors() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is dropped: nothing listens on `addr` now.
    runtime().block_on(async {
        let client = client(Duration::from_secs(5));
        let err = client
            .send(HttpRequest::new(
                Method::Get,
                format!("http://{addr}/version"),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Connection(_)), "{err:?}");
        let err = client
            .send(HttpRequest::new(Method::Get, "not a url"))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::InvalidRequest(_)), "{err:?}");
    });
}
