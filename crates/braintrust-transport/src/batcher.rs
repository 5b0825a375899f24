//! The batcher: rows go into a bounded queue; a dedicated worker thread with its own small tokio
//! runtime logs in and registers objects when first needed, merges rows with equal keys, applies
//! the masking function, packs rows into `/logs3` requests by row count and bytes (the server's
//! `/version` limit, else 6 MiB), uses the overflow upload for oversized rows, and sends with
//! retries. It works whatever runtime the program uses, or none.
//!
//! Nothing is dropped silently: when the queue is full, [`Batcher::submit`] waits for space up
//! to a bounded time; a row that still cannot be queued, or that fails delivery after its
//! retries, is counted in [`BatcherStats`] and reported through `tracing` (rate-limited), and the
//! next [`Batcher::flush`] returns an error naming how many rows failed.
//!
//! Attachments referenced by a row ([`braintrust_core::attachment`]) are found when the row is
//! submitted and uploaded by a bounded background uploader after the row's request is sent.
//! Flushes wait for the uploads too (up to [`BatcherOptions::attachment_flush_timeout`]);
//! failed uploads are counted and reported like rows, and never hold rows back.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use braintrust_core::attachment::{Attachment, attachments_in};
use braintrust_core::mask::masking_function;
use braintrust_core::row::Row;
use braintrust_core::span::{BatchRow, ObjectRef, PendingKind, PendingRow, RowBatch, SpanStartRow};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};
use serde_json::{Map, Value, json};

pub use braintrust_core::span::FlushError;

use crate::config::Config;
use crate::http::{HttpClient, HttpError, HttpOptions, HyperClient, Method, RequestBody};
use crate::login::OrgState;
use crate::remote::{
    PayloadLimit, Remote, RemoteError, is_retryable, json_ok, signed_put, truncate,
};
use crate::upload::{UploadCounters, UploadJob, UploadSettings, Uploader};

/// `{"rows": [], "api_version": 2}` framing around the rows of a request.
const ENVELOPE_OVERHEAD: usize = r#"{"rows":[],"api_version":2}"#.len();

/// Longest wait a `Retry-After` header may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Settings of a [`Batcher`]: the [`Config`] (URLs, key, sizes, retries, dump directories)
/// plus timing knobs that have no environment variable.
#[derive(Debug, Clone)]
pub struct BatcherOptions {
    /// URLs, API key, batch and queue sizes, retries, sync flush, payload dump directories.
    pub config: Config,
    /// How long `submit` waits for space in a full queue before dropping (and counting) the row.
    pub enqueue_timeout: Duration,
    /// First retry delay; doubles each retry (default 1 s).
    pub retry_base_delay: Duration,
    /// How long rows may wait in the worker before being sent without a flush.
    pub flush_interval: Duration,
    /// Timeouts of the default HTTP client (`BRAINTRUST_HTTP_TIMEOUT` sets the request timeout).
    pub http: HttpOptions,
    /// First retry delay of attachment upload requests; doubles each retry (default 500 ms,
    /// 8 attempts in all).
    pub attachment_retry_base_delay: Duration,
    /// How long a flush (and shutdown) waits for attachment uploads after the rows are sent
    /// (default 120 s).
    pub attachment_flush_timeout: Duration,
}

impl BatcherOptions {
    /// Options from a configuration.
    pub fn from_config(config: Config) -> BatcherOptions {
        let http = config.http_options();
        BatcherOptions {
            config,
            enqueue_timeout: Duration::from_secs(10),
            retry_base_delay: Duration::from_secs(1),
            flush_interval: Duration::from_millis(250),
            http,
            attachment_retry_base_delay: Duration::from_millis(500),
            attachment_flush_timeout: Duration::from_secs(120),
        }
    }

    /// Defaults for a server whose app and API share `url` (as `braintrust-local` does), with
    /// the given key, ignoring the environment.
    pub fn new(url: impl Into<String>, api_key: impl Into<String>) -> BatcherOptions {
        let url = url.into().trim_end_matches('/').to_owned();
        BatcherOptions::from_config(Config {
            api_key: Some(api_key.into()),
            app_url: url.clone(),
            app_public_url: url.clone(),
            api_url: Some(url),
            ..Config::default()
        })
    }
}

/// Counters of a batcher's life so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Rows accepted into the queue.
    pub enqueued: u64,
    /// Rows that folded into another row with the same key before sending.
    pub merged: u64,
    /// Rows delivered (after merging).
    pub sent: u64,
    /// Rows that could not be queued (queue full past the timeout, or batcher stopped).
    pub dropped: u64,
    /// Rows whose delivery failed after all retries.
    pub failed: u64,
    /// Retried request attempts.
    pub retried: u64,
    /// `/logs3` requests that succeeded.
    pub requests: u64,
    /// Attachments uploaded (status `done` recorded).
    pub attachments_uploaded: u64,
    /// Attachments whose upload failed (the rows referencing them were not affected).
    pub attachments_failed: u64,
}

#[derive(Debug)]
struct Counters {
    enqueued: AtomicU64,
    merged: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    requests: AtomicU64,
    /// Milliseconds after `born` of the last drop warning (`u64::MAX`: none yet).
    last_drop_warning: AtomicU64,
    born: Instant,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            enqueued: AtomicU64::new(0),
            merged: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            last_drop_warning: AtomicU64::new(u64::MAX),
            born: Instant::now(),
        }
    }
}

/// Why a batcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The worker thread or its runtime could not be started.
    #[error("cannot start the batcher thread: {0}")]
    Thread(std::io::Error),
}

/// Where the worker answers a request: a blocking or an async waiter.
enum Reply<T> {
    Blocking(Sender<T>),
    Async(tokio::sync::oneshot::Sender<T>),
}

type Ack = Reply<Result<(), FlushError>>;

