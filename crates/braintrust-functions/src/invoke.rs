//! [`invoke`] and [`invoke_stream`]: run a function (a prompt, tool, scorer or code function
//! stored in Braintrust) on the server, as `POST {proxy_url}/function/invoke`.
//!
//! The call is traced under the caller's context: the `parent` sent is the explicit one, else
//! the current span, else the current experiment or logger, else none, so the server-side span
//! lands in the caller's trace.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use braintrust_core::span::Parent;
use braintrust_transport::api::{ApiClient, Host};
use braintrust_transport::http::BodyStream;
use futures_core::Stream;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::InvokeError;
use braintrust_transport::sse::{SseEvent, SseParser};

/// How the function's output is shaped (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvokeMode {
    /// The function decides.
    Auto,
    /// Run tool calls in parallel.
    Parallel,
    /// JSON output.
    Json,
    /// Text output.
    Text,
}

impl InvokeMode {
    fn as_str(self) -> &'static str {
        match self {
            InvokeMode::Auto => "auto",
            InvokeMode::Parallel => "parallel",
            InvokeMode::Json => "json",
            InvokeMode::Text => "text",
        }
    }
}

/// Which function to run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Id {
        id: String,
    },
    Slug {
        project_name: Option<String>,
        project_id: Option<String>,
        slug: String,
    },
    Global {
        name: String,
        function_type: Option<String>,
    },
    PromptSession {
        session_id: String,
        function_id: String,
    },
}

/// A function call: which function, with what. Build one with [`Invoke::function_id`],
/// [`Invoke::slug`], [`Invoke::project_id_slug`], [`Invoke::global`] or
/// [`Invoke::prompt_session`].
#[derive(Debug, Clone)]
pub struct Invoke {
    target: Target,
    version: Option<String>,
    input: Value,
    messages: Option<Value>,
    metadata: Option<Value>,
    tags: Option<Vec<String>>,
    parent: Option<Parent>,
    mode: Option<InvokeMode>,
    strict: Option<bool>,
    org_name: Option<String>,
    project_id_header: Option<String>,
    client: Option<ApiClient>,
    error: Option<InvokeError>,
}

impl Invoke {
    fn new(target: Target) -> Invoke {
        Invoke {
            target,
            version: None,
            input: Value::Null,
            messages: None,
            metadata: None,
            tags: None,
            parent: None,
            mode: None,
            strict: None,
            org_name: None,
            project_id_header: None,
            client: None,
            error: None,
        }
    }

    /// The function with this id.
    pub fn function_id(id: impl Into<String>) -> Invoke {
        Invoke::new(Target::Id { id: id.into() })
    }

    /// The function `slug` of the project named `project_name`.
    pub fn slug(project_name: impl Into<String>, slug: impl Into<String>) -> Invoke {
        Invoke::new(Target::Slug {
            project_name: Some(project_name.into()),
            project_id: None,
            slug: slug.into(),
        })
    }

    /// The function `slug` of the project with id `project_id`.
    pub fn project_id_slug(project_id: impl Into<String>, slug: impl Into<String>) -> Invoke {
        Invoke::new(Target::Slug {
            project_name: None,
            project_id: Some(project_id.into()),
            slug: slug.into(),
        })
    }

    /// A global function (`Factuality`, …), optionally of a type (`scorer`, `tool`, …).
    pub fn global(name: impl Into<String>) -> Invoke {
        Invoke::new(Target::Global {
            name: name.into(),
            function_type: None,
        })
    }

    /// A function of a playground session.
    pub fn prompt_session(session_id: impl Into<String>, function_id: impl Into<String>) -> Invoke {
        Invoke::new(Target::PromptSession {
            session_id: session_id.into(),
            function_id: function_id.into(),
        })
    }

    /// The type of a global function (`scorer`, `tool`, `task`, `llm`).
    pub fn function_type(mut self, function_type: impl Into<String>) -> Invoke {
        if let Target::Global {
            function_type: t, ..
        } = &mut self.target
        {
            *t = Some(function_type.into());
        }
        self
    }

