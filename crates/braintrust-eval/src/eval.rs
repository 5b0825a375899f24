//! The eval runner: [`Eval`] builds an evaluator (data, task, scorers, options) and
//! [`Eval::run`] runs it: one experiment per run (or none, locally), cases pulled from the data
//! as room frees up under `max_concurrency`, each (case, trial) traced as the span tree of the
//! reference (`eval` root, `task`, one `score` span per scorer), then a summary.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use braintrust_core::context::SpanFutureExt;
use braintrust_core::event::{Event, SpanAttributes, SpanType};
use braintrust_core::span::{Span, StartSpan};
use braintrust_transport::experiment::{
    Experiment, ExperimentOptions, ReadonlyExperiment, SummarizeOptions, init_experiment,
};
use braintrust_transport::git::{GitMetadataSettings, RepoInfo};
use braintrust_transport::logger::LoggerOptions;
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::case::{CaseStream, Data, DataError, DataSource, EvalCase};
use crate::report::{ConsoleReporter, Reporter};
use crate::score::{
    AsyncFnScorer, BoxError, ClassifierFn, FnScorer, IntoClassifications, IntoScores,
    OwnedScorerArgs, Score, ScoreOutput, Scorer, ScorerArgs, error_chain, to_value, validate_score,
};
use crate::summary::{
    CaseError, EvalResult, EvalResultWithSummary, EvalSummary, RunOutcome, local_stats,
    merge_server,
};
use crate::task::{
    AsyncTask, EvalHooks, HooksInit, Panicked, ProgressSink, SyncTask, Task, panic_message,
};

/// The default bound on cases in flight.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// No task was given.
    #[error("an eval needs a task: call .task(…)")]
    MissingTask,
    /// No data was given.
    #[error("an eval needs data: call .data(…)")]
    MissingData,
    /// Neither scorers nor classifiers were given.
    #[error("At least one of `scores` or `classifiers` must be provided.")]
    NoScorers,
    /// An option is invalid.
    #[error("invalid eval option: {0}")]
    InvalidOption(String),
    /// The experiment could not be created.
    #[error(transparent)]
    Experiment(#[from] braintrust_transport::experiment::ExperimentError),
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The local backend could not start.
    #[error("cannot start the local backend: {0}")]
    Local(String),
    /// The runtime could not be created.
    #[error("cannot run the eval: {0}")]
    Runtime(String),
}

/// What an error-score handler sees: the case's root span, its input (JSON), the task error
/// (if the task failed) and the scorers that produced no score.
#[derive(Debug)]
pub struct ErrorScoreContext<'a> {
    /// The case's root span.
    pub span: &'a Span,
    /// The case's input as JSON.
    pub input: &'a Value,
    /// The task's error, when the task failed.
    pub error: Option<&'a CaseError>,
    /// Scorers without a score (all of them when the task failed).
    pub unhandled_scorers: &'a [String],
}

/// A handler filling in scores for failed rows (see [`default_error_score_handler`]).
pub type ErrorScoreHandler =
    Arc<dyn Fn(&ErrorScoreContext<'_>) -> Vec<(String, f64)> + Send + Sync>;

/// The stock error-score handler: 0 for every scorer that produced no score.
pub fn default_error_score_handler(context: &ErrorScoreContext<'_>) -> Vec<(String, f64)> {
    context
        .unhandled_scorers
        .iter()
        .map(|name| (name.clone(), 0.0))
        .collect()
}

/// A classifier with its name.
type NamedClassifier<I, O, E> = (String, Arc<ClassifierFn<I, O, E>>);

/// The `on_start` callback.
type OnStart = Box<dyn FnOnce(&EvalSummary) + Send>;

/// One (case, trial) to run: the case's position in the data, the case, the trial.
type TrialItem<I, E> = Result<(usize, Arc<EvalCase<I, E>>, usize), DataError>;

/// An evaluator: data, a task, scorers and options. Build it, then [`run`](Eval::run) it.
///
/// ```
/// use braintrust_eval::{Eval, EvalCase, scorers::ExactMatch};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let result = Eval::<String, String, String>::new("greeter")
///     .data(vec![
///         EvalCase::new("Ada".to_string()).expected("Hi Ada".to_string()),
///         EvalCase::new("Bob".to_string()).expected("Hi Bob".to_string()),
///     ])
///     .task(|name, _hooks| format!("Hi {name}"))
///     .add_scorer(ExactMatch::new())
///     .scorer("short", |args| args.output.len() < 10)
///     .no_send_logs(true)
///     .quiet()
///     .run()
///     .await?;
/// assert_eq!(result.summary.score("ExactMatch").unwrap().mean, 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Eval<I, O, E = Value> {
    name: String,
    data: Option<Data<I, E>>,
    task: Option<Arc<dyn Task<I, O>>>,
    scorers: Vec<Arc<dyn Scorer<I, O, E>>>,
    classifiers: Vec<NamedClassifier<I, O, E>>,
    options: EvalOptions,
    error_score_handler: Option<ErrorScoreHandler>,
    on_start: Option<OnStart>,
    progress: Option<ProgressSink>,
    reporter: Option<Arc<dyn Reporter>>,
    on_trial_done: Option<TrialDone>,
}

/// Called after each finished trial with how many are done.
type TrialDone = Arc<dyn Fn(usize) + Send + Sync>;

