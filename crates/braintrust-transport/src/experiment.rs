//! Experiments: [`init_experiment`] returns an [`Experiment`] whose spans (type `eval` at the
//! root) go to a new experiment of a project, through its own background sender. As with
//! loggers, creating one performs no network I/O: login, project and experiment registration
//! (with git metadata when the settings ask for it) happen in the background with the first
//! rows, or when [`Experiment::resolve`] is called.
//!
//! ```
//! use braintrust_core::event::Event;
//! use braintrust_transport::experiment::{init_experiment, ExperimentOptions};
//! use serde_json::json;
//! # let server = braintrust_local::LocalServer::start()?;
//! # let connection = braintrust_transport::logger::LoggerOptions::new()
//! #     .api_key(server.api_key()).app_url(server.url()).api_url(server.url());
//!
//! let experiment = init_experiment(
//!     ExperimentOptions::new("my-project")
//!         .name("baseline")
//!         .metadata(json!({"model": "gpt-5-mini"}))
//! #       .connection(connection)
//! )?;
//! experiment.log(
//!     Event::new()
//!         .input(json!("What is 1+1?"))
//!         .output(json!("2"))
//!         .expected(json!("2"))
//!         .score("exact", Some(1.0)),
//! )?;
//! let summary = experiment.summarize(Default::default())?;
//! assert_eq!(summary.scores[0].score, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Mutex};

use braintrust_core::context::{RootKind, RootStarter};
use braintrust_core::event::{Event, EventError, SpanType};
use braintrust_core::id::IdFormat;
use braintrust_core::object::ObjectType;
use braintrust_core::span::{
    Feedback, FlushError, LinkError, ObjectRef, PendingRow, Span, SpanSink, StartSpan,
};
use braintrust_core::span_components::SpanComponents;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::{ApiClient, ApiError};
use crate::batcher::{Batcher, BatcherStats};
use crate::config::Config;
use crate::fetch::RowPages;
use crate::git::{GitMetadataSettings, RepoInfo};
use crate::logger::{
    InitError, LoggerOptions, api_client, connect, log_feedback_to, log_root, object_permalink,
    register_live, start_span_in, update_row,
};

/// Options of [`init_experiment`]: the project, the experiment's fields, and (through
/// [`ExperimentOptions::connection`]) credentials and delivery settings.
#[derive(Debug, Clone)]
pub struct ExperimentOptions {
    connection: LoggerOptions,
    project: Option<String>,
    project_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    dataset: Option<(String, Option<String>)>,
    base_experiment: Option<String>,
    base_experiment_id: Option<String>,
    metadata: Option<Map<String, Value>>,
    tags: Vec<String>,
    public: bool,
    update: bool,
    repo_info: Option<RepoInfo>,
    git_metadata_settings: Option<GitMetadataSettings>,
    parameters: Option<(String, Option<String>)>,
    set_current: bool,
}

impl Default for ExperimentOptions {
    fn default() -> ExperimentOptions {
        ExperimentOptions {
            connection: LoggerOptions::new(),
            project: None,
            project_id: None,
            name: None,
            description: None,
            dataset: None,
            base_experiment: None,
            base_experiment_id: None,
            metadata: None,
            tags: Vec::new(),
            public: false,
            update: false,
            repo_info: None,
            git_metadata_settings: None,
            parameters: None,
            set_current: true,
        }
    }
}

impl ExperimentOptions {
    /// An experiment in the project called `project` (registered get-or-create).
    pub fn new(project: impl Into<String>) -> ExperimentOptions {
        ExperimentOptions {
            project: Some(project.into()),
            ..ExperimentOptions::default()
        }
    }

    /// The project by id (wins over the name).
    pub fn project_id(mut self, id: impl Into<String>) -> ExperimentOptions {
        self.project_id = Some(id.into());
        self
    }

    /// The experiment's name; the server makes it unique unless [`update`](Self::update) is
    /// set. Without one the server picks a name.
    pub fn name(mut self, name: impl Into<String>) -> ExperimentOptions {
        self.name = Some(name.into());
        self
    }

