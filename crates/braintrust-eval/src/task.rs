//! Tasks (the code under evaluation) and the hooks they receive: metadata and tags to change,
//! the expected value, the task span, the trial index, parameters, a cancellation token, and
//! progress reporting.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use braintrust_core::span::Span;
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::score::{BoxError, BoxFuture};

/// What a task gets besides its input. Cheap to clone (clones share the case's state), so
/// async tasks can move it into their future.
#[derive(Clone, Debug)]
pub struct EvalHooks {
    inner: Arc<HooksInner>,
}

struct HooksInner {
    metadata: Mutex<Map<String, Value>>,
    tags: Mutex<Vec<String>>,
    expected: Option<Value>,
    span: Span,
    trial_index: usize,
    parameters: Arc<Map<String, Value>>,
    cancel: CancellationToken,
    progress: Option<ProgressSink>,
    eval_name: Arc<str>,
    origin: Option<Value>,
}

/// Where progress events go (the eval's `stream` option).
pub type ProgressSink = Arc<dyn Fn(ProgressReport) + Send + Sync>;

/// Kinds of progress events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressKind {
    /// Reasoning text.
    ReasoningDelta,
    /// Output text.
    TextDelta,
    /// A JSON fragment.
    JsonDelta,
    /// An error.
    Error,
    /// Console output.
    Console,
    /// The task started.
    Start,
    /// The task finished.
    Done,
    /// Generic progress.
    Progress,
}

/// A progress event reported by a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressEvent {
    /// `code` or `llm`.
    pub format: String,
    /// `completion`, `score`, …
    pub output_type: String,
    /// What happened.
    pub event: ProgressKind,
    /// The payload.
    pub data: String,
}

/// A progress event as the `stream` option receives it: enriched with the case's root span
/// id, the eval name and the origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressReport {
    /// The case's root span id.
    pub id: String,
    /// The eval's name.
    pub name: String,
    /// Always `task`.
    pub object_type: &'static str,
    /// The case's origin, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Value>,
    /// The event.
    #[serde(flatten)]
    pub event: ProgressEvent,
}

/// Everything the runner knows about a trial when it builds its hooks.
pub(crate) struct HooksInit {
    pub(crate) metadata: Map<String, Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) expected: Option<Value>,
    pub(crate) span: Span,
    pub(crate) trial_index: usize,
    pub(crate) parameters: Arc<Map<String, Value>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) progress: Option<ProgressSink>,
    pub(crate) eval_name: Arc<str>,
    pub(crate) origin: Option<Value>,
}

impl EvalHooks {
    pub(crate) fn new(init: HooksInit) -> EvalHooks {
        EvalHooks {
            inner: Arc::new(HooksInner {
                metadata: Mutex::new(init.metadata),
                tags: Mutex::new(init.tags),
                expected: init.expected,
                span: init.span,
                trial_index: init.trial_index,
                parameters: init.parameters,
                cancel: init.cancel,
                progress: init.progress,
                eval_name: init.eval_name,
                origin: init.origin,
            }),
        }
    }

    /// Hooks for calling a task outside an eval (tests of the task itself): no span, trial 0.
    pub fn detached() -> EvalHooks {
        EvalHooks::new(HooksInit {
            metadata: Map::new(),
            tags: Vec::new(),
            expected: None,
            span: Span::noop(),
            trial_index: 0,
            parameters: Arc::default(),
            cancel: CancellationToken::new(),
            progress: None,
            eval_name: Arc::from(""),
            origin: None,
        })
    }

    /// The case metadata as it is now.
    pub fn metadata(&self) -> Map<String, Value> {
        lock(&self.inner.metadata).clone()
    }

    /// Sets one metadata key (logged on the root span and given to scorers).
    pub fn set_metadata(&self, key: impl Into<String>, value: Value) {
        lock(&self.inner.metadata).insert(key.into(), value);
    }

    /// Changes the metadata in place.
    pub fn update_metadata<R>(&self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        f(&mut lock(&self.inner.metadata))
    }

    /// The case tags as they are now.
    pub fn tags(&self) -> Vec<String> {
        lock(&self.inner.tags).clone()
    }