impl<I, O, E> std::fmt::Debug for Eval<I, O, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eval")
            .field("name", &self.name)
            .field("scorers", &self.scorers.len())
            .field("classifiers", &self.classifiers.len())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct EvalOptions {
    experiment_name: Option<String>,
    description: Option<String>,
    trial_count: usize,
    metadata: Option<Value>,
    tags: Vec<String>,
    is_public: bool,
    update: bool,
    timeout: Option<Duration>,
    case_timeout: Option<Duration>,
    cancel: Option<CancellationToken>,
    max_concurrency: usize,
    project_id: Option<String>,
    base_experiment_name: Option<String>,
    base_experiment_id: Option<String>,
    git_metadata_settings: Option<GitMetadataSettings>,
    repo_info: Option<RepoInfo>,
    summarize_scores: bool,
    no_send_logs: Option<bool>,
    parameters: Map<String, Value>,
    parent: Option<String>,
    connection: Option<LoggerOptions>,
    local_store: Option<PathBuf>,
}

impl<I, O, E> Eval<I, O, E>
where
    I: Serialize + Send + Sync + 'static,
    O: Serialize + Send + Sync + 'static,
    E: Serialize + Send + Sync + 'static,
{
    /// An evaluator called `name` (also its project's name, unless a project id is given).
    pub fn new(name: impl Into<String>) -> Eval<I, O, E> {
        Eval {
            name: name.into(),
            data: None,
            task: None,
            scorers: Vec::new(),
            classifiers: Vec::new(),
            options: EvalOptions {
                experiment_name: None,
                description: None,
                trial_count: 1,
                metadata: None,
                tags: Vec::new(),
                is_public: false,
                update: false,
                timeout: None,
                case_timeout: None,
                cancel: None,
                max_concurrency: DEFAULT_MAX_CONCURRENCY,
                project_id: None,
                base_experiment_name: None,
                base_experiment_id: None,
                git_metadata_settings: None,
                repo_info: None,
                summarize_scores: true,
                no_send_logs: None,
                parameters: Map::new(),
                parent: None,
                connection: None,
                local_store: None,
            },
            error_score_handler: None,
            on_start: None,
            progress: None,
            reporter: Some(Arc::new(ConsoleReporter::default())),
            on_trial_done: None,
        }
    }

    /// The eval's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cases: a `Vec` of cases (or of inputs), or any [`Data`] source.
    pub fn data(mut self, data: impl Into<Data<I, E>>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// A synchronous task that cannot fail.
    pub fn task<F>(mut self, task: F) -> Self
    where
        F: Fn(&I, &EvalHooks) -> O + Send + Sync + 'static,
    {
        self.task = Some(Arc::new(SyncTask(move |i: &I, h: &EvalHooks| {
            Ok::<O, std::convert::Infallible>(task(i, h))
        })));
        self
    }

    /// A synchronous task returning a `Result` (the error is recorded on the row).
    pub fn try_task<F, Err>(mut self, task: F) -> Self
    where
        F: Fn(&I, &EvalHooks) -> Result<O, Err> + Send + Sync + 'static,
        Err: Into<BoxError> + 'static,
    {
        self.task = Some(Arc::new(SyncTask(task)));
        self
    }

    /// An async task that cannot fail (it gets a clone of the input and the hooks).
    pub fn task_async<F, Fut>(mut self, task: F) -> Self
    where
        I: Clone,
        F: Fn(I, EvalHooks) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
    {
        self.task = Some(Arc::new(AsyncTask(move |i: I, h: EvalHooks| {
            task(i, h).map(Ok::<O, std::convert::Infallible>)
        })));
        self
    }

    /// An async task returning a `Result`.
    pub fn try_task_async<F, Fut, Err>(mut self, task: F) -> Self
    where
        I: Clone,
        F: Fn(I, EvalHooks) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, Err>> + Send + 'static,
        Err: Into<BoxError> + 'static,
    {
        self.task = Some(Arc::new(AsyncTask(task)));
        self
    }

    /// Any [`Task`] implementation (a Braintrust [`braintrust_functions::Function`], your
    /// own type).
    pub fn task_impl(mut self, task: impl Task<I, O> + 'static) -> Self {
        self.task = Some(Arc::new(task));
        self
    }

    /// A named scorer from a closure returning a number, a bool, an `Option`, a [`Score`],
    /// a `Vec<Score>` or a `Result` of these.
    pub fn scorer<F, R>(mut self, name: impl Into<String>, scorer: F) -> Self
    where
        F: Fn(ScorerArgs<'_, I, O, E>) -> R + Send + Sync + 'static,
        R: IntoScores + 'static,
    {
        self.scorers.push(Arc::new(FnScorer {
            name: name.into(),
            f: scorer,
        }));
        self
    }

    /// A named scorer from an async closure (it gets owned copies of the arguments).
    pub fn scorer_async<F, Fut, R>(mut self, name: impl Into<String>, scorer: F) -> Self
    where
        I: Clone,
        O: Clone,
        E: Clone,
        F: Fn(OwnedScorerArgs<I, O, E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoScores + 'static,
    {
        self.scorers.push(Arc::new(AsyncFnScorer {
            name: name.into(),
            f: scorer,
        }));
        self
    }

    /// A scorer implementing [`Scorer`] (the built-in scorers, Braintrust functions).
    pub fn add_scorer(mut self, scorer: impl Scorer<I, O, E> + 'static) -> Self {
        self.scorers.push(Arc::new(scorer));
        self
    }

    /// A named classifier: returns a [`Classification`](crate::Classification), several, or
    /// none.
    pub fn classifier<F, R>(mut self, name: impl Into<String>, classifier: F) -> Self
    where
        F: Fn(ScorerArgs<'_, I, O, E>) -> R + Send + Sync + 'static,
        R: IntoClassifications + 'static,
    {
        let f: Arc<ClassifierFn<I, O, E>> =
            Arc::new(move |args| classifier(args).into_classifications());
        self.classifiers.push((name.into(), f));
        self
    }

    /// The experiment's name (the server makes it unique unless [`update`](Self::update)).
    pub fn experiment_name(mut self, name: impl Into<String>) -> Self {
        self.options.experiment_name = Some(name.into());
        self
    }

    /// The experiment's description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.options.description = Some(description.into());
        self
    }

    /// Runs every case `n` times (a case's own trial count wins).
    pub fn trial_count(mut self, n: usize) -> Self {
        self.options.trial_count = n;
        self
    }

    /// Experiment-level metadata.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.options.metadata = Some(metadata);
        self
    }

    /// Experiment-level tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.options.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Makes the experiment public.
    pub fn is_public(mut self, public: bool) -> Self {
        self.options.is_public = public;
        self
    }

    /// Appends to the existing experiment of that name.
    pub fn update(mut self, update: bool) -> Self {
        self.options.update = update;
        self
    }

    /// Stops the whole run after `timeout`: unfinished cases are recorded as cancelled and
    /// the partial results are summarized.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Stops a case (task and scorers) after `timeout`; it is recorded as timed out.
    pub fn case_timeout(mut self, timeout: Duration) -> Self {
        self.options.case_timeout = Some(timeout);
        self
    }

    /// Cancelling `token` stops the run (partial results are kept).
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.options.cancel = Some(token);
        self
    }

    /// At most `n` cases (task and scorers) in flight (default 16; at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.options.max_concurrency = n.max(1);
        self
    }

    /// Uses this project id instead of resolving the eval's name.
    pub fn project_id(mut self, id: impl Into<String>) -> Self {
        self.options.project_id = Some(id.into());
        self
    }

    /// The comparison baseline, by name.
    pub fn base_experiment(mut self, name: impl Into<String>) -> Self {
        self.options.base_experiment_name = Some(name.into());
        self
    }

    /// The comparison baseline, by id (wins over the name).
    pub fn base_experiment_id(mut self, id: impl Into<String>) -> Self {
        self.options.base_experiment_id = Some(id.into());
        self
    }

    /// Which git fields to record on the experiment.
    pub fn git_metadata_settings(mut self, settings: GitMetadataSettings) -> Self {
        self.options.git_metadata_settings = Some(settings);
        self
    }

    /// Explicit git information.
    pub fn repo_info(mut self, info: RepoInfo) -> Self {
        self.options.repo_info = Some(info);
        self
    }

    /// Fills in scores of failed rows (see [`default_error_score_handler`]).
    pub fn error_score_handler(
        mut self,
        handler: impl Fn(&ErrorScoreContext<'_>) -> Vec<(String, f64)> + Send + Sync + 'static,
    ) -> Self {
        self.error_score_handler = Some(Arc::new(handler));
        self
    }

    /// Whether to ask the server for a summary (default `true`).
    pub fn summarize_scores(mut self, summarize: bool) -> Self {
        self.options.summarize_scores = summarize;
        self
    }

    /// Runs without logging anything (no login, no experiment; local summary). Defaults to
    /// `BT_EVAL_NO_SEND_LOGS` / `BT_EVAL_LOCAL`.
    pub fn no_send_logs(mut self, no_send_logs: bool) -> Self {
        self.options.no_send_logs = Some(no_send_logs);
        self
    }

    /// Parameter values the task sees in [`EvalHooks::parameters`].
    pub fn parameters(mut self, parameters: Value) -> Self {
        if let Value::Object(map) = parameters {
            self.options.parameters = map;
        }
        self
    }

    /// Logs every case under this parent (an export slug) instead of creating an experiment.
    pub fn parent(mut self, parent: impl Into<String>) -> Self {
        self.options.parent = Some(parent.into());
        self
    }

    /// Credentials and delivery settings for the experiment (else the environment; without
    /// an API key anywhere, the local backend).
    pub fn connection(mut self, connection: LoggerOptions) -> Self {
        self.options.connection = Some(connection);
        self
    }

    /// The database file of the local backend (else `BRAINTRUST_LOCAL_STORE`, else
    /// `target/braintrust-local/evals.db`).
    pub fn local_store(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.local_store = Some(path.into());
        self
    }

    /// Called once the experiment exists, with the summary's names and links.
    pub fn on_start(mut self, f: impl FnOnce(&EvalSummary) + Send + 'static) -> Self {
        self.on_start = Some(Box::new(f));
        self
    }

    /// Receives the progress events tasks report through [`EvalHooks::report_progress`].
    pub fn stream(
        mut self,
        sink: impl Fn(crate::task::ProgressReport) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(sink));
        self
    }

    /// How the run is reported (default: [`ConsoleReporter`]).
    pub fn reporter(mut self, reporter: impl Reporter + 'static) -> Self {
        self.reporter = Some(Arc::new(reporter));
        self
    }

    /// Calls `done` after each finished trial (case × trial index) with how many have finished
    /// so far, on the runner's task: keep it quick (e.g. advance a progress bar).
    pub fn on_trial_done(mut self, done: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.on_trial_done = Some(Arc::new(done));
        self
    }

    /// Reports nothing.
    pub fn quiet(mut self) -> Self {
        self.reporter = None;
        self
    }

    /// Whether a reporter will print the run.
    pub fn has_reporter(&self) -> bool {
        self.reporter.is_some()
    }

    /// The names of the scorers and classifiers (what the dev server's `/list` shows).
    pub fn scorer_names(&self) -> Vec<String> {
        self.scorers.iter().map(|s| s.name().into_owned()).collect()
    }

    /// Runs the eval on the current tokio runtime (timers are needed for timeouts).
    pub async fn run(self) -> Result<EvalResultWithSummary<I, O, E>, EvalError> {
        run(self).await
    }

    /// Runs the eval to completion from synchronous code: on a fresh current-thread runtime,
    /// or on a helper thread when called inside a runtime.
    pub fn run_blocking(self) -> Result<EvalResultWithSummary<I, O, E>, EvalError> {
        let build = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| EvalError::Runtime(e.to_string()))
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|scope| {
                scope
                    .spawn(move || build()?.block_on(self.run()))
                    .join()
                    .unwrap_or_else(|p| Err(EvalError::Runtime(panic_message(&*p))))
            })
        } else {
            build()?.block_on(self.run())
        }
    }
}