    /// A description.
    pub fn description(mut self, description: impl Into<String>) -> ExperimentOptions {
        self.description = Some(description.into());
        self
    }

    /// The dataset the experiment runs on (id, and the version read).
    pub fn dataset(mut self, id: impl Into<String>, version: Option<String>) -> ExperimentOptions {
        self.dataset = Some((id.into(), version));
        self
    }

    /// The comparison baseline, by name (looked up in the project; a missing one is warned
    /// about and ignored).
    pub fn base_experiment(mut self, name: impl Into<String>) -> ExperimentOptions {
        self.base_experiment = Some(name.into());
        self
    }

    /// The comparison baseline, by id (wins over the name).
    pub fn base_experiment_id(mut self, id: impl Into<String>) -> ExperimentOptions {
        self.base_experiment_id = Some(id.into());
        self
    }

    /// Experiment-level metadata (a JSON object; other values are ignored).
    pub fn metadata(mut self, metadata: Value) -> ExperimentOptions {
        if let Value::Object(map) = metadata {
            self.metadata = Some(map);
        }
        self
    }

    /// Experiment-level tags (duplicates are removed).
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> ExperimentOptions {
        for tag in tags {
            let tag = tag.into();
            if !self.tags.contains(&tag) {
                self.tags.push(tag);
            }
        }
        self
    }

    /// Whether the experiment is public (default `false`).
    pub fn public(mut self, public: bool) -> ExperimentOptions {
        self.public = public;
        self
    }

    /// Continue the existing experiment of this name instead of creating a new one.
    pub fn update(mut self, update: bool) -> ExperimentOptions {
        self.update = update;
        self
    }

    /// Explicit git information (no collection happens then).
    pub fn repo_info(mut self, info: RepoInfo) -> ExperimentOptions {
        self.repo_info = Some(info);
        self
    }

    /// Which git fields to collect, merged with the organisation's setting (see
    /// [`GitMetadataSettings::merge`]). Without either, nothing is collected.
    pub fn git_metadata_settings(mut self, settings: GitMetadataSettings) -> ExperimentOptions {
        self.git_metadata_settings = Some(settings);
        self
    }

    /// The saved parameters object the run used (id, version).
    pub fn parameters(
        mut self,
        id: impl Into<String>,
        version: Option<String>,
    ) -> ExperimentOptions {
        self.parameters = Some((id.into(), version));
        self
    }

    /// Whether the experiment becomes the current experiment, the default destination of
    /// spans without a parent (default `true`).
    pub fn set_current(mut self, set_current: bool) -> ExperimentOptions {
        self.set_current = set_current;
        self
    }

    /// Credentials and delivery settings (API key, URLs, batching, HTTP client). Their project
    /// and `set_current` are ignored.
    pub fn connection(mut self, connection: LoggerOptions) -> ExperimentOptions {
        self.connection = connection;
        self
    }

    /// The registration request the background sender completes (project id, base
    /// experiment id, git metadata) and sends as `POST /v1/experiment`.
    fn registration(&self) -> Map<String, Value> {
        let mut r = Map::new();
        let mut put = |key: &str, value: Value| {
            r.insert(key.to_owned(), value);
        };
        match (&self.project_id, &self.project) {
            (Some(id), _) => put("project_id", Value::String(id.clone())),
            (None, Some(name)) => put("project_name", Value::String(name.clone())),
            (None, None) => {}
        }
        put("ensure_new", Value::Bool(!self.update));
        if let Some(name) = &self.name {
            put("name", Value::String(name.clone()));
        }
        if let Some(description) = &self.description {
            put("description", Value::String(description.clone()));
        }
        if let Some(info) = &self.repo_info {
            put("repo_info", serde_json::json!(info));
        }
        if let Some(settings) = &self.git_metadata_settings {
            put("git_metadata_settings", settings.to_json());
        }
        match (&self.base_experiment_id, &self.base_experiment) {
            (Some(id), _) => put("base_exp_id", Value::String(id.clone())),
            (None, Some(name)) => put("base_experiment", Value::String(name.clone())),
            (None, None) => {}
        }
        if let Some((id, version)) = &self.dataset {
            put("dataset_id", Value::String(id.clone()));
            if let Some(version) = version {
                put("dataset_version", Value::String(version.clone()));
            }
        }
        if let Some((id, version)) = &self.parameters {
            put("parameters_id", Value::String(id.clone()));
            if let Some(version) = version {
                put("parameters_version", Value::String(version.clone()));
            }
        }
        put("public", Value::Bool(self.public));
        if let Some(metadata) = &self.metadata {
            put("metadata", Value::Object(metadata.clone()));
        }
        if !self.tags.is_empty() {
            put("tags", serde_json::json!(self.tags));
        }
        r
    }
}