impl<T> Reply<T> {
    fn send(self, result: T) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// Requests to the worker besides rows. Rows have their own bounded queue, which the worker
/// drains when it wakes; producers wake it only when a batch's worth of rows is waiting (or the
/// queue is full), so a logging call does not pay for a thread wake-up.
enum Control {
    /// Rows are waiting: drain and send them.
    Wake,
    Flush(Ack),
    Shutdown(Ack),
    Resolve(Option<ObjectRef>, Reply<Result<OrgState, String>>),
}

/// The background row sender. Dropping it flushes what is queued and stops the worker.
pub struct Batcher {
    rows: Sender<Queued>,
    control: Sender<Control>,
    /// Set when a `Wake` is on its way, so producers send one per drain, not one per row.
    wake_sent: Arc<AtomicBool>,
    /// Queued rows at which producers wake the worker.
    wake_at: usize,
    counters: Arc<Counters>,
    enqueue_timeout: Duration,
    drop_logging_period: Duration,
    org: Arc<OnceLock<OrgState>>,
    uploads: Arc<UploadCounters>,
    worker: Option<JoinHandle<()>>,
}

/// A queued row and the live attachments it references.
struct Queued {
    row: PendingRow,
    attachments: Vec<Attachment>,
}

/// Rows moved aside from the queue, folded into a batch as they come (while they are still in
/// the cache) rather than copied into a list first.
#[derive(Default)]
struct Gathered {
    batch: RowBatch,
    /// The attachments the batch's rows reference, by row.
    attachments: HashMap<usize, Vec<Attachment>>,
    /// Rows whose object was not registered yet when they came (it is, before sending), and
    /// every row after the first of them, so rows keep their order.
    waiting: Vec<Queued>,
}

impl Gathered {
    /// Room for about `rows` rows.
    fn with_capacity(rows: usize) -> Gathered {
        Gathered {
            batch: RowBatch::with_capacity(rows),
            ..Gathered::default()
        }
    }

    /// How many queued rows were moved aside.
    fn len(&self) -> usize {
        self.batch.added() + self.waiting.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds a row in, running its deferred event (unless it waits for its object).
    fn add(&mut self, queued: Queued) {
        let unregistered = |q: &Queued| q.row.object.as_ref().is_some_and(|o| o.ids().is_none());
        if !self.waiting.is_empty() || unregistered(&queued) {
            self.waiting.push(queued);
            return;
        }
        self.fold(queued.row, queued.attachments);
    }

    /// Pushes a row into the batch; the attachments its deferred event makes join `referenced`,
    /// which the row's batch row keeps.
    fn fold(&mut self, row: PendingRow, mut referenced: Vec<Attachment>) {
        let i = self.batch.push(row, &mut referenced);
        if !referenced.is_empty() {
            self.attachments.entry(i).or_default().extend(referenced);
        }
    }

    /// Lets go of every row's attachments, for `reason`.
    fn abandon_attachments(&self, uploader: &Uploader, reason: &str) {
        for referenced in self.attachments.values() {
            uploader.abandon(referenced, reason);
        }
        for queued in &self.waiting {
            uploader.abandon(&queued.attachments, reason);
        }
    }
}

/// The live attachments a pending row references (none, cheaply, when no attachment is alive).
fn referenced_attachments(row: &PendingRow) -> Vec<Attachment> {
    match &row.kind {
        PendingKind::SpanStart(SpanStartRow { fields, input, .. }) => {
            attachments_in(fields.values().chain(input.iter().flat_map(|i| i.values())))
        }
        // Fields held as JSON text reference no live attachment (`LoggedFields::written_now`).
        PendingKind::SpanEnd { fields, output, .. } => {
            attachments_in(fields.values().chain(output.as_ref()))
        }
        PendingKind::SpanUpdate { fields, .. } => attachments_in(fields.values()),
        PendingKind::Fields(fields) => attachments_in(fields.values()),
        PendingKind::Row(row) => attachments_in(row.as_map().values()),
    }
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Batcher {
    /// Starts a batcher with the default HTTP client.
    pub fn start(options: BatcherOptions) -> Result<Batcher, StartError> {
        let client = Arc::new(HyperClient::new(options.http.clone())?);
        Batcher::with_client(options, client)
    }

    /// Starts a batcher that sends through `client`.
    pub fn with_client(
        options: BatcherOptions,
        client: Arc<dyn HttpClient>,
    ) -> Result<Batcher, StartError> {
        let capacity = options.config.queue_size.max(1);
        let (rows, rows_rx) = crossbeam_channel::bounded(capacity);
        let (control, control_rx) = crossbeam_channel::unbounded();
        let wake_sent = Arc::new(AtomicBool::new(false));
        // Wake the worker once WAKE_BATCHES requests' worth of rows wait (bounded by the queue),
        // or at a tenth of the queue in sync-flush mode, where it only moves rows aside.
        let wake_at = if options.config.sync_flush {
            (capacity / 10).max(1)
        } else {
            (options.config.batch_size.max(1) * WAKE_BATCHES).min(capacity)
        };
        let counters = Arc::new(Counters::new());
        let org = Arc::new(OnceLock::new());
        let enqueue_timeout = options.enqueue_timeout;
        let background_nice = options.config.background_nice;
        let drop_logging_period = options.config.queue_drop_logging_period;
        let remote = Remote::new(client, options.config.clone(), org.clone());
        let uploads = Arc::new(UploadCounters::default());
        let worker = Worker::new(
            options,
            remote,
            counters.clone(),
            uploads.clone(),
            wake_sent.clone(),
        );
        // The runtime is built and dropped on the worker thread, never on the caller's (which
        // may itself be driving a runtime).
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name("braintrust-batcher".into())
            .spawn(move || {
                // Before the runtime, whose threads inherit the lowered priority.
                crate::background::lower_current_thread_priority(background_nice);
                // One runtime thread drives the requests while this thread prepares the next
                // chunk of rows.
                match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("braintrust-sender")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = ready_tx.send(Ok(()));
                        worker.run(&runtime, &rows_rx, &control_rx);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(StartError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::Thread(e)),
            Err(_) => {
                return Err(StartError::Thread(std::io::Error::other(
                    "the batcher thread ended before starting",
                )));
            }
        }
        Ok(Batcher {
            rows,
            control,
            wake_sent,
            wake_at,
            counters,
            enqueue_timeout,
            drop_logging_period,
            org,
            uploads,
            worker: Some(handle),
        })
    }

    /// Queues a complete row (it carries its own object ids). See [`Batcher::submit`].
    pub fn enqueue(&self, row: Row) -> bool {
        self.submit(PendingRow::row(row))
    }

    /// Queues a row. Never touches the network. When the queue is full it waits for space up to
    /// the enqueue timeout; a row that still does not fit is dropped, counted and reported.
    /// Returns whether the row was queued.
    pub fn submit(&self, row: PendingRow) -> bool {
        let attachments = referenced_attachments(&row);
        let row = match self.rows.try_send(Queued { row, attachments }) {
            Ok(()) => {
                self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                if self.rows.len() >= self.wake_at {
                    self.wake_worker();
                }
                return true;
            }
            Err(TrySendError::Full(row)) => row,
            Err(TrySendError::Disconnected(_)) => return self.drop_row("the batcher has stopped"),
        };
        self.wake_worker();
        match self.rows.send_timeout(row, self.enqueue_timeout) {
            Ok(()) => {
                self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(SendTimeoutError::Timeout(_)) => self.drop_row("the queue stayed full"),
            Err(SendTimeoutError::Disconnected(_)) => self.drop_row("the batcher has stopped"),
        }
    }

    /// Wakes the worker to drain the queue, unless a wake-up is already on its way.
    fn wake_worker(&self) {
        if !self.wake_sent.load(Ordering::Relaxed) && !self.wake_sent.swap(true, Ordering::AcqRel) {
            let _ = self.control.send(Control::Wake);
        }
    }

    fn drop_row(&self, why: &str) -> bool {
        let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Warn on the first drop, then at most once per logging period.
        let now = self.counters.born.elapsed().as_millis() as u64;
        let last = self.counters.last_drop_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX
            || now.saturating_sub(last) >= self.drop_logging_period.as_millis() as u64;
        if due
            && self
                .counters
                .last_drop_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(dropped, "braintrust: dropped a row because {why}");
        }
        false
    }

    /// Sends everything queued before this call; returns when it is delivered or has definitively
    /// failed, with an error if any row was lost since the previous flush. Blocks the calling
    /// thread (safe inside an async runtime too: the worker has its own); from async code
    /// prefer [`Batcher::flush_async`].
    pub fn flush(&self) -> Result<(), FlushError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::Flush(Reply::Blocking(tx)))
            .map_err(|_| FlushError::Stopped)?;
        rx.recv().unwrap_or(Err(FlushError::Stopped))
    }

    /// [`Batcher::flush`] that gives up waiting after `timeout` (the flush itself goes on).
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::Flush(Reply::Blocking(tx)))
            .map_err(|_| FlushError::Stopped)?;
        rx.recv_timeout(timeout).unwrap_or(Err(FlushError::Stopped))
    }