/// Where the cases' spans go.
enum Destination {
    Experiment(Experiment),
    /// Under an exported span, through a logger made from the eval's connection, else
    /// through the current logger.
    Parent(String, Option<braintrust_transport::logger::Logger>),
    Nowhere,
}

/// What every trial shares.
struct Shared<I, O, E> {
    name: Arc<str>,
    task: Arc<dyn Task<I, O>>,
    scorers: Vec<Arc<dyn Scorer<I, O, E>>>,
    scorer_names: Vec<String>,
    classifiers: Vec<NamedClassifier<I, O, E>>,
    destination: Destination,
    parameters: Arc<Map<String, Value>>,
    progress: Option<ProgressSink>,
    case_timeout: Option<Duration>,
    run_token: CancellationToken,
    error_score_handler: Option<ErrorScoreHandler>,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

async fn run<I, O, E>(eval: Eval<I, O, E>) -> Result<EvalResultWithSummary<I, O, E>, EvalError>
where
    I: Serialize + Send + Sync + 'static,
    O: Serialize + Send + Sync + 'static,
    E: Serialize + Send + Sync + 'static,
{
    let Eval {
        name,
        data,
        task,
        scorers,
        classifiers,
        options,
        error_score_handler,
        on_start,
        progress,
        reporter,
        on_trial_done,
    } = eval;
    let task = task.ok_or(EvalError::MissingTask)?;
    let data = data.ok_or(EvalError::MissingData)?;
    if scorers.is_empty() && classifiers.is_empty() {
        return Err(EvalError::NoScorers);
    }
    let no_send_logs = options
        .no_send_logs
        .unwrap_or_else(|| env_flag("BT_EVAL_NO_SEND_LOGS") || env_flag("BT_EVAL_LOCAL"));

    // Data that must be opened before the experiment (datasets are recorded on it).
    let (mut cases, dataset, base_source): (Option<CaseStream<I, E>>, _, _) = match data.source {
        DataSource::Stream(s) => (Some(s), None, None),
        DataSource::Dataset(open) => {
            let source = open();
            (Some(source.cases), Some(source.dataset), None)
        }
        DataSource::BaseExperiment(make) => (None, None, Some(make)),
    };

    let mut summary = EvalSummary {
        eval_name: name.clone(),
        project_name: options.project_id.is_none().then(|| name.clone()),
        project_id: options.project_id.clone(),
        experiment_id: None,
        experiment_name: None,
        project_url: None,
        experiment_url: None,
        comparison_experiment_name: None,
        scores: Vec::new(),
        metrics: Vec::new(),
        summary_skipped: None,
        outcome: RunOutcome::Completed,
        rows: 0,
        failed_rows: 0,
        rows_with_scorer_errors: 0,
        cases_seconds: 0.0,
    };

    let destination = if no_send_logs {
        if base_source.is_some() {
            return Err(DataError::BaseExperimentWithoutLogs.into());
        }
        Destination::Nowhere
    } else if let Some(parent) = &options.parent {
        let logger = match &options.connection {
            Some(c) => Some(
                braintrust_transport::logger::init_logger(c.clone().set_current(false))
                    .map_err(|e| EvalError::InvalidOption(e.to_string()))?,
            ),
            None => None,
        };
        Destination::Parent(parent.clone(), logger)
    } else {
        let connection = match &options.connection {
            Some(c) => c.clone(),
            None => crate::local::default_connection(options.local_store.clone())?,
        };
        let mut experiment_options = match &options.project_id {
            Some(id) => ExperimentOptions::default().project_id(id.clone()),
            None => ExperimentOptions::new(name.clone()),
        }
        .name(
            options
                .experiment_name
                .clone()
                .unwrap_or_else(|| name.clone()),
        )
        .public(options.is_public)
        .update(options.update)
        .tags(options.tags.clone())
        .set_current(false)
        .connection(connection);
        if let Some(d) = &options.description {
            experiment_options = experiment_options.description(d.clone());
        }
        if let Some(m) = &options.metadata {
            experiment_options = experiment_options.metadata(m.clone());
        }
        if let Some(b) = &options.base_experiment_id {
            experiment_options = experiment_options.base_experiment_id(b.clone());
        } else if let Some(b) = &options.base_experiment_name {
            experiment_options = experiment_options.base_experiment(b.clone());
        }
        if let Some(g) = &options.git_metadata_settings {
            experiment_options = experiment_options.git_metadata_settings(g.clone());
        }
        if let Some(r) = &options.repo_info {
            experiment_options = experiment_options.repo_info(r.clone());
        }
        if let Some(dataset) = &dataset {
            let id = dataset
                .resolve_async()
                .await
                .map_err(|e| DataError::Read(e.to_string()))?;
            experiment_options =
                experiment_options.dataset(id, dataset.pinned_version().map(str::to_owned));
        }
        let experiment = init_experiment(experiment_options)?;
        let experiment_id = experiment.resolve_async().await?;
        summary.experiment_id = Some(experiment_id.clone());
        summary.experiment_name = experiment.name();
        summary.project_id = experiment.project_id();
        if let Some(make) = base_source {
            let base = base_experiment(&experiment).await?;
            summary.comparison_experiment_name = Some(base.name().to_owned());
            cases = Some(make(base));
        }
        Destination::Experiment(experiment)
    };
    let mut cases = cases.ok_or(DataError::BaseExperimentWithoutLogs)?;
    if let Some(on_start) = on_start
        && matches!(destination, Destination::Experiment(_))
    {
        on_start(&summary);
    }

    let run_token = options
        .cancel
        .as_ref()
        .map_or_else(CancellationToken::new, CancellationToken::child_token);
    let shared = Arc::new(Shared {
        name: Arc::from(name.as_str()),
        scorer_names: scorers.iter().map(|s| s.name().into_owned()).collect(),
        task,
        scorers,
        classifiers,
        destination,
        parameters: Arc::new(options.parameters.clone()),
        progress,
        case_timeout: options.case_timeout,
        run_token: run_token.clone(),
        error_score_handler,
    });

    // Cases are pulled only as slots free up (bounded intake); results are put back in data
    // order at the end.
    let trial_count = options.trial_count.max(1);
    let trials = futures_util::stream::poll_fn(move |cx| cases.as_mut().poll_next(cx))
        .enumerate()
        .flat_map(move |(index, case)| {
            let items: Vec<TrialItem<I, E>> = match case {
                Err(e) => vec![Err(e)],
                Ok(case) => {
                    let n = case.trial_count.unwrap_or(trial_count);
                    let case = Arc::new(case);
                    (0..n).map(|t| Ok((index, case.clone(), t))).collect()
                }
            };
            futures_util::stream::iter(items)
        })
        .take_until(run_token.clone().cancelled_owned());
    let runner = shared.clone();
    let in_flight = trials.map(move |item| {
        let shared = runner.clone();
        async move {
            match item {
                Ok((index, case, trial)) => {
                    Ok((index, trial, run_trial(&shared, case, trial).await))
                }
                Err(e) => Err(e),
            }
        }
    });
    let in_flight = crate::intake::EagerBuffered::new(in_flight, options.max_concurrency);
    let mut in_flight = std::pin::pin!(in_flight);

    let cases_started = std::time::Instant::now();
    let deadline = options.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut timed_out = false;
    let mut results = Vec::new();
    let mut data_error = None;
    loop {
        tokio::select! {
            item = in_flight.next() => match item {
                Some(Ok(r)) => {
                    results.push(r);
                    if let Some(done) = &on_trial_done {
                        done(results.len());
                    }
                }
                Some(Err(e)) => {
                    data_error.get_or_insert(e);
                    run_token.cancel();
                }
                None => break,
            },
            () = sleep_until(deadline), if deadline.is_some() && !timed_out => {
                timed_out = true;
                run_token.cancel();
            }
        }
    }
    summary.cases_seconds = cases_started.elapsed().as_secs_f64();
    if let Some(e) = data_error {
        return Err(e.into());
    }
    results.sort_by_key(|(index, trial, _)| (*index, *trial));
    let results: Vec<EvalResult<I, O, E>> = results.into_iter().map(|(_, _, r)| r).collect();
    if results.is_empty() {
        eprintln!(
            "Warning: no data rows found for evaluator '{name}'. The experiment will be empty."
        );
    }
    summary.outcome = if timed_out {
        RunOutcome::TimedOut
    } else if run_token.is_cancelled() {
        RunOutcome::Cancelled
    } else {
        RunOutcome::Completed
    };
    summary.rows = results.len() as u64;
    summary.failed_rows = results.iter().filter(|r| r.error.is_some()).count() as u64;
    summary.rows_with_scorer_errors = results
        .iter()
        .filter(|r| !r.scorer_errors.is_empty() || !r.classifier_errors.is_empty())
        .count() as u64;
    summary.scores = local_stats(&results, &shared.scorer_names);

    match &shared.destination {
        Destination::Experiment(experiment) => {
            if let Err(e) = experiment.flush_async().await {
                tracing::warn!("braintrust: the experiment's rows were not all delivered: {e}");
                eprintln!("Warning: the experiment's rows were not all delivered: {e}");
            }
            if options.summarize_scores {
                let summarize = SummarizeOptions {
                    summarize_scores: true,
                    comparison_experiment_id: options.base_experiment_id.clone(),
                };
                match experiment.summarize_async(summarize).await {
                    Ok(server) => {
                        merge_server(&mut summary.scores, &server);
                        summary.metrics = server.metrics.clone();
                        summary.project_name = server.project_name.clone().or(summary.project_name);
                        summary.experiment_name = server.experiment_name.clone();
                        summary.project_url = server.project_url.clone();
                        summary.experiment_url = server.experiment_url.clone();
                        summary.comparison_experiment_name = server.comparison_experiment_name;
                    }
                    Err(e) => {
                        let reason = format!(
                            "Failed to fetch experiment scores and metrics: {e}. View complete results in Braintrust or run experiment.summarize() again."
                        );
                        eprintln!("Warning: {reason}");
                        summary.summary_skipped = Some(reason);
                    }
                }
            } else {
                summary.summary_skipped = Some("Score summarization was disabled".into());
            }
        }
        Destination::Parent(_, logger) => {
            let flushed = match logger {
                Some(logger) => logger.flush_async().await,
                None => braintrust_transport::logger::flush(),
            };
            if let Err(e) = flushed {
                eprintln!("Warning: the eval's rows were not all delivered: {e}");
            }
        }
        Destination::Nowhere => {}
    }
    let result = EvalResultWithSummary { results, summary };
    if let Some(reporter) = reporter {
        let report = crate::report::EvalReport::from_result(&result);
        reporter.report_eval(&report);
    }
    Ok(result)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The base experiment of a new experiment: the one it was registered with, else the
/// server's default (`POST /api/base_experiment/get_id`).
async fn base_experiment(experiment: &Experiment) -> Result<ReadonlyExperiment, EvalError> {
    let api = experiment.api().clone();
    let id = match experiment.base_experiment_id() {
        Some(id) => id,
        None => {
            let current = experiment.id().unwrap_or_default();
            let answer = api
                .post_json(
                    braintrust_transport::api::Host::Api,
                    "/api/base_experiment/get_id",
                    &json!({"id": current}),
                    &[],
                )
                .await
                .map_err(|_| {
                    DataError::Read("BaseExperiment() failed to fetch base experiment".into())
                })?;
            answer
                .get("base_exp_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    DataError::Read("BaseExperiment() failed to fetch base experiment".into())
                })?
                .to_owned()
        }
    };
    ReadonlyExperiment::open_by_id(api, &id)
        .await
        .map_err(|e| DataError::Read(e.to_string()).into())
}

/// The row id of trial `k` of a case with `upsert_id`.
pub(crate) fn trial_row_id(upsert_id: &str, trial: usize) -> String {
    if trial == 0 {
        return upsert_id.to_owned();
    }
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("braintrust:eval:{upsert_id}:trial:{trial}").as_bytes(),
    )
    .hyphenated()
    .to_string()
}

