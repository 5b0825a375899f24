//! `braintrust-local`: a local server that speaks the Braintrust HTTP API, with an embedded
//! SQLite store.
//!
//! It is the offline default of braintrust-rs, the backend of our own tests, and a tool users can
//! run: the official Python and JavaScript SDKs work against it too (login, project / experiment
//! / dataset registration in the `/v1` and legacy `/api/*` families, `/logs3` with server-side
//! merge, overflow uploads, attachments (`/attachment`, signed uploads and downloads, status),
//! `/fetch` and `/btql` reads).
//!
//! Run it in-process (it owns a background thread and runtime, so it works from sync code and
//! from any async runtime):
//!
//! ```
//! use braintrust_local::LocalServer;
//! use braintrust_core::object::ObjectIds;
//!
//! let server = LocalServer::start()?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! let rows = server.rows(&ObjectIds::project_logs("no-such-project"))?;
//! assert!(rows.is_empty());
//! # Ok::<(), braintrust_local::LocalServerError>(())
//! ```
//!
//! or as a binary: `cargo run -p braintrust-local -- --addr 127.0.0.1:8787 --db local.db
//! --api-key my-key`.

mod app;
mod attachments;
mod error;
mod faults;
mod functions;
mod logs;
mod read;
mod record;
mod registry;
mod store;
mod summary;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use braintrust_core::object::ObjectIds;
use serde_json::Value;

pub use faults::Fault;
pub use functions::{DeclaredFunction, FunctionHandler, FunctionsFile, Invocation};
pub use record::RecordedRequest;
pub use store::StoreError;

use app::{AppState, Settings};
use store::Store;

/// The API key an in-process server accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "braintrust-local";

/// The organisation name a server reports unless told otherwise.
pub const DEFAULT_ORG_NAME: &str = "local";

/// The `/logs3` payload limit a server advertises unless told otherwise (6 MiB).
pub const DEFAULT_PAYLOAD_LIMIT: u64 = 6 * 1024 * 1024;

/// Why a server could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A functions file or declared function is invalid.
    #[error("functions: {0}")]
    Functions(String),
    /// The server thread or runtime could not be started.
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
}

/// Settings for a [`LocalServer`].
#[derive(Debug, Clone)]
pub struct LocalServerBuilder {
    addr: SocketAddr,
    db: Option<PathBuf>,
    api_key: String,
    org_name: String,
    org_id: Option<String>,
    payload_limit: Option<u64>,
    record_requests: bool,
    handlers: functions::Handlers,
    functions_files: Vec<FunctionsFile>,
    llm: Option<functions::LlmEndpoint>,
    worker_threads: usize,
    background_nice: u8,
}

impl Default for LocalServerBuilder {
    fn default() -> LocalServerBuilder {
        LocalServerBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: None,
            api_key: DEFAULT_API_KEY.to_owned(),
            org_name: DEFAULT_ORG_NAME.to_owned(),
            org_id: None,
            payload_limit: Some(DEFAULT_PAYLOAD_LIMIT),
            record_requests: false,
            handlers: functions::Handlers::default(),
            functions_files: Vec::new(),
            llm: None,
            worker_threads: 1,
            background_nice: 0,
        }
    }
}

impl LocalServerBuilder {
    /// Address to listen on (default `127.0.0.1:0`, an ephemeral port).
    pub fn addr(mut self, addr: SocketAddr) -> LocalServerBuilder {
        self.addr = addr;
        self
    }

    /// Threads that serve requests (default 1; 0 counts as 1). Writes take the store one at a
    /// time, so for one application logging to it a second thread mostly waits for the first
    /// (`log_throughput` ran about 5% faster with one); function handlers run on threads of
    /// their own either way. The `braintrust-local` command serves with 2.
    pub fn worker_threads(mut self, threads: usize) -> LocalServerBuilder {
        self.worker_threads = threads.max(1);
        self
    }

    /// How many nice levels below the thread calling [`start`](Self::start) the server's
    /// threads run (default 0: level with it; Linux only). Serving in-process, a lowered
    /// server lets the application's own threads come first when the cores are busy, but it
    /// then falls further behind a logger that fills its queue (`log_throughput` delivered
    /// about a tenth fewer spans a second with 10).
    pub fn background_nice(mut self, steps: u8) -> LocalServerBuilder {
        self.background_nice = steps;
        self
    }

