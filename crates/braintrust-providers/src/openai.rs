//! OpenAI: span builders for chat completions and the Responses API, and stream aggregators
//! that rebuild the non-streaming response from chunks.
//!
//! ```
//! use braintrust_providers::openai;
//! use serde_json::json;
//!
//! let request = json!({"model": "gpt-4o-mini", "temperature": 0.0,
//!     "messages": [{"role": "user", "content": "Capital of France?"}]});
//! let response = json!({"model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0,
//!     "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris."}}],
//!     "usage": {"prompt_tokens": 23, "completion_tokens": 7, "total_tokens": 30}});
//! let span = openai::chat_completion_span(&request, &response);
//! assert_eq!(span.input.unwrap(), request["messages"]);
//! assert_eq!(span.metadata["model"], "gpt-4o-mini-2024-07-18");
//! assert_eq!(span.metadata["temperature"], 0.0);
//! assert_eq!(span.metrics["tokens"], 30);
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fields::{
    LlmSpanFields, Provider, base_metadata, choose_function, copy_param, count, function_tool,
    prompt_metadata, put_count, put_tools, put_total,
};

/// Span name of chat completions (plain and streamed).
pub const CHAT_SPAN_NAME: &str = "Chat Completion";
/// Span name of Responses API calls (plain and streamed).
pub const RESPONSES_SPAN_NAME: &str = "openai.responses.create";

/// Input and metadata of a chat completions request.
pub fn chat_request_fields(request: &Value) -> LlmSpanFields {
    let empty = Map::new();
    let req = request.as_object().unwrap_or(&empty);
    let mut metadata = base_metadata(Provider::OpenAi, req.get("model").and_then(Value::as_str));
    prompt_metadata(&mut metadata, req);
    copy_common_params(&mut metadata, req);
    copy_param(&mut metadata, "max_tokens", req, "max_tokens");
    copy_param(&mut metadata, "max_tokens", req, "max_completion_tokens");
    let tools: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| tools.iter().map(chat_tool).collect())
        .unwrap_or_default();
    put_tools(&mut metadata, tools);
    if let Some(choice) = req.get("tool_choice").and_then(normalize_tool_choice) {
        metadata.insert("tool_choice".into(), choice);
    }
    LlmSpanFields {
        input: req.get("messages").cloned(),
        metadata,
        ..LlmSpanFields::default()
    }
}

fn copy_common_params(metadata: &mut Map<String, Value>, req: &Map<String, Value>) {
    for key in [
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "response_format",
        "parallel_tool_calls",
        "max_tool_calls",
    ] {
        copy_param(metadata, key, req, key);
    }
}

/// A chat tool as sent (already OpenAI shape), keeping only the documented fields.
fn chat_tool(tool: &Value) -> Value {
    match (
        tool.get("type").and_then(Value::as_str),
        tool.get("function"),
    ) {
        (Some("function") | None, Some(f)) => {
            let name = f.get("name").cloned().unwrap_or(Value::Null);
            function_tool(
                &name,
                f.get("description"),
                f.get("parameters"),
                f.get("strict"),
            )
        }
        _ => tool.clone(),
    }
}

/// `tool_choice` as `auto`, `none`, `required` or `{type: function, function: {name}}`.
fn normalize_tool_choice(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(_) => Some(choice.clone()),
        Value::Object(map) => {
            if let Some(name) = map.get("function").and_then(|f| f.get("name")) {
                return Some(choose_function(name));
            }
            // Responses API: `{type: "function", name}`; built-in tools keep their shape.
            match (map.get("type").and_then(Value::as_str), map.get("name")) {
                (Some("function"), Some(name)) => Some(choose_function(name)),
                _ => Some(choice.clone()),
            }
        }
        _ => None,
    }
}

/// Output, model and metrics of a chat completion response.
pub fn chat_response_fields(response: &Value) -> LlmSpanFields {
    let output = response
        .get("choices")
        .and_then(Value::as_array)
        .map(|choices| Value::Array(choices.iter().map(chat_choice).collect()));
    let mut metadata = Map::new();
    if let Some(model) = response.get("model").filter(|m| m.is_string()) {
        metadata.insert("model".into(), model.clone());
    }
    LlmSpanFields {
        output,
        metadata,
        metrics: chat_usage_metrics(response.get("usage")),
        ..LlmSpanFields::default()
    }
}

