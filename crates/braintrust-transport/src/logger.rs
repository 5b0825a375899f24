//! Loggers: the entry point for production tracing. [`init_logger`] returns a [`Logger`] that
//! writes spans to a project's logs through its own background [`Batcher`]; logging calls queue
//! rows and return at once, and login and project registration happen in the background the
//! first time rows are sent.
//!
//! ```no_run
//! use braintrust_transport::logger::{init_logger, LoggerOptions};
//! use braintrust_core::event::Event;
//! use braintrust_core::span::StartSpan;
//! use serde_json::json;
//!
//! let logger = init_logger(LoggerOptions::new().project("my-app"))?;
//! let span = logger.start_span(StartSpan::named("handle-request"));
//! span.log(Event::new().input(json!({"q": "hi"})).output(json!("hello")))?;
//! span.end();
//! logger.flush()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use braintrust_core::context::{RootKind, RootStarter, current_span};
use braintrust_core::env_file::EnvLookup;
use braintrust_core::event::{Event, EventError, SpanType};
use braintrust_core::id::IdFormat;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::{
    Feedback, FlushError, LinkError, NOOP_PERMALINK, ObjectRef, PendingKind, PendingRow, Span,
    SpanSink, StartSpan,
};
use braintrust_core::span_components::{SlugError, SlugObject, SpanComponents};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::api::ApiClient;
use crate::batcher::{Batcher, BatcherOptions, BatcherStats, StartError};
use crate::config::{Config, ConfigError, mask_api_key};
use crate::http::{HttpClient, HttpOptions, HyperClient};
use crate::login::{LoginError, OrgState};

/// The project used when none is configured.
pub const DEFAULT_PROJECT: &str = "Global";

/// Characters escaped in permalink path segments and query values (RFC 3986 unreserved
/// characters stay as they are).
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How long the flush at process exit waits for delivery.
const EXIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of [`init_logger`]. Unset options come from the environment (`BRAINTRUST_*`, then
/// `.env.braintrust`), then defaults. `Debug` shows the API key masked.
#[derive(Clone)]
pub struct LoggerOptions {
    project: Option<String>,
    project_id: Option<String>,
    api_key: Option<String>,
    app_url: Option<String>,
    api_url: Option<String>,
    org_name: Option<String>,
    async_flush: bool,
    set_current: bool,
    env: Option<EnvLookup>,
    http_client: Option<Arc<dyn HttpClient>>,
    http: Option<HttpOptions>,
    batch_size: Option<usize>,
    max_request_size: Option<usize>,
    num_retries: Option<u32>,
    queue_size: Option<usize>,
    sync_flush: Option<bool>,
    enqueue_timeout: Option<Duration>,
    retry_base_delay: Option<Duration>,
    flush_interval: Option<Duration>,
    attachment_flush_timeout: Option<Duration>,
    background_nice: Option<u8>,
}

impl std::fmt::Debug for LoggerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggerOptions")
            .field("project", &self.project)
            .field("project_id", &self.project_id)
            .field("api_key", &self.api_key.as_deref().map(mask_api_key))
            .field("app_url", &self.app_url)
            .field("api_url", &self.api_url)
            .field("org_name", &self.org_name)
            .field("async_flush", &self.async_flush)
            .field("set_current", &self.set_current)
            .finish_non_exhaustive()
    }
}

impl Default for LoggerOptions {
    fn default() -> LoggerOptions {
        LoggerOptions {
            project: None,
            project_id: None,
            api_key: None,
            app_url: None,
            api_url: None,
            org_name: None,
            async_flush: true,
            set_current: true,
            env: None,
            http_client: None,
            http: None,
            batch_size: None,
            max_request_size: None,
            num_retries: None,
            queue_size: None,
            sync_flush: None,
            enqueue_timeout: None,
            retry_base_delay: None,
            flush_interval: None,
            attachment_flush_timeout: None,
            background_nice: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $field:ident $(($conv:ident))?;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> LoggerOptions {
                self.$field = Some(value$(.$conv())?);
                self
            }
        )*
    };
}

