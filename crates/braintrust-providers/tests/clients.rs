//! The built-in clients against a loopback stub provider, logging to an in-process
//! braintrust-local: the outbound request is the caller's bytes, provider errors are logged and
//! returned unchanged, malformed answers still log a span with an error, dropped streams end
//! their span with what arrived, headers pass through, and spans inside scorer spans inherit
//! `purpose: scorer`.

mod common;

use common::{Fixture, fixture};

use braintrust_core::context::SpanFutureExt;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::StartSpan;
use braintrust_providers::anthropic::AnthropicClient;
use braintrust_providers::openai::OpenAiClient;
use braintrust_providers::{ClientOptions, ProviderError};
use futures_util::StreamExt;
use serde_json::{Value, json};

trait OpenAi {
    fn openai(&self) -> OpenAiClient;
}

impl OpenAi for Fixture {
    fn openai(&self) -> OpenAiClient {
        OpenAiClient::new(
            ClientOptions::new()
                .api_key("k")
                .base_url(format!("{}/v1", self.url)),
        )
        .unwrap()
    }
}

#[test]
fn the_outbound_request_is_the_callers_bytes_and_media_stays_inline() {
    let f = fixture();
    f.respond(
        200,
        "application/json",
        json!({"model": "gpt-x-1", "choices": []}).to_string(),
    );
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let request = json!({"model": "gpt-x", "temperature": 0.0, "messages": [{"role": "user",
        "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}]});
    let client = f.openai();
    let (result, spans) = f.traced(client.chat_completions(&request));
    result.unwrap();
    let sent = f.stub.lock().unwrap().received[0].1.clone();
    assert_eq!(&sent[..], serde_json::to_vec(&request).unwrap().as_slice());
    // The logged copy holds a reference instead.
    let logged = &spans[0]["input"][0]["content"][0]["image_url"]["url"];
    assert_eq!(logged["type"], "braintrust_attachment");
    assert_eq!(spans[0]["metadata"]["model"], "gpt-x-1");
    assert_eq!(
        spans[0]["context"]["span_origin"]["name"],
        "braintrust.sdk.rust"
    );
    assert_eq!(
        spans[0]["context"]["span_origin"]["instrumentation"]["name"],
        "braintrust::providers::openai"
    );
}

#[test]
fn provider_errors_are_logged_and_returned_unchanged() {
    let f = fixture();
    let error = r#"{"error": {"message": "Rate limit reached", "type": "requests"}}"#;
    f.respond(429, "application/json", error);
    let client = f.openai();
    let (result, spans) = f.traced(client.chat_completions(&json!({"model": "m", "messages": []})));
    let err = result.unwrap_err();
    assert_eq!(err.status(), Some(429));
    let ProviderError::Status { body, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(body, error);
    assert_eq!(spans.len(), 1);
    assert!(
        spans[0]["error"]
            .as_str()
            .unwrap()
            .contains("Rate limit reached")
    );
    assert!(spans[0]["metrics"]["end"].is_number(), "the span ended");
}

#[test]
fn malformed_answers_still_log_the_span_with_an_error() {
    let f = fixture();
    f.respond(200, "application/json", "{not json");
    let client = f.openai();
    let (result, spans) = f.traced(client.chat_completions(&json!({"model": "m", "messages": []})));
    assert!(matches!(result, Err(ProviderError::InvalidResponse { .. })));
    assert!(
        spans[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid response")
    );
    assert_eq!(spans[0]["input"], json!([]));

    // A malformed stream event ends the stream with the error.
    f.respond(
        200,
        "text/event-stream",
        "data: {\"choices\":[]}\n\ndata: {oops\n\n",
    );
    let (items, spans) = f.traced(async {
        let stream = client
            .chat_completions_stream(&json!({"model": "m", "messages": []}))
            .await
            .unwrap();
        stream.collect::<Vec<_>>().await
    });
    assert!(items[0].is_ok());
    assert!(matches!(
        items[1],
        Err(ProviderError::InvalidResponse { .. })
    ));
    assert!(spans[0]["error"].as_str().unwrap().contains("not JSON"));
}

#[test]
fn dropped_streams_end_their_span_with_what_arrived() {
    let f = fixture();
    let chunks = [
        json!({"model": "gpt-x-1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": " world"}, "finish_reason": "stop"}]}),
    ];
    let sse: String = chunks
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .collect::<String>()
        + "data: [DONE]\n\n";
    f.respond(200, "text/event-stream; charset=utf-8", sse);
    let client = f.openai();
    let (first_two, spans) = f.traced(async {
        let mut stream = client
            .chat_completions_stream(&json!({"model": "m", "messages": [], "stream": true}))
            .await
            .unwrap();
        let a = stream.next().await.unwrap().unwrap();
        let b = stream.next().await.unwrap().unwrap();
        // The fields so far are folded from the recorded events on demand.
        let so_far = stream.fields();
        let text = so_far.output.as_ref().unwrap()[0]["message"]["content"].clone();
        assert!(text.as_str().unwrap().starts_with("Hello"), "{text}");
        assert_eq!(so_far.metadata["model"], "gpt-x-1");
        drop(stream);
        (a, b)
    });
    assert_eq!(first_two.1["choices"][0]["delta"]["content"], "lo");
    assert_eq!(spans.len(), 1);
    let content = spans[0]["output"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(content.starts_with("Hello"), "{content}");
    assert!(spans[0]["metrics"]["end"].is_number());
    assert!(spans[0]["metrics"]["time_to_first_token"].as_f64().unwrap() >= 0.0);
    // The request asked for a stream as given (no second `stream` key).
    let sent: Value = serde_json::from_slice(&f.stub.lock().unwrap().received[0].1).unwrap();
    assert_eq!(sent["stream"], true);
}

#[test]
fn anthropic_headers_pass_through_unchanged() {
    let f = fixture();
    f.respond(
        200,
        "application/json",
        json!({"model": "claude-x", "role": "assistant",
        "content": [{"type": "text", "text": "ok"}],
        "usage": {"input_tokens": 12, "output_tokens": 11, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 1990,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1990}}})
        .to_string(),
    );
    let client = AnthropicClient::new(
        ClientOptions::new()
            .api_key("k")
            .base_url(&f.url)
            .header("anthropic-beta", "extended-cache-ttl-2025-04-11"),
    )
    .unwrap();
    let request = json!({"model": "claude-x", "max_tokens": 10, "system": "sys",
        "messages": [{"role": "user", "content": "hi"}]});
    let (result, spans) = f.traced(client.messages(&request));
    result.unwrap();
    let headers = f.stub.lock().unwrap().received[0].0.clone();
    assert_eq!(headers["anthropic-beta"], "extended-cache-ttl-2025-04-11");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(headers["x-api-key"], "k");
    let span = &spans[0];
    assert_eq!(span["span_attributes"]["name"], "anthropic.messages.create");
    assert_eq!(
        span["input"][1],
        json!({"role": "system", "content": "sys"})
    );
    assert_eq!(span["metrics"]["prompt_tokens"], 2002);
    assert_eq!(span["metrics"]["prompt_cache_creation_1h_tokens"], 1990);
    assert!(
        span["metrics"]
            .get("prompt_cache_creation_tokens")
            .is_none()
    );
}

#[test]
fn spans_inside_scorer_spans_inherit_the_scorer_purpose() {
    let f = fixture();
    f.respond(
        200,
        "application/json",
        json!({"model": "m", "choices": []}).to_string(),
    );
    let client = f.openai();
    let root = f.logger.start_span(StartSpan::named("eval"));
    let mut purpose = serde_json::Map::new();
    purpose.insert("span_attributes".into(), json!({"purpose": "scorer"}));
    let scorer = root.start_span(StartSpan::named("score").propagated_event(purpose));
    f.runtime
        .block_on(
            client
                .chat_completions(&json!({"model": "m", "messages": []}))
                .in_span(scorer.clone()),
        )
        .unwrap();
    scorer.end();
    root.end();
    f.logger.flush().unwrap();
    let project = f.logger.resolve().unwrap();
    let rows = f.server.rows(&ObjectIds::project_logs(project)).unwrap();
    let llm = rows
        .iter()
        .find(|r| r["span_attributes"]["type"] == "llm" && r["root_span_id"] == root.root_span_id())
        .unwrap();
    assert_eq!(llm["span_attributes"]["purpose"], "scorer");
    assert_eq!(llm["span_parents"][0], scorer.span_id());
}

#[test]
fn a_built_prompts_span_info_becomes_metadata_prompt_and_is_not_sent() {
    let f = fixture();
    f.respond(
        200,
        "application/json",
        json!({"model": "gpt-x-1", "choices": []}).to_string(),
    );
    let prompt = json!({"id": "p-1", "project_id": "proj-1", "version": "7",
        "variables": {"name": "Ada"}});
    // The shape `Prompt::build` produces: parameters, model, span_info, then messages.
    let request = json!({"temperature": 0.5, "model": "gpt-x",
        "span_info": {"metadata": {"prompt": prompt}},
        "messages": [{"role": "user", "content": "Say hi to Ada."}]});
    let client = f.openai();
    let (result, spans) = f.traced(client.chat_completions(&request));
    result.unwrap();
    let sent = f.stub.lock().unwrap().received[0].1.clone();
    let mut expected = request;
    expected.as_object_mut().unwrap().shift_remove("span_info");
    assert_eq!(&sent[..], serde_json::to_vec(&expected).unwrap().as_slice());
    assert_eq!(spans[0]["metadata"]["prompt"], prompt);
    assert_eq!(spans[0]["metadata"]["temperature"], 0.5);
}