/// A choice as `{index, finish_reason, message: {role, content, tool_calls?}}`.
fn chat_choice(choice: &Value) -> Value {
    let message = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut out_message = Map::new();
    out_message.insert(
        "role".into(),
        message.get("role").cloned().unwrap_or(json!("assistant")),
    );
    out_message.insert(
        "content".into(),
        message.get("content").cloned().unwrap_or(Value::Null),
    );
    for key in ["tool_calls", "function_call", "audio"] {
        if let Some(v) = message.get(key).filter(|v| !v.is_null()) {
            out_message.insert(key.into(), v.clone());
        }
    }
    json!({
        "index": choice.get("index").cloned().unwrap_or(json!(0)),
        "finish_reason": choice.get("finish_reason").cloned().unwrap_or(Value::Null),
        "message": out_message,
    })
}

fn chat_usage_metrics(usage: Option<&Value>) -> Map<String, Value> {
    let mut metrics = Map::new();
    let Some(usage) = usage else {
        return metrics;
    };
    put_count(
        &mut metrics,
        "prompt_tokens",
        count(usage.get("prompt_tokens")),
    );
    put_count(
        &mut metrics,
        "completion_tokens",
        count(usage.get("completion_tokens")),
    );
    put_total(&mut metrics, count(usage.get("total_tokens")));
    let prompt_details = usage.get("prompt_tokens_details");
    let completion_details = usage.get("completion_tokens_details");
    put_count(
        &mut metrics,
        "prompt_cached_tokens",
        count(prompt_details.and_then(|d| d.get("cached_tokens"))),
    );
    put_count(
        &mut metrics,
        "prompt_audio_tokens",
        count(prompt_details.and_then(|d| d.get("audio_tokens"))),
    );
    put_count(
        &mut metrics,
        "completion_reasoning_tokens",
        count(completion_details.and_then(|d| d.get("reasoning_tokens"))),
    );
    put_count(
        &mut metrics,
        "completion_audio_tokens",
        count(completion_details.and_then(|d| d.get("audio_tokens"))),
    );
    metrics
}

/// The span fields of a chat completion: request fields, then the response's.
pub fn chat_completion_span(request: &Value, response: &Value) -> LlmSpanFields {
    let mut fields = chat_request_fields(request);
    fields.merge(chat_response_fields(response));
    fields
}

