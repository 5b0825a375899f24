//! The batcher: rows go into a bounded queue; a dedicated worker thread with its own small tokio
//! runtime merges rows with equal keys, applies the masking function, packs them into `/logs3`
//! requests by row count and bytes, and sends them with retries. It works whatever runtime the
//! program uses, or none.
//!
//! Nothing is dropped silently: when the queue is full, [`Batcher::enqueue`] waits for space up to
//! a bounded time; a row that still cannot be queued, or that fails delivery after its retries,
//! is counted in [`BatcherStats`] and reported through `tracing`, and [`Batcher::flush`] returns
//! an error naming how many rows failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use braintrust_core::mask::masking_function;
use braintrust_core::merge::merge_row_batch;
use braintrust_core::row::Row;
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

use crate::http::{HttpClient, HttpError, HttpOptions, HttpRequest, HyperClient, Method};

/// `{"rows": [], "api_version": 2}` framing around the rows of a request.
const ENVELOPE_OVERHEAD: usize = r#"{"rows":[],"api_version":2}"#.len();

/// Settings of a [`Batcher`].
#[derive(Debug, Clone)]
pub struct BatcherOptions {
    /// Base URL of the API (`/logs3` is appended).
    pub api_url: String,
    /// API key sent as `Authorization: Bearer …`.
    pub api_key: String,
    /// Rows per request (`BRAINTRUST_DEFAULT_BATCH_SIZE`, default 100).
    pub batch_size: usize,
    /// Bytes per request (`BRAINTRUST_MAX_REQUEST_SIZE`, default 6 MiB).
    pub max_request_bytes: usize,
    /// Rows the queue holds (`BRAINTRUST_QUEUE_SIZE`, default 25,000).
    pub queue_capacity: usize,
    /// How long `enqueue` waits for space in a full queue before dropping (and counting) the row.
    pub enqueue_timeout: Duration,
    /// Retries after a failed attempt (`BRAINTRUST_NUM_RETRIES`, default 2).
    pub num_retries: u32,
    /// First retry delay; doubles each retry (default 1 s).
    pub retry_base_delay: Duration,
    /// How long rows may wait in the worker before being sent without a flush.
    pub flush_interval: Duration,
    /// Timeouts of the default HTTP client.
    pub http: HttpOptions,
}

