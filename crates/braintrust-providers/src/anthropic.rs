//! Anthropic: the span builder for messages and the stream aggregator.
//!
//! The input is the request's `messages` with the system prompt appended last as
//! `{role: "system", content}`; the output is the native `{role, content, stop_reason}`. Token
//! metrics follow the cache rules: `prompt_tokens` includes cache reads and writes, and when the
//! response splits cache creation into 5-minute and 1-hour parts, only the parts are logged.
//!
//! ```
//! use braintrust_providers::anthropic;
//! use serde_json::json;
//!
//! let request = json!({"model": "claude-x", "max_tokens": 50, "system": "be brief",
//!     "messages": [{"role": "user", "content": "hi"}]});
//! let response = json!({"model": "claude-x-1", "role": "assistant", "stop_reason": "end_turn",
//!     "content": [{"type": "text", "text": "hello"}],
//!     "usage": {"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 0,
//!         "cache_creation_input_tokens": 1365,
//!         "cache_creation": {"ephemeral_5m_input_tokens": 1365, "ephemeral_1h_input_tokens": 0}}});
//! let span = anthropic::messages_span(&request, &response);
//! assert_eq!(span.input.unwrap()[1], json!({"role": "system", "content": "be brief"}));
//! assert_eq!(span.metrics["prompt_tokens"], 1377);
//! assert_eq!(span.metrics["prompt_cache_creation_5m_tokens"], 1365);
//! assert!(!span.metrics.contains_key("prompt_cache_creation_tokens"));
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fields::{
    LlmSpanFields, Provider, base_metadata, choose_function, copy_param, count, function_tool,
    prompt_metadata, put_count, put_tools,
};

/// Span name of a messages call.
pub const MESSAGES_SPAN_NAME: &str = "anthropic.messages.create";
/// Span name of a streamed messages call.
pub const MESSAGES_STREAM_SPAN_NAME: &str = "anthropic.messages.stream";

/// Input and metadata of a messages request.
pub fn messages_request_fields(request: &Value) -> LlmSpanFields {
    let empty = Map::new();
    let req = request.as_object().unwrap_or(&empty);
    let mut metadata = base_metadata(
        Provider::Anthropic,
        req.get("model").and_then(Value::as_str),
    );
    prompt_metadata(&mut metadata, req);
    for key in ["temperature", "top_p", "max_tokens"] {
        copy_param(&mut metadata, key, req, key);
    }
    copy_param(&mut metadata, "stop", req, "stop_sequences");
    let tools: Vec<Value> = req
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| tools.iter().map(tool).collect())
        .unwrap_or_default();
    put_tools(&mut metadata, tools);
    if let Some(choice) = req.get("tool_choice").and_then(tool_choice) {
        metadata.insert("tool_choice".into(), choice);
    }
    let mut input = req
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(system) = req.get("system").filter(|s| !s.is_null()) {
        input.push(json!({"role": "system", "content": system}));
    }
    LlmSpanFields {
        input: Some(Value::Array(input)),
        metadata,
        ..LlmSpanFields::default()
    }
}

/// `{name, description, input_schema}` → OpenAI function shape; server tools (with a `type`
/// other than `custom`) keep their own.
fn tool(tool: &Value) -> Value {
    match tool.get("type").and_then(Value::as_str) {
        None | Some("custom") => function_tool(
            tool.get("name").unwrap_or(&Value::Null),
            tool.get("description"),
            tool.get("input_schema"),
            None,
        ),
        Some(_) => tool.clone(),
    }
}

/// `{type: auto|any|tool|none}` → `auto`, `required`, the named function, `none`.
fn tool_choice(choice: &Value) -> Option<Value> {
    match choice.get("type").and_then(Value::as_str)? {
        "auto" => Some(json!("auto")),
        "any" => Some(json!("required")),
        "none" => Some(json!("none")),
        "tool" => choice.get("name").map(choose_function),
        _ => None,
    }
}

/// Output, model and metrics of a messages response.
pub fn messages_response_fields(response: &Value) -> LlmSpanFields {
    let mut metadata = Map::new();
    if let Some(model) = response.get("model").filter(|m| m.is_string()) {
        metadata.insert("model".into(), model.clone());
    }
    let mut output = Map::new();
    output.insert(
        "role".into(),
        response.get("role").cloned().unwrap_or(json!("assistant")),
    );
    output.insert(
        "content".into(),
        response.get("content").cloned().unwrap_or(json!([])),
    );
    if let Some(reason) = response.get("stop_reason").filter(|r| !r.is_null()) {
        output.insert("stop_reason".into(), reason.clone());
    }
    LlmSpanFields {
        output: Some(Value::Object(output)),
        metadata,
        metrics: usage_metrics(response.get("usage")),
        ..LlmSpanFields::default()
    }
}