/// Why an experiment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The experiment could not be created (settings, missing API key).
    #[error(transparent)]
    Init(#[from] InitError),
    /// Neither a project name nor a project id was given.
    #[error("an experiment needs a project: set ExperimentOptions::new(name) or project_id")]
    MissingProject,
    /// Login or registration failed.
    #[error("cannot register the experiment: {0}")]
    Resolve(String),
    /// A request failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Rows could not be delivered before reading.
    #[error(transparent)]
    Flush(#[from] FlushError),
    /// No experiment matches (open read-only).
    #[error("experiment {name:?} not found in project {project:?}")]
    NotFound {
        /// The project.
        project: String,
        /// The experiment.
        name: String,
    },
}

/// An experiment. Cheap to clone; the last clone (spans included) flushes and stops the
/// background sender when dropped.
#[derive(Clone, Debug)]
pub struct Experiment {
    shared: Arc<ExperimentShared>,
}

#[derive(Debug)]
struct ExperimentShared {
    batcher: Batcher,
    object: ObjectRef,
    config: Config,
    id_format: IdFormat,
    api: ApiClient,
    project: Option<String>,
}

static CURRENT_EXPERIMENT: Mutex<Option<Experiment>> = Mutex::new(None);

/// Creates an experiment. Performs no network I/O: login and registration happen in the
/// background (or at [`Experiment::resolve`]). Fails on invalid settings, a missing API key or
/// a missing project.
pub fn init_experiment(options: ExperimentOptions) -> Result<Experiment, ExperimentError> {
    if options.project.is_none() && options.project_id.is_none() {
        return Err(ExperimentError::MissingProject);
    }
    let connection = connect(&options.connection)?;
    let object = ObjectRef::registering(ObjectType::Experiment, options.registration());
    let api = ApiClient::from_parts(
        connection.config.clone(),
        connection.lookup,
        connection.http,
    );
    let shared = Arc::new(ExperimentShared {
        batcher: connection.batcher,
        object,
        config: connection.config,
        id_format: connection.id_format,
        api,
        project: options.project,
    });
    register_live(shared.clone());
    braintrust_core::context::enable();
    let experiment = Experiment { shared };
    if options.set_current {
        experiment.set_current();
    }
    Ok(experiment)
}

/// The current experiment (the last one initialised with `set_current`).
pub fn current_experiment() -> Option<Experiment> {
    CURRENT_EXPERIMENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Stops using a current experiment: spans without a parent go to the current logger again.
pub fn clear_current_experiment() -> Option<Experiment> {
    braintrust_core::context::set_root(RootKind::Experiment, None);
    CURRENT_EXPERIMENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
}

impl crate::logger::Live for ExperimentShared {
    fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

impl SpanSink for ExperimentShared {
    fn submit(&self, row: PendingRow) {
        self.batcher.submit(row);
    }

    fn flush(&self) -> Result<(), FlushError> {
        self.batcher.flush()
    }

    fn id_format(&self) -> IdFormat {
        self.id_format
    }

    fn default_root_type(&self) -> Option<SpanType> {
        Some(SpanType::Eval)
    }

    fn permalink(&self, components: &SpanComponents) -> Result<String, LinkError> {
        object_permalink(&self.batcher, &self.config, components)
    }

    fn resolve_object(&self, object: &ObjectRef) -> Result<(), LinkError> {
        self.batcher
            .resolve(Some(object.clone()))
            .map(drop)
            .map_err(LinkError::Resolve)
    }
}

/// The current experiment as core's default span root.
struct ExperimentRoot(Experiment);

impl braintrust_core::context::SpanRoot for ExperimentRoot {
    fn start_span(&self, options: StartSpan) -> Span {
        Span::start(self.0.shared.clone(), self.0.shared.object.clone(), options)
    }

    fn export(&self) -> String {
        self.0.export()
    }
}

/// Options of [`Experiment::summarize`].
#[derive(Debug, Clone)]
pub struct SummarizeOptions {
    /// Ask the server for score and metric summaries (default `true`); with `false` only the
    /// names and links are filled in.
    pub summarize_scores: bool,
    /// The experiment to compare with (else the experiment's base, else the server's default).
    pub comparison_experiment_id: Option<String>,
}

impl Default for SummarizeOptions {
    fn default() -> SummarizeOptions {
        SummarizeOptions {
            summarize_scores: true,
            comparison_experiment_id: None,
        }
    }
}

/// The summary of one score across an experiment's rows, from the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreSummary {
    /// The score's name.
    pub name: String,
    /// The mean.
    pub score: f64,
    /// Mean minus the baseline's mean, when compared.
    pub diff: Option<f64>,
    /// Rows (matched by input) that scored higher than in the baseline.
    pub improvements: u64,
    /// Rows that scored lower than in the baseline.
    pub regressions: u64,
}

/// The summary of one metric (duration, tokens, cost, …), from the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSummary {
    /// The metric's name.
    pub name: String,
    /// The mean.
    pub metric: f64,
    /// `s`, `tok`, `$` or empty.
    pub unit: String,
    /// Mean minus the baseline's mean, when compared.
    pub diff: Option<f64>,
    /// Rows that improved (lower is better for metrics).
    pub improvements: u64,
    /// Rows that regressed.
    pub regressions: u64,
}

/// An experiment's summary: names, links, and per-score and per-metric means with the
/// comparison against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentSummary {
    /// The project.
    pub project_name: Option<String>,
    /// The project's id.
    pub project_id: Option<String>,
    /// The experiment's id.
    pub experiment_id: Option<String>,
    /// The experiment's name.
    pub experiment_name: Option<String>,
    /// A link to the project.
    pub project_url: Option<String>,
    /// A link to the experiment.
    pub experiment_url: Option<String>,
    /// The baseline's name, when compared.
    pub comparison_experiment_name: Option<String>,
    /// Scores, in the server's order.
    pub scores: Vec<ScoreSummary>,
    /// Metrics, in the server's order.
    pub metrics: Vec<MetricSummary>,
}