impl<I, O, E> Shared<I, O, E> {
    fn start_root(&self, event: Event) -> Span {
        let options = StartSpan::new()
            .attributes(SpanAttributes::named("eval").with_type(SpanType::Eval))
            .event(event);
        match &self.destination {
            Destination::Experiment(experiment) => experiment.start_span(options.parent("")),
            Destination::Parent(parent, Some(logger)) => {
                logger.start_span(options.parent(parent.clone()))
            }
            Destination::Parent(parent, None) => {
                braintrust_core::context::start_span(options.parent(parent.clone()))
            }
            Destination::Nowhere => Span::noop(),
        }
    }
}

/// Why the cancellable part of a trial stopped early.
enum Interrupted {
    TimedOut,
    Cancelled,
}

impl From<Interrupted> for CaseError {
    fn from(i: Interrupted) -> CaseError {
        match i {
            Interrupted::TimedOut => CaseError::TimedOut,
            Interrupted::Cancelled => CaseError::Cancelled,
        }
    }
}

/// Runs `fut` unless the case is cancelled or reaches its deadline first.
async fn interruptible<T>(
    fut: impl Future<Output = T>,
    token: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> Result<T, Interrupted> {
    // Cancellation is checked first: a task that ends because it saw the token is cancelled.
    tokio::select! {
        biased;
        () = token.cancelled() => Err(Interrupted::Cancelled),
        () = sleep_until(deadline), if deadline.is_some() => Err(Interrupted::TimedOut),
        value = fut => Ok(value),
    }
}

async fn run_trial<I, O, E>(
    shared: &Shared<I, O, E>,
    case: Arc<EvalCase<I, E>>,
    trial: usize,
) -> EvalResult<I, O, E>
where
    I: Serialize + Send + Sync + 'static,
    O: Serialize + Send + Sync + 'static,
    E: Serialize + Send + Sync + 'static,
{
    let origin = case.effective_origin();
    let mut result = EvalResult {
        case: case.clone(),
        trial_index: trial,
        output: None,
        scores: Vec::new(),
        classifications: Map::new(),
        metadata: Map::new(),
        tags: Vec::new(),
        error: None,
        scorer_errors: Vec::new(),
        classifier_errors: Vec::new(),
        origin: origin.clone(),
        id: String::new(),
        root_span_id: String::new(),
    };
    if shared.run_token.is_cancelled() {
        result.metadata = case.metadata.clone();
        result.tags = case.tags.clone();
        result.error = Some(CaseError::Cancelled);
        return result;
    }
    let logging = !matches!(shared.destination, Destination::Nowhere);
    let input_json = if logging {
        to_value(&case.input)
    } else {
        Value::Null
    };
    let expected_json = case.expected.as_ref().map(to_value);
    let root = if logging {
        let mut event = Event::new().input(input_json.clone());
        if let Some(e) = &expected_json {
            event = event.expected(e.clone());
        }
        if !case.tags.is_empty() {
            event = event.tags(case.tags.clone());
        }
        if let Some(o) = &origin {
            event = event.field("origin", o.clone());
        }
        if let Some(u) = &case.upsert_id {
            event = event.field("id", Value::String(trial_row_id(u, trial)));
        }
        shared.start_root(event)
    } else {
        Span::noop()
    };
    result.id = root.id().to_owned();
    result.root_span_id = root.root_span_id().to_owned();
    let token = shared.run_token.child_token();
    let deadline = shared.case_timeout.map(|t| tokio::time::Instant::now() + t);

    // The task, in its span.
    let task_span = root.start_span(
        StartSpan::new()
            .attributes(SpanAttributes::named("task").with_type(SpanType::Task))
            .event(if logging {
                let mut e = Event::new().input(input_json.clone());
                if let Some(x) = &expected_json {
                    e = e.expected(x.clone());
                }
                e
            } else {
                Event::new()
            }),
    );
    let hooks = EvalHooks::new(HooksInit {
        metadata: case.metadata.clone(),
        tags: case.tags.clone(),
        expected: expected_json.clone(),
        span: task_span.clone(),
        trial_index: trial,
        parameters: shared.parameters.clone(),
        cancel: token.clone(),
        progress: shared.progress.clone(),
        eval_name: shared.name.clone(),
        origin: origin.clone(),
    });
    let outcome = interruptible(
        shared
            .task
            .run(&case.input, &hooks)
            .in_span(task_span.clone()),
        &token,
        deadline,
    )
    .await;
    let (metadata, tags) = hooks.take_state();
    result.metadata = metadata;
    result.tags = tags;
    let output = match outcome {
        Ok(Ok(output)) => {
            if logging {
                let _ = task_span.log(Event::new().output(to_value(&output)));
            }
            task_span.end();
            Some(output)
        }
        Ok(Err(error)) => {
            let text = error_chain(&*error);
            let _ = task_span.log(Event::new().error(Value::String(text.clone())));
            task_span.end();
            result.error = Some(CaseError::Task(text));
            None
        }
        Err(interrupted) => {
            token.cancel();
            let error = CaseError::from(interrupted);
            let _ = task_span.log(Event::new().error(Value::String(error.to_string())));
            task_span.end();
            result.error = Some(error);
            None
        }
    };

    // Scorers and classifiers, concurrently, each in its own span.
    if let Some(output) = &output {
        let args = ScorerArgs {
            input: &case.input,
            output,
            expected: case.expected.as_ref(),
            metadata: &result.metadata,
            tags: &result.tags,
            id: case.record_id(),
        };
        let span_input = if logging {
            crate::score::JsonArgs {
                input: input_json.clone(),
                output: to_value(output),
                expected: expected_json.clone(),
                metadata: result.metadata.clone(),
                tags: result.tags.clone(),
                id: case.record_id().map(str::to_owned),
            }
            .to_span_input()
        } else {
            Value::Null
        };
        let scoring = score_case(shared, &root, args, &span_input, logging);
        match interruptible(scoring, &token, deadline).await {
            Ok(scored) => {
                result.scores = scored.scores;
                result.scorer_errors = scored.scorer_errors;
                result.classifications = scored.classifications;
                result.classifier_errors = scored.classifier_errors;
            }
            Err(interrupted) => {
                result.error = Some(interrupted.into());
            }
        }
    }
    result.output = output;

    // Scores for failed rows, from the error-score handler.
    if let Some(handler) = &shared.error_score_handler {
        let unhandled: Vec<String> = if result.error.is_some() {
            shared.scorer_names.clone()
        } else {
            result
                .scorer_errors
                .iter()
                .map(|(n, _)| n.clone())
                .collect()
        };
        if !unhandled.is_empty() {
            let context = ErrorScoreContext {
                span: &root,
                input: &input_json,
                error: result.error.as_ref(),
                unhandled_scorers: &unhandled,
            };
            let filled = handler(&context);
            let mut event = Event::new();
            for (name, value) in filled {
                if !result.scores.iter().any(|(n, _)| *n == name) {
                    event = event.score(name.clone(), Some(value));
                    result.scores.push((name, Some(value)));
                }
            }
            if let Err(e) = root.log(event) {
                tracing::warn!("braintrust: invalid error-handler scores: {e}");
            }
        }
    }

    if logging {
        let mut metadata = result.metadata.clone();
        if !result.scorer_errors.is_empty() {
            metadata.insert("scorer_errors".into(), pairs_to_map(&result.scorer_errors));
        }
        if !result.classifier_errors.is_empty() {
            metadata.insert(
                "classifier_errors".into(),
                pairs_to_map(&result.classifier_errors),
            );
        }
        let mut event = Event::new().metadata(Value::Object(metadata));
        if let Some(output) = &result.output {
            event = event.output(to_value(output));
        }
        if !result.tags.is_empty() {
            event = event.tags(result.tags.clone());
        }
        if !result.classifications.is_empty() {
            event = event.field(
                "classifications",
                Value::Object(result.classifications.clone()),
            );
        }
        if let Some(error) = &result.error {
            event = event.error(Value::String(error.to_string()));
        }
        if let Err(e) = root.log(event) {
            tracing::warn!("braintrust: cannot log the eval row: {e}");
        }
    }
    root.end();
    result
}

fn pairs_to_map(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

#[derive(Default)]
struct Scored {
    scores: Vec<(String, Option<f64>)>,
    scorer_errors: Vec<(String, String)>,
    classifications: Map<String, Value>,
    classifier_errors: Vec<(String, String)>,
}

fn scorer_span(root: &Span, name: &str, span_type: SpanType, input: &Value, logging: bool) -> Span {
    let mut attributes = SpanAttributes::named(name).with_type(span_type);
    attributes.purpose = Some("scorer".into());
    let mut propagated = Map::new();
    propagated.insert("span_attributes".into(), json!({"purpose": "scorer"}));
    let mut options = StartSpan::new()
        .attributes(attributes)
        .propagated_event(propagated);
    if logging {
        options = options.event(Event::new().input(input.clone()));
    }
    root.start_span(options)
}

async fn score_case<I, O, E>(
    shared: &Shared<I, O, E>,
    root: &Span,
    args: ScorerArgs<'_, I, O, E>,
    span_input: &Value,
    logging: bool,
) -> Scored {
    let scorer_runs = shared.scorers.iter().map(|scorer| {
        let name = scorer.name().into_owned();
        let span = scorer_span(root, &name, SpanType::Score, span_input, logging);
        // Synchronous scorers do their work when called: call inside the span, catching
        // panics there as well as in the future.
        let created = span.in_scope(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scorer.score(args)))
        });
        let fut = created.map(|f| AssertUnwindSafeFuture(f).in_span(span.clone()));
        async move {
            let outcome = match fut {
                Err(p) => Err(Box::new(Panicked(panic_message(&*p))) as BoxError),
                Ok(fut) => match fut.await {
                    Ok(r) => r,
                    Err(panic) => Err(Box::new(Panicked(panic)) as BoxError),
                },
            };
            (name, span, outcome)
        }
    });
    let classifier_runs: Vec<_> = shared
        .classifiers
        .iter()
        .map(|(name, f)| {
            let span = scorer_span(root, name, SpanType::Classifier, span_input, logging);
            let outcome = span.in_scope(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(args)))
                    .unwrap_or_else(|p| Err(Box::new(Panicked(panic_message(&*p))) as BoxError))
            });
            (name.clone(), span, outcome)
        })
        .collect();
    let scorer_outcomes = futures_util::future::join_all(scorer_runs).await;
    let mut scored = Scored::default();
    for (name, span, outcome) in scorer_outcomes {
        let checked = outcome.map_err(|e| error_chain(&*e)).and_then(|out| {
            let scores = name_scores(&name, out);
            for s in &scores {
                if let Some(v) = s.score {
                    validate_score(&s.name, v)?;
                }
                if scored.scores.iter().any(|(n, _)| *n == s.name) {
                    return Err(format!("duplicate score name {:?} in one case", s.name));
                }
            }
            Ok(scores)
        });
        match checked {
            Ok(scores) => {
                if logging {
                    let _ = span.log(score_event(&scores));
                }
                scored
                    .scores
                    .extend(scores.into_iter().map(|s| (s.name, s.score)));
            }
            Err(text) => {
                let _ = span.log(Event::new().error(Value::String(text.clone())));
                scored.scorer_errors.push((name, text));
            }
        }
        span.end();
    }
    if !scored.scorer_errors.is_empty() {
        let names: Vec<&str> = scored
            .scorer_errors
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let errors: Vec<&str> = scored
            .scorer_errors
            .iter()
            .map(|(_, e)| e.as_str())
            .collect();
        tracing::warn!(
            "Found exceptions for the following scorers: {} {:?}",
            names.join(", "),
            errors
        );
    }
    for (name, span, outcome) in classifier_runs {
        match outcome.map_err(|e| error_chain(&*e)) {
            Ok(items) => {
                let mut logged = Vec::new();
                for item in items {
                    let group = item.name.clone().unwrap_or_else(|| name.clone());
                    let value = to_value(&item);
                    logged.push(value.clone());
                    match scored.classifications.get_mut(&group) {
                        Some(Value::Array(list)) => list.push(value),
                        _ => {
                            scored
                                .classifications
                                .insert(group, Value::Array(vec![value]));
                        }
                    }
                }
                if logging {
                    let _ = span.log(Event::new().output(Value::Array(logged)));
                }
            }
            Err(text) => {
                let _ = span.log(Event::new().error(Value::String(text.clone())));
                scored.classifier_errors.push((name, text));
            }
        }
        span.end();
    }
    scored
}