/// Token metrics with the cache split rules.
fn usage_metrics(usage: Option<&Value>) -> Map<String, Value> {
    let mut metrics = Map::new();
    let Some(usage) = usage else {
        return metrics;
    };
    let input = count(usage.get("input_tokens"));
    let output = count(usage.get("output_tokens"));
    let cache_read = count(usage.get("cache_read_input_tokens"));
    let creation = match usage.get("cache_creation").filter(|c| c.is_object()) {
        Some(split) => {
            let five = count(split.get("ephemeral_5m_input_tokens"));
            let hour = count(split.get("ephemeral_1h_input_tokens"));
            put_count(&mut metrics, "prompt_cache_creation_5m_tokens", five);
            put_count(&mut metrics, "prompt_cache_creation_1h_tokens", hour);
            (five.is_some() || hour.is_some()).then(|| five.unwrap_or(0) + hour.unwrap_or(0))
        }
        None => {
            let total = count(usage.get("cache_creation_input_tokens"));
            put_count(&mut metrics, "prompt_cache_creation_tokens", total);
            total
        }
    };
    put_count(&mut metrics, "prompt_cached_tokens", cache_read);
    let prompt = input.map(|i| i + cache_read.unwrap_or(0) + creation.unwrap_or(0));
    put_count(&mut metrics, "prompt_tokens", prompt);
    put_count(&mut metrics, "completion_tokens", output);
    if let (Some(p), Some(c)) = (prompt, output) {
        put_count(&mut metrics, "tokens", Some(p + c));
    }
    metrics
}

/// The span fields of a messages call.
pub fn messages_span(request: &Value, response: &Value) -> LlmSpanFields {
    let mut fields = messages_request_fields(request);
    fields.merge(messages_response_fields(response));
    fields
}

/// Rebuilds a messages response from its stream events: `message_start` (model, usage with the
/// cache fields), content blocks from `content_block_start` / `content_block_delta` (text,
/// tool input JSON, thinking), `message_delta` (stop reason, output tokens). `ping` and
/// unknown events are ignored.
#[derive(Debug, Clone, Default)]
pub struct MessagesStream {
    message: Map<String, Value>,
    blocks: BTreeMap<u64, Block>,
    usage: Map<String, Value>,
}

#[derive(Debug, Clone)]
struct Block {
    start: Map<String, Value>,
    text: String,
    json: String,
    thinking: String,
    signature: String,
}

impl MessagesStream {
    /// A new, empty aggregate.
    pub fn new() -> MessagesStream {
        MessagesStream::default()
    }