impl ExperimentSummary {
    /// The summary of the score `name`.
    pub fn score(&self, name: &str) -> Option<&ScoreSummary> {
        self.scores.iter().find(|s| s.name == name)
    }

    /// The summary of the metric `name`.
    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Reads the `/summarize` answer (`scores` and `metrics` maps).
    fn from_answer(answer: &Value) -> (Vec<ScoreSummary>, Vec<MetricSummary>) {
        let entries = |key: &str| {
            answer
                .get(key)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(name, v)| (name.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let f = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64);
        let n = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
        let scores = entries("scores")
            .into_iter()
            .map(|(name, v)| ScoreSummary {
                score: f(&v, "score").unwrap_or(0.0),
                diff: f(&v, "diff"),
                improvements: n(&v, "improvements"),
                regressions: n(&v, "regressions"),
                name,
            })
            .collect();
        let metrics = entries("metrics")
            .into_iter()
            .map(|(name, v)| MetricSummary {
                metric: f(&v, "metric").unwrap_or(0.0),
                unit: v
                    .get("unit")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                diff: f(&v, "diff"),
                improvements: n(&v, "improvements"),
                regressions: n(&v, "regressions"),
                name,
            })
            .collect();
        (scores, metrics)
    }
}

impl Experiment {
    /// Starts a span in this experiment (type `eval` at the root). Without an explicit parent
    /// it nests under the current span when that span belongs to this experiment.
    pub fn start_span(&self, options: StartSpan) -> Span {
        start_span_in(self.shared.clone(), &self.shared.object, options)
    }

