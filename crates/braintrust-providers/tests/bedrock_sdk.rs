//! The AWS SDK for Bedrock Runtime with the Braintrust interceptor, its HTTP client replaced by
//! a canned in-process connector (no sockets), logging to an in-process braintrust-local: one
//! conformant span per Converse / ConverseStream call, the request as the SDK sent it, service
//! errors logged and returned, streams recorded as the SDK reads them.

#![cfg(feature = "aws-sdk-bedrock")]

mod common;

use std::sync::{Arc, Mutex};

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseStreamOutput, InferenceConfiguration, Message,
};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message as EventMessage};
use braintrust_providers::bedrock;
use braintrust_providers::bedrock_sdk::{BedrockInterceptor, INSTRUMENTATION};
use common::fixture;
use serde_json::{Value, json};

const MODEL: &str = "us.amazon.nova-lite-v1:0";

/// The URI and body of each request sent.
type Sent = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Answers every request with one canned response and records the requests.
#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    requests: Sent,
}

impl Canned {
    fn new(status: u16, headers: Vec<(&'static str, &'static str)>, body: Vec<u8>) -> Canned {
        Canned {
            status,
            headers,
            body,
            requests: Arc::default(),
        }
    }

    fn sent(&self) -> (String, Value) {
        let requests = self.requests.lock().unwrap();
        let (uri, body) = requests.last().unwrap();
        (uri.clone(), serde_json::from_slice(body).unwrap())
    }
}

impl HttpConnector for Canned {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.requests.lock().unwrap().push((
            request.uri().to_owned(),
            request.body().bytes().unwrap_or_default().to_vec(),
        ));
        let mut response = HttpResponse::new(
            self.status.try_into().unwrap(),
            SdkBody::from(self.body.clone()),
        );
        for (name, value) in &self.headers {
            response.headers_mut().insert(*name, *value);
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn client(canned: &Canned) -> Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(canned.clone())
        .interceptor(BedrockInterceptor::new())
        .build();
    Client::from_conf(config)
}

fn user_message(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.into()))
        .build()
        .unwrap()
}

fn event(event_type: &str, payload: Value) -> Vec<u8> {
    let message = EventMessage::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

/// A ConverseStream answer saying "Hello" in two deltas, cut after its first `events` events
/// (6: the whole stream, ending with the usage metadata).
fn hello_stream(events: usize) -> Canned {
    let all = [
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 6, "outputTokens": 81, "totalTokens": 87},
                "metrics": {"latencyMs": 300}}),
        ),
    ];
    Canned::new(
        200,
        vec![("content-type", "application/vnd.amazon.eventstream")],
        all[..events].concat(),
    )
}

