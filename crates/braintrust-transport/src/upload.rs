//! The attachment uploader: a bounded queue drained by a task on the batcher's runtime.
//!
//! Each attachment goes through `POST /attachment` (a signed URL) → `PUT <signed URL>` (no
//! API key; `x-ms-blob-type: BlockBlob` for Azure) → `POST /attachment/status` (`done`, or
//! `error` with the failed step's message). Network errors and 5xx/429 answers are retried with
//! exponential backoff; other 4xx answers are not. A failure never touches the rows: it is
//! counted, reported through `tracing` and by the next flush.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use braintrust_core::attachment::{Attachment, AttachmentStatus};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::http::{HttpClient, Method};
use crate::remote::{api_request, backoff, is_retryable, json_ok, signed_put, truncate};

/// Attachments waiting for an upload slot before enqueuing waits.
const QUEUE_CAPACITY: usize = 1024;

/// Uploads running at once.
const MAX_CONCURRENT_UPLOADS: usize = 4;

/// Settings of the uploader.
#[derive(Debug, Clone)]
pub(crate) struct UploadSettings {
    /// Attempts per request (the first included).
    pub(crate) attempts: u32,
    /// First retry delay; doubles each retry.
    pub(crate) base_delay: Duration,
}

/// Upload counters, shared with the batcher's stats.
#[derive(Debug, Default)]
pub(crate) struct UploadCounters {
    pub(crate) uploaded: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) retried: AtomicU64,
}

/// One attachment to upload, with what the request needs.
#[derive(Debug)]
pub(crate) struct UploadJob {
    pub(crate) attachment: Attachment,
    pub(crate) api_url: Arc<str>,
    pub(crate) org_id: Arc<str>,
}

#[derive(Debug, Default)]
struct Failures {
    count: u64,
    last_error: String,
}

/// The sending side of the uploader; the receiving task runs on the batcher's runtime.
#[derive(Debug)]
pub(crate) struct Uploader {
    queue: mpsc::Sender<UploadJob>,
    receiver: Mutex<Option<mpsc::Receiver<UploadJob>>>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    client: Arc<dyn HttpClient>,
    api_key: String,
    settings: UploadSettings,
    counters: Arc<UploadCounters>,
    /// Attachments queued or uploading.
    pending: watch::Sender<u64>,
    failures: Mutex<Failures>,
}

/// Why one attempt failed.
struct Attempt {
    message: String,
    retryable: bool,
}

impl Attempt {
    fn network(e: &crate::http::HttpError) -> Attempt {
        Attempt {
            message: e.to_string(),
            retryable: true,
        }
    }
}

impl Uploader {
    pub(crate) fn new(
        client: Arc<dyn HttpClient>,
        api_key: String,
        settings: UploadSettings,
        counters: Arc<UploadCounters>,
    ) -> Uploader {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        Uploader {
            queue,
            receiver: Mutex::new(Some(receiver)),
            shared: Arc::new(Shared {
                client,
                api_key,
                settings,
                counters,
                pending: watch::Sender::new(0),
                failures: Mutex::new(Failures::default()),
            }),
        }
    }

    /// Starts the task draining the queue on `runtime` (once).
    pub(crate) fn spawn_on(&self, runtime: &tokio::runtime::Runtime) {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(mut receiver) = receiver else {
            return;
        };
        let shared = self.shared.clone();
        runtime.spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_UPLOADS));
            while let Some(job) = receiver.recv().await {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.upload(job).await;
                    drop(slot);
                });
            }
        });
    }

    /// Queues the attachments not yet uploaded by anyone (waiting while the queue is full).
    pub(crate) async fn enqueue(&self, jobs: Vec<UploadJob>) {
        for job in jobs {
            if !job.attachment.start_upload() {
                continue;
            }
            self.shared.pending.send_modify(|n| *n += 1);
            if self.queue.send(job).await.is_err() {
                self.shared
                    .finish(Err("the attachment uploader has stopped".into()), false);
            }
        }
    }

    /// Counts attachments that will never be uploaded (their rows failed before sending).
    pub(crate) fn abandon(&self, attachments: &[Attachment], why: &str) {
        for attachment in attachments {
            if attachment.start_upload() {
                self.shared.pending.send_modify(|n| *n += 1);
                self.shared.finish(
                    Err(format!(
                        "attachment `{}` was not uploaded: {why}",
                        attachment.filename()
                    )),
                    attachment.is_converted(),
                );
            }
        }
    }

    /// Waits until nothing is queued or uploading, up to `deadline`; the number still pending
    /// when it passes.
    pub(crate) async fn wait_idle(&self, deadline: Duration) -> Result<(), u64> {
        let mut pending = self.shared.pending.subscribe();
        match tokio::time::timeout(deadline, pending.wait_for(|n| *n == 0)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(*self.shared.pending.borrow()),
        }
    }

    /// Failures since the previous call: how many, and the last error.
    pub(crate) fn take_failures(&self) -> Option<(u64, String)> {
        let mut failures = self.shared.failures();
        (failures.count > 0).then(|| {
            (
                std::mem::take(&mut failures.count),
                std::mem::take(&mut failures.last_error),
            )
        })
    }
}

