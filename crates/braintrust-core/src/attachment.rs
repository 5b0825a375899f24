//! Attachments: files and blobs logged by reference.
//!
//! Put an [`Attachment`] (bytes or a file), a [`JsonAttachment`] (any serialisable value) or an
//! [`ExternalAttachment`] (a URL that is never uploaded) anywhere inside a logged `input`,
//! `output`, `expected` or `metadata`. It serialises as its [`AttachmentReference`], so the row
//! carries only `{"type": "braintrust_attachment", "filename", "content_type", "key"}`; the sink
//! finds the attachments referenced by a row when it is logged and uploads their bytes after the
//! row is sent.
//!
//! Keep the `Attachment` value alive until the row that references it is logged (building the
//! row with `json!({"image": &image})` and logging it in the same scope does that): the bytes
//! are found through the live attachment, not through the row.
//!
//! Reading back, references in fetched rows become [`ReadonlyAttachment`]s, which download
//! their bytes lazily through an [`AttachmentReader`] (the transport's API client is one).
//!
//! ```
//! use braintrust_core::attachment::{Attachment, AttachmentReference, ExternalAttachment};
//! use serde_json::json;
//!
//! let doc = Attachment::new(b"hello attachment bytes".to_vec(), "hello.txt", "text/plain");
//! let logged = json!({
//!     "doc": &doc,
//!     "list": [ExternalAttachment::new("s3://bucket/file.pdf", "file.pdf", "application/pdf")],
//! });
//! assert_eq!(logged["doc"]["type"], "braintrust_attachment");
//! assert_eq!(logged["doc"]["key"], doc.key());
//! // The sink finds the live attachment behind the reference.
//! let found = braintrust_core::attachment::attachments_in([&logged]);
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].key(), doc.key());
//! assert!(matches!(
//!     AttachmentReference::from_value(&logged["list"][0]),
//!     Some(AttachmentReference::External { .. })
//! ));
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// `type` of a reference to an uploaded attachment.
pub const BRAINTRUST_ATTACHMENT: &str = "braintrust_attachment";
/// `type` of a reference to an external attachment.
pub const EXTERNAL_ATTACHMENT: &str = "external_attachment";

/// What a row stores in place of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum AttachmentReference {
    /// An attachment uploaded to Braintrust (`"type": "braintrust_attachment"`).
    #[serde(rename = "braintrust_attachment")]
    Braintrust {
        /// The file name shown in the UI.
        filename: String,
        /// The MIME type.
        content_type: String,
        /// The object key: a client-generated UUID v4.
        key: String,
    },
    /// An attachment stored elsewhere (`"type": "external_attachment"`), never uploaded.
    #[serde(rename = "external_attachment")]
    External {
        /// The file name shown in the UI.
        filename: String,
        /// The MIME type.
        content_type: String,
        /// Where the data lives (`s3://…`, `https://…`).
        url: String,
    },
}

impl AttachmentReference {
    /// The reference in `value`, if `value` is one.
    pub fn from_value(value: &Value) -> Option<AttachmentReference> {
        let map = value.as_object()?;
        match map.get("type")?.as_str()? {
            BRAINTRUST_ATTACHMENT | EXTERNAL_ATTACHMENT => {
                serde_json::from_value(value.clone()).ok()
            }
            _ => None,
        }
    }

    /// The reference as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The file name.
    pub fn filename(&self) -> &str {
        match self {
            AttachmentReference::Braintrust { filename, .. }
            | AttachmentReference::External { filename, .. } => filename,
        }
    }

    /// The MIME type.
    pub fn content_type(&self) -> &str {
        match self {
            AttachmentReference::Braintrust { content_type, .. }
            | AttachmentReference::External { content_type, .. } => content_type,
        }
    }
}

/// Every reference inside `value` (at any depth), in document order.
pub fn references_in(value: &Value) -> Vec<AttachmentReference> {
    let mut found = Vec::new();
    visit_references(value, 0, &mut |v| {
        if let Some(r) = AttachmentReference::from_value(v) {
            found.push(r);
            true
        } else {
            false
        }
    });
    found
}

/// Deepest nesting searched for references.
const MAX_DEPTH: usize = 128;