    /// Adds a tag (if not present).
    pub fn add_tag(&self, tag: impl Into<String>) {
        let tag = tag.into();
        let mut tags = lock(&self.inner.tags);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    /// Replaces the tags.
    pub fn set_tags<S: Into<String>>(&self, tags: impl IntoIterator<Item = S>) {
        *lock(&self.inner.tags) = tags.into_iter().map(Into::into).collect();
    }

    /// The case's expected value, as JSON.
    pub fn expected(&self) -> Option<&Value> {
        self.inner.expected.as_ref()
    }

    /// The task span: spans started inside the task nest under it, and the task may log to
    /// it.
    pub fn span(&self) -> &Span {
        &self.inner.span
    }

    /// The trial number, from 0.
    pub fn trial_index(&self) -> usize {
        self.inner.trial_index
    }

    /// The eval's parameters (declared defaults merged with overrides); empty when none.
    pub fn parameters(&self) -> &Map<String, Value> {
        &self.inner.parameters
    }

    /// Cancelled when the run times out or is cancelled, or the case times out: long tasks
    /// should check it (or `select!` on [`CancellationToken::cancelled`]).
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    /// Whether the case should stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Sends a progress event to the eval's `stream` option (nothing happens without one).
    pub fn report_progress(&self, event: ProgressEvent) {
        if let Some(sink) = &self.inner.progress {
            let root = self.inner.span.root_span_id().to_owned();
            sink(ProgressReport {
                id: root,
                name: self.inner.eval_name.to_string(),
                object_type: "task",
                origin: self.inner.origin.clone(),
                event,
            });
        }
    }

    pub(crate) fn take_state(&self) -> (Map<String, Value>, Vec<String>) {
        (
            std::mem::take(&mut *lock(&self.inner.metadata)),
            std::mem::take(&mut *lock(&self.inner.tags)),
        )
    }
}

impl std::fmt::Debug for HooksInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalHooks")
            .field("trial_index", &self.trial_index)
            .field("span", &self.span)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The code under evaluation: turns an input into an output. Built from closures by
/// [`crate::Eval::task`] and friends; implement it to evaluate your own types.
pub trait Task<I, O>: Send + Sync {
    /// Runs the task on one input.
    fn run<'a>(&'a self, input: &'a I, hooks: &'a EvalHooks) -> BoxFuture<'a, Result<O, BoxError>>;
}

/// A panic's message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// The error a panicking task or scorer is recorded with.
#[derive(Debug, thiserror::Error)]
#[error("panicked: {0}")]
pub struct Panicked(pub String);

pub(crate) struct SyncTask<F>(pub(crate) F);

impl<I, O, F, Err> Task<I, O> for SyncTask<F>
where
    F: Fn(&I, &EvalHooks) -> Result<O, Err> + Send + Sync,
    Err: Into<BoxError>,
    I: Sync,
    O: Send + 'static,
{
    fn run<'a>(&'a self, input: &'a I, hooks: &'a EvalHooks) -> BoxFuture<'a, Result<O, BoxError>> {
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| (self.0)(input, hooks))) {
            Ok(r) => r.map_err(Into::into),
            Err(payload) => Err(Box::new(Panicked(panic_message(&*payload))) as BoxError),
        };
        Box::pin(std::future::ready(result))
    }
}

pub(crate) struct AsyncTask<F>(pub(crate) F);

impl<I, O, F, Fut, Err> Task<I, O> for AsyncTask<F>
where
    F: Fn(I, EvalHooks) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, Err>> + Send + 'static,
    Err: Into<BoxError>,
    I: Clone + Sync,
    O: Send + 'static,
{
    fn run<'a>(&'a self, input: &'a I, hooks: &'a EvalHooks) -> BoxFuture<'a, Result<O, BoxError>> {
        let fut =
            std::panic::catch_unwind(AssertUnwindSafe(|| (self.0)(input.clone(), hooks.clone())));
        Box::pin(async move {
            let fut = match fut {
                Ok(f) => f,
                Err(payload) => {
                    return Err(Box::new(Panicked(panic_message(&*payload))) as BoxError);
                }
            };
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(r) => r.map_err(Into::into),
                Err(payload) => Err(Box::new(Panicked(panic_message(&*payload))) as BoxError),
            }
        })
    }
}