    /// [`Batcher::flush`] without blocking the caller's thread while waiting.
    pub async fn flush_async(&self) -> Result<(), FlushError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control
            .send(Control::Flush(Reply::Async(tx)))
            .map_err(|_| FlushError::Stopped)?;
        rx.await.unwrap_or(Err(FlushError::Stopped))
    }

    /// The organisation, if login already happened.
    pub fn org_state(&self) -> Option<OrgState> {
        self.org.get().cloned()
    }

    /// Logs in (and resolves `object`, if given) on the worker, waiting for the answer.
    pub fn resolve(&self, object: Option<ObjectRef>) -> Result<OrgState, String> {
        if let (Some(org), true) = (
            self.org.get(),
            object.as_ref().is_none_or(|o| o.ids().is_some()),
        ) {
            return Ok(org.clone());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::Resolve(object, Reply::Blocking(tx)))
            .map_err(|_| "the batcher has stopped".to_owned())?;
        rx.recv()
            .unwrap_or_else(|_| Err("the batcher has stopped".to_owned()))
    }

    /// [`Batcher::resolve`] without blocking the caller's thread while waiting.
    pub async fn resolve_async(&self, object: Option<ObjectRef>) -> Result<OrgState, String> {
        if let (Some(org), true) = (
            self.org.get(),
            object.as_ref().is_none_or(|o| o.ids().is_some()),
        ) {
            return Ok(org.clone());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.control
            .send(Control::Resolve(object, Reply::Async(tx)))
            .map_err(|_| "the batcher has stopped".to_owned())?;
        rx.await
            .unwrap_or_else(|_| Err("the batcher has stopped".to_owned()))
    }

    /// The counters so far.
    pub fn stats(&self) -> BatcherStats {
        let c = &self.counters;
        BatcherStats {
            enqueued: c.enqueued.load(Ordering::Relaxed),
            merged: c.merged.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            attachments_uploaded: self.uploads.uploaded.load(Ordering::Relaxed),
            attachments_failed: self.uploads.failed.load(Ordering::Relaxed),
        }
    }

    /// Flushes and stops the worker. Later `submit` calls drop (and count) their rows.
    pub fn shutdown(&mut self) -> Result<(), FlushError> {
        let Some(worker) = self.worker.take() else {
            return Ok(());
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let result = match self.control.send(Control::Shutdown(Reply::Blocking(tx))) {
            Ok(()) => rx.recv().unwrap_or(Err(FlushError::Stopped)),
            Err(_) => Err(FlushError::Stopped),
        };
        let _ = worker.join();
        result
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("braintrust: final flush failed: {e}");
        }
    }
}

/// Requests that may be in flight at once. Rows of one chunk have distinct keys (they were
/// merged), so its requests can go in parallel; the next chunk's requests start only after they
/// finish, so rows of one span always arrive in order.
const MAX_IN_FLIGHT: usize = 4;

/// Requests' worth of queued rows that wake the worker.
const WAKE_BATCHES: usize = 20;

