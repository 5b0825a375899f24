//! Google Gemini: the span builder for `generateContent` and the stream aggregator for
//! `streamGenerateContent`.
//!
//! The model comes from the request path; the input is `{model, contents}` (plus
//! `systemInstruction` when given) and the output `{candidates}`. `metadata.model` is the
//! response's `modelVersion`.
//!
//! ```
//! use braintrust_providers::gemini;
//! use serde_json::json;
//!
//! let request = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
//!     "generationConfig": {"temperature": 0.5, "maxOutputTokens": 10}});
//! let response = json!({"modelVersion": "gemini-x-001", "candidates": [{"content":
//!     {"role": "model", "parts": [{"text": "hello"}]}}],
//!     "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 7, "totalTokenCount": 15}});
//! let span = gemini::generate_content_span("models/gemini-x", &request, &response);
//! assert_eq!(span.input.unwrap()["model"], "gemini-x");
//! assert_eq!(span.metadata["model"], "gemini-x-001");
//! assert_eq!(span.metadata["max_tokens"], 10);
//! assert_eq!(span.metrics["tokens"], 15);
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fields::{
    LlmSpanFields, Provider, base_metadata, choose_function, count, function_tool, prompt_metadata,
    put_count, put_tools, put_total,
};

/// Span name of `generateContent` and `streamGenerateContent` calls.
pub const GENERATE_CONTENT_SPAN_NAME: &str = "generate_content";

/// `key` or its snake_case spelling.
fn either<'a>(map: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    map.get(camel)
        .or_else(|| map.get(snake))
        .filter(|v| !v.is_null())
}

/// Input and metadata of a request to `model` (with or without the `models/` prefix).
pub fn generate_content_request_fields(model: &str, request: &Value) -> LlmSpanFields {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let empty = Map::new();
    let req = request.as_object().unwrap_or(&empty);
    let mut metadata = base_metadata(Provider::Google, Some(model));
    prompt_metadata(&mut metadata, req);
    if let Some(Value::Object(config)) = either(req, "generationConfig", "generation_config") {
        for (name, camel, snake) in [
            ("temperature", "temperature", "temperature"),
            ("top_p", "topP", "top_p"),
            ("max_tokens", "maxOutputTokens", "max_output_tokens"),
            ("stop", "stopSequences", "stop_sequences"),
            ("frequency_penalty", "frequencyPenalty", "frequency_penalty"),
            ("presence_penalty", "presencePenalty", "presence_penalty"),
        ] {
            if let Some(v) = either(config, camel, snake) {
                metadata.insert(name.into(), v.clone());
            }
        }
    }
    let mut tools = Vec::new();
    for entry in req
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        match either(entry, "functionDeclarations", "function_declarations") {
            Some(Value::Array(declarations)) => {
                for d in declarations {
                    tools.push(function_tool(
                        d.get("name").unwrap_or(&Value::Null),
                        d.get("description"),
                        d.get("parameters")
                            .or_else(|| d.get("parametersJsonSchema"))
                            .or_else(|| d.get("parameters_json_schema")),
                        None,
                    ));
                }
            }
            _ => tools.push(Value::Object(entry.clone())),
        }
    }
    put_tools(&mut metadata, tools);
    if let Some(Value::Object(config)) = either(req, "toolConfig", "tool_config")
        && let Some(Value::Object(calling)) =
            either(config, "functionCallingConfig", "function_calling_config")
    {
        let names = either(calling, "allowedFunctionNames", "allowed_function_names")
            .and_then(Value::as_array);
        let choice = match calling.get("mode").and_then(Value::as_str) {
            Some("AUTO") => Some(json!("auto")),
            Some("NONE") => Some(json!("none")),
            Some("ANY") => match names.map(Vec::as_slice) {
                Some([one]) => Some(choose_function(one)),
                _ => Some(json!("required")),
            },
            _ => None,
        };
        if let Some(choice) = choice {
            metadata.insert("tool_choice".into(), choice);
        }
    }
    let mut input = Map::new();
    input.insert("model".into(), json!(model));
    input.insert(
        "contents".into(),
        req.get("contents").cloned().unwrap_or(json!([])),
    );
    if let Some(system) = either(req, "systemInstruction", "system_instruction") {
        input.insert("systemInstruction".into(), system.clone());
    }
    LlmSpanFields {
        input: Some(Value::Object(input)),
        metadata,
        ..LlmSpanFields::default()
    }
}

/// Output, model and metrics of a response.
pub fn generate_content_response_fields(response: &Value) -> LlmSpanFields {
    let empty = Map::new();
    let resp = response.as_object().unwrap_or(&empty);
    let mut metadata = Map::new();
    if let Some(model) = either(resp, "modelVersion", "model_version").filter(|m| m.is_string()) {
        metadata.insert("model".into(), model.clone());
    }
    let mut metrics = Map::new();
    if let Some(Value::Object(usage)) = either(resp, "usageMetadata", "usage_metadata") {
        let get = |camel: &str, snake: &str| count(either(usage, camel, snake));
        put_count(
            &mut metrics,
            "prompt_tokens",
            get("promptTokenCount", "prompt_token_count"),
        );
        put_count(
            &mut metrics,
            "completion_tokens",
            get("candidatesTokenCount", "candidates_token_count"),
        );
        put_total(&mut metrics, get("totalTokenCount", "total_token_count"));
        put_count(
            &mut metrics,
            "prompt_cached_tokens",
            get("cachedContentTokenCount", "cached_content_token_count"),
        );
        put_count(
            &mut metrics,
            "completion_reasoning_tokens",
            get("thoughtsTokenCount", "thoughts_token_count"),
        );
    }
    LlmSpanFields {
        output: Some(json!({
            "candidates": resp.get("candidates").cloned().unwrap_or(json!([])),
        })),
        metadata,
        metrics,
        ..LlmSpanFields::default()
    }
}