/// Calls `f` on every object in `value`; when `f` returns true the object's children are
/// skipped.
fn visit_references(value: &Value, depth: usize, f: &mut impl FnMut(&Value) -> bool) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Object(map) if !f(value) => {
            for v in map.values() {
                visit_references(v, depth + 1, f);
            }
        }
        Value::Array(items) => {
            for v in items {
                visit_references(v, depth + 1, f);
            }
        }
        _ => {}
    }
}

/// Why reading or fetching an attachment failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// The attachment's file could not be read.
    #[error("Failed to read file: {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The value could not be serialised as JSON.
    #[error("cannot serialise the JSON attachment: {0}")]
    Json(#[from] serde_json::Error),
    /// The API request for the attachment failed.
    #[error("attachment request failed: {0}")]
    Request(String),
    /// The attachment is not (yet) available: its upload status is not `done`.
    #[error("attachment `{filename}` is not available: upload status {status}")]
    NotUploaded {
        /// The file name.
        filename: String,
        /// The upload status the server reports.
        status: UploadStatus,
    },
}

enum Data {
    Bytes(Arc<[u8]>),
    File(PathBuf),
}

struct Inner {
    filename: String,
    content_type: String,
    key: String,
    data: Data,
    /// Set by the first sink that uploads it, so an attachment logged twice uploads once.
    upload_started: AtomicBool,
    /// In the registry of live attachments (set when first serialised).
    registered: AtomicBool,
    /// Made by the inline-media conversion rather than by the user.
    converted: bool,
}

/// Bytes or a file to upload, logged as a `braintrust_attachment` reference. Cheap to clone;
/// clones share the key and the bytes.
#[derive(Clone)]
pub struct Attachment(Arc<Inner>);

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Attachment");
        d.field("filename", &self.0.filename)
            .field("content_type", &self.0.content_type)
            .field("key", &self.0.key);
        match &self.0.data {
            Data::Bytes(b) => d.field("bytes", &b.len()),
            Data::File(p) => d.field("path", p),
        };
        d.finish()
    }
}

impl Attachment {
    /// An attachment of `data`, with a fresh key.
    pub fn new(
        data: impl Into<Vec<u8>>,
        filename: impl Into<String>,
        content_type: impl Into<String>,
    ) -> Attachment {
        Attachment::from_data(
            Data::Bytes(data.into().into()),
            filename.into(),
            content_type.into(),
            false,
        )
    }

    /// An attachment of a file, read when it is uploaded. The file name is the path's last
    /// component and the content type is guessed from its extension
    /// (`application/octet-stream` when unknown); change them with
    /// [`Attachment::with_filename`] and [`Attachment::with_content_type`].
    pub fn from_file(path: impl Into<PathBuf>) -> Attachment {
        let path = path.into();
        let filename = path
            .file_name()
            .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        let content_type = mime_guess::from_path(&path)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned();
        Attachment::from_data(Data::File(path), filename, content_type, false)
    }

    /// An attachment made by the inline-media conversion ([`crate::inline_media`]).
    pub(crate) fn converted(data: Vec<u8>, filename: String, content_type: String) -> Attachment {
        Attachment::from_data(Data::Bytes(data.into()), filename, content_type, true)
    }

    fn from_data(
        data: Data,
        filename: String,
        content_type: String,
        converted: bool,
    ) -> Attachment {
        Attachment(Arc::new(Inner {
            filename,
            content_type,
            key: crate::id::new_uuid_v4(),
            data,
            upload_started: AtomicBool::new(false),
            registered: AtomicBool::new(false),
            converted,
        }))
    }

    /// Changes the file name. An attachment already shared (cloned or logged) gets a new key.
    pub fn with_filename(self, filename: impl Into<String>) -> Attachment {
        let filename = filename.into();
        self.modified(|inner| inner.filename = filename)
    }

    /// Changes the content type. An attachment already shared (cloned or logged) gets a new
    /// key.
    pub fn with_content_type(self, content_type: impl Into<String>) -> Attachment {
        let content_type = content_type.into();
        self.modified(|inner| inner.content_type = content_type)
    }

    fn modified(mut self, change: impl FnOnce(&mut Inner)) -> Attachment {
        if let Some(inner) = Arc::get_mut(&mut self.0)
            && !inner.registered.load(Ordering::Relaxed)
        {
            change(inner);
            return self;
        }
        let data = match &self.0.data {
            Data::Bytes(b) => Data::Bytes(b.clone()),
            Data::File(p) => Data::File(p.clone()),
        };
        let mut fresh = Attachment::from_data(
            data,
            self.0.filename.clone(),
            self.0.content_type.clone(),
            self.0.converted,
        );
        if let Some(inner) = Arc::get_mut(&mut fresh.0) {
            change(inner);
        }
        fresh
    }