impl LoggerOptions {
    /// Options with everything from the environment.
    pub fn new() -> LoggerOptions {
        LoggerOptions::default()
    }

    setters! {
        /// The project, by name (registered get-or-create in the background).
        project: impl Into<String> => project (into);
        /// The project, by id (wins over the name).
        project_id: impl Into<String> => project_id (into);
        /// The API key (else `BRAINTRUST_API_KEY`).
        api_key: impl Into<String> => api_key (into);
        /// The app URL, where login happens (else `BRAINTRUST_APP_URL`).
        app_url: impl Into<String> => app_url (into);
        /// The API URL (else `BRAINTRUST_API_URL`, else the one login returns).
        api_url: impl Into<String> => api_url (into);
        /// The organisation (else `BRAINTRUST_ORG_NAME`, else the key's first).
        org_name: impl Into<String> => org_name (into);
        /// Where to read settings instead of the process environment (tests, embedding).
        env: EnvLookup => env;
        /// A custom HTTP client instead of the default hyper client.
        http_client: Arc<dyn HttpClient> => http_client;
        /// Settings of the default HTTP client: timeouts, proxy, extra root certificates.
        http_options: HttpOptions => http;
        /// Rows per request (else `BRAINTRUST_DEFAULT_BATCH_SIZE`, 100).
        batch_size: usize => batch_size;
        /// Bytes per request (else `BRAINTRUST_MAX_REQUEST_SIZE`, else the server's limit or
        /// 6 MiB).
        max_request_size: usize => max_request_size;
        /// Retries per request (else `BRAINTRUST_NUM_RETRIES`, 2).
        num_retries: u32 => num_retries;
        /// Rows the queue holds (else `BRAINTRUST_QUEUE_SIZE`, 25,000).
        queue_size: usize => queue_size;
        /// Send only on flush (else `BRAINTRUST_SYNC_FLUSH`).
        sync_flush: bool => sync_flush;
        /// How long logging waits for space in a full queue before dropping a row (10 s).
        enqueue_timeout: Duration => enqueue_timeout;
        /// The first retry delay, doubled each retry (1 s for rows, 500 ms for attachment
        /// uploads; setting it sets both).
        retry_base_delay: Duration => retry_base_delay;
        /// How long rows may wait before being sent without a flush (250 ms).
        flush_interval: Duration => flush_interval;
        /// How long a flush waits for attachment uploads once the rows are sent (120 s).
        attachment_flush_timeout: Duration => attachment_flush_timeout;
        /// How many nice levels below the thread calling `init_logger` the logger's background
        /// threads run (else `BRAINTRUST_BACKGROUND_NICE`, 10; 0 keeps them level; Linux only).
        background_nice: u8 => background_nice;
    }

    /// With `false`, every logging call flushes before returning (default `true`: logging
    /// never waits).
    pub fn async_flush(mut self, async_flush: bool) -> LoggerOptions {
        self.async_flush = async_flush;
        self
    }

    /// Whether the logger becomes the current logger (default `true`).
    pub fn set_current(mut self, set_current: bool) -> LoggerOptions {
        self.set_current = set_current;
        self
    }
}

