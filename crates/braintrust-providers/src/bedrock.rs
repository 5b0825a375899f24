//! AWS Bedrock Converse: the span builder for `converse` and the aggregator for
//! `converse-stream` events.
//!
//! Bedrock is logged in the OpenAI-like message form: the request's `messages` with a `type`
//! discriminator added to each content block (`{type: "text", text}`, `{type: "image",
//! image: {…}}`), a `system` prompt as a leading `{role: "system"}` message, and the output as a
//! list of messages. `metadata.model` is the model id of the request path.
//!
//! ```
//! use braintrust_providers::bedrock;
//! use serde_json::json;
//!
//! let request = json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}],
//!     "inferenceConfig": {"maxTokens": 100}});
//! let response = json!({"output": {"message": {"role": "assistant", "content": [{"text": "hello"}]}},
//!     "stopReason": "end_turn", "usage": {"inputTokens": 7, "outputTokens": 179, "totalTokens": 186}});
//! let span = bedrock::converse_span("us.amazon.nova-lite-v1:0", &request, &response);
//! assert_eq!(span.input.unwrap()[0]["content"][0], json!({"type": "text", "text": "hi"}));
//! assert_eq!(span.output.unwrap()[0]["content"][0]["type"], "text");
//! assert_eq!(span.metadata["model"], "us.amazon.nova-lite-v1:0");
//! assert_eq!(span.metrics["tokens"], 186);
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fields::{
    LlmSpanFields, Provider, base_metadata, choose_function, count, function_tool, prompt_metadata,
    put_count, put_tools, put_total,
};

/// Span name of `converse` calls.
pub const CONVERSE_SPAN_NAME: &str = "bedrock.converse";
/// Span name of `converse-stream` calls.
pub const CONVERSE_STREAM_SPAN_NAME: &str = "bedrock.converse-stream";

/// A content block with its `type` discriminator (the block's single key) added.
fn typed_block(block: &Value) -> Value {
    match block {
        Value::Object(map) if !map.contains_key("type") => {
            let kind = map
                .keys()
                .find(|k| k.as_str() != "cachePoint" || map.len() == 1);
            let mut out = Map::new();
            if let Some(kind) = kind {
                out.insert("type".into(), json!(kind));
            }
            out.extend(map.clone());
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn typed_message(message: &Value) -> Value {
    let mut message = message.clone();
    if let Some(Value::Array(content)) = message.get_mut("content") {
        for block in content.iter_mut() {
            *block = typed_block(block);
        }
    }
    message
}

/// Input and metadata of a converse request to `model_id`.
pub fn converse_request_fields(model_id: &str, request: &Value) -> LlmSpanFields {
    let empty = Map::new();
    let req = request.as_object().unwrap_or(&empty);
    let mut metadata = base_metadata(Provider::Bedrock, Some(model_id));
    prompt_metadata(&mut metadata, req);
    if let Some(Value::Object(config)) = req.get("inferenceConfig") {
        for (name, key) in [
            ("temperature", "temperature"),
            ("top_p", "topP"),
            ("max_tokens", "maxTokens"),
            ("stop", "stopSequences"),
        ] {
            if let Some(v) = config.get(key).filter(|v| !v.is_null()) {
                metadata.insert(name.into(), v.clone());
            }
        }
    }
    if let Some(Value::Object(config)) = req.get("toolConfig") {
        let tools = config
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|tool| match tool.get("toolSpec") {
                Some(spec) => function_tool(
                    spec.get("name").unwrap_or(&Value::Null),
                    spec.get("description"),
                    spec.get("inputSchema").map(|s| s.get("json").unwrap_or(s)),
                    None,
                ),
                None => tool.clone(),
            })
            .collect();
        put_tools(&mut metadata, tools);
        if let Some(Value::Object(choice)) = config.get("toolChoice") {
            let normalized = if choice.contains_key("auto") {
                Some(json!("auto"))
            } else if choice.contains_key("any") {
                Some(json!("required"))
            } else {
                choice
                    .get("tool")
                    .and_then(|t| t.get("name"))
                    .map(choose_function)
            };
            if let Some(normalized) = normalized {
                metadata.insert("tool_choice".into(), normalized);
            }
        }
    }
    let mut input = Vec::new();
    if let Some(Value::Array(system)) = req.get("system")
        && !system.is_empty()
    {
        let content: Vec<Value> = system.iter().map(typed_block).collect();
        input.push(json!({"role": "system", "content": content}));
    }
    for message in req
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        input.push(typed_message(message));
    }
    LlmSpanFields {
        input: Some(Value::Array(input)),
        metadata,
        ..LlmSpanFields::default()
    }
}

/// Output and metrics of a converse response.
pub fn converse_response_fields(response: &Value) -> LlmSpanFields {
    let output = response
        .pointer("/output/message")
        .map(|m| Value::Array(vec![typed_message(m)]));
    let mut metrics = Map::new();
    if let Some(usage) = response.get("usage") {
        put_count(
            &mut metrics,
            "prompt_tokens",
            count(usage.get("inputTokens")),
        );
        put_count(
            &mut metrics,
            "completion_tokens",
            count(usage.get("outputTokens")),
        );
        put_total(&mut metrics, count(usage.get("totalTokens")));
        put_count(
            &mut metrics,
            "prompt_cached_tokens",
            count(usage.get("cacheReadInputTokens")),
        );
        put_count(
            &mut metrics,
            "prompt_cache_creation_tokens",
            count(usage.get("cacheWriteInputTokens")),
        );
    }
    LlmSpanFields {
        output,
        metrics,
        ..LlmSpanFields::default()
    }
}

/// The span fields of a converse call.
pub fn converse_span(model_id: &str, request: &Value, response: &Value) -> LlmSpanFields {
    let mut fields = converse_request_fields(model_id, request);
    fields.merge(converse_response_fields(response));
    fields
}

/// Rebuilds a converse response from `converse-stream` events (`messageStart`,
/// `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`, `messageStop`, `metadata`).
#[derive(Debug, Clone, Default)]
pub struct ConverseStream {
    role: Option<Value>,
    blocks: BTreeMap<u64, StreamBlock>,
    stop_reason: Option<Value>,
    usage: Option<Value>,
    metrics: Option<Value>,
}

#[derive(Debug, Clone, Default)]
struct StreamBlock {
    text: Option<String>,
    tool_use: Option<Map<String, Value>>,
    tool_input: String,
    reasoning: Option<String>,
}

impl ConverseStream {
    /// A new, empty aggregate.
    pub fn new() -> ConverseStream {
        ConverseStream::default()
    }

    /// Adds one event: its type (`:event-type` header) and JSON payload.
    pub fn push(&mut self, event_type: &str, payload: &Value) {
        let index = payload
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match event_type {
            "messageStart" => self.role = payload.get("role").cloned(),
            "contentBlockStart" => {
                if let Some(Value::Object(tool)) = payload.pointer("/start/toolUse") {
                    self.blocks.entry(index).or_default().tool_use = Some(tool.clone());
                }
            }
            "contentBlockDelta" => {
                let block = self.blocks.entry(index).or_default();
                let Some(delta) = payload.get("delta") else {
                    return;
                };
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    block.text.get_or_insert_with(String::new).push_str(text);
                }
                if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str) {
                    block.tool_input.push_str(input);
                }
                if let Some(text) = delta
                    .pointer("/reasoningContent/text")
                    .and_then(Value::as_str)
                {
                    block
                        .reasoning
                        .get_or_insert_with(String::new)
                        .push_str(text);
                }
            }
            "messageStop" => self.stop_reason = payload.get("stopReason").cloned(),
            "metadata" => {
                self.usage = payload.get("usage").cloned();
                self.metrics = payload.get("metrics").cloned();
            }
            _ => {}
        }
    }

    /// The non-streaming response shape of what arrived so far.
    pub fn response(&self) -> Value {
        let mut content = Vec::new();
        for block in self.blocks.values() {
            if let Some(text) = &block.reasoning {
                content.push(json!({"reasoningContent": {"reasoningText": {"text": text}}}));
            }
            if let Some(text) = &block.text {
                content.push(json!({"text": text}));
            }
            if let Some(tool) = &block.tool_use {
                let mut tool = tool.clone();
                let input = serde_json::from_str(&block.tool_input)
                    .unwrap_or_else(|_| Value::String(block.tool_input.clone()));
                tool.insert("input".into(), input);
                content.push(json!({"toolUse": tool}));
            }
        }
        let mut response = Map::new();
        response.insert(
            "output".into(),
            json!({"message": {
                "role": self.role.clone().unwrap_or(json!("assistant")),
                "content": content,
            }}),
        );
        for (key, value) in [
            ("stopReason", &self.stop_reason),
            ("usage", &self.usage),
            ("metrics", &self.metrics),
        ] {
            if let Some(v) = value {
                response.insert(key.into(), v.clone());
            }
        }
        Value::Object(response)
    }
}