impl BatcherOptions {
    /// Defaults for the given API URL and key.
    pub fn new(api_url: impl Into<String>, api_key: impl Into<String>) -> BatcherOptions {
        BatcherOptions {
            api_url: api_url.into().trim_end_matches('/').to_owned(),
            api_key: api_key.into(),
            batch_size: 100,
            max_request_bytes: 6 * 1024 * 1024,
            queue_capacity: 25_000,
            enqueue_timeout: Duration::from_secs(10),
            num_retries: 2,
            retry_base_delay: Duration::from_secs(1),
            flush_interval: Duration::from_millis(250),
            http: HttpOptions::default(),
        }
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
}

#[derive(Debug, Default)]
struct Counters {
    enqueued: AtomicU64,
    merged: AtomicU64,
    sent: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    requests: AtomicU64,
}

/// Why a flush did not deliver everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// Rows failed delivery (or were dropped) since the previous flush.
    #[error("{rows} rows were not delivered since the last flush; last error: {last_error}")]
    Undelivered {
        /// How many rows.
        rows: u64,
        /// The last error seen.
        last_error: String,
    },
    /// The batcher's worker is gone.
    #[error("the batcher has stopped")]
    Stopped,
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

enum Ack {
    Blocking(Sender<Result<(), FlushError>>),
    Async(tokio::sync::oneshot::Sender<Result<(), FlushError>>),
}

impl Ack {
    fn send(self, result: Result<(), FlushError>) {
        match self {
            Ack::Blocking(tx) => {
                let _ = tx.send(result);
            }
            Ack::Async(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

enum Message {
    Row(Row),
    Flush(Ack),
    Shutdown(Ack),
}

/// The background row sender. Dropping it flushes what is queued and stops the worker.
pub struct Batcher {
    sender: Sender<Message>,
    counters: Arc<Counters>,
    enqueue_timeout: Duration,
    worker: Option<JoinHandle<()>>,
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
        let (sender, receiver) = crossbeam_channel::bounded(options.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let enqueue_timeout = options.enqueue_timeout;
        let worker = Worker {
            options,
            client,
            counters: counters.clone(),
            undelivered: 0,
            last_error: String::new(),
        };
        // The runtime is built and dropped on the worker thread, never on the caller's (which
        // may itself be driving a runtime).
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name("braintrust-batcher".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = ready_tx.send(Ok(()));
                        worker.run(&runtime, &receiver);
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
            sender,
            counters,
            enqueue_timeout,
            worker: Some(handle),
        })
    }

    /// Queues a row. Never touches the network. When the queue is full it waits for space up to
    /// the enqueue timeout; a row that still does not fit is dropped, counted and reported.
    /// Returns whether the row was queued.
    pub fn enqueue(&self, row: Row) -> bool {
        let message = match self.sender.try_send(Message::Row(row)) {
            Ok(()) => {
                self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Err(TrySendError::Full(message)) => message,
            Err(TrySendError::Disconnected(_)) => return self.drop_row("the batcher has stopped"),
        };
        match self.sender.send_timeout(message, self.enqueue_timeout) {
            Ok(()) => {
                self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(SendTimeoutError::Timeout(_)) => self.drop_row("the queue stayed full"),
            Err(SendTimeoutError::Disconnected(_)) => self.drop_row("the batcher has stopped"),
        }
    }

    fn drop_row(&self, why: &str) -> bool {
        let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Report the first drop and then every 1000th, so a flood does not flood the log.
        if dropped == 1 || dropped.is_multiple_of(1000) {
            tracing::warn!(dropped, "braintrust: dropped a row because {why}");
        }
        false
    }

    /// Sends everything queued before this call; returns when it is delivered or has definitively
    /// failed. Blocks the calling thread (safe inside an async runtime too: the worker has its
    /// own); from async code prefer [`Batcher::flush_async`].
    pub fn flush(&self) -> Result<(), FlushError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.sender
            .send(Message::Flush(Ack::Blocking(tx)))
            .map_err(|_| FlushError::Stopped)?;
        rx.recv().unwrap_or(Err(FlushError::Stopped))
    }

    /// [`Batcher::flush`] without blocking the caller's thread while waiting.
    pub async fn flush_async(&self) -> Result<(), FlushError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut message = Message::Flush(Ack::Async(tx));
        // Wait for queue space without blocking the caller's runtime thread.
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) => {
                    message = m;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(FlushError::Stopped),
            }
        }
        rx.await.unwrap_or(Err(FlushError::Stopped))
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
        }
    }