/// Rebuilds a chat completion from its stream chunks: content concatenated per choice, tool
/// calls merged by index (arguments concatenated), the finish reason, and the usage of the final
/// chunk (`stream_options.include_usage`).
#[derive(Debug, Clone, Default)]
pub struct ChatStream {
    id: Option<Value>,
    model: Option<Value>,
    created: Option<Value>,
    choices: BTreeMap<u64, ChoiceParts>,
    usage: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct ChoiceParts {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: BTreeMap<u64, ToolCallParts>,
    finish_reason: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct ToolCallParts {
    id: Option<Value>,
    kind: Option<Value>,
    name: String,
    arguments: String,
}

impl ChatStream {
    /// A new, empty aggregate.
    pub fn new() -> ChatStream {
        ChatStream::default()
    }

    /// Adds one chunk (`data:` JSON of the stream).
    pub fn push(&mut self, chunk: &Value) {
        let Some(chunk) = chunk.as_object() else {
            return;
        };
        // One pass over the chunk's few keys: cheaper than a hashed lookup per key.
        for (key, value) in chunk {
            match key.as_str() {
                "id" => keep_first(&mut self.id, value),
                "model" => keep_first(&mut self.model, value),
                "created" => keep_first(&mut self.created, value),
                "usage" if value.is_object() => self.usage = Some(value.clone()),
                "choices" => {
                    for choice in value.as_array().into_iter().flatten() {
                        self.push_choice(choice);
                    }
                }
                _ => {}
            }
        }
    }

    fn push_choice(&mut self, choice: &Value) {
        let Some(choice) = choice.as_object() else {
            return;
        };
        let index = small_get(choice, "index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let parts = self.choices.entry(index).or_default();
        if let Some(reason) = small_get(choice, "finish_reason").filter(|r| !r.is_null()) {
            parts.finish_reason = Some(reason.clone());
        }
        let Some(delta) = small_get(choice, "delta").and_then(Value::as_object) else {
            return;
        };
        for (key, value) in delta {
            match (key.as_str(), value) {
                ("role", role) if !role.is_null() => parts.role = Some(role.clone()),
                ("content", Value::String(text)) => {
                    parts.content.get_or_insert_with(String::new).push_str(text);
                }
                ("refusal", Value::String(text)) => {
                    parts.refusal.get_or_insert_with(String::new).push_str(text);
                }
                ("tool_calls", Value::Array(calls)) => {
                    for call in calls {
                        push_tool_call(&mut parts.tool_calls, call);
                    }
                }
                _ => {}
            }
        }
    }

    /// The non-streaming response shape of what arrived so far.
    pub fn response(&self) -> Value {
        let choices: Vec<Value> = self
            .choices
            .iter()
            .map(|(index, parts)| {
                let mut message = Map::new();
                message.insert(
                    "role".into(),
                    parts.role.clone().unwrap_or(json!("assistant")),
                );
                message.insert(
                    "content".into(),
                    parts.content.clone().map_or(Value::Null, Value::String),
                );
                if let Some(refusal) = &parts.refusal {
                    message.insert("refusal".into(), json!(refusal));
                }
                if !parts.tool_calls.is_empty() {
                    let calls: Vec<Value> = parts
                        .tool_calls
                        .values()
                        .map(|c| {
                            json!({
                                "id": c.id.clone().unwrap_or(Value::Null),
                                "type": c.kind.clone().unwrap_or(json!("function")),
                                "function": {"name": c.name, "arguments": c.arguments},
                            })
                        })
                        .collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                json!({
                    "index": index,
                    "message": message,
                    "finish_reason": parts.finish_reason.clone().unwrap_or(Value::Null),
                })
            })
            .collect();
        let mut response = Map::new();
        for (key, value) in [
            ("id", &self.id),
            ("model", &self.model),
            ("created", &self.created),
        ] {
            if let Some(v) = value {
                response.insert(key.into(), v.clone());
            }
        }
        response.insert("object".into(), json!("chat.completion"));
        response.insert("choices".into(), Value::Array(choices));
        if let Some(usage) = &self.usage {
            response.insert("usage".into(), usage.clone());
        }
        Value::Object(response)
    }
}

/// Input and metadata of a Responses API request (a string input becomes one user message).
pub fn responses_request_fields(request: &Value) -> LlmSpanFields {
    let empty = Map::new();
    let req = request.as_object().unwrap_or(&empty);
    let mut metadata = base_metadata(Provider::OpenAi, req.get("model").and_then(Value::as_str));
    prompt_metadata(&mut metadata, req);
    copy_common_params(&mut metadata, req);
    copy_param(&mut metadata, "max_tokens", req, "max_output_tokens");
    let tools: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| tools.iter().map(responses_tool).collect())
        .unwrap_or_default();
    put_tools(&mut metadata, tools);
    if let Some(choice) = req.get("tool_choice").and_then(normalize_tool_choice) {
        metadata.insert("tool_choice".into(), choice);
    }
    let input = match req.get("input") {
        Some(Value::String(text)) => Some(json!([{"role": "user", "content": text}])),
        Some(other) => Some(other.clone()),
        None => None,
    };
    LlmSpanFields {
        input,
        metadata,
        ..LlmSpanFields::default()
    }
}

/// A Responses API tool in chat (OpenAI function) shape; built-in tools keep theirs.
fn responses_tool(tool: &Value) -> Value {
    match tool.get("type").and_then(Value::as_str) {
        Some("function") if tool.get("function").is_none() => function_tool(
            tool.get("name").unwrap_or(&Value::Null),
            tool.get("description"),
            tool.get("parameters"),
            tool.get("strict"),
        ),
        _ => chat_tool(tool),
    }
}

/// Output, model and metrics of a Responses API response.
pub fn responses_response_fields(response: &Value) -> LlmSpanFields {
    let mut metadata = Map::new();
    if let Some(model) = response.get("model").filter(|m| m.is_string()) {
        metadata.insert("model".into(), model.clone());
    }
    let mut metrics = Map::new();
    if let Some(usage) = response.get("usage") {
        put_count(
            &mut metrics,
            "prompt_tokens",
            count(usage.get("input_tokens")),
        );
        put_count(
            &mut metrics,
            "completion_tokens",
            count(usage.get("output_tokens")),
        );
        put_total(&mut metrics, count(usage.get("total_tokens")));
        put_count(
            &mut metrics,
            "prompt_cached_tokens",
            count(usage.pointer("/input_tokens_details/cached_tokens")),
        );
        put_count(
            &mut metrics,
            "completion_reasoning_tokens",
            count(usage.pointer("/output_tokens_details/reasoning_tokens")),
        );
    }
    LlmSpanFields {
        output: response.get("output").cloned(),
        metadata,
        metrics,
        ..LlmSpanFields::default()
    }
}

/// The span fields of a Responses API call.
pub fn responses_span(request: &Value, response: &Value) -> LlmSpanFields {
    let mut fields = responses_request_fields(request);
    fields.merge(responses_response_fields(response));
    fields
}

/// Rebuilds a Responses API response from its stream events: the final `response` object of
/// `response.completed` (or `incomplete` / `failed`), else the output items finished so far.
#[derive(Debug, Clone, Default)]
pub struct ResponsesStream {
    response: Option<Value>,
    items: BTreeMap<u64, Value>,
    done: bool,
}

impl ResponsesStream {
    /// A new, empty aggregate.
    pub fn new() -> ResponsesStream {
        ResponsesStream::default()
    }

    /// Adds one event (`data:` JSON; its `type` names the event).
    pub fn push(&mut self, event: &Value) {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match kind {
            "response.created" | "response.in_progress" if !self.done => {
                self.response = event.get("response").cloned();
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.response = event.get("response").cloned();
                self.done = true;
            }
            "response.output_item.done" => {
                let index = event
                    .get("output_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.items.len() as u64);
                if let Some(item) = event.get("item") {
                    self.items.insert(index, item.clone());
                }
            }
            _ => {}
        }
    }

    /// The response shape of what arrived so far.
    pub fn response(&self) -> Value {
        let mut response = self.response.clone().unwrap_or_else(|| json!({}));
        let has_output = response
            .get("output")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty());
        if !has_output && !self.items.is_empty() {
            response["output"] = Value::Array(self.items.values().cloned().collect());
        }
        response
    }
}

#[cfg(feature = "openai")]
pub use crate::openai_client::{INSTRUMENTATION, OpenAiClient};

/// Keeps the first non-null value seen for a field.
fn keep_first(slot: &mut Option<Value>, value: &Value) {
    if slot.is_none() && !value.is_null() {
        *slot = Some(value.clone());
    }
}

/// `map[key]` by a linear scan: for the handful of keys of a stream chunk this beats hashing.
fn small_get<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
}

/// Adds one streamed tool-call fragment to the calls accumulated by index.
fn push_tool_call(calls: &mut BTreeMap<u64, ToolCallParts>, call: &Value) {
    let Some(call) = call.as_object() else {
        return;
    };
    let index = small_get(call, "index")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let acc = calls.entry(index).or_default();
    for (key, value) in call {
        match key.as_str() {
            "id" if !value.is_null() => acc.id = Some(value.clone()),
            "type" if !value.is_null() => acc.kind = Some(value.clone()),
            "function" => {
                if let Some(name) = value.get("name").and_then(Value::as_str) {
                    acc.name.push_str(name);
                }
                if let Some(args) = value.get("arguments").and_then(Value::as_str) {
                    acc.arguments.push_str(args);
                }
            }
            _ => {}
        }
    }
}

impl crate::StreamAggregate for ChatStream {
    fn push(&mut self, _event: &str, data: &Value) {
        ChatStream::push(self, data);
    }

    fn fields(&self) -> LlmSpanFields {
        chat_response_fields(&self.response())
    }
}

impl crate::StreamAggregate for ResponsesStream {
    fn push(&mut self, _event: &str, data: &Value) {
        ResponsesStream::push(self, data);
    }

    fn fields(&self) -> LlmSpanFields {
        responses_response_fields(&self.response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_tools_and_choices_are_normalised() {
        let request = json!({
            "model": "gpt-4o", "max_completion_tokens": 100, "seed": 3,
            "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather",
                "description": "d", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        });
        let response = json!({"model": "gpt-4o-2024-08-06", "choices": [{"index": 0,
            "finish_reason": "tool_calls", "logprobs": null,
            "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60,
                "completion_tokens_details": {"reasoning_tokens": 0}}});
        let span = chat_completion_span(&request, &response);
        assert_eq!(span.metadata["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(
            span.metadata["tool_choice"]["function"]["name"],
            "get_weather"
        );
        assert_eq!(span.metadata["max_tokens"], 100);
        assert!(!span.metadata.contains_key("seed"), "only allowed keys");
        let output = span.output.unwrap();
        assert_eq!(output[0]["finish_reason"], "tool_calls");
        assert_eq!(output[0]["message"]["content"], Value::Null);
        assert_eq!(
            output[0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert!(output[0].get("logprobs").is_none());
        assert_eq!(span.metrics["completion_reasoning_tokens"], 0);
        assert!(
            !span.metrics.contains_key("prompt_cached_tokens"),
            "absent, not 0"
        );
    }

    #[test]
    fn no_tools_means_no_tools_key() {
        let span = chat_request_fields(&json!({"model": "m", "messages": [], "tools": []}));
        assert!(!span.metadata.contains_key("tools"));
    }

    #[test]
    fn chat_streams_rebuild_the_response() {
        let chunks = [
            json!({"id": "x", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "Hel"}, "obfuscation": "zz"}]}),
            json!({"id": "x", "choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
            json!({"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]}),
            json!({"id": "x", "choices": [], "usage": {"prompt_tokens": 25, "completion_tokens": 40, "total_tokens": 65}}),
        ];
        let mut stream = ChatStream::new();
        for c in &chunks {
            stream.push(c);
        }
        let response = stream.response();
        let span = chat_response_fields(&response);
        let output = span.output.unwrap();
        assert_eq!(output[0]["message"]["content"], "Hello");
        assert_eq!(
            output[0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(output[0]["finish_reason"], "tool_calls");
        assert_eq!(span.metadata["model"], "gpt-4o-mini-2024-07-18");
        assert_eq!(span.metrics["tokens"], 65);
    }

    #[test]
    fn responses_inputs_tools_and_usage() {
        let request = json!({"model": "o4-mini", "input": "hi", "max_output_tokens": 9,
            "tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "web_search"}],
            "tool_choice": {"type": "function", "name": "f"}, "reasoning": {"effort": "high"}});
        let response = json!({"model": "o4-mini-2025-04-16", "output": [{"type": "message"}],
            "usage": {"input_tokens": 41, "output_tokens": 905, "total_tokens": 946,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 768}}});
        let span = responses_span(&request, &response);
        assert_eq!(
            span.input.unwrap(),
            json!([{"role": "user", "content": "hi"}])
        );
        assert_eq!(
            span.metadata["tools"][0],
            json!({"type": "function", "function": {"name": "f", "parameters": {}}})
        );
        assert_eq!(span.metadata["tools"][1], json!({"type": "web_search"}));
        assert_eq!(
            span.metadata["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert_eq!(span.metadata["max_tokens"], 9);
        assert!(!span.metadata.contains_key("reasoning"));
        assert_eq!(span.metrics["completion_reasoning_tokens"], 768);
        assert_eq!(span.metrics["prompt_tokens"], 41);
    }

    #[test]
    fn responses_streams_use_the_final_response_or_finished_items() {
        let mut stream = ResponsesStream::new();
        stream
            .push(&json!({"type": "response.created", "response": {"model": "o4", "output": []}}));
        stream.push(&json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning"}}));
        assert_eq!(stream.response()["output"], json!([{"type": "reasoning"}]));
        stream.push(&json!({"type": "response.completed", "response": {"model": "o4", "output": [{"type": "message"}]}}));
        assert_eq!(stream.response()["output"], json!([{"type": "message"}]));
    }
}
