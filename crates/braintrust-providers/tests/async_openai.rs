//! The async-openai wrapper against a loopback stub provider, logging to an in-process
//! braintrust-local: one conformant span per call (plain and streamed, chat and responses), the
//! request sent unchanged, provider errors logged and returned, and dropped streams ended.

#![cfg(feature = "async-openai")]

mod common;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::CreateChatCompletionRequest;
use async_openai::types::responses::CreateResponse;
use braintrust_providers::async_openai::{INSTRUMENTATION, TracedClient, wrap};
use common::{Fixture, fixture};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn client(f: &Fixture) -> TracedClient<OpenAIConfig> {
    wrap(Client::with_config(
        OpenAIConfig::new()
            .with_api_key("k")
            .with_api_base(format!("{}/v1", f.url)),
    ))
}

fn chat_request(body: Value) -> CreateChatCompletionRequest {
    serde_json::from_value(body).unwrap()
}

fn sse(events: &[Value], done: bool) -> String {
    let mut text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    text
}

/// A chat completion chunk with these choices (and usage).
fn chunk(choices: Value, usage: Option<Value>) -> Value {
    let mut chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
        "model": "gpt-x-1", "choices": choices});
    if let Some(usage) = usage {
        chunk["usage"] = usage;
    }
    chunk
}

/// The body of the last request the stub received.
fn sent(f: &Fixture) -> Value {
    let stub = f.stub.lock().unwrap();
    serde_json::from_slice(&stub.received.last().unwrap().1).unwrap()
}

#[test]
fn chat_create_logs_one_conformant_span() {
    let f = fixture();
    f.respond(
        200,
        "application/json",
        json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-x-1",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Paris."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4}}})
        .to_string(),
    );
    let request = chat_request(json!({"model": "gpt-x", "temperature": 0.5,
        "messages": [{"role": "user", "content": "Capital of France?"}]}));
    let client = client(&f);
    let (result, spans) = f.traced(client.chat().create(request.clone()));
    let response = result.unwrap();
    assert_eq!(response.model, "gpt-x-1");
    assert_eq!(sent(&f), serde_json::to_value(&request).unwrap());

    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span["span_attributes"]["name"], "Chat Completion");
    assert_eq!(
        span["input"],
        json!([{"role": "user", "content": "Capital of France?"}])
    );
    assert_eq!(span["output"][0]["message"]["content"], "Paris.");
    assert_eq!(span["metadata"]["model"], "gpt-x-1");
    assert_eq!(span["metadata"]["provider"], "openai");
    assert_eq!(span["metadata"]["temperature"], 0.5);
    assert_eq!(span["metrics"]["prompt_tokens"], 12);
    assert_eq!(span["metrics"]["completion_tokens"], 3);
    assert_eq!(span["metrics"]["tokens"], 15);
    assert_eq!(span["metrics"]["prompt_cached_tokens"], 4);
    assert_eq!(
        span["context"]["span_origin"]["instrumentation"]["name"],
        INSTRUMENTATION
    );
    assert!(span["metrics"]["end"].is_number());
}

#[test]
fn chat_stream_yields_the_chunks_and_logs_the_whole_answer() {
    let f = fixture();
    let chunks = [
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]),
            None,
        ),
        chunk(
            json!([{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]),
            None,
        ),
        chunk(
            json!([]),
            Some(json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})),
        ),
    ];
    f.respond(200, "text/event-stream", sse(&chunks, true));
    let client = client(&f);
    let request = chat_request(json!({"model": "gpt-x",
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": true}}));
    let (texts, spans) = f.traced(async {
        let mut stream = client.chat().create_stream(request).await.unwrap();
        let mut texts = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            if let Some(text) = chunk.choices.first().and_then(|c| c.delta.content.clone()) {
                texts.push(text);
            }
        }
        texts
    });
    assert_eq!(texts, ["Hel", "lo"]);
    assert_eq!(sent(&f)["stream"], true);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    let span = &spans[0];
    assert_eq!(span["output"][0]["message"]["content"], "Hello");
    assert_eq!(span["output"][0]["finish_reason"], "stop");
    assert_eq!(span["metrics"]["tokens"], 7);
    assert!(span["metrics"]["time_to_first_token"].as_f64().unwrap() >= 0.0);
}

#[test]
fn a_dropped_chat_stream_ends_its_span_with_what_arrived() {
    let f = fixture();
    let chunks = [
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]),
            None,
        ),
        chunk(json!([{"index": 0, "delta": {"content": "lo"}}]), None),
    ];
    f.respond(200, "text/event-stream", sse(&chunks, true));
    let client = client(&f);
    let request = chat_request(json!({"model": "gpt-x", "messages": []}));
    let (_, spans) = f.traced(async {
        let mut stream = client.chat().create_stream(request).await.unwrap();
        stream.next().await.unwrap().unwrap();
    });
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["output"][0]["message"]["content"], "Hel");
    assert!(spans[0]["metrics"]["end"].is_number());
}