    /// Persist to this SQLite file (default: in memory), with the rows' texts in `<path>-rows`
    /// beside it.
    pub fn db_path(mut self, path: impl Into<PathBuf>) -> LocalServerBuilder {
        self.db = Some(path.into());
        self
    }

    /// Keep everything in memory (the default).
    pub fn in_memory(mut self) -> LocalServerBuilder {
        self.db = None;
        self
    }

    /// The only API key accepted (default [`DEFAULT_API_KEY`]).
    pub fn api_key(mut self, key: impl Into<String>) -> LocalServerBuilder {
        self.api_key = key.into();
        self
    }

    /// The organisation's name (default [`DEFAULT_ORG_NAME`]).
    pub fn org_name(mut self, name: impl Into<String>) -> LocalServerBuilder {
        self.org_name = name.into();
        self
    }

    /// A fixed organisation id (default: a random id, created once and kept in the store).
    pub fn org_id(mut self, id: impl Into<String>) -> LocalServerBuilder {
        self.org_id = Some(id.into());
        self
    }

    /// The `logs3_payload_max_bytes` advertised by `/version`; `None` omits it, which turns
    /// client overflow uploads off.
    pub fn payload_limit(mut self, limit: Option<u64>) -> LocalServerBuilder {
        self.payload_limit = limit;
        self
    }

    /// Record every request for [`LocalServer::recorded_requests`] (off by default).
    pub fn record_requests(mut self, record: bool) -> LocalServerBuilder {
        self.record_requests = record;
        self
    }

    /// Serves the function with this slug (in any project) or global name with `handler`
    /// when it is invoked (`POST /function/invoke`).
    ///
    /// ```
    /// use braintrust_local::LocalServer;
    /// use serde_json::json;
    ///
    /// let server = LocalServer::builder()
    ///     .function("shout", |call| Ok(json!(call.input.as_str().unwrap_or("").to_uppercase())))
    ///     .start()?;
    /// # Ok::<(), braintrust_local::LocalServerError>(())
    /// ```
    pub fn function(
        self,
        name: impl Into<String>,
        handler: impl Fn(&Invocation) -> Result<Value, String> + Send + Sync + 'static,
    ) -> LocalServerBuilder {
        self.handlers.insert(name.into(), Arc::new(handler));
        self
    }

    /// Stores the file's prompts at start (a new version only when one changed) and serves its
    /// declared functions.
    pub fn functions_file(mut self, file: FunctionsFile) -> LocalServerBuilder {
        self.functions_files.push(file);
        self
    }

    /// Sends prompt functions that have no handler to this OpenAI-compatible endpoint
    /// (`{url}/chat/completions`, `{url}/completions`) instead of returning the rendered
    /// request; `api_key` goes in `Authorization: Bearer`.
    pub fn llm_endpoint(
        mut self,
        url: impl Into<String>,
        api_key: Option<String>,
    ) -> LocalServerBuilder {
        self.llm = Some(functions::LlmEndpoint {
            url: url.into(),
            api_key,
        });
        self
    }

