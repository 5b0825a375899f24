//! Without a current span, `invoke` sends the current logger's export as the parent (its own
//! test binary: the current logger is process-wide).

mod common;

use braintrust_core::env_file::EnvLookup;
use braintrust_functions::Invoke;
use braintrust_local::LocalServer;
use braintrust_transport::logger::{LoggerOptions, clear_current_logger, init_logger};
use serde_json::json;

#[tokio::test]
async fn without_a_span_the_parent_is_the_current_logger() {
    let server = common::start(LocalServer::builder().function("echo", |c| Ok(c.input.clone())));
    let client = common::client(&server);
    let logger = init_logger(
        LoggerOptions::new()
            .project("invoke-root")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([])),
    )
    .unwrap();
    let output = Invoke::slug("p", "echo")
        .input(json!({"a": 1}))
        .client(client.clone())
        .call()
        .await
        .unwrap();
    assert_eq!(output, json!({"a": 1}));
    let sent = server
        .recorded_requests()
        .into_iter()
        .rfind(|r| r.path == "/function/invoke")
        .unwrap();
    let parent = sent.json.unwrap()["parent"].as_str().unwrap().to_owned();
    assert!(!parent.is_empty());
    assert_eq!(parent, logger.export());
    clear_current_logger();
    Invoke::slug("p", "echo")
        .client(client)
        .call()
        .await
        .unwrap();
    let sent = server
        .recorded_requests()
        .into_iter()
        .rfind(|r| r.path == "/function/invoke")
        .unwrap();
    assert_eq!(sent.json.unwrap()["parent"], "");
}
