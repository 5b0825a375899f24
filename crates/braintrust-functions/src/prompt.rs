//! [`Prompt`]: a prompt version as stored in Braintrust, and [`Prompt::build`], which renders
//! it into the arguments of an LLM call.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::PromptError;
use crate::mustache::{Strictness, render};

/// One version of a prompt: the row `GET /v1/prompt` returns, plus the `defaults` and
/// `no_trace` it was loaded with.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    row: Map<String, Value>,
    defaults: Map<String, Value>,
    no_trace: bool,
}

impl Prompt {
    /// A prompt from a prompt (or prompt-type function) row. The row must have an `id` and a
    /// `prompt_data` object.
    pub fn from_row(row: Value) -> Result<Prompt, PromptError> {
        let Value::Object(row) = row else {
            return Err(PromptError::InvalidRow(
                "a prompt row must be a JSON object".into(),
            ));
        };
        if !row.get("id").is_some_and(Value::is_string) {
            return Err(PromptError::InvalidRow("the prompt row has no `id`".into()));
        }
        if !row.get("prompt_data").is_some_and(Value::is_object) {
            return Err(PromptError::InvalidRow(
                "the prompt row has no `prompt_data` object".into(),
            ));
        }
        Ok(Prompt {
            row,
            defaults: Map::new(),
            no_trace: false,
        })
    }

    /// Sets the parameters that [`Prompt::build`] starts from (the prompt's own parameters
    /// override them).
    pub fn with_defaults(mut self, defaults: Map<String, Value>) -> Prompt {
        self.defaults = defaults;
        self
    }

    /// With `true`, [`Prompt::build`] leaves out `span_info`.
    pub fn with_no_trace(mut self, no_trace: bool) -> Prompt {
        self.no_trace = no_trace;
        self
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.row.get(key).and_then(Value::as_str)
    }

    /// The prompt's id.
    pub fn id(&self) -> &str {
        self.text("id").unwrap_or_default()
    }

    /// The version (`_xact_id`).
    pub fn version(&self) -> Option<&str> {
        self.text("_xact_id")
    }

    /// The project's id.
    pub fn project_id(&self) -> Option<&str> {
        self.text("project_id")
    }

    /// The display name.
    pub fn name(&self) -> Option<&str> {
        self.text("name")
    }

    /// The slug.
    pub fn slug(&self) -> Option<&str> {
        self.text("slug")
    }

    /// The description.
    pub fn description(&self) -> Option<&str> {
        self.text("description")
    }

    /// `prompt_data`: the prompt block, options, parser, tool functions.
    pub fn prompt_data(&self) -> &Value {
        self.row.get("prompt_data").unwrap_or(&Value::Null)
    }

    /// The model from the prompt's options, else from the defaults.
    pub fn model(&self) -> Option<&str> {
        self.prompt_data()
            .pointer("/options/model")
            .and_then(Value::as_str)
            .or_else(|| self.defaults.get("model").and_then(Value::as_str))
    }

    /// The whole row as loaded.
    pub fn row(&self) -> &Map<String, Value> {
        &self.row
    }

    /// Renders the prompt with `variables` (anything that serializes to a JSON object):
    /// missing variables render as nothing.
    pub fn build(&self, variables: impl Serialize) -> Result<BuiltPrompt, PromptError> {
        self.build_with(variables, Strictness::Lenient)
    }

    /// [`Prompt::build`], but a variable missing from `variables` is an error naming it.
    pub fn build_strict(&self, variables: impl Serialize) -> Result<BuiltPrompt, PromptError> {
        self.build_with(variables, Strictness::Strict)
    }