    /// Adds one event (`data:` JSON; its `type` names the event).
    pub fn push(&mut self, event: &Value) {
        match event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "message_start" => {
                if let Some(Value::Object(message)) = event.get("message") {
                    self.message = message.clone();
                    if let Some(Value::Object(usage)) = message.get("usage") {
                        self.usage.extend(usage.clone());
                    }
                }
            }
            "content_block_start" => {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let start = event
                    .get("content_block")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                self.blocks.insert(
                    index,
                    Block {
                        start,
                        text: String::new(),
                        json: String::new(),
                        thinking: String::new(),
                        signature: String::new(),
                    },
                );
            }
            "content_block_delta" => {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some(delta) = event.get("delta") else {
                    return;
                };
                let block = self.blocks.entry(index).or_insert_with(|| Block {
                    start: Map::new(),
                    text: String::new(),
                    json: String::new(),
                    thinking: String::new(),
                    signature: String::new(),
                });
                let text = |k: &str| delta.get(k).and_then(Value::as_str).unwrap_or_default();
                match delta
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                {
                    "text_delta" => block.text.push_str(text("text")),
                    "input_json_delta" => block.json.push_str(text("partial_json")),
                    "thinking_delta" => block.thinking.push_str(text("thinking")),
                    "signature_delta" => block.signature.push_str(text("signature")),
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(Value::Object(delta)) = event.get("delta") {
                    for (k, v) in delta {
                        if !v.is_null() {
                            self.message.insert(k.clone(), v.clone());
                        }
                    }
                }
                if let Some(Value::Object(usage)) = event.get("usage") {
                    for (k, v) in usage {
                        if !v.is_null() {
                            self.usage.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The non-streaming response shape of what arrived so far.
    pub fn response(&self) -> Value {
        let content: Vec<Value> = self.blocks.values().map(Block::finish).collect();
        let mut message = self.message.clone();
        message.insert("content".into(), Value::Array(content));
        message.insert("usage".into(), Value::Object(self.usage.clone()));
        Value::Object(message)
    }
}

impl Block {
    fn finish(&self) -> Value {
        let mut block = self.start.clone();
        match block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "text" => {
                let start = block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                block.insert("text".into(), json!(format!("{start}{}", self.text)));
            }
            "tool_use" | "server_tool_use" => {
                if !self.json.is_empty() {
                    // Malformed partial JSON is kept as the raw string.
                    let input = serde_json::from_str(&self.json)
                        .unwrap_or_else(|_| Value::String(self.json.clone()));
                    block.insert("input".into(), input);
                }
            }
            "thinking" => {
                block.insert("thinking".into(), json!(self.thinking));
                if !self.signature.is_empty() {
                    block.insert("signature".into(), json!(self.signature));
                }
            }
            _ => {
                if !self.text.is_empty() {
                    block.insert("text".into(), json!(self.text));
                }
            }
        }
        Value::Object(block)
    }
}

#[cfg(feature = "anthropic")]
pub use crate::anthropic_client::{AnthropicClient, DEFAULT_VERSION, INSTRUMENTATION};

impl crate::StreamAggregate for MessagesStream {
    fn push(&mut self, _event: &str, data: &Value) {
        MessagesStream::push(self, data);
    }

    fn fields(&self) -> LlmSpanFields {
        messages_response_fields(&self.response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hour_cache_and_aggregate_only_usage() {
        let span = messages_response_fields(&json!({"usage": {"input_tokens": 12,
            "output_tokens": 11, "cache_creation_input_tokens": 1990,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1990}}}));
        assert_eq!(span.metrics["prompt_tokens"], 2002);
        assert_eq!(span.metrics["tokens"], 2013);
        assert_eq!(span.metrics["prompt_cache_creation_1h_tokens"], 1990);
        assert!(!span.metrics.contains_key("prompt_cache_creation_tokens"));
        let aggregate = messages_response_fields(&json!({"usage": {"input_tokens": 10,
            "output_tokens": 1, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 7}}));
        assert_eq!(aggregate.metrics["prompt_tokens"], 22);
        assert_eq!(aggregate.metrics["prompt_cache_creation_tokens"], 7);
        assert_eq!(aggregate.metrics["prompt_cached_tokens"], 5);
        assert!(
            !aggregate
                .metrics
                .contains_key("prompt_cache_creation_5m_tokens")
        );
    }

    #[test]
    fn tools_and_choices_become_openai_shaped() {
        let span = messages_request_fields(&json!({"model": "c", "messages": [],
            "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}},
                      {"type": "web_search_20250305", "name": "web_search"}],
            "tool_choice": {"type": "any"}}));
        assert_eq!(
            span.metadata["tools"][0],
            json!({"type": "function", "function":
            {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}})
        );
        assert_eq!(span.metadata["tools"][1]["type"], "web_search_20250305");
        assert_eq!(span.metadata["tool_choice"], "required");
        assert_eq!(
            span.input.unwrap(),
            json!([]),
            "no system message without a system prompt"
        );
    }

    #[test]
    fn streams_rebuild_text_tool_use_and_usage() {
        let events = [
            json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "claude-x", "content": [], "usage": {"input_tokens": 22, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "there"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 13}}),
            json!({"type": "message_stop"}),
        ];
        let mut stream = MessagesStream::new();
        for e in &events {
            stream.push(e);
        }
        let span = messages_response_fields(&stream.response());
        let output = span.output.unwrap();
        assert_eq!(output["content"][0]["text"], "Hi there");
        assert_eq!(output["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(output["stop_reason"], "tool_use");
        assert_eq!(
            (
                span.metrics["prompt_tokens"].clone(),
                span.metrics["completion_tokens"].clone(),
                span.metrics["tokens"].clone()
            ),
            (json!(22), json!(13), json!(35))
        );
    }
}