/// Requests' worth of rows the worker gathers into one chunk before handing it to the sender
/// (fewer rows go when the queue runs dry or at a flush). In `log_throughput` against a
/// braintrust-local serving with one thread, 20 gave about 5% more throughput than 50 (16
/// alternating pairs, per-pair median 1.05) and 15 MB less peak memory; 10 was no better.
/// Against two server threads, 50 had given 8-14% more than 20.
const CHUNK_BATCHES: usize = 20;

/// Chunks handed to the sender at once: one sending and one waiting for it, so the worker
/// thread prepares the next chunk while the previous one is on the wire.
const MAX_CHUNKS_QUEUED: u32 = 2;

struct Worker {
    options: BatcherOptions,
    remote: Remote,
    wake_sent: Arc<AtomicBool>,
    delivery: Arc<Delivery>,
    /// Bounds the chunks handed to the sender ([`MAX_CHUNKS_QUEUED`]).
    chunks: Arc<tokio::sync::Semaphore>,
    /// The task sending the latest chunk; the next chunk's task waits for it.
    last_chunk: Option<tokio::task::JoinHandle<()>>,
    uploader: Arc<Uploader>,
}

/// One request of a chunk, with what follows it.
struct Job {
    batch: Batch,
    /// Row metadata for the overflow path, when the batch is too big for `/logs3`.
    overflow: Option<Vec<Value>>,
    /// Attachments to upload once the request is done.
    uploads: Vec<UploadJob>,
}

/// Rows ready to send, with what their attachments' uploads need.
struct Prepared {
    api_url: String,
    limit: PayloadLimit,
    rows: Vec<BatchRow>,
    /// Attachments by the key of the row referencing them (empty when there are none).
    attachments: HashMap<usize, Vec<Attachment>>,
    /// The organisation id, when there are attachments.
    org_id: Option<Arc<str>>,
}

/// What request tasks share: the client, settings, counters and the failures not yet reported.
struct Delivery {
    client: Arc<dyn HttpClient>,
    api_key: String,
    num_retries: u32,
    retry_base_delay: Duration,
    failed_payloads_dir: Option<std::path::PathBuf>,
    all_payloads_dir: Option<std::path::PathBuf>,
    counters: Arc<Counters>,
    failures: std::sync::Mutex<Failures>,
    dumped: AtomicU64,
}

#[derive(Default)]
struct Failures {
    /// Rows failed since the last flush report.
    undelivered: u64,
    last_error: String,
}

/// Why one attempt at a request failed.
struct AttemptError {
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl AttemptError {
    fn from_http(e: &HttpError) -> AttemptError {
        AttemptError {
            message: e.to_string(),
            retryable: true,
            retry_after: None,
        }
    }

    fn fatal(message: String) -> AttemptError {
        AttemptError {
            message,
            retryable: false,
            retry_after: None,
        }
    }
}

impl Worker {
    fn new(
        options: BatcherOptions,
        remote: Remote,
        counters: Arc<Counters>,
        uploads: Arc<UploadCounters>,
        wake_sent: Arc<AtomicBool>,
    ) -> Worker {
        let config = &options.config;
        let delivery = Delivery {
            client: remote.client.clone(),
            api_key: remote.api_key().to_owned(),
            num_retries: config.num_retries,
            retry_base_delay: options.retry_base_delay,
            failed_payloads_dir: config.failed_payloads_dir.clone(),
            all_payloads_dir: config.all_payloads_dir.clone(),
            counters,
            failures: std::sync::Mutex::new(Failures::default()),
            dumped: AtomicU64::new(0),
        };
        let uploader = Uploader::new(
            remote.client.clone(),
            remote.api_key().to_owned(),
            UploadSettings {
                attempts: 8,
                base_delay: options.attachment_retry_base_delay,
            },
            uploads,
        );
        Worker {
            options,
            remote,
            wake_sent,
            delivery: Arc::new(delivery),
            chunks: Arc::new(tokio::sync::Semaphore::new(MAX_CHUNKS_QUEUED as usize)),
            last_chunk: None,
            uploader: Arc::new(uploader),
        }
    }