    /// Logs one event (input, output, expected, scores, …) as a complete root span; returns
    /// its row id.
    pub fn log(&self, event: Event) -> Result<String, EventError> {
        log_root(self.shared.clone(), &self.shared.object, event)
    }

    /// Adds feedback (scores, expected, comment, …) to the row `id`.
    pub fn log_feedback(&self, id: &str, feedback: Feedback) -> Result<(), EventError> {
        log_feedback_to(&*self.shared, &self.shared.object, id, feedback)
    }

    /// Merges `event` into the row `id` (a span of this experiment).
    pub fn update_span(&self, id: &str, event: Event) -> Result<(), EventError> {
        update_row(&*self.shared, &self.shared.object, id, event)
    }

    /// Registers the experiment now if it is not yet (logging in first), waiting for the
    /// answer; returns its id.
    pub fn resolve(&self) -> Result<String, ExperimentError> {
        self.shared
            .batcher
            .resolve(Some(self.shared.object.clone()))
            .map_err(ExperimentError::Resolve)?;
        self.id()
            .ok_or_else(|| ExperimentError::Resolve("the experiment has no id".into()))
    }

    /// [`Experiment::resolve`] without blocking the calling thread.
    pub async fn resolve_async(&self) -> Result<String, ExperimentError> {
        self.shared
            .batcher
            .resolve_async(Some(self.shared.object.clone()))
            .await
            .map_err(ExperimentError::Resolve)?;
        self.id()
            .ok_or_else(|| ExperimentError::Resolve("the experiment has no id".into()))
    }

    /// The experiment's id, once registered.
    pub fn id(&self) -> Option<String> {
        self.shared.object.ids().map(|ids| ids.id().to_owned())
    }

    /// The experiment's name as the server assigned it, once registered.
    pub fn name(&self) -> Option<String> {
        self.registered_str("name")
    }

    /// The project's id, once registered.
    pub fn project_id(&self) -> Option<String> {
        self.registered_str("project_id")
    }

    /// The base experiment's id recorded at registration, if any.
    pub fn base_experiment_id(&self) -> Option<String> {
        self.registered_str("base_exp_id")
    }

    /// The server's description of the experiment (after registration).
    pub fn registration(&self) -> Option<Map<String, Value>> {
        self.shared.object.registration().cloned()
    }

    fn registered_str(&self, key: &str) -> Option<String> {
        self.shared
            .object
            .registration()?
            .get(key)?
            .as_str()
            .map(str::to_owned)
    }

    /// The export slug of the experiment (registers it first, blocking). Pass it as a parent
    /// to log into this experiment elsewhere.
    pub fn export(&self) -> String {
        if let Err(e) = self.resolve() {
            tracing::warn!("braintrust: cannot export the experiment: {e}");
            return String::new();
        }
        self.shared
            .object
            .export(self.shared.id_format.slug_version())
    }

    /// Delivers everything logged so far (blocking).
    pub fn flush(&self) -> Result<(), FlushError> {
        self.shared.batcher.flush()
    }

    /// [`Experiment::flush`] without blocking the calling thread.
    pub async fn flush_async(&self) -> Result<(), FlushError> {
        self.shared.batcher.flush_async().await
    }

    /// Delivery counters.
    pub fn stats(&self) -> BatcherStats {
        self.shared.batcher.stats()
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A client of the API with the experiment's credentials.
    pub fn api(&self) -> &ApiClient {
        &self.shared.api
    }

    /// Makes this experiment the current experiment.
    pub fn set_current(&self) {
        let root: RootStarter = Arc::new(ExperimentRoot(self.clone()));
        braintrust_core::context::set_root(RootKind::Experiment, Some(root));
        *CURRENT_EXPERIMENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.clone());
    }

    /// Flushes, then asks the server for the summary (`GET /v1/experiment/{id}/summarize`):
    /// score and metric means, and the comparison with the baseline. Blocking.
    pub fn summarize(
        &self,
        options: SummarizeOptions,
    ) -> Result<ExperimentSummary, ExperimentError> {
        crate::api::block_on(self.summarize_async(options))
    }

