//! Braintrust SDK for Rust: trace what your code does and log it to Braintrust.
//!
//! Start a logger once, then start spans anywhere. Logging calls queue rows and return at once;
//! a background thread (with its own runtime) logs in, registers the project, batches, retries
//! and delivers. With no logger initialised every call is a no-op that sends nothing.
//!
//! ```
//! use braintrust::{Event, LoggerOptions, StartSpan, SpanType};
//! use serde_json::json;
//!
//! # let server = braintrust_local::LocalServer::start()?;
//! // Point the logger at Braintrust (BRAINTRUST_API_KEY), or here at a local server.
//! let logger = braintrust::init_logger(
//!     LoggerOptions::new()
//!         .project("quickstart")
//!         .api_key(server.api_key())
//!         .app_url(server.url()),
//! )?;
//! let root = braintrust::start_span(StartSpan::named("answer"));
//! root.in_scope(|| {
//!     // Spans started while `root` is current nest under it.
//!     let step = braintrust::start_span(StartSpan::named("retrieve").span_type(SpanType::Tool));
//!     step.log(Event::new().output(json!(["doc-1", "doc-2"])))?;
//!     step.end();
//!     Ok::<_, braintrust::event::EventError>(())
//! })?;
//! root.log(Event::new().input(json!("question")).output(json!("answer")))?;
//! root.end();
//! logger.flush()?;
//! assert_eq!(logger.stats().failed, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Spans follow `.await` when their future is wrapped ([`SpanFutureExt::in_span`]); [`spawn`]
//! carries the current span into a tokio task. To continue a trace in another process, pass
//! [`Span::export`] (or W3C headers from [`Span::inject`]) and use it as the parent there.
//!
//! Prompts and functions managed in Braintrust: [`load_prompt`] and [`Prompt::build`] render a
//! prompt into the arguments of an LLM call; [`invoke()`] / [`invoke_stream`] run a function on
//! the server (see [`functions`]).
//!
//! Evals: [`Eval`] runs a task over data with scorers, as an experiment (or, without an API
//! key, against a local store so each run is compared with the previous one); [`eval!`] makes
//! one a `#[test]` with pass/fail gates. Experiments and datasets: [`init_experiment`],
//! [`init_dataset`].
//!
//! Attachments: put an [`Attachment`] (bytes or a file), a [`JsonAttachment`] or an
//! [`ExternalAttachment`] anywhere in a logged value; the row carries a reference and the bytes
//! are uploaded in the background. Fetched rows give [`ReadonlyAttachment`]s back (see
//! [`attachment`]).
//!
//! LLM calls: [`providers`] turns each OpenAI, Anthropic, Gemini or Bedrock call into one
//! `llm` span, through its built-in clients or, for any other client, its span builders.
//!
//! The crates behind this facade can be used on their own: `braintrust-core` (span model),
//! `braintrust-transport` (HTTP, batching, loggers, experiments, datasets),
//! `braintrust-functions` (prompts and functions), `braintrust-eval` (evals),
//! `braintrust-providers` (LLM provider spans),
//! `braintrust-local` (a local server).

#[doc(inline)]
pub use braintrust_core::{
    attachment, context, env_file, event, id, inline_media, mask, merge, object, origin,
    propagation, row, span, span_components,
};
#[doc(inline)]
pub use braintrust_transport::{api, batcher, config, http, logger, login as auth};

/// Prompts and functions: loading, building, invoking (the `braintrust-functions` crate).
pub use braintrust_functions as functions;
pub use braintrust_functions::{
    BuiltPrompt, Function, Invoke, InvokeChunk, InvokeError, InvokeStream, LoadPrompt, Prompt,
    PromptError, init_function, invoke, invoke_stream, load_prompt,
};

pub use braintrust_core::attachment::{
    Attachment, ExternalAttachment, JsonAttachment, ReadonlyAttachment,
};
pub use braintrust_core::context::{SpanFutureExt, current_span};
pub use braintrust_core::event::{Event, EventError, SpanAttributes, SpanType};
pub use braintrust_core::mask::{MaskingFunction, set_masking_function};
pub use braintrust_core::propagation::{HeaderCarrier, RemoteParent, extract_trace_context};
pub use braintrust_core::span::{
    DeferredEvent, Feedback, FlushError, LinkError, Parent, Span, StartSpan,
};
pub use braintrust_transport::logger::{
    InitError, Logger, LoggerOptions, ResolveError, UpdateSpanError, clear_current_logger,
    current_logger, flush, init_logger, permalink, start_span, update_span,
};
pub use braintrust_transport::login::{
    LoginError, LoginOptions, OrgState, login_async, login_blocking as login,
};

#[doc(inline)]
pub use braintrust_core::traced::{traced, traced_async, wrap_traced};
#[doc(inline)]
pub use braintrust_macros::{eval, traced};

/// LLM provider calls as `llm` spans: span builders, built-in clients, [`providers::LlmCallSpan`]
/// (the `braintrust-providers` crate).
pub use braintrust_providers as providers;

/// Evals: the runner, scorers, summaries (the `braintrust-eval` crate).
pub use braintrust_eval as evals;
pub use braintrust_eval::{
    CaseError, Classification, Data, Eval, EvalCase, EvalError, EvalHooks, EvalResult,
    EvalResultWithSummary, EvalSummary, Gates, Score, Scorer, ScorerArgs, scorers,
};
pub use braintrust_transport::dataset::{Dataset, DatasetOptions, DatasetRecord, init_dataset};
pub use braintrust_transport::experiment::{
    Experiment, ExperimentOptions, ExperimentSummary, current_experiment, init_experiment,
};

pub mod traced_guide;

/// Support code for the macros. **Not a stable API**: only generated code may use it, and it
/// changes in any release.
#[doc(hidden)]
pub mod __private {
    pub use braintrust_core::traced::__private::*;

    /// Support for `eval!`.
    pub mod eval {
        pub use braintrust_eval::Gates;
        pub use braintrust_eval::testing::{run_test, run_test_async};
    }
}

/// Spawns a future on the current tokio runtime with the current span carried into the task.
///
/// Panics like `tokio::spawn` when called outside a tokio runtime.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_span())
}