    /// Flushes and stops the worker. Later `enqueue` calls drop (and count) their rows.
    pub fn shutdown(&mut self) -> Result<(), FlushError> {
        let Some(worker) = self.worker.take() else {
            return Ok(());
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let result = match self.sender.send(Message::Shutdown(Ack::Blocking(tx))) {
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

struct Worker {
    options: BatcherOptions,
    client: Arc<dyn HttpClient>,
    counters: Arc<Counters>,
    /// Rows failed or dropped since the last flush report.
    undelivered: u64,
    last_error: String,
}

impl Worker {
    fn run(mut self, runtime: &tokio::runtime::Runtime, receiver: &Receiver<Message>) {
        let mut pending: Vec<Row> = Vec::new();
        let mut dropped_seen = 0;
        loop {
            let message = receiver.recv_timeout(self.options.flush_interval);
            match message {
                Ok(Message::Row(row)) => {
                    pending.push(row);
                    if pending.len() >= self.options.batch_size.max(1) * 10 {
                        runtime.block_on(self.send(std::mem::take(&mut pending)));
                    }
                }
                Ok(Message::Flush(ack)) => {
                    runtime.block_on(self.send(std::mem::take(&mut pending)));
                    ack.send(self.report(&mut dropped_seen));
                }
                Ok(Message::Shutdown(ack)) => {
                    runtime.block_on(self.send(std::mem::take(&mut pending)));
                    ack.send(self.report(&mut dropped_seen));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if !pending.is_empty() {
                        runtime.block_on(self.send(std::mem::take(&mut pending)));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    runtime.block_on(self.send(std::mem::take(&mut pending)));
                    return;
                }
            }
        }
    }

    /// The result for a flush: an error when rows were lost since the previous report.
    fn report(&mut self, dropped_seen: &mut u64) -> Result<(), FlushError> {
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        let newly_dropped = dropped - *dropped_seen;
        *dropped_seen = dropped;
        let rows = std::mem::take(&mut self.undelivered) + newly_dropped;
        if rows == 0 {
            return Ok(());
        }
        let last_error = if self.last_error.is_empty() {
            "rows were dropped before reaching the queue".to_owned()
        } else {
            std::mem::take(&mut self.last_error)
        };
        Err(FlushError::Undelivered { rows, last_error })
    }

    async fn send(&mut self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        let before = rows.len();
        let mut rows = merge_row_batch(rows);
        self.counters
            .merged
            .fetch_add((before - rows.len()) as u64, Ordering::Relaxed);
        if let Some(mask) = masking_function() {
            for row in &mut rows {
                mask.apply(row.as_map_mut());
            }
        }
        for batch in pack(
            &rows,
            self.options.batch_size,
            self.options.max_request_bytes,
        ) {
            self.post(batch).await;
        }
    }

    async fn post(&mut self, batch: Batch) {
        let request = HttpRequest::new(Method::Post, format!("{}/logs3", self.options.api_url))
            .header("Authorization", format!("Bearer {}", self.options.api_key))
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("braintrust-rust/", env!("CARGO_PKG_VERSION")),
            )
            .body(batch.body);
        let mut attempt = 0;
        let error = loop {
            let (retryable, error) = match self.client.send(request.clone()).await {
                Ok(response) if (200..300).contains(&response.status) => {
                    self.counters.sent.fetch_add(batch.rows, Ordering::Relaxed);
                    self.counters.requests.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(response) => (
                    is_retryable(response.status),
                    format!(
                        "HTTP {}: {}",
                        response.status,
                        truncate(&response.text(), 500)
                    ),
                ),
                Err(e) => (true, e.to_string()),
            };
            if !retryable || attempt >= self.options.num_retries {
                break error;
            }
            self.counters.retried.fetch_add(1, Ordering::Relaxed);
            let delay = self.options.retry_base_delay * 2u32.saturating_pow(attempt);
            tracing::debug!(attempt, ?delay, "braintrust: retrying /logs3: {error}");
            tokio::time::sleep(delay).await;
            attempt += 1;
        };
        self.counters
            .failed
            .fetch_add(batch.rows, Ordering::Relaxed);
        self.undelivered += batch.rows;
        tracing::warn!(
            rows = batch.rows,
            attempts = attempt + 1,
            "braintrust: log request failed: {error}"
        );
        self.last_error = error;
    }
}

/// 408, 429 and 5xx are worth retrying; other statuses (413 and 4xx) are not.
fn is_retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// One `/logs3` request body and how many rows it carries.
#[derive(Debug)]
struct Batch {
    body: Vec<u8>,
    rows: u64,
}

/// Serialises rows into request bodies of at most `batch_size` rows and `max_bytes` bytes. A row
/// larger than the limit goes alone.
fn pack(rows: &[Row], batch_size: usize, max_bytes: usize) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut body = Vec::new();
    let mut count = 0u64;
    let finish = |body: &mut Vec<u8>, count: &mut u64, batches: &mut Vec<Batch>| {
        if *count > 0 {
            body.extend_from_slice(br#"],"api_version":2}"#);
            batches.push(Batch {
                body: std::mem::take(body),
                rows: std::mem::take(count),
            });
        }
    };
    for row in rows {
        // Serialising a JSON map cannot fail.
        let json = serde_json::to_vec(row).unwrap_or_default();
        let needed = json.len() + 1;
        if count > 0
            && (count as usize >= batch_size.max(1)
                || body.len() + needed + ENVELOPE_OVERHEAD > max_bytes)
        {
            finish(&mut body, &mut count, &mut batches);
        }
        if count == 0 {
            body.extend_from_slice(br#"{"rows":["#);
        } else {
            body.push(b',');
        }
        body.extend_from_slice(&json);
        count += 1;
    }
    finish(&mut body, &mut count, &mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
        for b in &batches {
            let v: Value = serde_json::from_slice(&b.body).unwrap();
            assert_eq!(v["api_version"], 2);
            assert_eq!(v["rows"].as_array().unwrap().len() as u64, b.rows);
        }
        // Each row is ~60 bytes: a 300-byte limit holds four of them.
        let small = pack(&rows(10, 10), 100, 300);
        assert!(small.iter().all(|b| b.body.len() <= 300));
        assert_eq!(small.iter().map(|b| b.rows).sum::<u64>(), 10);
        // A row over the limit goes alone.
        let big = pack(&rows(3, 1000), 100, 300);
        assert_eq!(big.iter().map(|b| b.rows).collect::<Vec<_>>(), [1, 1, 1]);
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
}