    fn run(
        mut self,
        runtime: &tokio::runtime::Runtime,
        rows: &Receiver<Queued>,
        control: &Receiver<Control>,
    ) {
        self.uploader.spawn_on(runtime);
        let mut gathered = Gathered::default();
        let mut dropped_seen = 0;
        let sync = self.options.config.sync_flush;
        let eager_at = self.options.config.batch_size.max(1) * CHUNK_BATCHES;
        let capacity = self.options.config.queue_size.max(1);
        loop {
            let message = control.recv_timeout(self.options.flush_interval);
            // Whatever woke us, move the queued rows aside (sending full chunks on the way);
            // producers may signal again from here on.
            self.wake_sent.store(false, Ordering::Release);
            while let Ok(row) = rows.try_recv() {
                if gathered.is_empty() {
                    // Room for what is queued now, so that the batch does not grow again and
                    // again.
                    gathered = Gathered::with_capacity(rows.len().min(eager_at) + 1);
                }
                gathered.add(row);
                // In sync-flush mode rows wait for a flush, unless they would pile up past the
                // queue's size.
                if (!sync && gathered.len() >= eager_at) || gathered.len() >= capacity {
                    self.send(runtime, std::mem::take(&mut gathered));
                }
            }
            match message {
                Ok(Control::Wake) => {}
                Ok(Control::Flush(ack)) => {
                    self.send(runtime, std::mem::take(&mut gathered));
                    self.wait_idle(runtime);
                    let uploads = self.wait_uploads(runtime);
                    ack.send(self.report(&mut dropped_seen, uploads));
                }
                Ok(Control::Shutdown(ack)) => {
                    self.send(runtime, std::mem::take(&mut gathered));
                    self.wait_idle(runtime);
                    let uploads = self.wait_uploads(runtime);
                    ack.send(self.report(&mut dropped_seen, uploads));
                    return;
                }
                Ok(Control::Resolve(object, reply)) => {
                    let result = runtime.block_on(async {
                        let org = self.remote.org().await.map_err(|e| e.message)?;
                        if let Some(object) = &object {
                            self.remote.resolve(object).await.map_err(|e| e.message)?;
                        }
                        Ok(org)
                    });
                    reply.send(result);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if !sync && !gathered.is_empty() {
                        self.send(runtime, std::mem::take(&mut gathered));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.send(runtime, std::mem::take(&mut gathered));
                    self.wait_idle(runtime);
                    let _ = self.wait_uploads(runtime);
                    return;
                }
            }
        }
    }

    /// Waits until every chunk handed to the sender is done.
    fn wait_idle(&mut self, runtime: &tokio::runtime::Runtime) {
        if let Some(last) = self.last_chunk.take() {
            // A panicking request task has already lost its rows; there is nothing to add.
            let _ = runtime.block_on(last);
        }
    }

    /// Waits for attachment uploads (after the rows' requests), up to the flush deadline; the
    /// number still running when it passes.
    fn wait_uploads(&self, runtime: &tokio::runtime::Runtime) -> Result<(), u64> {
        runtime.block_on(
            self.uploader
                .wait_idle(self.options.attachment_flush_timeout),
        )
    }

    /// The result for a flush: an error when rows were lost since the previous report, else
    /// when attachment uploads failed or were still running.
    fn report(
        &mut self,
        dropped_seen: &mut u64,
        uploads: Result<(), u64>,
    ) -> Result<(), FlushError> {
        let dropped = self.delivery.counters.dropped.load(Ordering::Relaxed);
        let newly_dropped = dropped - *dropped_seen;
        *dropped_seen = dropped;
        let upload_failures = self.uploader.take_failures();
        let mut failures = self.delivery.failures();
        let rows = std::mem::take(&mut failures.undelivered) + newly_dropped;
        if rows == 0 {
            if let Some((attachments, last_error)) = upload_failures {
                return Err(FlushError::AttachmentsFailed {
                    attachments,
                    last_error,
                });
            }
            return uploads.map_err(|attachments| FlushError::AttachmentsPending { attachments });
        }
        let last_error = if failures.last_error.is_empty() {
            "rows were dropped before reaching the queue".to_owned()
        } else {
            std::mem::take(&mut failures.last_error)
        };
        Err(FlushError::Undelivered { rows, last_error })
    }

    /// Turns pending rows into requests: resolves objects, merges, masks and packs on this
    /// thread, then hands the requests to a sender task that starts them once the previous
    /// chunk's requests are done. Waits only while [`MAX_CHUNKS_QUEUED`] chunks are queued.
    fn send(&mut self, runtime: &tokio::runtime::Runtime, gathered: Gathered) {
        if gathered.is_empty() {
            return;
        }
        let Some(prepared) = runtime.block_on(self.prepare(gathered)) else {
            return;
        };
        let Prepared {
            api_url,
            limit,
            rows,
            mut attachments,
            org_id,
        } = prepared;
        let api_url: Arc<str> = api_url.into();
        let jobs: Vec<Job> = pack(&rows, self.options.config.batch_size, limit.max_bytes)
            .into_iter()
            .map(|batch| {
                let rows = &rows[batch.range.clone()];
                let overflow = (limit.overflow && batch.body.len() > limit.max_bytes).then(|| {
                    rows.iter()
                        .map(|row| overflow_row_meta(&row.clone().into_row()))
                        .collect()
                });
                let uploads = match (&org_id, attachments.is_empty()) {
                    (Some(org_id), false) => batch
                        .range
                        .clone()
                        .filter_map(|i| attachments.remove(&i))
                        .flatten()
                        .map(|attachment| UploadJob {
                            attachment,
                            api_url: api_url.clone(),
                            org_id: org_id.clone(),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                Job {
                    batch,
                    overflow,
                    uploads,
                }
            })
            .collect();
        drop(rows);
        let Ok(queued) = runtime.block_on(self.chunks.clone().acquire_owned()) else {
            return;
        };
        let previous = self.last_chunk.take();
        let delivery = self.delivery.clone();
        let uploader = self.uploader.clone();
        self.last_chunk = Some(runtime.spawn(async move {
            // Keep the order of chunks: a span's rows in this chunk follow those in the last.
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            send_chunk(delivery, uploader, api_url, jobs).await;
            drop(queued);
        }));
    }

    /// Resolves the API URL and the objects of rows that wait for theirs, folds those rows in
    /// and masks the rows.
    async fn prepare(&mut self, mut gathered: Gathered) -> Option<Prepared> {
        let api_url = match self.api_url_with_retries().await {
            Ok(url) => url,
            Err(e) => {
                gathered.abandon_attachments(&self.uploader, &e);
                self.delivery.fail(gathered.len() as u64, e);
                return None;
            }
        };
        // Resolve lazily named objects; rows whose object cannot be resolved fail.
        let mut unresolved = 0u64;
        let mut resolve_error = String::new();
        let mut failed_objects: Vec<ObjectRef> = Vec::new();
        for Queued { row, attachments } in std::mem::take(&mut gathered.waiting) {
            if let Some(object) = row.object.as_ref().filter(|o| o.ids().is_none()) {
                let ok = !failed_objects.iter().any(|f| f.same_object(object)) && {
                    match self.resolve_with_retries(object).await {
                        Ok(()) => true,
                        Err(e) => {
                            failed_objects.push(object.clone());
                            resolve_error = e;
                            false
                        }
                    }
                };
                if !ok {
                    unresolved += 1;
                    self.uploader
                        .abandon(&attachments, "its row's object could not be registered");
                    continue;
                }
            }
            gathered.fold(row, attachments);
        }
        let Gathered {
            batch,
            mut attachments,
            ..
        } = gathered;
        self.delivery.fail(unresolved, resolve_error);
        if batch.added() == 0 {
            return None;
        }
        let org_id = if attachments.is_empty() {
            None
        } else {
            match self.org_with_retries().await {
                Ok(org) => Some(Arc::<str>::from(org.org_id)),
                Err(e) => {
                    for referenced in attachments.values() {
                        self.uploader
                            .abandon(referenced, &format!("login failed: {e}"));
                    }
                    attachments.clear();
                    None
                }
            }
        };
        let before = batch.added();
        let mut rows = batch.into_batch_rows();
        self.delivery
            .counters
            .merged
            .fetch_add((before - rows.len()) as u64, Ordering::Relaxed);
        if let Some(mask) = masking_function() {
            for row in &mut rows {
                mask.apply(row.as_map_mut());
            }
        }
        let limit = self.remote.payload_limit(&api_url).await;
        Some(Prepared {
            api_url,
            limit,
            rows,
            attachments,
            org_id,
        })
    }

    /// Sleeps before another attempt after `error`, or returns false when retries are spent.
    async fn may_retry(&mut self, attempt: &mut u32, error: &RemoteError) -> bool {
        if !error.retryable || *attempt >= self.delivery.num_retries {
            return false;
        }
        self.delivery
            .counters
            .retried
            .fetch_add(1, Ordering::Relaxed);
        let delay = self.delivery.backoff(*attempt);
        tracing::debug!(attempt, ?delay, "braintrust: retrying: {}", error.message);
        tokio::time::sleep(delay).await;
        *attempt += 1;
        true
    }

    async fn org_with_retries(&mut self) -> Result<OrgState, String> {
        let mut attempt = 0;
        loop {
            match self.remote.org().await {
                Ok(org) => return Ok(org),
                Err(e) if self.may_retry(&mut attempt, &e).await => {}
                Err(e) => return Err(e.message),
            }
        }
    }

    async fn api_url_with_retries(&mut self) -> Result<String, String> {
        let mut attempt = 0;
        loop {
            match self.remote.api_url().await {
                Ok(url) => return Ok(url),
                Err(e) if self.may_retry(&mut attempt, &e).await => {}
                Err(e) => return Err(e.message),
            }
        }
    }

    async fn resolve_with_retries(&mut self, object: &ObjectRef) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            match self.remote.resolve(object).await {
                Ok(()) => return Ok(()),
                Err(e) if self.may_retry(&mut attempt, &e).await => {}
                Err(e) => return Err(e.message),
            }
        }
    }
}

impl Delivery {
    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, rows: u64, error: String) {
        if rows == 0 {
            return;
        }
        self.counters.failed.fetch_add(rows, Ordering::Relaxed);
        tracing::warn!(rows, "braintrust: log request failed: {error}");
        let mut failures = self.failures();
        failures.undelivered += rows;
        failures.last_error = error;
    }

    /// The delay before retry number `attempt` (from 0).
    fn backoff(&self, attempt: u32) -> Duration {
        crate::remote::backoff(self.retry_base_delay, attempt)
    }

    fn request(&self, method: Method, url: String) -> crate::http::HttpRequest {
        crate::remote::api_request(method, url, &self.api_key)
    }

    /// Sends one batch with retries; `overflow` carries the row metadata when the batch must go
    /// through the overflow upload.
    async fn post(&self, api_url: &str, batch: Batch, overflow: Option<Vec<Value>>) {
        let body = batch.body;
        if let Some(dir) = &self.all_payloads_dir {
            self.dump(dir, &body);
        }
        let mut attempt = 0;
        let error = loop {
            let result = match &overflow {
                Some(meta) => self.post_overflow(api_url, &body, meta).await,
                None => self.post_logs3(api_url, body.clone()).await,
            };
            let error = match result {
                Ok(()) => {
                    self.counters.sent.fetch_add(batch.rows, Ordering::Relaxed);
                    self.counters.requests.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => e,
            };
            if !error.retryable || attempt >= self.num_retries {
                break error.message;
            }
            self.counters.retried.fetch_add(1, Ordering::Relaxed);
            let backoff = self.backoff(attempt);
            let delay = error.retry_after.map_or(backoff, |r| r.max(backoff));
            tracing::debug!(
                attempt,
                ?delay,
                "braintrust: retrying /logs3: {}",
                error.message
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        };
        if let Some(dir) = &self.failed_payloads_dir {
            self.dump(dir, &body);
        }
        let attempts = attempt + 1;
        self.fail(
            batch.rows,
            format!(
                "{error} (payload of {} bytes, {attempts} attempts)",
                body.len()
            ),
        );
    }

    async fn post_logs3(&self, api_url: &str, body: RequestBody) -> Result<(), AttemptError> {
        let request = self
            .request(Method::Post, format!("{api_url}/logs3"))
            .header("Content-Type", "application/json")
            .body(body);
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| AttemptError::from_http(&e))?;
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        Err(AttemptError {
            message: format!(
                "HTTP {}: {}",
                response.status,
                truncate(&response.text(), 500)
            ),
            retryable: is_retryable(response.status),
            retry_after: response.header("retry-after").and_then(parse_retry_after),
        })
    }

    /// Uploads an oversized body to a signed URL and posts a reference to it.
    async fn post_overflow(
        &self,
        api_url: &str,
        body: &RequestBody,
        meta: &[Value],
    ) -> Result<(), AttemptError> {
        let request_body = json!({
            "content_type": "application/json",
            "size_bytes": body.len(),
            "rows": meta,
        });
        let request = self
            .request(Method::Post, format!("{api_url}/logs3/overflow"))
            .header("Content-Type", "application/json")
            .body(request_body.to_string().into_bytes());
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| AttemptError::from_http(&e))?;
        let retryable = is_retryable(response.status);
        let grant = json_ok(&response).map_err(|message| AttemptError {
            message: format!("/logs3/overflow: {message}"),
            retryable,
            retry_after: None,
        })?;
        let field = |k: &str| grant.get(k).and_then(Value::as_str);
        let (Some(url), Some(key)) = (field("signedUrl"), field("key")) else {
            return Err(AttemptError::fatal(
                "/logs3/overflow: the response lacks `signedUrl` or `key`".into(),
            ));
        };
        if field("method").unwrap_or("PUT") != "PUT" {
            return Err(AttemptError::fatal(format!(
                "/logs3/overflow: unsupported upload method {:?}",
                field("method")
            )));
        }
        // Signed URLs carry their own authorisation: no API key.
        let mut headers: Vec<(String, String)> = match grant.get("headers") {
            Some(Value::Object(headers)) => headers
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            _ => Vec::new(),
        };
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("Content-Type".into(), "application/json".into()));
        }
        let upload = signed_put(url, headers, body.clone());
        let response = self
            .client
            .send(upload)
            .await
            .map_err(|e| AttemptError::from_http(&e))?;
        json_ok(&response).map_err(|message| AttemptError {
            message: format!("overflow upload: {message}"),
            retryable: is_retryable(response.status),
            retry_after: None,
        })?;
        let reference = json!({
            "rows": {"type": "logs3_overflow", "key": key, "size_bytes": body.len()},
            "api_version": 2,
        });
        self.post_logs3(api_url, reference.to_string().into_bytes().into())
            .await
    }

