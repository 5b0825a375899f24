//! Runs cases: each case's requests go through the Braintrust-wrapped built-in client against
//! the replay server, under a parent span named after the case; the logged `llm` spans are read
//! back from an in-process braintrust-local and validated.

use std::path::{Path, PathBuf};

use braintrust_core::context::SpanFutureExt;
use braintrust_core::env_file::EnvLookup;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::StartSpan;
use braintrust_local::LocalServer;
use braintrust_providers::anthropic::AnthropicClient;
use braintrust_providers::bedrock::{AwsCredentials, BedrockClient};
use braintrust_providers::gemini::GeminiClient;
use braintrust_providers::openai::OpenAiClient;
use braintrust_providers::{ClientOptions, LlmStream, ProviderError};
use braintrust_transport::logger::{Logger, LoggerOptions, init_logger};
use serde_json::{Value, json};

use crate::matcher::{Matcher, Mismatch, Predicate};
use crate::replay::{ReplayOptions, ReplayServer, load_mappings};
use crate::spec::{Case, find_cases, load_case};

/// Where the data is and how to serve it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The spec directory (holding `test/llm_span/…`).
    pub spec_dir: PathBuf,
    /// The cassettes directory (holding `<provider>/<case>.mapping.json`).
    pub cassettes_dir: PathBuf,
    /// How streamed bodies are served.
    pub replay: ReplayOptions,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// `<provider>/<case>`.
    pub id: String,
    /// Every mismatch (empty: passed).
    pub errors: Vec<Mismatch>,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The API a case calls.
#[derive(Debug, Clone, PartialEq)]
enum Api {
    Chat,
    Responses,
    Messages,
    Gemini { model: String, stream: bool },
    Converse { stream: bool },
}

fn api_of(case: &Case) -> Result<Api, String> {
    let endpoint = case.endpoint.as_str();
    Ok(match (case.provider.as_str(), endpoint) {
        ("openai", e) if e.ends_with("/chat/completions") => Api::Chat,
        ("openai", e) if e.ends_with("/responses") => Api::Responses,
        ("anthropic", e) if e.ends_with("/messages") => Api::Messages,
        ("google", e) if e.contains("models/") => {
            let rest = &e[e.find("models/").unwrap_or(0) + "models/".len()..];
            let (model, method) = rest.split_once(':').unwrap_or((rest, "generateContent"));
            Api::Gemini {
                model: model.to_owned(),
                stream: method.starts_with("stream"),
            }
        }
        ("bedrock", e) if e.ends_with("/converse-stream") => Api::Converse { stream: true },
        ("bedrock", e) if e.ends_with("/converse") => Api::Converse { stream: false },
        (provider, e) => return Err(format!("unsupported endpoint {e} for provider {provider}")),
    })
}

/// Runs every case under the spec directory.
pub fn run_all(options: &RunOptions) -> Result<Vec<CaseResult>, String> {
    let files = find_cases(&options.spec_dir)?;
    let runner = Runner::new()?;
    Ok(files.iter().map(|f| runner.run_file(f, options)).collect())
}

/// The logging side shared by all cases: a local server and a logger writing to it.
pub struct Runner {
    server: LocalServer,
    logger: Logger,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("server", &self.server.url())
            .finish()
    }
}