/// The span fields of a `generateContent` call.
pub fn generate_content_span(model: &str, request: &Value, response: &Value) -> LlmSpanFields {
    let mut fields = generate_content_request_fields(model, request);
    fields.merge(generate_content_response_fields(response));
    fields
}

/// Rebuilds a `generateContent` response from stream chunks: parts concatenated per candidate
/// (adjacent text parts joined), the last finish reason, and the usage of the last chunk that
/// carries it.
#[derive(Debug, Clone, Default)]
pub struct GenerateContentStream {
    candidates: BTreeMap<u64, Map<String, Value>>,
    usage: Option<Value>,
    model_version: Option<Value>,
}

impl GenerateContentStream {
    /// A new, empty aggregate.
    pub fn new() -> GenerateContentStream {
        GenerateContentStream::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &Value) {
        let Some(chunk) = chunk.as_object() else {
            return;
        };
        if let Some(usage) = either(chunk, "usageMetadata", "usage_metadata") {
            self.usage = Some(usage.clone());
        }
        if let Some(model) = either(chunk, "modelVersion", "model_version") {
            self.model_version = Some(model.clone());
        }
        let Some(candidates) = chunk.get("candidates").and_then(Value::as_array) else {
            return;
        };
        for (position, candidate) in candidates.iter().enumerate() {
            let Some(candidate) = candidate.as_object() else {
                continue;
            };
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64);
            let acc = self.candidates.entry(index).or_default();
            for (key, value) in candidate {
                if key != "content" {
                    acc.insert(key.clone(), value.clone());
                }
            }
            let Some(content) = candidate.get("content").and_then(Value::as_object) else {
                continue;
            };
            let acc_content = acc
                .entry("content")
                .or_insert_with(|| json!({"parts": [], "role": "model"}));
            if let Some(role) = content.get("role") {
                acc_content["role"] = role.clone();
            }
            let Some(Value::Array(parts)) = acc_content.get_mut("parts") else {
                continue;
            };
            for part in content
                .get("parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let joined = match (parts.last_mut(), part.get("text").and_then(Value::as_str)) {
                    (Some(Value::Object(last)), Some(text))
                        if last.len() == 1
                            && last.get("text").is_some_and(Value::is_string)
                            && part.as_object().is_some_and(|p| p.len() == 1) =>
                    {
                        if let Some(Value::String(prev)) = last.get_mut("text") {
                            prev.push_str(text);
                        }
                        true
                    }
                    _ => false,
                };
                if !joined {
                    parts.push(part.clone());
                }
            }
        }
    }

    /// The non-streaming response shape of what arrived so far.
    pub fn response(&self) -> Value {
        let mut response = Map::new();
        response.insert(
            "candidates".into(),
            Value::Array(
                self.candidates
                    .values()
                    .map(|c| Value::Object(c.clone()))
                    .collect(),
            ),
        );
        if let Some(usage) = &self.usage {
            response.insert("usageMetadata".into(), usage.clone());
        }
        if let Some(model) = &self.model_version {
            response.insert("modelVersion".into(), model.clone());
        }
        Value::Object(response)
    }
}

#[cfg(feature = "gemini")]
pub use crate::gemini_client::{GeminiClient, INSTRUMENTATION};

impl crate::StreamAggregate for GenerateContentStream {
    fn push(&mut self, _event: &str, data: &Value) {
        GenerateContentStream::push(self, data);
    }

    fn fields(&self) -> LlmSpanFields {
        generate_content_response_fields(&self.response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_declarations_and_modes_are_normalised() {
        let span = generate_content_request_fields(
            "gemini-x",
            &json!({"contents": [], "tools": [
                {"functionDeclarations": [{"name": "f", "description": "d", "parameters": {"type": "object"}}]},
                {"googleSearch": {}}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
                "system_instruction": {"parts": [{"text": "be brief"}]}}),
        );
        assert_eq!(span.metadata["tools"][0]["function"]["name"], "f");
        assert_eq!(span.metadata["tools"][1], json!({"googleSearch": {}}));
        assert_eq!(span.metadata["tool_choice"]["function"]["name"], "f");
        assert_eq!(
            span.input.unwrap()["systemInstruction"]["parts"][0]["text"],
            "be brief"
        );
    }

    #[test]
    fn streams_join_text_and_keep_the_last_usage() {
        let mut stream = GenerateContentStream::new();
        stream.push(&json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}], "modelVersion": "g-1"}));
        stream.push(&json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5, "thoughtsTokenCount": 1}}));
        let span = generate_content_response_fields(&stream.response());
        let output = span.output.unwrap();
        assert_eq!(
            output["candidates"][0]["content"]["parts"][0]["text"],
            "Hello"
        );
        assert_eq!(
            output["candidates"][0]["content"]["parts"][1]["functionCall"]["name"],
            "f"
        );
        assert_eq!(output["candidates"][0]["finishReason"], "STOP");
        assert_eq!(span.metrics["tokens"], 5);
        assert_eq!(span.metrics["completion_reasoning_tokens"], 1);
        assert_eq!(span.metadata["model"], "g-1");
    }
}