    /// [`Experiment::summarize`] for async code.
    pub async fn summarize_async(
        &self,
        options: SummarizeOptions,
    ) -> Result<ExperimentSummary, ExperimentError> {
        self.flush_async().await?;
        let id = self.resolve_async().await?;
        let path = format!("/v1/experiment/{}/summarize", crate::api::path_segment(&id));
        let mut query = vec![(
            "summarize_scores",
            if options.summarize_scores {
                "true"
            } else {
                "false"
            },
        )];
        if let Some(base) = &options.comparison_experiment_id {
            query.push(("comparison_experiment_id", base.as_str()));
        }
        let answer = self.shared.api.get_json(&path, &query).await?;
        let (scores, metrics) = ExperimentSummary::from_answer(&answer);
        let text = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_owned);
        let org = self.shared.api.org().await.ok();
        let project_name = text("project_name").or_else(|| self.shared.project.clone());
        let experiment_name = text("experiment_name").or_else(|| self.name());
        let project_url = text("project_url").or_else(|| {
            Some(format!(
                "{}/app/{}/p/{}",
                self.shared.config.app_public_url,
                url_component(&org.as_ref()?.org_name),
                url_component(project_name.as_deref()?)
            ))
        });
        let experiment_url = text("experiment_url").or_else(|| {
            Some(format!(
                "{}/experiments/{}",
                project_url.as_deref()?,
                url_component(experiment_name.as_deref()?)
            ))
        });
        Ok(ExperimentSummary {
            project_name,
            project_id: self.project_id(),
            experiment_id: Some(id),
            experiment_name,
            project_url,
            experiment_url,
            comparison_experiment_name: text("comparison_experiment_name"),
            scores,
            metrics,
        })
    }

    /// The experiment's rows, page by page (flush first to see what was just logged).
    pub fn fetch(&self) -> Result<RowPages, ExperimentError> {
        let id = self.resolve()?;
        Ok(RowPages::new(
            self.shared.api.clone(),
            "experiment",
            &id,
            None,
        ))
    }
}

fn url_component(text: &str) -> String {
    crate::api::path_segment(text)
}

/// An existing experiment opened for reading ([`open_experiment`]).
#[derive(Debug, Clone)]
pub struct ReadonlyExperiment {
    api: ApiClient,
    info: Map<String, Value>,
}

/// Opens the experiment `name` of `project` for reading (`GET /v1/experiment`); an error when
/// there is none.
pub async fn open_experiment(
    project: &str,
    name: &str,
    connection: LoggerOptions,
) -> Result<ReadonlyExperiment, ExperimentError> {
    let api = api_client(&connection)?;
    let org = api.org().await?;
    let answer = api
        .get_json(
            "/v1/experiment",
            &[
                ("project_name", project),
                ("experiment_name", name),
                ("org_name", &org.org_name),
            ],
        )
        .await?;
    let info = answer
        .get("objects")
        .and_then(Value::as_array)
        .and_then(|o| o.first())
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| ExperimentError::NotFound {
            project: project.to_owned(),
            name: name.to_owned(),
        })?;
    Ok(ReadonlyExperiment { api, info })
}

impl ReadonlyExperiment {
    /// Opens the experiment with this id (`GET /v1/experiment/{id}`).
    pub async fn open_by_id(
        api: ApiClient,
        id: &str,
    ) -> Result<ReadonlyExperiment, ExperimentError> {
        let path = format!("/v1/experiment/{}", crate::api::path_segment(id));
        let info = api
            .get_json(&path, &[])
            .await?
            .as_object()
            .cloned()
            .ok_or_else(|| ExperimentError::NotFound {
                project: String::new(),
                name: id.to_owned(),
            })?;
        Ok(ReadonlyExperiment { api, info })
    }

    /// The experiment's id.
    pub fn id(&self) -> &str {
        self.info
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The experiment's name.
    pub fn name(&self) -> &str {
        self.info
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The server's description of the experiment.
    pub fn info(&self) -> &Map<String, Value> {
        &self.info
    }

    /// The experiment's rows, page by page.
    pub fn fetch(&self) -> RowPages {
        RowPages::new(self.api.clone(), "experiment", self.id(), None)
    }
}