    /// A specific version of the function (by id or slug).
    pub fn version(mut self, version: impl Into<String>) -> Invoke {
        self.version = Some(version.into());
        self
    }

    fn serialize(&mut self, what: &'static str, value: impl Serialize) -> Option<Value> {
        match serde_json::to_value(value) {
            Ok(value) => Some(value),
            Err(e) => {
                self.error.get_or_insert(InvokeError::Serialize {
                    what,
                    message: e.to_string(),
                });
                None
            }
        }
    }

    /// The input (anything serializable).
    pub fn input(mut self, input: impl Serialize) -> Invoke {
        self.input = self.serialize("input", input).unwrap_or(Value::Null);
        self
    }

    /// Extra chat messages appended to a prompt function's messages.
    pub fn messages(mut self, messages: impl Serialize) -> Invoke {
        self.messages = self.serialize("messages", messages);
        self
    }

    /// Metadata of the server-side span.
    pub fn metadata(mut self, metadata: impl Serialize) -> Invoke {
        self.metadata = self.serialize("metadata", metadata);
        self
    }

    /// Tags of the server-side span.
    pub fn tags<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Invoke {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// The parent of the server-side span, as for `StartSpan::parent`: a span, an export slug
    /// (`""` for none) or a remote W3C context (sent only when it names a Braintrust object).
    /// Default: the current span, else the current experiment or logger, else none.
    pub fn parent(mut self, parent: impl Into<Parent>) -> Invoke {
        self.parent = Some(parent.into());
        self
    }

    /// The output mode.
    pub fn mode(mut self, mode: InvokeMode) -> Invoke {
        self.mode = Some(mode);
        self
    }

    /// Whether the input must match the function's parameters exactly.
    pub fn strict(mut self, strict: bool) -> Invoke {
        self.strict = Some(strict);
        self
    }

    /// The organisation to run in (`x-bt-org-name`).
    pub fn org_name(mut self, org_name: impl Into<String>) -> Invoke {
        self.org_name = Some(org_name.into());
        self
    }

    /// The project to run in (`x-bt-project-id`), for global functions.
    pub fn project_id(mut self, project_id: impl Into<String>) -> Invoke {
        self.project_id_header = Some(project_id.into());
        self
    }

    /// Send through this client (default: [`ApiClient::shared`]).
    pub fn client(mut self, client: ApiClient) -> Invoke {
        self.client = Some(client);
        self
    }

    /// Runs the function and returns its output (see [`invoke`]).
    pub async fn call(self) -> Result<Value, InvokeError> {
        invoke(self).await
    }

    /// Runs the function, streaming its output (see [`invoke_stream`]).
    pub async fn stream(self) -> Result<InvokeStream, InvokeError> {
        invoke_stream(self).await
    }

    /// [`Invoke::call`] for synchronous code: blocks the calling thread.
    pub fn call_blocking(self) -> Result<Value, InvokeError> {
        braintrust_transport::api::block_on(invoke(self))
    }

    /// The request body, the headers and the client. The parent is resolved here, on the
    /// caller's thread, where the current span is known.
    #[allow(clippy::type_complexity)]
    fn prepare(
        self,
        stream: bool,
    ) -> Result<(Value, Vec<(&'static str, String)>, ApiClient), InvokeError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut body = Map::new();
        body.insert("api_version".into(), json!(1));
        match self.target {
            Target::Id { id } => {
                body.insert("function_id".into(), json!(id));
            }
            Target::Slug {
                project_name,
                project_id,
                slug,
            } => {
                if let Some(name) = project_name {
                    body.insert("project_name".into(), json!(name));
                }
                if let Some(id) = project_id {
                    body.insert("project_id".into(), json!(id));
                }
                body.insert("slug".into(), json!(slug));
            }
            Target::Global {
                name,
                function_type,
            } => {
                body.insert("global_function".into(), json!(name));
                if let Some(t) = function_type {
                    body.insert("function_type".into(), json!(t));
                }
            }
            Target::PromptSession {
                session_id,
                function_id,
            } => {
                body.insert("prompt_session_id".into(), json!(session_id));
                body.insert("prompt_session_function_id".into(), json!(function_id));
            }
        }
        if let Some(version) = self.version {
            body.insert("version".into(), json!(version));
        }
        body.insert("input".into(), self.input);
        if let Some(messages) = self.messages {
            body.insert("messages".into(), messages);
        }
        body.insert("metadata".into(), self.metadata.unwrap_or(Value::Null));
        body.insert("tags".into(), json!(self.tags));
        let parent = match self.parent {
            Some(Parent::Slug(slug)) => slug,
            Some(Parent::Span(span)) => span.export(),
            Some(Parent::Remote(remote)) => remote.export().unwrap_or_else(|| {
                tracing::warn!(
                    "braintrust: the remote parent names no Braintrust object; invoking without a parent"
                );
                String::new()
            }),
            None => {
                let current = braintrust_core::context::current_span();
                if current.is_noop() {
                    braintrust_core::context::current_root_export().unwrap_or_default()
                } else {
                    current.export()
                }
            }
        };
        body.insert("parent".into(), json!(parent));
        body.insert("stream".into(), json!(stream));
        if let Some(mode) = self.mode {
            body.insert("mode".into(), json!(mode.as_str()));
        }
        if let Some(strict) = self.strict {
            body.insert("strict".into(), json!(strict));
        }
        let mut headers = Vec::new();
        if let Some(project_id) = self.project_id_header {
            headers.push(("x-bt-project-id", project_id));
        }
        if let Some(org) = self.org_name {
            headers.push(("x-bt-org-name", org));
        }
        let client = match self.client {
            Some(client) => client,
            None => ApiClient::shared()?,
        };
        Ok((Value::Object(body), headers, client))
    }
}

fn header_refs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Runs a function and returns its output JSON as is.
///
/// ```
/// use braintrust_functions::{Invoke, invoke};
/// # use braintrust_transport::api::ApiClient;
/// # let server = braintrust_local::LocalServer::builder()
/// #     .function("shout", |call| Ok(serde_json::json!(call.input.as_str().unwrap_or("").to_uppercase())))
/// #     .start()?;
/// # let client = ApiClient::new(server.login_options())?;
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let output = invoke(
///     Invoke::slug("docs", "shout").input(serde_json::json!("hello")).client(client),
/// )
/// .await?;
/// assert_eq!(output, "HELLO");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn invoke(args: Invoke) -> Result<Value, InvokeError> {
    let (body, headers, client) = args.prepare(false)?;
    Ok(client
        .post_json(
            Host::Proxy,
            "/function/invoke",
            &body,
            &header_refs(&headers),
        )
        .await?)
}

/// Runs a function and streams its output as [`InvokeChunk`]s (server-sent events).
pub async fn invoke_stream(args: Invoke) -> Result<InvokeStream, InvokeError> {
    let (body, headers, client) = args.prepare(true)?;
    let response = client
        .post_streaming(
            Host::Proxy,
            "/function/invoke",
            &body,
            &header_refs(&headers),
        )
        .await?;
    Ok(InvokeStream::new(response.body))
}

/// One piece of a streamed function output.
#[derive(Debug, Clone, PartialEq)]
pub enum InvokeChunk {
    /// Text to append to the output.
    TextDelta(String),
    /// A fragment of the output's JSON text.
    JsonDelta(String),
    /// Reasoning output (not part of the final value).
    ReasoningDelta(Value),
    /// Progress of a nested function call: `{id, object_type, name, format, output_type,
    /// event, data}`.
    Progress(Value),
    /// A line the function printed.
    Console {
        /// `stdout` or `stderr`.
        stream: String,
        /// The text.
        message: String,
    },
    /// The function failed with this message.
    Error(String),
    /// The output begins.
    Start,
    /// The output is complete.
    Done,
    /// An event type this SDK does not know (kept for forward compatibility).
    Unknown {
        /// The event type.
        event: String,
        /// Its data as sent.
        data: String,
    },
}

impl InvokeChunk {
    fn from_event(event: SseEvent) -> Result<InvokeChunk, InvokeError> {
        let json = |data: &str| {
            serde_json::from_str::<Value>(data).map_err(|e| {
                InvokeError::Protocol(format!("`{}` data is not JSON: {e}", event.event))
            })
        };
        Ok(match event.event.as_str() {
            "text_delta" => match json(&event.data)? {
                Value::String(text) => InvokeChunk::TextDelta(text),
                other => {
                    return Err(InvokeError::Protocol(format!(
                        "`text_delta` data must be a JSON string, got {other}"
                    )));
                }
            },
            "json_delta" => InvokeChunk::JsonDelta(event.data),
            "reasoning_delta" => InvokeChunk::ReasoningDelta(json(&event.data)?),
            "progress" => InvokeChunk::Progress(json(&event.data)?),
            "console" => {
                let value = json(&event.data)?;
                let field = |k: &str| {
                    value
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                InvokeChunk::Console {
                    stream: field("stream"),
                    message: field("message"),
                }
            }
            "error" => InvokeChunk::Error(match serde_json::from_str::<Value>(&event.data) {
                Ok(Value::String(message)) => message,
                Ok(other) => other.to_string(),
                Err(_) => event.data,
            }),
            "start" => InvokeChunk::Start,
            "done" => InvokeChunk::Done,
            _ => InvokeChunk::Unknown {
                event: event.event,
                data: event.data,
            },
        })
    }
}

/// The streamed output of [`invoke_stream`]: a `Stream` of [`InvokeChunk`]s. Read it chunk by
/// chunk, or call [`InvokeStream::final_value`] (also after reading some chunks) for the whole
/// output.
pub struct InvokeStream {
    body: BodyStream,
    parser: SseParser,
    ready: VecDeque<Result<InvokeChunk, InvokeError>>,
    ended: bool,
    text: Option<String>,
    json: Option<String>,
    error: Option<String>,
}

impl std::fmt::Debug for InvokeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl InvokeStream {
    fn new(body: BodyStream) -> InvokeStream {
        InvokeStream {
            body,
            parser: SseParser::default(),
            ready: VecDeque::new(),
            ended: false,
            text: None,
            json: None,
            error: None,
        }
    }

    fn take_events(&mut self) {
        while let Some(event) = self.parser.next_event() {
            let chunk = InvokeChunk::from_event(event);
            if let Ok(chunk) = &chunk {
                match chunk {
                    InvokeChunk::TextDelta(t) => self.text.get_or_insert_default().push_str(t),
                    InvokeChunk::JsonDelta(j) => self.json.get_or_insert_default().push_str(j),
                    InvokeChunk::Error(message) => {
                        self.error.get_or_insert_with(|| message.clone());
                    }
                    _ => {}
                }
            }
            self.ready.push_back(chunk);
        }
    }

    /// Reads the rest of the stream and assembles the output: the concatenated `json_delta`s
    /// parsed as JSON if there were any, else the concatenated text, else `null`. An `error`
    /// event makes it [`InvokeError::Function`].
    pub async fn final_value(mut self) -> Result<Value, InvokeError> {
        use futures_util::StreamExt;
        while let Some(chunk) = self.next().await {
            chunk?;
        }
        if let Some(message) = self.error {
            return Err(InvokeError::Function(message));
        }
        if let Some(json) = self.json {
            return serde_json::from_str(&json).map_err(|e| {
                InvokeError::Protocol(format!("the streamed JSON output is invalid: {e}"))
            });
        }
        Ok(self.text.map_or(Value::Null, Value::String))
    }
}

impl Stream for InvokeStream {
    type Item = Result<InvokeChunk, InvokeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(chunk) = this.ready.pop_front() {
                return Poll::Ready(Some(chunk));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => {
                    this.parser.feed(&bytes);
                    this.take_events();
                }
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(InvokeError::Api(e.into()))));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.parser.finish();
                    this.take_events();
                }
            }
        }
    }
}