    fn build_with(
        &self,
        variables: impl Serialize,
        strictness: Strictness,
    ) -> Result<BuiltPrompt, PromptError> {
        let variables = match serde_json::to_value(variables) {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(Value::Null) => Value::Object(Map::new()),
            Ok(other) => {
                return Err(PromptError::InvalidVariables(format!(
                    "variables must serialize to a JSON object, not {other}"
                )));
            }
            Err(e) => return Err(PromptError::InvalidVariables(e.to_string())),
        };
        let data = self.prompt_data();
        let renderer = Renderer::new(data, &variables, strictness)?;
        let mut params = self.defaults.clone();
        if let Some(Value::Object(own)) = data.pointer("/options/params") {
            for (key, value) in own {
                params.insert(key.clone(), value.clone());
            }
        }
        params.shift_remove("use_cache");
        let model = self.model().ok_or(PromptError::NoModel)?.to_owned();
        params.shift_remove("model");
        if let Some(schema) = params
            .get_mut("response_format")
            .and_then(|f| f.pointer_mut("/json_schema/schema"))
            && let Value::String(text) = schema
        {
            let rendered = renderer.render("response_format.json_schema.schema", text)?;
            *schema = serde_json::from_str(&rendered).map_err(|e| {
                PromptError::InvalidPrompt(format!(
                    "response_format.json_schema.schema is not valid JSON after rendering: {e}"
                ))
            })?;
        }
        let span_info = (!self.no_trace).then(|| {
            let mut prompt = Map::new();
            prompt.insert("variables".into(), variables.clone());
            prompt.insert("id".into(), json!(self.id()));
            if let Some(project_id) = self.project_id() {
                prompt.insert("project_id".into(), json!(project_id));
            }
            if let Some(version) = self.version() {
                prompt.insert("version".into(), json!(version));
            }
            json!({"metadata": {"prompt": prompt}})
        });
        let block = data
            .get("prompt")
            .filter(|p| p.is_object())
            .ok_or_else(|| PromptError::InvalidPrompt("prompt_data has no `prompt`".into()))?;
        let body = match block.get("type").and_then(Value::as_str) {
            Some("chat") => {
                let messages = match block.get("messages") {
                    Some(Value::Array(messages)) => messages
                        .iter()
                        .enumerate()
                        .map(|(i, m)| renderer.message(i, m))
                        .collect::<Result<Vec<_>, _>>()?,
                    None | Some(Value::Null) => Vec::new(),
                    Some(_) => {
                        return Err(PromptError::InvalidPrompt(
                            "prompt.messages must be a list".into(),
                        ));
                    }
                };
                let tools = match block.get("tools") {
                    Some(Value::String(text)) if !text.trim().is_empty() => {
                        let rendered = renderer.render("prompt.tools", text)?;
                        Some(serde_json::from_str(&rendered).map_err(|e| {
                            PromptError::InvalidPrompt(format!(
                                "prompt.tools is not valid JSON after rendering: {e}"
                            ))
                        })?)
                    }
                    Some(Value::Array(tools)) if !tools.is_empty() => {
                        Some(Value::Array(tools.clone()))
                    }
                    _ => None,
                };
                PromptBody::Chat { messages, tools }
            }
            Some("completion") => {
                let content = block.get("content").and_then(Value::as_str).unwrap_or("");
                PromptBody::Completion {
                    prompt: renderer.render("prompt.content", content)?,
                }
            }
            other => {
                return Err(PromptError::InvalidPrompt(format!(
                    "unknown prompt type {}",
                    other.map_or("(none)".to_owned(), |t| format!("{t:?}"))
                )));
            }
        };
        Ok(BuiltPrompt {
            params,
            model,
            span_info,
            body,
        })
    }
}

/// Renders template strings of one prompt with one set of variables.
struct Renderer<'a> {
    variables: &'a Value,
    strictness: Strictness,
    /// `template_format: none` copies text as it is.
    plain: bool,
}

impl<'a> Renderer<'a> {
    fn new(
        data: &Value,
        variables: &'a Value,
        strictness: Strictness,
    ) -> Result<Renderer<'a>, PromptError> {
        let format = data
            .get("template_format")
            .or_else(|| data.pointer("/options/template_format"))
            .and_then(Value::as_str)
            .unwrap_or("mustache");
        let plain = match format {
            "mustache" => false,
            "none" => true,
            other => return Err(PromptError::UnsupportedTemplateFormat(other.to_owned())),
        };
        Ok(Renderer {
            variables,
            strictness,
            plain,
        })
    }

    fn render(&self, field: &str, text: &str) -> Result<String, PromptError> {
        if self.plain {
            return Ok(text.to_owned());
        }
        render(text, self.variables, self.strictness).map_err(|source| PromptError::Template {
            field: field.to_owned(),
            source,
        })
    }

    /// Renders every string inside `value` (message content parts).
    fn render_strings(&self, field: &str, value: &Value) -> Result<Value, PromptError> {
        Ok(match value {
            Value::String(text) => Value::String(self.render(field, text)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_strings(field, item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_strings(field, v)?)))
                    .collect::<Result<_, PromptError>>()?,
            ),
            other => other.clone(),
        })
    }

    fn message(&self, index: usize, message: &Value) -> Result<Message, PromptError> {
        let Value::Object(fields) = message else {
            return Err(PromptError::InvalidPrompt(format!(
                "prompt.messages[{index}] must be an object"
            )));
        };
        let role = fields
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                PromptError::InvalidPrompt(format!("prompt.messages[{index}] has no `role`"))
            })?
            .to_owned();
        let field = format!("prompt.messages[{index}].content");
        let content = match fields.get("content") {
            None => None,
            Some(content) => Some(self.render_strings(&field, content)?),
        };
        let extra = fields
            .iter()
            .filter(|(k, _)| *k != "role" && *k != "content")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Message {
            role,
            content,
            extra,
        })
    }
}