/// Why a logger could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No API key anywhere.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The background sender could not start.
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Why `update_span` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateSpanError {
    /// The exported span could not be parsed.
    #[error(transparent)]
    Slug(#[from] SlugError),
    /// The slug names an object, not a span.
    #[error("the exported value names an object, not a span")]
    NotASpan,
    /// The event is invalid.
    #[error(transparent)]
    Event(#[from] EventError),
    /// No logger is initialised to send the update.
    #[error("no logger is initialised: call init_logger first")]
    NoLogger,
}

/// Why [`Logger::resolve`] failed (login or registration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve the logger's project: {0}")]
pub struct ResolveError(pub String);

/// A logger writing to a project's logs. Cheap to clone; the last clone (spans included)
/// flushes and stops the background sender when dropped.
#[derive(Clone, Debug)]
pub struct Logger {
    shared: Arc<LoggerShared>,
}

#[derive(Debug)]
struct LoggerShared {
    batcher: Batcher,
    object: ObjectRef,
    config: Config,
    id_format: IdFormat,
    async_flush: bool,
}

static CURRENT_LOGGER: RwLock<Option<Logger>> = RwLock::new(None);
static LIVE: Mutex<Vec<Weak<dyn Live>>> = Mutex::new(Vec::new());

/// A logger, experiment or dataset whose sender is flushed by [`flush`] and at process exit.
pub(crate) trait Live: Send + Sync {
    fn batcher(&self) -> &Batcher;
    fn config(&self) -> &Config;
}

impl Live for LoggerShared {
    fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// Creates a logger. Reads configuration but performs no network I/O: login, project
/// registration and the payload-limit probe happen in the background when rows are first sent.
/// Fails only on invalid settings or a missing API key.
pub fn init_logger(options: LoggerOptions) -> Result<Logger, InitError> {
    let connection = connect(&options)?;
    let config = connection.config;
    let object = match (
        options.project_id,
        options.project,
        config.project_id.clone(),
        config.project.clone(),
    ) {
        (Some(id), _, _, _) => ObjectRef::resolved(ObjectIds::project_logs(id)),
        (None, Some(name), _, _) => ObjectRef::project_named(name),
        (None, None, Some(id), _) => ObjectRef::resolved(ObjectIds::project_logs(id)),
        (None, None, None, name) => {
            ObjectRef::project_named(name.unwrap_or_else(|| DEFAULT_PROJECT.to_owned()))
        }
    };
    let shared = Arc::new(LoggerShared {
        batcher: connection.batcher,
        object,
        id_format: connection.id_format,
        async_flush: options.async_flush,
        config,
    });
    register_live(shared.clone());
    braintrust_core::context::enable();
    let logger = Logger { shared };
    if options.set_current {
        replace_current_logger(Some(logger.clone()));
    }
    Ok(logger)
}

/// What loggers, experiments and datasets share: settings, a background sender and the HTTP
/// client it uses.
pub(crate) struct Connection {
    pub(crate) config: Config,
    pub(crate) batcher: Batcher,
    pub(crate) lookup: EnvLookup,
    pub(crate) id_format: IdFormat,
    pub(crate) http: Arc<dyn HttpClient>,
}

/// The settings of `options` over the environment, and the HTTP client to use.
fn settings(
    options: &LoggerOptions,
) -> Result<(Config, EnvLookup, Arc<dyn HttpClient>, BatcherOptions), InitError> {
    let lookup = options.env.clone().unwrap_or_else(EnvLookup::process);
    let mut config = Config::from_lookup(&lookup)?;
    let trim = |s: &String| s.trim().trim_end_matches('/').to_owned();
    if let Some(key) = &options.api_key {
        config.api_key = Some(key.clone());
    }
    if config
        .api_key
        .as_deref()
        .is_none_or(|k| k.trim().is_empty())
    {
        return Err(LoginError::MissingApiKey.into());
    }
    if let Some(url) = &options.app_url {
        config.app_url = trim(url);
        if lookup.get("BRAINTRUST_APP_PUBLIC_URL").is_none() {
            config.app_public_url = config.app_url.clone();
        }
    }
    if let Some(url) = &options.api_url {
        config.api_url = Some(trim(url));
    }
    if let Some(org) = &options.org_name {
        config.org_name = Some(org.clone());
    }
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = options.$field { config.$field = v; })* };
    }
    set!(
        batch_size,
        num_retries,
        queue_size,
        sync_flush,
        background_nice
    );
    if let Some(size) = options.max_request_size {
        config.max_request_size = Some(size);
    }
    let mut batcher_options = BatcherOptions::from_config(config.clone());
    if let Some(http) = &options.http {
        batcher_options.http = http.clone();
    }
    if let Some(t) = options.enqueue_timeout {
        batcher_options.enqueue_timeout = t;
    }
    if let Some(d) = options.retry_base_delay {
        batcher_options.retry_base_delay = d;
        batcher_options.attachment_retry_base_delay = d;
    }
    if let Some(t) = options.attachment_flush_timeout {
        batcher_options.attachment_flush_timeout = t;
    }
    if let Some(i) = options.flush_interval {
        batcher_options.flush_interval = i;
    }
    let http: Arc<dyn HttpClient> = match &options.http_client {
        Some(client) => client.clone(),
        None => Arc::new(
            HyperClient::with_env(batcher_options.http.clone(), |name| lookup.get(name))
                .map_err(StartError::from)?,
        ),
    };
    Ok((config, lookup, http, batcher_options))
}