    /// Opens the store, binds the address and starts serving on a background thread.
    pub fn start(self) -> Result<LocalServer, LocalServerError> {
        for file in &self.functions_files {
            for declared in &file.functions {
                let handler = declared.handler().map_err(LocalServerError::Functions)?;
                self.handlers.insert(declared.name.clone(), handler);
            }
        }
        let store = match &self.db {
            Some(path) => Store::open(path)?,
            None => Store::in_memory()?,
        };
        let org_id = match self.org_id {
            Some(id) => id,
            None => store.meta_or_init("org_id", braintrust_core::id::new_uuid_v4)?,
        };
        let user_id = store.meta_or_init("user_id", braintrust_core::id::new_uuid_v4)?;
        // Bind with std so that starting works from sync code and inside any async runtime.
        let listener =
            std::net::TcpListener::bind(self.addr).map_err(|source| LocalServerError::Bind {
                addr: self.addr,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .and_then(|addr| listener.set_nonblocking(true).map(|()| addr))
            .map_err(|source| LocalServerError::Bind {
                addr: self.addr,
                source,
            })?;
        let url = format!("http://{local_addr}");
        let state = Arc::new(AppState {
            store: Mutex::new(store),
            settings: Settings {
                api_key: self.api_key,
                org_name: self.org_name,
                org_id,
                user_id,
                payload_limit: self.payload_limit,
            },
            base_url: url.clone(),
            recorder: self.record_requests.then(|| Mutex::new(Vec::new())),
            faults: faults::Faults::default(),
            handlers: self.handlers.clone(),
            llm: self.llm.clone(),
            attachments: match &self.db {
                Some(path) => attachments::BlobDir::beside(path),
                None => attachments::BlobDir::Memory(Default::default()),
            },
        });
        for file in &self.functions_files {
            for prompt in &file.prompts {
                functions::seed(&state, prompt.clone()).map_err(LocalServerError::Functions)?;
            }
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), std::io::Error>>();
        let router = app::router(state.clone());
        let worker_threads = self.worker_threads;
        let background_nice = self.background_nice;
        let thread = std::thread::Builder::new()
            .name("braintrust-local".into())
            .spawn(move || {
                // Before the runtime, whose threads inherit the lowered priority.
                braintrust_transport::background::lower_current_thread_priority(background_nice);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(worker_threads)
                    .thread_name("braintrust-local-worker")
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let shutdown = async {
                        let _ = stop_rx.await;
                    };
                    if let Err(e) = axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(error = %e, "braintrust-local server stopped");
                    }
                });
            })
            .map_err(LocalServerError::Runtime)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(LocalServerError::Runtime(e));
            }
            Err(_) => {
                let _ = thread.join();
                return Err(LocalServerError::Runtime(std::io::Error::other(
                    "the server thread ended before serving",
                )));
            }
        }
        Ok(LocalServer {
            url,
            addr: local_addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A running local server. Dropping it stops the server and closes the store.
#[derive(Debug)]
pub struct LocalServer {
    url: String,
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalServer {
    /// Starts an in-memory server on an ephemeral loopback port with the default settings.
    pub fn start() -> Result<LocalServer, LocalServerError> {
        LocalServerBuilder::default().start()
    }

    /// Settings for a server.
    pub fn builder() -> LocalServerBuilder {
        LocalServerBuilder::default()
    }

    /// The base URL (`http://127.0.0.1:PORT`); app and API URL alike.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the server accepts.
    pub fn api_key(&self) -> &str {
        &self.state.settings.api_key
    }

    /// The organisation's name.
    pub fn org_name(&self) -> &str {
        &self.state.settings.org_name
    }

    /// The organisation's id.
    pub fn org_id(&self) -> &str {
        &self.state.settings.org_id
    }

    /// Login options for this server (its key and URL), reading no other settings from the
    /// environment: for an `ApiClient` in tests and examples.
    pub fn login_options(&self) -> braintrust_transport::login::LoginOptions {
        braintrust_transport::login::LoginOptions {
            api_key: Some(self.api_key().to_owned()),
            app_url: Some(self.url().to_owned()),
            env: Some(braintrust_core::env_file::EnvLookup::from_pairs::<&str, &str>([])),
            ..Default::default()
        }
    }

    /// The current (merged) rows of an object, in write order.
    pub fn rows(&self, object: &ObjectIds) -> Result<Vec<Value>, StoreError> {
        self.state.store().all_rows(object)
    }

    /// How many rows an object holds.
    pub fn row_count(&self, object: &ObjectIds) -> Result<u64, StoreError> {
        self.state.store().row_count(object)
    }

    /// The objects that hold rows.
    pub fn objects_with_rows(&self) -> Result<Vec<ObjectIds>, StoreError> {
        self.state.store().row_objects()
    }

    /// Makes the next `times` requests to `path` (exact, e.g. `/logs3`) fail with `fault`.
    /// Rules apply in the order they were added.
    pub fn inject_fault(&self, path: &str, fault: Fault, times: u64) {
        let mut rules = self
            .state
            .faults
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        rules.push(faults::FaultRule {
            path: path.to_owned(),
            fault,
            remaining: times,
        });
    }

    /// Removes every injected fault that has not fired yet.
    pub fn clear_faults(&self) {
        self.state
            .faults
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// How many injected faults have fired so far.
    pub fn faults_fired(&self) -> u64 {
        self.state
            .faults
            .fired
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Requests received so far (empty unless recording was turned on).
    pub fn recorded_requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.as_ref().map_or_else(Vec::new, |r| {
            r.lock().unwrap_or_else(|e| e.into_inner()).clone()
        })
    }

    /// Blocks until the server thread ends (it ends only when the server is shut down).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the server and waits for it.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