impl Shared {
    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, result: Result<(), String>, converted: bool) {
        match result {
            Ok(()) => {
                self.counters.uploaded.fetch_add(1, Ordering::Relaxed);
            }
            Err(message) => {
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("braintrust: attachment upload failed: {message}");
                if converted {
                    braintrust_core::inline_media::disable_auto_conversion(&message);
                }
                let mut failures = self.failures();
                failures.count += 1;
                failures.last_error = message;
            }
        }
        self.pending.send_modify(|n| *n = n.saturating_sub(1));
    }

    async fn upload(&self, job: UploadJob) {
        let result = self.upload_steps(&job).await;
        self.finish(result, job.attachment.is_converted());
    }

    async fn upload_steps(&self, job: &UploadJob) -> Result<(), String> {
        let data = match job.attachment.data() {
            Ok(data) => data,
            Err(e) => return self.report_error(job, e.to_string()).await,
        };
        let grant = match self.retrying(|| self.request_signed_url(job)).await {
            Ok(grant) => grant,
            Err(e) => {
                let message = format!("Failed to request signed URL from API server: {e}");
                return self.report_error(job, message).await;
            }
        };
        if let Err(e) = self.retrying(|| self.put(&grant, data.clone())).await {
            let message = format!("Failed to upload attachment to object store: {e}");
            return self.report_error(job, message).await;
        }
        let done = AttachmentStatus::done();
        self.retrying(|| self.post_status(job, &done))
            .await
            .map_err(|e| {
                format!(
                    "attachment `{}` was uploaded but its status could not be recorded: {e}",
                    job.attachment.filename()
                )
            })
    }

    /// Records an `error` status (best effort) and returns the failure.
    async fn report_error(&self, job: &UploadJob, message: String) -> Result<(), String> {
        let status = AttachmentStatus::error(&message);
        if let Err(e) = self.retrying(|| self.post_status(job, &status)).await {
            tracing::debug!("braintrust: cannot record the attachment's error status: {e}");
        }
        Err(format!("`{}`: {message}", job.attachment.filename()))
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts are spent.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempt>>,
    {
        let mut tries = 0u32;
        loop {
            tries += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) if !e.retryable || tries >= self.settings.attempts.max(1) => {
                    return Err(e.message);
                }
                Err(e) => {
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff(self.settings.base_delay, tries - 1);
                    tracing::debug!(
                        ?delay,
                        "braintrust: retrying attachment request: {}",
                        e.message
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn send_json(&self, url: String, body: &Value) -> Result<Value, Attempt> {
        let request = api_request(Method::Post, url, &self.api_key)
            .header("Content-Type", "application/json")
            .body(body.to_string().into_bytes());
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| Attempt::network(&e))?;
        json_ok(&response).map_err(|message| Attempt {
            message,
            retryable: is_retryable(response.status),
        })
    }

    /// `POST /attachment`: the signed URL and the headers to send with it.
    async fn request_signed_url(&self, job: &UploadJob) -> Result<SignedUrl, Attempt> {
        let a = &job.attachment;
        let body = json!({
            "key": a.key(),
            "filename": a.filename(),
            "content_type": a.content_type(),
            "org_id": &*job.org_id,
        });
        let answer = self
            .send_json(format!("{}/attachment", job.api_url), &body)
            .await?;
        let Some(url) = answer.get("signedUrl").and_then(Value::as_str) else {
            return Err(Attempt {
                message: "the response lacks `signedUrl`".into(),
                retryable: false,
            });
        };
        let headers = match answer.get("headers") {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            _ => Vec::new(),
        };
        Ok(SignedUrl {
            url: url.to_owned(),
            headers,
        })
    }

    /// `PUT <signed URL>` with the bytes: no API key, the signed headers, and the block-blob
    /// header Azure requires.
    async fn put(&self, grant: &SignedUrl, data: Arc<[u8]>) -> Result<(), Attempt> {
        let request = signed_put(&grant.url, grant.headers.iter().cloned(), data);
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| Attempt::network(&e))?;
        if (200..300).contains(&response.status) {
            return Ok(());
        }
        Err(Attempt {
            message: format!(
                "HTTP {}: {}",
                response.status,
                truncate(&response.text(), 500)
            ),
            retryable: is_retryable(response.status),
        })
    }

    /// `POST /attachment/status`.
    async fn post_status(&self, job: &UploadJob, status: &AttachmentStatus) -> Result<(), Attempt> {
        let body = json!({
            "key": job.attachment.key(),
            "org_id": &*job.org_id,
            "status": status,
        });
        self.send_json(format!("{}/attachment/status", job.api_url), &body)
            .await
            .map(drop)
    }
}

/// Where to upload one attachment.
struct SignedUrl {
    url: String,
    headers: Vec<(String, String)>,
}