/// Reads the settings of `options` (over the environment) and starts a background sender.
/// Performs no network I/O; fails on invalid settings or a missing API key.
pub(crate) fn connect(options: &LoggerOptions) -> Result<Connection, InitError> {
    let (config, lookup, http, batcher_options) = settings(options)?;
    let batcher = Batcher::with_client(batcher_options, http.clone())?;
    Ok(Connection {
        id_format: IdFormat::from_lookup(&lookup),
        config,
        batcher,
        lookup,
        http,
    })
}

/// An API client with the credentials of `options` (no background sender).
pub(crate) fn api_client(options: &LoggerOptions) -> Result<ApiClient, InitError> {
    let (config, lookup, http, _) = settings(options)?;
    Ok(ApiClient::from_parts(config, lookup, http))
}

/// Adds a sender to the live list (flushed by [`flush`] and at process exit).
pub(crate) fn register_live(shared: Arc<dyn Live>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(&shared));
    if !shared.config().disable_atexit_flush {
        crate::exit::flush_at_exit(flush_live_at_exit);
    }
}

fn live_senders() -> Vec<Arc<dyn Live>> {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect()
}

fn flush_live_at_exit() {
    for shared in live_senders() {
        if shared.config().disable_atexit_flush {
            continue;
        }
        if let Err(e) = shared.batcher().flush_timeout(EXIT_FLUSH_TIMEOUT) {
            tracing::warn!("braintrust: flush at exit failed: {e}");
        }
    }
}

/// A permalink to the span or object `components` name, resolving it through `batcher`.
pub(crate) fn object_permalink(
    batcher: &Batcher,
    config: &Config,
    components: &SpanComponents,
) -> Result<String, LinkError> {
    let object = match &components.object {
        SlugObject::Id(id) => {
            ObjectRef::resolved(ObjectIds::new(components.object_type.into(), id.clone()))
        }
        SlugObject::Lazy(args) => ObjectRef::lazy(args.clone()),
    };
    let org = batcher
        .resolve(Some(object.clone()))
        .map_err(LinkError::Resolve)?;
    let ids = object
        .ids()
        .ok_or_else(|| LinkError::Resolve("the project could not be resolved".into()))?;
    let mut link = format!(
        "{}/app/{}/object?object_type={}&object_id={}",
        config.app_public_url,
        utf8_percent_encode(&org.org_name, URL_COMPONENT),
        ids.object_type(),
        utf8_percent_encode(ids.id(), URL_COMPONENT),
    );
    if let Some(row) = &components.row {
        link.push_str("&id=");
        link.extend(utf8_percent_encode(&row.row_id, URL_COMPONENT));
    }
    Ok(link)
}

impl SpanSink for LoggerShared {
    fn submit(&self, row: PendingRow) {
        self.batcher.submit(row);
        if !self.async_flush
            && let Err(e) = self.batcher.flush()
        {
            tracing::warn!("braintrust: flush failed: {e}");
        }
    }

    fn flush(&self) -> Result<(), FlushError> {
        self.batcher.flush()
    }

    fn id_format(&self) -> IdFormat {
        self.id_format
    }

    fn default_root_type(&self) -> Option<SpanType> {
        Some(SpanType::Task)
    }

    fn permalink(&self, components: &SpanComponents) -> Result<String, LinkError> {
        object_permalink(&self.batcher, &self.config, components)
    }
}