#[cfg(feature = "bedrock")]
pub use crate::bedrock_client::{AwsCredentials, BedrockClient, INSTRUMENTATION};

impl crate::StreamAggregate for ConverseStream {
    fn push(&mut self, event: &str, data: &Value) {
        ConverseStream::push(self, event, data);
    }

    fn fields(&self) -> LlmSpanFields {
        converse_response_fields(&self.response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_tools_and_blocks_are_typed() {
        let span = converse_request_fields(
            "m",
            &json!({"system": [{"text": "be brief"}],
                "messages": [{"role": "user", "content": [{"text": "hi"},
                    {"image": {"format": "png", "source": {"bytes": "AAAA"}}}]}],
                "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                    "toolChoice": {"tool": {"name": "f"}}}}),
        );
        let input = span.input.unwrap();
        assert_eq!(
            input[0],
            json!({"role": "system", "content": [{"type": "text", "text": "be brief"}]})
        );
        assert_eq!(input[1]["content"][1]["type"], "image");
        assert_eq!(input[1]["content"][1]["image"]["format"], "png");
        assert_eq!(
            span.metadata["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(span.metadata["tool_choice"]["function"]["name"], "f");
    }

    #[test]
    fn streams_rebuild_text_tool_use_and_usage() {
        let mut stream = ConverseStream::new();
        stream.push("messageStart", &json!({"role": "assistant"}));
        stream.push(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        );
        stream.push(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        );
        stream.push(
            "contentBlockStart",
            &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}}),
        );
        stream.push(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":"}}}),
        );
        stream.push(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
        );
        stream.push("messageStop", &json!({"stopReason": "tool_use"}));
        stream.push(
            "metadata",
            &json!({"usage": {"inputTokens": 6, "outputTokens": 81, "totalTokens": 87}}),
        );
        let span = converse_response_fields(&stream.response());
        let output = span.output.unwrap();
        assert_eq!(
            output[0]["content"][0],
            json!({"type": "text", "text": "Hello"})
        );
        assert_eq!(output[0]["content"][1]["toolUse"]["input"], json!({"a": 1}));
        assert_eq!(output[0]["content"][1]["type"], "toolUse");
        assert_eq!(span.metrics["tokens"], 87);
    }
}