/// The scores of one scorer, named (unnamed values take the scorer's name).
fn name_scores(scorer: &str, output: ScoreOutput) -> Vec<Score> {
    match output {
        ScoreOutput::Value(v) => vec![Score::new(scorer, v)],
        ScoreOutput::Scores(scores) => scores,
    }
}

/// The score span's event: output `{"score": x}` (several: `{name: {"score": x}}`), the
/// scores (skipped ones omitted), and the metadata.
fn score_event(scores: &[Score]) -> Event {
    let mut event = Event::new();
    for s in scores {
        if let Some(v) = s.score {
            event = event.score(s.name.clone(), Some(v));
        }
    }
    match scores {
        [single] => {
            event = event.output(json!({"score": single.score}));
            if !single.metadata.is_empty() {
                event = event.metadata(Value::Object(single.metadata.clone()));
            }
        }
        many => {
            let output: Map<String, Value> = many
                .iter()
                .map(|s| (s.name.clone(), json!({"score": s.score})))
                .collect();
            event = event.output(Value::Object(output));
            let metadata: Map<String, Value> = many
                .iter()
                .filter(|s| !s.metadata.is_empty())
                .map(|s| (s.name.clone(), Value::Object(s.metadata.clone())))
                .collect();
            if !metadata.is_empty() {
                event = event.metadata(Value::Object(metadata));
            }
        }
    }
    event
}

/// A future whose panics become an `Err` with the panic message.
struct AssertUnwindSafeFuture<F>(F);

impl<F: Future + Unpin> Future for AssertUnwindSafeFuture<F> {
    type Output = Result<F::Output, String>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::pin::Pin::new(&mut *inner).poll(cx)
        })) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(panic_message(&*p))),
        }
    }
}
