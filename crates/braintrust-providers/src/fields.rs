//! What one provider call contributes to its `llm` span, and the rules shared by every provider:
//! the allowed metadata keys, tool definitions in OpenAI shape, `tool_choice` normalisation and
//! integer token metrics.

use braintrust_core::event::Event;
use serde_json::{Map, Value, json};

/// The provider names of `metadata.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// OpenAI (chat completions and responses).
    OpenAi,
    /// Anthropic (messages).
    Anthropic,
    /// Google Gemini (generateContent).
    Google,
    /// AWS Bedrock (converse).
    Bedrock,
}

impl Provider {
    /// The `metadata.provider` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Google => "google",
            Provider::Bedrock => "bedrock",
        }
    }
}

/// Metadata keys a wrapper may log (besides `model` and `provider`, which it must).
pub const ALLOWED_METADATA: &[&str] = &[
    "model",
    "provider",
    "temperature",
    "top_p",
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
    "stop",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tool_calls",
    "prompt",
];

/// Metric names a wrapper may log.
pub const ALLOWED_METRICS: &[&str] = &[
    "start",
    "end",
    "tokens",
    "prompt_tokens",
    "completion_tokens",
    "time_to_first_token",
    "completion_reasoning_tokens",
    "prompt_cached_tokens",
    "prompt_cache_creation_tokens",
    "prompt_cache_creation_5m_tokens",
    "prompt_cache_creation_1h_tokens",
    "prompt_audio_tokens",
    "completion_audio_tokens",
    "completion_image_tokens",
    "estimated_cost",
];

/// The fields of an `llm` span built from a request and its response: what the span builders
/// return and [`crate::LlmCallSpan`] logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmSpanFields {
    /// `input`: the prompt, in the provider's shape (see the crate docs).
    pub input: Option<Value>,
    /// `output`: the completion.
    pub output: Option<Value>,
    /// `metadata`: model, provider and the allowed request parameters.
    pub metadata: Map<String, Value>,
    /// `metrics`: token counts (integers) and, for streams, `time_to_first_token`.
    pub metrics: Map<String, Value>,
}

impl LlmSpanFields {
    /// Adds the fields of `other` (its values win).
    pub fn merge(&mut self, other: LlmSpanFields) {
        if other.input.is_some() {
            self.input = other.input;
        }
        if other.output.is_some() {
            self.output = other.output;
        }
        self.metadata.extend(other.metadata);
        self.metrics.extend(other.metrics);
    }

    /// The fields as an event to log.
    pub fn into_event(self) -> Event {
        let mut event = Event::new();
        if let Some(input) = self.input {
            event = event.input(input);
        }
        if let Some(output) = self.output {
            event = event.output(output);
        }
        if !self.metadata.is_empty() {
            event = event.metadata(Value::Object(self.metadata));
        }
        if !self.metrics.is_empty() {
            event = event.field("metrics", Value::Object(self.metrics));
        }
        event
    }
}

/// A non-negative integer token count from `value`, if it is one.
pub(crate) fn count(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// Inserts an integer metric when its source is present.
pub(crate) fn put_count(metrics: &mut Map<String, Value>, name: &str, value: Option<u64>) {
    if let Some(v) = value {
        metrics.insert(name.to_owned(), Value::from(v));
    }
}

/// `tokens` from the provider's total, else prompt + completion when both are known.
pub(crate) fn put_total(metrics: &mut Map<String, Value>, total: Option<u64>) {
    let total = total.or_else(|| {
        let prompt = metrics.get("prompt_tokens")?.as_u64()?;
        let completion = metrics.get("completion_tokens")?.as_u64()?;
        Some(prompt + completion)
    });
    put_count(metrics, "tokens", total);
}

/// Metadata `model` and `provider`.
pub(crate) fn base_metadata(provider: Provider, model: Option<&str>) -> Map<String, Value> {
    let mut metadata = Map::new();
    if let Some(model) = model.filter(|m| !m.is_empty()) {
        metadata.insert("model".into(), json!(model));
    }
    metadata.insert("provider".into(), json!(provider.as_str()));
    metadata
}

/// Copies the Braintrust prompt a request was built from (`span_info.metadata.prompt`, as
/// `Prompt::build` writes it) into `metadata.prompt`. The built-in clients never send
/// `span_info` to the provider.
pub(crate) fn prompt_metadata(metadata: &mut Map<String, Value>, request: &Map<String, Value>) {
    if let Some(prompt @ Value::Object(_)) = request
        .get("span_info")
        .and_then(|info| info.get("metadata"))
        .and_then(|m| m.get("prompt"))
    {
        metadata.insert("prompt".into(), prompt.clone());
    }
}

/// Copies `from[key]` into `metadata[name]` when present and not null.
pub(crate) fn copy_param(
    metadata: &mut Map<String, Value>,
    name: &str,
    from: &Map<String, Value>,
    key: &str,
) {
    if metadata.contains_key(name) {
        return;
    }
    if let Some(v) = from.get(key).filter(|v| !v.is_null()) {
        metadata.insert(name.to_owned(), v.clone());
    }
}

/// A function tool in OpenAI shape.
pub(crate) fn function_tool(
    name: &Value,
    description: Option<&Value>,
    parameters: Option<&Value>,
    strict: Option<&Value>,
) -> Value {
    let mut function = Map::new();
    function.insert("name".into(), name.clone());
    for (key, value) in [
        ("description", description),
        ("parameters", parameters),
        ("strict", strict),
    ] {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            function.insert(key.into(), v.clone());
        }
    }
    json!({"type": "function", "function": function})
}

/// Sets `metadata.tools` unless there are none.
pub(crate) fn put_tools(metadata: &mut Map<String, Value>, tools: Vec<Value>) {
    if !tools.is_empty() {
        metadata.insert("tools".into(), Value::Array(tools));
    }
}

/// `tool_choice` naming one function.
pub(crate) fn choose_function(name: &Value) -> Value {
    json!({"type": "function", "function": {"name": name}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_builder_logs_the_prompt_a_request_was_built_from() {
        let prompt = json!({"id": "p", "project_id": "j", "version": "1", "variables": {}});
        let request = json!({"model": "m", "span_info": {"metadata": {"prompt": prompt}},
            "messages": [], "contents": [], "input": "hi"});
        let builders: [(&str, LlmSpanFields); 5] = [
            ("chat", crate::openai::chat_request_fields(&request)),
            (
                "responses",
                crate::openai::responses_request_fields(&request),
            ),
            (
                "anthropic",
                crate::anthropic::messages_request_fields(&request),
            ),
            (
                "gemini",
                crate::gemini::generate_content_request_fields("m", &request),
            ),
            (
                "bedrock",
                crate::bedrock::converse_request_fields("m", &request),
            ),
        ];
        for (name, fields) in builders {
            assert_eq!(fields.metadata["prompt"], prompt, "{name}");
            // The carrier itself is never logged as input or metadata.
            assert!(!fields.metadata.contains_key("span_info"), "{name}");
            assert!(
                !fields
                    .input
                    .unwrap_or_default()
                    .to_string()
                    .contains("span_info"),
                "{name}"
            );
        }
        let plain = crate::openai::chat_request_fields(&json!({"model": "m", "messages": []}));
        assert!(!plain.metadata.contains_key("prompt"));
    }
}