#[test]
fn provider_errors_are_logged_and_returned_as_async_openai_reports_them() {
    let f = fixture();
    f.respond(
        401,
        "application/json",
        json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
            "param": null, "code": "invalid_api_key"}})
        .to_string(),
    );
    let client = client(&f);
    let request = chat_request(json!({"model": "gpt-x", "messages": []}));
    let (result, spans) = f.traced(client.chat().create(request));
    let error = result.unwrap_err();
    assert!(matches!(error, OpenAIError::ApiError(_)), "{error:?}");
    assert_eq!(spans.len(), 1);
    let logged = spans[0]["error"].as_str().unwrap();
    assert_eq!(logged, error.to_string());
    assert!(logged.contains("Incorrect API key"), "{logged}");
    assert!(spans[0]["metrics"]["end"].is_number());
}

#[test]
fn responses_create_and_stream_log_responses_spans() {
    let f = fixture();
    let response = json!({"id": "r1", "object": "response", "created_at": 1, "status": "completed",
        "model": "gpt-x-1", "output": [{"type": "message", "id": "m1", "status": "completed",
            "role": "assistant", "content": [{"type": "output_text", "text": "Paris.",
                "annotations": []}]}],
        "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 1}}});
    f.respond(200, "application/json", response.to_string());
    let client = client(&f);
    let request: CreateResponse =
        serde_json::from_value(json!({"model": "gpt-x", "input": "Capital of France?"})).unwrap();
    let (result, spans) = f.traced(client.responses().create(request.clone()));
    result.unwrap();
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(
        spans[0]["span_attributes"]["name"],
        "openai.responses.create"
    );
    // The builder's input shape: a string input is one user message.
    assert_eq!(spans[0]["input"][0]["content"], "Capital of France?");
    assert_eq!(spans[0]["output"][0]["content"][0]["text"], "Paris.");
    assert_eq!(spans[0]["metrics"]["tokens"], 11);
    assert_eq!(spans[0]["metrics"]["completion_reasoning_tokens"], 1);

    let events = [
        json!({"type": "response.created", "sequence_number": 0,
            "response": {"id": "r1", "object": "response", "created_at": 1,
                "status": "in_progress", "model": "gpt-x-1", "output": []}}),
        json!({"type": "response.completed", "sequence_number": 1, "response": response}),
    ];
    f.respond(200, "text/event-stream", sse(&events, false));
    let (kinds, spans) = f.traced(async {
        let mut stream = client.responses().create_stream(request).await.unwrap();
        let mut kinds = Vec::new();
        while let Some(event) = stream.next().await {
            let event = serde_json::to_value(event.unwrap()).unwrap();
            kinds.push(event["type"].as_str().unwrap_or_default().to_owned());
        }
        kinds
    });
    assert_eq!(kinds, ["response.created", "response.completed"]);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(sent(&f)["stream"], true);
    assert_eq!(spans[0]["output"][0]["content"][0]["text"], "Paris.");
    assert_eq!(spans[0]["metrics"]["tokens"], 11);
    assert!(spans[0]["metrics"]["time_to_first_token"].is_number());
}