impl Runner {
    /// Starts the local server and the logger.
    pub fn new() -> Result<Runner, String> {
        let server = LocalServer::builder()
            .in_memory()
            .start()
            .map_err(|e| e.to_string())?;
        let logger = init_logger(
            LoggerOptions::new()
                .project("llm-span-conformance")
                .api_key(server.api_key())
                .app_url(server.url())
                .api_url(server.url())
                .env(EnvLookup::from_pairs::<&str, &str>([])),
        )
        .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Runner {
            server,
            logger,
            runtime,
        })
    }

    /// Runs one case file.
    pub fn run_file(&self, file: &Path, options: &RunOptions) -> CaseResult {
        let fallback_id = file
            .parent()
            .and_then(Path::file_name)
            .map(|p| {
                format!(
                    "{}/{}",
                    p.to_string_lossy(),
                    file.file_stem().unwrap_or_default().to_string_lossy()
                )
            })
            .unwrap_or_default();
        let fail = |id: String, message: String| CaseResult {
            id,
            errors: vec![Mismatch {
                path: "case".into(),
                message,
            }],
        };
        let case = match load_case(file) {
            Ok(case) => case,
            Err(e) => return fail(fallback_id, e),
        };
        match self.run_case(&case, options) {
            Ok(errors) => CaseResult {
                id: case.id,
                errors,
            },
            Err(e) => fail(case.id, e),
        }
    }

    fn run_case(&self, case: &Case, options: &RunOptions) -> Result<Vec<Mismatch>, String> {
        let api = api_of(case)?;
        let provider_dir = case.id.split('/').next().unwrap_or(&case.provider);
        let mappings = load_mappings(&options.cassettes_dir, provider_dir, &case.name)?;
        if mappings.is_empty() {
            return Err(format!("no cassette for {}", case.id));
        }
        let replay = ReplayServer::start(mappings, options.replay.clone())?;
        let parent = self.logger.start_span(StartSpan::named(case.id.clone()));
        let calls = self
            .runtime
            .block_on(run_requests(case, &api, replay.url()).in_span(parent.clone()));
        parent.end();
        self.logger.flush().map_err(|e| format!("flush: {e}"))?;
        let mut errors = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            if let Err(e) = call {
                errors.push(Mismatch {
                    path: format!("request[{i}]"),
                    message: e.clone(),
                });
            }
        }
        for request in replay.received() {
            if let Err(why) = request.matched {
                errors.push(Mismatch {
                    path: "replay".into(),
                    message: why,
                });
            }
            for (name, value) in &case.headers {
                let sent = request
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str());
                if sent != Some(value.as_str()) {
                    errors.push(Mismatch {
                        path: format!("headers.{name}"),
                        message: format!("expected {value:?} on the request, got {sent:?}"),
                    });
                }
            }
        }
        let spans = self.llm_spans(parent.root_span_id())?;
        if spans.len() < case.expected.len() {
            errors.push(Mismatch {
                path: "spans".into(),
                message: format!(
                    "expected {} llm spans, got {}",
                    case.expected.len(),
                    spans.len()
                ),
            });
        }
        for (i, (expected, actual)) in case.expected.iter().zip(&spans).enumerate() {
            let path = format!("span[{i}]");
            expected.check(&path, Some(actual), &mut errors);
            common_span_checks().check(&path, Some(actual), &mut errors);
        }
        Ok(errors)
    }

    /// The trace's `llm` spans, in creation order.
    fn llm_spans(&self, root_span_id: &str) -> Result<Vec<Value>, String> {
        let project = self
            .logger
            .resolve()
            .map_err(|e| format!("cannot resolve the project: {e}"))?;
        let rows = self
            .server
            .rows(&ObjectIds::project_logs(project))
            .map_err(|e| e.to_string())?;
        let mut spans: Vec<Value> = rows
            .into_iter()
            .filter(|r| r["root_span_id"] == root_span_id)
            .filter(|r| r["span_attributes"]["type"] == "llm")
            .collect();
        spans.sort_by_key(|r| r["span_attributes"]["exec_counter"].as_u64().unwrap_or(0));
        Ok(spans)
    }
}

/// What every expected span also asserts.
fn common_span_checks() -> Matcher {
    let non_empty = || Matcher::Predicate(Predicate::NonEmptyString);
    let count = || Matcher::Predicate(Predicate::NonNegativeNumber);
    Matcher::Object(vec![
        (
            "span_attributes".into(),
            Matcher::Object(vec![("type".into(), Matcher::Equals(json!("llm")))]),
        ),
        (
            "context".into(),
            Matcher::Object(vec![(
                "span_origin".into(),
                Matcher::Object(vec![
                    ("name".into(), non_empty()),
                    ("version".into(), non_empty()),
                    (
                        "instrumentation".into(),
                        Matcher::Object(vec![("name".into(), non_empty())]),
                    ),
                ]),
            )]),
        ),
        (
            "metrics".into(),
            Matcher::Object(vec![
                ("tokens".into(), count()),
                ("prompt_tokens".into(), count()),
                ("completion_tokens".into(), count()),
            ]),
        ),
    ])
}