    /// The object key (a UUID v4).
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// The file name.
    pub fn filename(&self) -> &str {
        &self.0.filename
    }

    /// The MIME type.
    pub fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// The reference rows carry.
    pub fn reference(&self) -> AttachmentReference {
        AttachmentReference::Braintrust {
            filename: self.0.filename.clone(),
            content_type: self.0.content_type.clone(),
            key: self.0.key.clone(),
        }
    }

    /// The bytes to upload (reading the file, for file attachments).
    pub fn data(&self) -> Result<Arc<[u8]>, AttachmentError> {
        match &self.0.data {
            Data::Bytes(b) => Ok(b.clone()),
            Data::File(path) => {
                std::fs::read(path)
                    .map(Arc::from)
                    .map_err(|source| AttachmentError::ReadFile {
                        path: path.clone(),
                        source,
                    })
            }
        }
    }

    /// Marks the upload as started. True only the first time: a sink uploads an attachment
    /// once even when several rows reference it.
    pub fn start_upload(&self) -> bool {
        !self.0.upload_started.swap(true, Ordering::AcqRel)
    }

    /// Whether the inline-media conversion made this attachment (rather than the caller).
    pub fn is_converted(&self) -> bool {
        self.0.converted
    }

    fn register(&self) {
        if self.0.registered.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut live = registry();
        live.insert(self.0.key.clone(), Arc::downgrade(&self.0));
        LIVE.store(live.len(), Ordering::Release);
    }
}

impl Serialize for Attachment {
    /// Serialises as the reference, and lets sinks find the attachment behind it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.register();
        self.reference().serialize(serializer)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !*self.registered.get_mut() {
            return;
        }
        let mut live = registry();
        if live.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            live.remove(&self.key);
        }
        LIVE.store(live.len(), Ordering::Release);
    }
}

/// How many serialised attachments are alive: finding them in rows is skipped when none are.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Whether any serialised attachment is alive (one atomic load).
pub(crate) fn any_alive() -> bool {
    LIVE.load(Ordering::Acquire) != 0
}

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, Weak<Inner>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Weak<Inner>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The live attachments referenced anywhere inside `values` (each once). This is how a sink
/// finds the bytes behind the references of a row it is given; it costs one atomic load when
/// no attachment is alive.
pub fn attachments_in<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<Attachment> {
    if LIVE.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    let mut keys = Vec::new();
    for value in values {
        visit_references(value, 0, &mut |v| {
            let Some(map) = v.as_object() else {
                return false;
            };
            if map.get("type").and_then(Value::as_str) != Some(BRAINTRUST_ATTACHMENT) {
                return false;
            }
            if let Some(key) = map.get("key").and_then(Value::as_str) {
                keys.push(key.to_owned());
            }
            true
        });
    }
    if keys.is_empty() {
        return Vec::new();
    }
    let live = registry();
    let mut found: Vec<Attachment> = Vec::new();
    for key in keys {
        if let Some(inner) = live.get(&key).and_then(Weak::upgrade)
            && !found.iter().any(|a| a.key() == key)
        {
            found.push(Attachment(inner));
        }
    }
    found
}

/// An attachment of a JSON value (`application/json`, default file name `data.json`). It is
/// an [`Attachment`] in every other respect.
#[derive(Debug, Clone)]
pub struct JsonAttachment(Attachment);

impl JsonAttachment {
    /// Serialises `value` into a new attachment named `data.json`.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<JsonAttachment, AttachmentError> {
        let bytes = serde_json::to_vec(value)?;
        Ok(JsonAttachment(Attachment::new(
            bytes,
            "data.json",
            "application/json",
        )))
    }

    /// Changes the file name (see [`Attachment::with_filename`]).
    pub fn with_filename(self, filename: impl Into<String>) -> JsonAttachment {
        JsonAttachment(self.0.with_filename(filename))
    }

    /// The attachment.
    pub fn into_attachment(self) -> Attachment {
        self.0
    }
}

