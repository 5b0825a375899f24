//! Prompts and functions through the facade: an invoke inside a `#[traced]` function sends the
//! span as the parent, so the server-side span lands in the same trace.

mod common;

use braintrust::api::ApiClient;
use braintrust::{Invoke, SpanFutureExt, StartSpan, init_logger, traced};
use common::{named, options, rows};
use serde_json::{Value, json};

#[traced(type = "task")]
async fn classify(client: ApiClient, text: String) -> Result<Value, braintrust::InvokeError> {
    Invoke::slug("p", "classify")
        .input(json!({"text": text}))
        .client(client)
        .call()
        .await
}

#[tokio::test]
async fn invoke_under_a_traced_function_joins_its_trace() {
    let server = braintrust_local::LocalServer::builder()
        .function("classify", |call| {
            Ok(json!(
                if call.input["text"].as_str().unwrap_or("").contains('!') {
                    "excited"
                } else {
                    "calm"
                }
            ))
        })
        .start()
        .unwrap();
    let logger = init_logger(options(&server, "functions-facade")).unwrap();
    let client = ApiClient::new(server.login_options()).unwrap();
    let root = logger.start_span(StartSpan::named("request"));
    let label = classify(client, "hello!".into())
        .in_span(root.clone())
        .await
        .unwrap();
    assert_eq!(label, "excited");
    root.end();
    logger.flush().unwrap();

    let rows = rows(&server, &logger);
    let request = named(&rows, "request");
    // The server-side span is named after the function's slug too; ours is the `task`.
    let traced = rows
        .iter()
        .find(|r| {
            r["span_attributes"]["name"] == "classify" && r["span_attributes"]["type"] == "task"
        })
        .expect("the traced span");
    let server_side = rows
        .iter()
        .find(|r| r["span_attributes"]["type"] == "function")
        .expect("the server logged the invocation");
    assert_eq!(traced["output"], "excited");
    assert_eq!(traced["span_parents"], json!([request["span_id"]]));
    assert_eq!(server_side["span_parents"], json!([traced["span_id"]]));
    assert_eq!(server_side["root_span_id"], request["root_span_id"]);
    assert_eq!(server_side["input"], json!({"text": "hello!"}));
}