    fn dump(&self, dir: &Path, body: &[u8]) {
        let n = self.dumped.fetch_add(1, Ordering::Relaxed) + 1;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = dir.join(format!("payload_{millis}_{}_{n}.json", std::process::id(),));
        let result = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, body));
        if let Err(e) = result {
            tracing::warn!(
                "braintrust: cannot write payload to {}: {e}",
                path.display()
            );
        }
    }
}

/// `POST /logs3/overflow` metadata of one row.
/// Sends a chunk's requests, at most [`MAX_IN_FLIGHT`] at once, and returns when all are done.
async fn send_chunk(
    delivery: Arc<Delivery>,
    uploader: Arc<Uploader>,
    api_url: Arc<str>,
    jobs: Vec<Job>,
) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut requests = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let delivery = delivery.clone();
        let uploader = uploader.clone();
        let api_url = api_url.clone();
        requests.push(tokio::spawn(async move {
            delivery.post(&api_url, job.batch, job.overflow).await;
            // Attachments go up after the rows referencing them (delivered or not: the rows may
            // still arrive by other means, e.g. a payload dump).
            if !job.uploads.is_empty() {
                uploader.enqueue(job.uploads).await;
            }
            drop(permit);
        }));
    }
    for request in requests {
        let _ = request.await;
    }
}