#[test]
fn converse_logs_one_span_from_the_request_and_response_on_the_wire() {
    let f = fixture();
    let canned = Canned::new(
        200,
        vec![("content-type", "application/json")],
        json!({"output": {"message": {"role": "assistant", "content": [{"text": "Hello!"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 6, "outputTokens": 3, "totalTokens": 9},
            "metrics": {"latencyMs": 120}})
        .to_string()
        .into_bytes(),
    );
    let client = client(&canned);
    let (result, spans) = f.traced(
        client
            .converse()
            .model_id(MODEL)
            .messages(user_message("Say hello"))
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(64)
                    .temperature(0.25)
                    .build(),
            )
            .send(),
    );
    let output = result.unwrap();
    assert_eq!(
        output.output().unwrap().as_message().unwrap().content()[0]
            .as_text()
            .unwrap(),
        "Hello!"
    );
    let (uri, sent) = canned.sent();
    assert!(
        uri.ends_with("/model/us.amazon.nova-lite-v1%3A0/converse"),
        "{uri}"
    );

    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span["span_attributes"]["name"], "bedrock.converse");
    assert_eq!(span["span_attributes"]["type"], "llm");
    // The span is what the builders make of the bytes the SDK sent.
    let expected = bedrock::converse_request_fields(MODEL, &sent);
    assert_eq!(span["input"], expected.input.unwrap());
    assert_eq!(span["input"][0]["content"][0]["text"], "Say hello");
    assert_eq!(span["metadata"]["model"], MODEL);
    assert_eq!(span["metadata"]["temperature"], 0.25);
    assert_eq!(
        span["output"][0]["content"][0]["text"], "Hello!",
        "{span:#?}"
    );
    assert_eq!(span["metrics"]["prompt_tokens"], 6);
    assert_eq!(span["metrics"]["completion_tokens"], 3);
    assert_eq!(span["metrics"]["tokens"], 9);
    assert_eq!(
        span["context"]["span_origin"]["instrumentation"]["name"],
        INSTRUMENTATION
    );
    assert!(span["metrics"]["end"].is_number());
}

#[test]
fn converse_stream_is_recorded_as_the_sdk_reads_it() {
    let f = fixture();
    let canned = hello_stream(6);
    let client = client(&canned);
    let (texts, spans) = f.traced(async {
        let output = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user_message("Say hello"))
            .send()
            .await
            .unwrap();
        let mut stream = output.stream;
        let mut texts = Vec::new();
        while let Some(event) = stream.recv().await.unwrap() {
            if let ConverseStreamOutput::ContentBlockDelta(delta) = event
                && let Some(text) = delta.delta().and_then(|d| d.as_text().ok())
            {
                texts.push(text.clone());
            }
        }
        texts
    });
    assert_eq!(texts, ["Hel", "lo"]);
    assert!(canned.sent().0.ends_with("/converse-stream"));
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span["span_attributes"]["name"], "bedrock.converse-stream");
    assert_eq!(
        span["output"][0]["content"][0]["text"], "Hello",
        "{span:#?}"
    );
    assert_eq!(span["metrics"]["tokens"], 87);
    assert!(span["metrics"]["time_to_first_token"].as_f64().unwrap() >= 0.0);
    assert!(span["metrics"]["end"].is_number());
}

#[test]
fn service_errors_are_logged_and_returned_as_the_sdk_reports_them() {
    let f = fixture();
    let canned = Canned::new(
        400,
        vec![
            ("content-type", "application/json"),
            (
                "x-amzn-errortype",
                "ValidationException:http://internal.amazon.com/",
            ),
        ],
        br#"{"message":"The provided model identifier is invalid."}"#.to_vec(),
    );
    let client = client(&canned);
    let (result, spans) = f.traced(
        client
            .converse()
            .model_id("no-such-model")
            .messages(user_message("hi"))
            .send(),
    );
    let error = result.unwrap_err();
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_validation_exception()),
        "{error:?}"
    );
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(
        spans[0]["error"],
        "400 ValidationException: The provided model identifier is invalid."
    );
    assert_eq!(spans[0]["metadata"]["model"], "no-such-model");
    assert!(spans[0]["metrics"]["end"].is_number());
}

#[test]
fn other_operations_are_not_recorded() {
    let f = fixture();
    let canned = Canned::new(
        200,
        vec![("content-type", "application/json")],
        br#"{"ok": true}"#.to_vec(),
    );
    let client = client(&canned);
    let (_, spans) = f.traced(
        client
            .invoke_model()
            .model_id(MODEL)
            .body(aws_sdk_bedrockruntime::primitives::Blob::new(
                br#"{"prompt": "hi"}"#.to_vec(),
            ))
            .send(),
    );
    assert!(spans.is_empty(), "{spans:#?}");
}

#[test]
fn a_dropped_stream_ends_its_span_with_what_arrived() {
    let f = fixture();
    let canned = hello_stream(3);
    let client = client(&canned);
    let (_, spans) = f.traced(async {
        let output = client
            .converse_stream()
            .model_id(MODEL)
            .messages(user_message("Say hello"))
            .send()
            .await
            .unwrap();
        let mut stream = output.stream;
        stream.recv().await.unwrap();
        drop(stream);
    });
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let text = spans[0]["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    // The SDK reads the body in whole frames; what it had read is logged.
    assert!(text.starts_with("Hel"), "{spans:#?}");
    assert!(spans[0]["metrics"]["end"].is_number());
    assert!(spans[0].get("error").is_none_or(Value::is_null));
}