impl std::ops::Deref for JsonAttachment {
    type Target = Attachment;

    fn deref(&self) -> &Attachment {
        &self.0
    }
}

impl From<JsonAttachment> for Attachment {
    fn from(a: JsonAttachment) -> Attachment {
        a.0
    }
}

impl Serialize for JsonAttachment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A file stored outside Braintrust, logged as an `external_attachment` reference to its URL.
/// Nothing is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAttachment {
    reference: AttachmentReference,
}

impl ExternalAttachment {
    /// A reference to `url`.
    pub fn new(
        url: impl Into<String>,
        filename: impl Into<String>,
        content_type: impl Into<String>,
    ) -> ExternalAttachment {
        ExternalAttachment {
            reference: AttachmentReference::External {
                filename: filename.into(),
                content_type: content_type.into(),
                url: url.into(),
            },
        }
    }

    /// The reference rows carry.
    pub fn reference(&self) -> &AttachmentReference {
        &self.reference
    }
}

impl Serialize for ExternalAttachment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.reference.serialize(serializer)
    }
}

/// An upload's state, as `POST /attachment/status` records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// Not finished (or never reported).
    Uploading,
    /// Uploaded.
    Done,
    /// The upload failed.
    Error,
}

impl std::fmt::Display for UploadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UploadStatus::Uploading => "uploading",
            UploadStatus::Done => "done",
            UploadStatus::Error => "error",
        })
    }
}

/// The status object of an attachment: `{"upload_status", "error_message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentStatus {
    /// Where the upload stands.
    pub upload_status: UploadStatus,
    /// Why it failed, for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl AttachmentStatus {
    /// `{"upload_status": "done"}`.
    pub fn done() -> AttachmentStatus {
        AttachmentStatus {
            upload_status: UploadStatus::Done,
            error_message: None,
        }
    }

    /// `{"upload_status": "error", "error_message": …}`.
    pub fn error(message: impl Into<String>) -> AttachmentStatus {
        AttachmentStatus {
            upload_status: UploadStatus::Error,
            error_message: Some(message.into()),
        }
    }
}

/// Where an attachment can be downloaded, and its status (`GET /attachment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMetadata {
    /// A URL to download the bytes from, without credentials.
    pub download_url: String,
    /// The upload status.
    pub status: AttachmentStatus,
}

/// A boxed future, as [`AttachmentReader`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Looks up and downloads attachments (implemented by the transport's API client).
pub trait AttachmentReader: Send + Sync + std::fmt::Debug {
    /// The download URL and status of `reference`.
    fn metadata<'a>(
        &'a self,
        reference: &'a AttachmentReference,
    ) -> BoxFuture<'a, Result<AttachmentMetadata, AttachmentError>>;

    /// The bytes at a download URL.
    fn download<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AttachmentError>>;
}

/// An attachment referenced by a fetched row: its reference, and its bytes downloaded on first
/// use (then kept). Cheap to clone; clones share the downloaded bytes.
#[derive(Debug, Clone)]
pub struct ReadonlyAttachment {
    reference: AttachmentReference,
    reader: Arc<dyn AttachmentReader>,
    data: Arc<OnceLock<Arc<[u8]>>>,
}

impl ReadonlyAttachment {
    /// A handle on `reference`, read through `reader`.
    pub fn new(reference: AttachmentReference, reader: Arc<dyn AttachmentReader>) -> Self {
        ReadonlyAttachment {
            reference,
            reader,
            data: Arc::new(OnceLock::new()),
        }
    }

    /// Handles on every reference inside `value` (a fetched row or any part of it).
    pub fn all_in(value: &Value, reader: &Arc<dyn AttachmentReader>) -> Vec<ReadonlyAttachment> {
        references_in(value)
            .into_iter()
            .map(|r| ReadonlyAttachment::new(r, reader.clone()))
            .collect()
    }

    /// The reference.
    pub fn reference(&self) -> &AttachmentReference {
        &self.reference
    }

    /// The download URL and upload status.
    pub async fn metadata(&self) -> Result<AttachmentMetadata, AttachmentError> {
        self.reader.metadata(&self.reference).await
    }

    /// The upload status.
    pub async fn status(&self) -> Result<AttachmentStatus, AttachmentError> {
        Ok(self.metadata().await?.status)
    }