/// Sends the case's requests in order, carrying the conversation from turn to turn.
async fn run_requests(case: &Case, api: &Api, base: &str) -> Vec<Result<(), String>> {
    let mut history: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    for request in &case.requests {
        let result = run_one(case, api, base, request, &mut history).await;
        results.push(result.map_err(|e| e.to_string()));
    }
    results
}

async fn drain(mut stream: LlmStream) -> Result<LlmStream, ProviderError> {
    while let Some(item) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
    })
    .await
    {
        item?;
    }
    Ok(stream)
}

async fn run_one(
    case: &Case,
    api: &Api,
    base: &str,
    request: &Value,
    history: &mut Vec<Value>,
) -> Result<(), ProviderError> {
    let options = || {
        let mut o = ClientOptions::new().api_key("conformance-key");
        for (k, v) in &case.headers {
            o = o.header(k.clone(), v.clone());
        }
        o
    };
    let streaming = request.get("stream") == Some(&Value::Bool(true));
    match api {
        Api::Chat | Api::Messages => {
            let own = request["messages"].as_array().cloned().unwrap_or_default();
            let mut sent = request.clone();
            sent["messages"] = Value::Array(history.iter().chain(&own).cloned().collect());
            let reply = if *api == Api::Chat {
                let client = OpenAiClient::new(options().base_url(format!("{base}/v1")))?;
                if streaming {
                    let stream = drain(client.chat_completions_stream(&sent).await?).await?;
                    stream.fields().output.map(|o| o[0]["message"].clone())
                } else {
                    let response = client.chat_completions(&sent).await?;
                    Some(response["choices"][0]["message"].clone())
                }
            } else {
                let client = AnthropicClient::new(options().base_url(base))?;
                if streaming {
                    let stream = drain(client.messages_stream(&sent).await?).await?;
                    stream.fields().output
                } else {
                    let response = client.messages(&sent).await?;
                    Some(json!({"role": "assistant", "content": response["content"]}))
                }
            };
            history.extend(own);
            history.extend(reply);
        }
        Api::Responses => {
            let own = match &request["input"] {
                Value::Array(items) => items.clone(),
                Value::String(text) => vec![json!({"role": "user", "content": text})],
                _ => Vec::new(),
            };
            let mut sent = request.clone();
            if !history.is_empty() {
                sent["input"] = Value::Array(history.iter().chain(&own).cloned().collect());
            }
            let client = OpenAiClient::new(options().base_url(format!("{base}/v1")))?;
            let output = if streaming {
                let stream = drain(client.responses_stream(&sent).await?).await?;
                stream.fields().output
            } else {
                client.responses(&sent).await?.get("output").cloned()
            };
            history.extend(own);
            history.extend(
                output
                    .and_then(|o| o.as_array().cloned())
                    .unwrap_or_default(),
            );
        }
        Api::Gemini { model, stream } => {
            let client = GeminiClient::new(options().base_url(base))?;
            if *stream {
                drain(client.stream_generate_content(model, request).await?).await?;
            } else {
                client.generate_content(model, request).await?;
            }
        }
        Api::Converse { stream } => {
            let model_id = request["modelId"].as_str().unwrap_or_default().to_owned();
            let client = BedrockClient::new(
                options().base_url(base),
                Some("us-east-1"),
                Some(AwsCredentials {
                    access_key_id: "AKIDCONFORMANCE".into(),
                    secret_access_key: "conformance-secret".into(),
                    session_token: None,
                }),
            )?;
            if *stream {
                drain(client.converse_stream(&model_id, request).await?).await?;
            } else {
                client.converse(&model_id, request).await?;
            }
        }
    }
    Ok(())
}

/// Prints one line per case and the totals; true when all passed.
pub fn report(results: &[CaseResult]) -> bool {
    let passed = results.iter().filter(|r| r.passed()).count();
    for result in results {
        match result.errors.first() {
            None => println!("PASS {}", result.id),
            Some(first) => println!(
                "FAIL {}: {first}{}",
                result.id,
                if result.errors.len() > 1 {
                    format!(" (+{} more)", result.errors.len() - 1)
                } else {
                    String::new()
                }
            ),
        }
    }
    println!("{passed} passed, {} failed", results.len() - passed);
    passed == results.len()
}