fn overflow_row_meta(row: &Row) -> Value {
    let map = row.as_map();
    let mut object_ids = Map::new();
    for key in [
        "experiment_id",
        "dataset_id",
        "prompt_session_id",
        "project_id",
        "log_id",
        "function_data",
    ] {
        if let Some(v) = map.get(key).filter(|v| !v.is_null()) {
            object_ids.insert(key.into(), v.clone());
        }
    }
    let byte_size = serde_json::to_vec(map).map_or(0, |b| b.len());
    json!({
        "object_ids": object_ids,
        "has_comment": map.get("comment").is_some_and(|c| !c.is_null()),
        "is_delete": row.is_delete(),
        "input_row": {"byte_size": byte_size},
    })
}

/// `Retry-After` in seconds (HTTP dates are not used by Braintrust), capped.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER))
}

/// One `/logs3` request body, how many rows it carries and where they are in the row list.
#[derive(Debug)]
struct Batch {
    body: RequestBody,
    rows: u64,
    range: Range<usize>,
}

/// A row as [`pack`] writes it into a request body.
trait WriteRow {
    /// Appends the row's JSON. Serialising a JSON map into memory cannot fail.
    fn write_row(&self, out: &mut Vec<u8>);
}

impl WriteRow for Row {
    fn write_row(&self, out: &mut Vec<u8>) {
        // simd-json writes the same compact JSON as serde_json, faster (the serialize_batch
        // bench); serialised_rows_round_trip checks it.
        let _ = simd_json::serde::to_writer(out, self);
    }
}

impl WriteRow for BatchRow {
    fn write_row(&self, out: &mut Vec<u8>) {
        self.write_json(out);
    }
}