    /// The bytes, downloaded on the first call. Fails unless the upload status is `done`.
    pub async fn data(&self) -> Result<Arc<[u8]>, AttachmentError> {
        if let Some(data) = self.data.get() {
            return Ok(data.clone());
        }
        let metadata = self.metadata().await?;
        if metadata.status.upload_status != UploadStatus::Done {
            return Err(AttachmentError::NotUploaded {
                filename: self.reference.filename().to_owned(),
                status: metadata.status.upload_status,
            });
        }
        let bytes: Arc<[u8]> = self.reader.download(&metadata.download_url).await?.into();
        Ok(self.data.get_or_init(|| bytes).clone())
    }

    /// [`ReadonlyAttachment::data`] for synchronous code (blocks the calling thread).
    pub fn data_blocking(&self) -> Result<Arc<[u8]>, AttachmentError> {
        futures_executor::block_on(self.data())
    }

    /// [`ReadonlyAttachment::metadata`] for synchronous code (blocks the calling thread).
    pub fn metadata_blocking(&self) -> Result<AttachmentMetadata, AttachmentError> {
        futures_executor::block_on(self.metadata())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_have_the_wire_shape() {
        let a = Attachment::new(b"x".to_vec(), "hello.txt", "text/plain");
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v,
            json!({"type": "braintrust_attachment", "filename": "hello.txt",
                   "content_type": "text/plain", "key": a.key()})
        );
        assert_eq!(uuid::Uuid::parse_str(a.key()).unwrap().get_version_num(), 4);
        let e = ExternalAttachment::new("s3://b/f.pdf", "f.pdf", "application/pdf");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"type": "external_attachment", "filename": "f.pdf",
                   "content_type": "application/pdf", "url": "s3://b/f.pdf"})
        );
        assert_eq!(AttachmentReference::from_value(&v), Some(a.reference()));
        assert_eq!(
            AttachmentReference::from_value(&json!({"type": "other"})),
            None
        );
    }

    #[test]
    fn live_attachments_are_found_at_any_depth_and_forgotten_when_dropped() {
        let a = Attachment::new(b"a".to_vec(), "a.bin", "application/octet-stream");
        let b = JsonAttachment::new(&json!({"k": [1, 2]})).unwrap();
        let row = json!({"x": [{"deep": {"a": &a}}, &a], "meta": {"b": &*b}});
        let found = attachments_in([&row]);
        let keys: Vec<&str> = found.iter().map(Attachment::key).collect();
        assert_eq!(keys, [a.key(), b.key()], "each attachment once, in order");
        assert_eq!(&*found[1].data().unwrap(), br#"{"k":[1,2]}"#);
        assert_eq!(b.filename(), "data.json");
        drop((a, b, found));
        assert!(attachments_in([&row]).is_empty());
    }

    #[test]
    fn unserialised_attachments_keep_their_key_when_renamed() {
        let a = Attachment::new(b"a".to_vec(), "a", "text/plain");
        let key = a.key().to_owned();
        let a = a.with_filename("b.txt").with_content_type("text/csv");
        assert_eq!(
            (a.key(), a.filename(), a.content_type()),
            (key.as_str(), "b.txt", "text/csv")
        );
        let shared = a.clone();
        let renamed = a.with_filename("c.txt");
        assert_ne!(renamed.key(), shared.key(), "a shared attachment is copied");
        assert_eq!(shared.filename(), "b.txt");
    }

    #[test]
    fn files_are_read_at_upload_with_guessed_types() {
        let dir = std::env::temp_dir().join(format!("bt-att-{}", crate::id::new_uuid_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.pdf");
        let a = Attachment::from_file(&path);
        assert_eq!(
            (a.filename(), a.content_type()),
            ("report.pdf", "application/pdf")
        );
        let err = a.data().unwrap_err();
        assert!(
            err.to_string().starts_with("Failed to read file: "),
            "{err}"
        );
        std::fs::write(&path, b"%PDF").unwrap();
        assert_eq!(&*a.data().unwrap(), b"%PDF");
        let unknown = Attachment::from_file(dir.join("blob"));
        assert_eq!(unknown.content_type(), "application/octet-stream");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn uploads_start_once() {
        let a = Attachment::new(b"a".to_vec(), "a", "text/plain");
        let clone = a.clone();
        assert!(a.start_upload());
        assert!(!clone.start_upload());
    }
}