/// A chat message of a built prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: String,
    /// A string or a list of content parts (`text`, `image_url`, `file`), rendered.
    pub content: Option<Value>,
    /// Other fields as stored (`name`, `tool_calls`, `function_call`, …).
    pub extra: Map<String, Value>,
}

impl Message {
    /// The text of the content: the string, or the `text` parts joined.
    pub fn text(&self) -> Option<String> {
        match self.content.as_ref()? {
            Value::String(text) => Some(text.clone()),
            Value::Array(parts) => Some(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The message as JSON: `content`, `role`, then the other fields (the SDKs' order).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if let Some(content) = &self.content {
            out.insert("content".into(), content.clone());
        }
        out.insert("role".into(), Value::String(self.role.clone()));
        for (key, value) in &self.extra {
            out.insert(key.clone(), value.clone());
        }
        Value::Object(out)
    }
}

/// What the prompt renders to besides parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptBody {
    /// A chat prompt.
    Chat {
        /// The rendered messages.
        messages: Vec<Message>,
        /// The tools (OpenAI format), when the prompt has any.
        tools: Option<Value>,
    },
    /// A completion prompt.
    Completion {
        /// The rendered text.
        prompt: String,
    },
}

/// The result of [`Prompt::build`]: the arguments of an LLM call. [`BuiltPrompt::to_json`]
/// (and `Serialize`) give the SDKs' exact shape and key order: the defaults and the prompt's
/// parameters (without `use_cache`), `model`, `span_info` (unless `no_trace`), then `messages`
/// and `tools` (chat) or `prompt` (completion).
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltPrompt {
    /// Parameters (`temperature`, `max_tokens`, `response_format`, …).
    pub params: Map<String, Value>,
    /// The model.
    pub model: String,
    /// `{"metadata": {"prompt": {variables, id, project_id, version}}}` for the LLM span;
    /// provider wrappers move it into the span and strip it from the request.
    pub span_info: Option<Value>,
    /// Messages and tools, or the completion prompt.
    pub body: PromptBody,
}

impl BuiltPrompt {
    /// The rendered messages of a chat prompt.
    pub fn messages(&self) -> Option<&[Message]> {
        match &self.body {
            PromptBody::Chat { messages, .. } => Some(messages),
            PromptBody::Completion { .. } => None,
        }
    }

    /// The JSON object the official SDKs' `build()` returns.
    pub fn to_json(&self) -> Value {
        let mut out = self.params.clone();
        out.insert("model".into(), Value::String(self.model.clone()));
        if let Some(span_info) = &self.span_info {
            out.insert("span_info".into(), span_info.clone());
        }
        match &self.body {
            PromptBody::Chat { messages, tools } => {
                out.insert(
                    "messages".into(),
                    Value::Array(messages.iter().map(Message::to_json).collect()),
                );
                if let Some(tools) = tools {
                    out.insert("tools".into(), tools.clone());
                }
            }
            PromptBody::Completion { prompt } => {
                out.insert("prompt".into(), Value::String(prompt.clone()));
            }
        }
        Value::Object(out)
    }

    /// [`BuiltPrompt::to_json`] without `span_info`: the request to send to a provider.
    pub fn to_request(&self) -> Value {
        let mut json = self.to_json();
        if let Value::Object(map) = &mut json {
            map.shift_remove("span_info");
        }
        json
    }
}

impl Serialize for BuiltPrompt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}