/// Serialises rows into request bodies of at most `batch_size` rows and `max_bytes` bytes. A row
/// larger than the limit goes alone.
fn pack<R: WriteRow>(rows: &[R], batch_size: usize, max_bytes: usize) -> Vec<Batch> {
    const OPEN: &[u8] = br#"{"rows":["#;
    let mut batches = Vec::new();
    // Each body is written into a buffer of its own, which the request then shares as it is.
    // A body starts with room for about the last one's size, so it seldom grows (and copies).
    let mut body = Vec::new();
    let mut room = 0;
    let mut first = 0;
    let finish =
        |body: &mut Vec<u8>, room: &mut usize, range: Range<usize>, batches: &mut Vec<Batch>| {
            body.extend_from_slice(br#"],"api_version":2}"#);
            *room = body.len() + body.len() / 8;
            if body.capacity() - body.len() > body.len() / 4 {
                // Grown past what it holds (the first body of a chunk): give the rest back.
                body.shrink_to_fit();
            }
            batches.push(Batch {
                body: RequestBody::from(std::mem::take(body)),
                rows: range.len() as u64,
                range,
            });
        };
    for (i, row) in rows.iter().enumerate() {
        if i > first && i - first >= batch_size.max(1) {
            finish(&mut body, &mut room, first..i, &mut batches);
            first = i;
        }
        if body.is_empty() {
            body.reserve(room);
        }
        let before = body.len();
        body.extend_from_slice(if i == first { OPEN } else { b"," });
        let row_start = body.len();
        // Rows go straight into the body; the rare row that does not fit moves to the next one.
        row.write_row(&mut body);
        let needed = body.len() - row_start + 1;
        if i > first && before + needed + ENVELOPE_OVERHEAD > max_bytes {
            let row_json = body.split_off(row_start);
            body.truncate(before);
            finish(&mut body, &mut room, first..i, &mut batches);
            first = i;
            body.reserve(room.max(OPEN.len() + row_json.len() + ENVELOPE_OVERHEAD));
            body.extend_from_slice(OPEN);
            body.extend_from_slice(&row_json);
        }
    }
    if first < rows.len() {
        finish(&mut body, &mut room, first..rows.len(), &mut batches);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, payload: usize) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let v = json!({"id": format!("r{i}"), "experiment_id": "e", "input": "x".repeat(payload)});
                Row::from_map(v.as_object().unwrap().clone())
            })
            .collect()
    }

    #[test]
    fn packs_by_count_and_bytes_into_valid_envelopes() {
        let batches = pack(&rows(250, 10), 100, 1 << 20);
        let sizes: Vec<u64> = batches.iter().map(|b| b.rows).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(batches[2].range, 200..250);
        for b in &batches {
            let v: Value = serde_json::from_slice(&b.body).unwrap();
            assert_eq!(v["api_version"], 2);
            assert_eq!(v["rows"].as_array().unwrap().len() as u64, b.rows);
        }
        // Each row is ~60 bytes: a 300-byte limit holds four of them.
        let input = rows(10, 10);
        let small = pack(&input, 100, 300);
        assert!(small.len() > 1);
        assert!(small.iter().all(|b| b.body.len() <= 300));
        // Every row arrives once, in order, in the body its range names (a row that did not fit
        // moved to the next body).
        let mut next = 0;
        let mut sent = Vec::new();
        for b in &small {
            assert_eq!(b.range.start, next);
            next = b.range.end;
            let v: Value = serde_json::from_slice(&b.body).unwrap();
            let body_rows = v["rows"].as_array().unwrap();
            assert_eq!(body_rows.len(), b.range.len());
            sent.extend(body_rows.iter().cloned());
        }
        let expected: Vec<Value> = input
            .iter()
            .map(|r| Value::Object(r.as_map().clone()))
            .collect();
        assert_eq!(sent, expected);
        // A row over the limit goes alone.
        let big = pack(&rows(3, 1000), 100, 300);
        assert_eq!(big.iter().map(|b| b.rows).collect::<Vec<_>>(), [1, 1, 1]);
    }

    proptest::proptest! {
        /// Request bodies read back exactly as the rows they were made from (floats included).
        #[test]
        fn serialised_rows_round_trip(
            f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
            i in proptest::prelude::any::<i64>(),
            u in proptest::prelude::any::<u64>(),
            s in ".{0,40}",
        ) {
            let row = Row::from_map(
                json!({"id": s, "metrics": {"f": f}, "metadata": {"i": i, "u": u, "s": s}})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            let batches = pack(std::slice::from_ref(&row), 10, 1 << 20);
            let parsed: Value = serde_json::from_slice(&batches[0].body).unwrap();
            proptest::prop_assert_eq!(&parsed["rows"][0], &Value::from(row));
        }
    }

    proptest::proptest! {
        /// A span folded into a typed row is sent as its row would be.
        #[test]
        fn folded_span_rows_are_sent_as_their_rows(
            name in ".{0,20}",
            text in ".{0,40}",
            f in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
        ) {
            use braintrust_core::event::SpanAttributes;
            use braintrust_core::id::IdFormat;
            use braintrust_core::object::ObjectIds;
            use braintrust_core::row::SpanIdentity;
            use braintrust_core::span::{LoggedFields, SpanOrigin};
            use std::time::{Duration, SystemTime};

            let object = ObjectRef::resolved(ObjectIds::project_logs("p"));
            let span = SpanIdentity::root(IdFormat::default()).child(IdFormat::default());
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(1.7e9 + f.abs().min(1e6));
            let fields = |v: Value| v.as_object().cloned().unwrap_or_default();
            let pending = [
                PendingKind::SpanStart(SpanStartRow {
                    span: span.clone(),
                    attributes: SpanAttributes::named(name),
                    exec_counter: 7,
                    origin: SpanOrigin { instrumentation: "t".into(), caller: None },
                    start: at,
                    fields: fields(json!({"input": {"text": text}})),
                    input: None,
                    deferred: None,
                }),
                PendingKind::SpanUpdate {
                    span: span.clone(),
                    // `metadata` goes as JSON text written by the logging thread.
                    fields: LoggedFields::written_now(fields(json!({"metrics": {"f": f}, "metadata": {"s": text}}))),
                },
                PendingKind::SpanEnd { span, end: at, fields: LoggedFields::new(), output: Some(json!(text)), deferred: None },
            ];
            let mut batch = RowBatch::new();
            for kind in pending {
                batch.push(PendingRow { object: Some(object.clone()), kind }, &mut Vec::new());
            }
            let rows = batch.into_batch_rows();
            proptest::prop_assert_eq!(rows.len(), 1);
            // No attachment is alive in these tests, so the text was written.
            proptest::prop_assert!(rows[0].has_json_text());
            let sent = pack(&rows, 10, 1 << 20);
            let expected = Value::from(rows[0].clone().into_row());
            // Text is copied in as the JSON it holds (as a string, `metadata` would differ).
            let parsed: Value = serde_json::from_slice(&sent[0].body).unwrap();
            // As text, so that the order of keys counts too (simd-json writes some floats
            // differently, e.g. `e82` for `e+82`, which parsing evens out).
            proptest::prop_assert_eq!(parsed["rows"][0].to_string(), expected.to_string());
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!is_retryable(s), "{s}");
        }
    }

    #[test]
    fn retry_after_is_seconds_and_capped() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("100000"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn overflow_metadata_names_object_ids() {
        let row = Row::from_map(
            json!({"id": "r", "project_id": "p", "log_id": "g", "input": "x", "comment": {"text": "c"}})
                .as_object()
                .unwrap()
                .clone(),
        );
        let meta = overflow_row_meta(&row);
        assert_eq!(
            meta["object_ids"],
            json!({"project_id": "p", "log_id": "g"})
        );
        assert_eq!(meta["has_comment"], true);
        assert_eq!(meta["is_delete"], false);
        assert_eq!(
            meta["input_row"]["byte_size"],
            serde_json::to_vec(row.as_map()).unwrap().len()
        );
    }
}