/// Starts a span writing to `sink` in `object`: under the explicit parent if any, else under
/// the current span when it belongs to `object`, else as a root.
pub(crate) fn start_span_in(
    sink: Arc<dyn SpanSink>,
    object: &ObjectRef,
    options: StartSpan,
) -> Span {
    let mut options = options;
    if options.parent_ref().is_none() {
        let current = current_span();
        if current.object().is_some_and(|o| o.same_object(object)) {
            options = options.parent(current);
        }
    }
    Span::start(sink, object.clone(), options)
}

/// Logs `event` as a complete root span of `object`; returns its row id.
pub(crate) fn log_root(
    sink: Arc<dyn SpanSink>,
    object: &ObjectRef,
    event: Event,
) -> Result<String, EventError> {
    // An empty parent makes a root span even while another span of the object is current, as
    // the official SDKs' `log` does.
    let options = StartSpan::new().try_event(event)?.parent("");
    let span = Span::start(sink, object.clone(), options);
    span.end();
    Ok(span.id().to_owned())
}

/// Adds feedback rows to the row `id` of `object`.
pub(crate) fn log_feedback_to(
    sink: &dyn SpanSink,
    object: &ObjectRef,
    id: &str,
    feedback: Feedback,
) -> Result<(), EventError> {
    for row in feedback.into_rows(id)? {
        submit_fields(sink, object, row);
    }
    Ok(())
}

/// Merges `event` into the row `id` of `object`.
pub(crate) fn update_row(
    sink: &dyn SpanSink,
    object: &ObjectRef,
    id: &str,
    event: Event,
) -> Result<(), EventError> {
    let mut fields = event.into_fields()?;
    fields.insert("id".into(), Value::String(id.to_owned()));
    fields.insert("_is_merge".into(), Value::Bool(true));
    submit_fields(sink, object, fields);
    Ok(())
}

fn submit_fields(sink: &dyn SpanSink, object: &ObjectRef, fields: Map<String, Value>) {
    sink.submit(PendingRow {
        object: Some(object.clone()),
        kind: PendingKind::Fields(fields),
    });
}

impl Logger {
    /// Starts a span in this logger's project. Without an explicit parent it nests under the
    /// current span when that span belongs to this logger, else it is a root span.
    pub fn start_span(&self, options: StartSpan) -> Span {
        start_span_in(self.sink(), &self.shared.object, options)
    }

    /// Logs one event as a complete root span; returns its row id.
    pub fn log(&self, event: Event) -> Result<String, EventError> {
        log_root(self.sink(), &self.shared.object, event)
    }

    /// Adds feedback to the row `id` of this logger's project.
    pub fn log_feedback(&self, id: &str, feedback: Feedback) -> Result<(), EventError> {
        log_feedback_to(&*self.shared, &self.shared.object, id, feedback)
    }

    /// Merges `event` into the row `id` (a span of this logger).
    pub fn update_span(&self, id: &str, event: Event) -> Result<(), EventError> {
        update_row(&*self.shared, &self.shared.object, id, event)
    }

    /// The logger's export slug: pass it as a parent to log into this project elsewhere.
    pub fn export(&self) -> String {
        self.shared
            .object
            .export(self.shared.id_format.slug_version())
    }

    /// Delivers everything logged so far (blocking; see [`Logger::flush_async`]).
    pub fn flush(&self) -> Result<(), FlushError> {
        self.shared.batcher.flush()
    }

    /// [`Logger::flush`] without blocking the calling thread.
    pub async fn flush_async(&self) -> Result<(), FlushError> {
        self.shared.batcher.flush_async().await
    }

    /// Delivery counters.
    pub fn stats(&self) -> BatcherStats {
        self.shared.batcher.stats()
    }

    /// Logs in and registers the project now, waiting for the answer (the background sender
    /// would otherwise do it with the first rows); returns the project id. Use it to fail fast
    /// on bad credentials or to keep registration out of a timed region.
    pub fn resolve(&self) -> Result<String, ResolveError> {
        self.shared
            .batcher
            .resolve(Some(self.shared.object.clone()))
            .map_err(ResolveError)?;
        self.project_id()
            .ok_or_else(|| ResolveError("the project could not be resolved".into()))
    }

    /// The project id, once known.
    pub fn project_id(&self) -> Option<String> {
        self.shared.object.ids().map(|ids| ids.id().to_owned())
    }

    /// The organisation, once logged in.
    pub fn org_state(&self) -> Option<OrgState> {
        self.shared.batcher.org_state()
    }

    /// The effective configuration (the API key masked in `Debug`).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Makes this logger the current logger.
    pub fn set_current(&self) {
        replace_current_logger(Some(self.clone()));
    }

    fn sink(&self) -> Arc<dyn SpanSink> {
        self.shared.clone()
    }
}

/// The current logger (the last one initialised with `set_current`, the default).
pub fn current_logger() -> Option<Logger> {
    CURRENT_LOGGER
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Stops using a current logger; later top-level calls are no-ops until another is
/// initialised. The logger flushes when its last handle drops.
pub fn clear_current_logger() -> Option<Logger> {
    replace_current_logger(None)
}

/// Sets the current logger here and, as the default root of spans, in core's context.
fn replace_current_logger(logger: Option<Logger>) -> Option<Logger> {
    let mut current = CURRENT_LOGGER.write().unwrap_or_else(|e| e.into_inner());
    let starter = logger.clone().map(|logger| {
        let root: RootStarter = Arc::new(LoggerRoot(logger));
        root
    });
    braintrust_core::context::set_root(RootKind::Logger, starter);
    std::mem::replace(&mut *current, logger)
}

/// The current logger as core's default span root.
struct LoggerRoot(Logger);

impl braintrust_core::context::SpanRoot for LoggerRoot {
    fn start_span(&self, options: StartSpan) -> Span {
        Span::start(self.0.sink(), self.0.shared.object.clone(), options)
    }

    fn export(&self) -> String {
        self.0.export()
    }
}

/// Starts a span: under `options`' parent if given (a span, a slug, a W3C context), else under
/// the current span, else as a root of the current experiment or logger. With none of them it
/// is the no-op span.
pub fn start_span(options: StartSpan) -> Span {
    braintrust_core::context::start_span(options)
}

/// Flushes every live logger, experiment and dataset; returns the first error after trying
/// them all.
pub fn flush() -> Result<(), FlushError> {
    let mut result = Ok(());
    for shared in live_senders() {
        let r = shared.batcher().flush();
        if result.is_ok() {
            result = r;
        }
    }
    result
}

/// Merges `event` into the span an export slug names, through the current logger.
pub fn update_span(exported: &str, event: Event) -> Result<(), UpdateSpanError> {
    let components = SpanComponents::parse(exported)?;
    let row = components.row.ok_or(UpdateSpanError::NotASpan)?;
    let logger = current_logger().ok_or(UpdateSpanError::NoLogger)?;
    let mut fields = event.into_fields()?;
    fields.insert("id".into(), Value::String(row.row_id));
    fields.insert("span_id".into(), Value::String(row.span_id));
    fields.insert("root_span_id".into(), Value::String(row.root_span_id));
    fields.insert("_is_merge".into(), Value::Bool(true));
    let object = match components.object {
        SlugObject::Id(id) => {
            ObjectRef::resolved(ObjectIds::new(components.object_type.into(), id))
        }
        SlugObject::Lazy(args) => ObjectRef::lazy(args),
    };
    logger.shared.submit(PendingRow {
        object: Some(object),
        kind: PendingKind::Fields(fields),
    });
    Ok(())
}

/// A link to the span an export slug names (`""` gives a placeholder link). Uses the current
/// logger's credentials; may log in and resolve the project, blocking the caller.
pub fn permalink(exported: &str) -> Result<String, LinkError> {
    if exported.trim().is_empty() {
        return Ok(NOOP_PERMALINK.to_owned());
    }
    let components = SpanComponents::parse(exported)?;
    let logger = current_logger().ok_or_else(|| {
        LinkError::Resolve("no logger is initialised: call init_logger first".into())
    })?;
    logger.shared.permalink(&components)
}
