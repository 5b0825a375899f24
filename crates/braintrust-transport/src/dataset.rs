//! Datasets: [`init_dataset`] returns a [`Dataset`] of a project (created get-or-create by
//! name) whose records are inserted, updated and deleted through a background sender and read
//! back page by page, optionally pinned to a version.
//!
//! ```
//! use braintrust_transport::dataset::{init_dataset, DatasetOptions, DatasetRecord};
//! use serde_json::json;
//! # let server = braintrust_local::LocalServer::start()?;
//! # let connection = braintrust_transport::logger::LoggerOptions::new()
//! #     .api_key(server.api_key()).app_url(server.url()).api_url(server.url());
//!
//! let dataset = init_dataset(DatasetOptions::new("my-project", "questions")
//! #   .connection(connection)
//! )?;
//! let id = dataset.insert(DatasetRecord::new(json!({"q": "1+1"})).expected(json!("2")));
//! dataset.flush()?;
//! let rows: Vec<_> = dataset.fetch()?.collect::<Result<_, _>>()?;
//! assert_eq!(rows.len(), 1);
//! assert_eq!(rows[0]["id"], json!(id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use braintrust_core::id::new_uuid_v4;
use braintrust_core::object::ObjectType;
use braintrust_core::row::format_created;
use braintrust_core::span::{FlushError, ObjectRef, PendingKind, PendingRow};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::{ApiClient, ApiError, block_on};
use crate::batcher::{Batcher, BatcherStats};
use crate::config::Config;
use crate::fetch::RowPages;
use crate::logger::{InitError, LoggerOptions, connect, register_live};

/// Options of [`init_dataset`].
#[derive(Debug, Clone, Default)]
pub struct DatasetOptions {
    connection: LoggerOptions,
    project: Option<String>,
    project_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    version: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl DatasetOptions {
    /// The dataset `name` of the project called `project`.
    pub fn new(project: impl Into<String>, name: impl Into<String>) -> DatasetOptions {
        DatasetOptions {
            project: Some(project.into()),
            name: Some(name.into()),
            ..DatasetOptions::default()
        }
    }

    /// The project by id (wins over the name).
    pub fn project_id(mut self, id: impl Into<String>) -> DatasetOptions {
        self.project_id = Some(id.into());
        self
    }

    /// The dataset's name (default `logs`).
    pub fn name(mut self, name: impl Into<String>) -> DatasetOptions {
        self.name = Some(name.into());
        self
    }

    /// A description (used when the dataset is created).
    pub fn description(mut self, description: impl Into<String>) -> DatasetOptions {
        self.description = Some(description.into());
        self
    }

    /// Reads see the dataset as of this version (a transaction id).
    pub fn version(mut self, version: impl Into<String>) -> DatasetOptions {
        self.version = Some(version.into());
        self
    }

    /// Dataset-level metadata (a JSON object; other values are ignored).
    pub fn metadata(mut self, metadata: Value) -> DatasetOptions {
        if let Value::Object(map) = metadata {
            self.metadata = Some(map);
        }
        self
    }

    /// Credentials and delivery settings; their project is ignored.
    pub fn connection(mut self, connection: LoggerOptions) -> DatasetOptions {
        self.connection = connection;
        self
    }
}

/// Why a dataset operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The dataset could not be created (settings, missing API key).
    #[error(transparent)]
    Init(#[from] InitError),
    /// Neither a project name nor a project id was given.
    #[error("a dataset needs a project: set DatasetOptions::new(project, name) or project_id")]
    MissingProject,
    /// Login or registration failed.
    #[error("cannot register the dataset: {0}")]
    Resolve(String),
    /// A request failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Records could not be delivered.
    #[error(transparent)]
    Flush(#[from] FlushError),
}

/// One record to insert or the fields of an update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetRecord {
    id: Option<String>,
    input: Option<Value>,
    expected: Option<Value>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
}

impl DatasetRecord {
    /// A record with this input.
    pub fn new(input: Value) -> DatasetRecord {
        DatasetRecord {
            input: Some(input),
            ..DatasetRecord::default()
        }
    }

    /// An update changing nothing yet (set the fields to change).
    pub fn update() -> DatasetRecord {
        DatasetRecord::default()
    }

    /// Sets the input.
    pub fn input(mut self, input: Value) -> DatasetRecord {
        self.input = Some(input);
        self
    }

    /// Sets the expected output.
    pub fn expected(mut self, expected: Value) -> DatasetRecord {
        self.expected = Some(expected);
        self
    }

    /// Sets the metadata (a JSON object; other values are ignored).
    pub fn metadata(mut self, metadata: Value) -> DatasetRecord {
        if let Value::Object(map) = metadata {
            self.metadata = Some(map);
        }
        self
    }

    /// Sets the tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> DatasetRecord {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Uses this record id instead of a fresh UUID.
    pub fn id(mut self, id: impl Into<String>) -> DatasetRecord {
        self.id = Some(id.into());
        self
    }

    fn into_fields(self) -> Map<String, Value> {
        let mut fields = Map::new();
        if let Some(v) = self.input {
            fields.insert("input".into(), v);
        }
        if let Some(v) = self.expected {
            fields.insert("expected".into(), v);
        }
        if let Some(v) = self.metadata {
            fields.insert("metadata".into(), Value::Object(v));
        }
        if let Some(tags) = self.tags {
            fields.insert("tags".into(), serde_json::json!(tags));
        }
        fields
    }
}

/// A dataset's record count and links.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    /// The project.
    pub project_name: Option<String>,
    /// The dataset.
    pub dataset_name: Option<String>,
    /// A link to the project.
    pub project_url: Option<String>,
    /// A link to the dataset.
    pub dataset_url: Option<String>,
    /// How many records it holds.
    pub total_records: Option<u64>,
}

/// A dataset. Cheap to clone; the last clone flushes when dropped.
#[derive(Clone, Debug)]
pub struct Dataset {
    shared: Arc<DatasetShared>,
}

#[derive(Debug)]
struct DatasetShared {
    batcher: Batcher,
    object: ObjectRef,
    config: Config,
    api: ApiClient,
    version: Option<String>,
}

impl crate::logger::Live for DatasetShared {
    fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    fn config(&self) -> &Config {
        &self.config
    }
}

/// Opens (creating if needed) a dataset. Performs no network I/O: registration happens in the
/// background with the first records, or at [`Dataset::resolve`].
pub fn init_dataset(options: DatasetOptions) -> Result<Dataset, DatasetError> {
    let mut request = Map::new();
    match (&options.project_id, &options.project) {
        (Some(id), _) => request.insert("project_id".into(), Value::String(id.clone())),
        (None, Some(name)) => request.insert("project_name".into(), Value::String(name.clone())),
        (None, None) => return Err(DatasetError::MissingProject),
    };
    request.insert(
        "name".into(),
        Value::String(options.name.clone().unwrap_or_else(|| "logs".into())),
    );
    if let Some(d) = &options.description {
        request.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(m) = &options.metadata {
        request.insert("metadata".into(), Value::Object(m.clone()));
    }
    let connection = connect(&options.connection)?;
    let api = ApiClient::from_parts(
        connection.config.clone(),
        connection.lookup,
        connection.http,
    );
    let shared = Arc::new(DatasetShared {
        batcher: connection.batcher,
        object: ObjectRef::registering(ObjectType::Dataset, request),
        config: connection.config,
        api,
        version: options.version,
    });
    register_live(shared.clone());
    Ok(Dataset { shared })
}

impl Dataset {
    fn submit(&self, fields: Map<String, Value>) {
        self.shared.batcher.submit(PendingRow {
            object: Some(self.shared.object.clone()),
            kind: PendingKind::Fields(fields),
        });
    }

    /// Inserts a record; returns its id (the record's own, else a fresh UUID).
    pub fn insert(&self, record: DatasetRecord) -> String {
        let id = record.id.clone().unwrap_or_else(new_uuid_v4);
        let mut fields = Map::new();
        fields.insert("id".into(), Value::String(id.clone()));
        fields.insert(
            "created".into(),
            Value::String(format_created(SystemTime::now())),
        );
        fields.extend(record.into_fields());
        self.submit(fields);
        id
    }

    /// Changes the given fields of the record `id` (a merge: unset fields stay).
    pub fn update(&self, id: &str, record: DatasetRecord) {
        let mut fields = record.into_fields();
        fields.insert("id".into(), Value::String(id.to_owned()));
        fields.insert("_is_merge".into(), Value::Bool(true));
        self.submit(fields);
    }

    /// Deletes the record `id`.
    pub fn delete(&self, id: &str) {
        let mut fields = Map::new();
        fields.insert("_object_delete".into(), Value::Bool(true));
        fields.insert(
            "created".into(),
            Value::String(format_created(SystemTime::now())),
        );
        fields.insert("id".into(), Value::String(id.to_owned()));
        self.submit(fields);
    }

    /// Registers the dataset now if needed, waiting for the answer; returns its id.
    pub fn resolve(&self) -> Result<String, DatasetError> {
        self.shared
            .batcher
            .resolve(Some(self.shared.object.clone()))
            .map_err(DatasetError::Resolve)?;
        self.id()
            .ok_or_else(|| DatasetError::Resolve("the dataset has no id".into()))
    }

    /// [`Dataset::resolve`] without blocking the calling thread.
    pub async fn resolve_async(&self) -> Result<String, DatasetError> {
        self.shared
            .batcher
            .resolve_async(Some(self.shared.object.clone()))
            .await
            .map_err(DatasetError::Resolve)?;
        self.id()
            .ok_or_else(|| DatasetError::Resolve("the dataset has no id".into()))
    }

    /// The dataset's id, once registered.
    pub fn id(&self) -> Option<String> {
        self.shared.object.ids().map(|ids| ids.id().to_owned())
    }

    /// The dataset's name, once registered.
    pub fn name(&self) -> Option<String> {
        self.shared
            .object
            .registration()?
            .get("name")?
            .as_str()
            .map(str::to_owned)
    }

    /// The pinned version, if any.
    pub fn pinned_version(&self) -> Option<&str> {
        self.shared.version.as_deref()
    }

    /// The records (at the pinned version, if any), page by page. Flushes first so that
    /// what was just inserted is read back.
    pub fn fetch(&self) -> Result<RowPages, DatasetError> {
        self.flush()?;
        let id = self.resolve()?;
        Ok(RowPages::new(
            self.shared.api.clone(),
            "dataset",
            &id,
            self.shared.version.clone(),
        ))
    }

    /// [`Dataset::fetch`] for async code.
    pub async fn fetch_async(&self) -> Result<RowPages, DatasetError> {
        self.flush_async().await?;
        let id = self.resolve_async().await?;
        Ok(RowPages::new(
            self.shared.api.clone(),
            "dataset",
            &id,
            self.shared.version.clone(),
        ))
    }

    /// The version of the records read: the pinned version, else the newest `_xact_id`
    /// (`"0"` for an empty dataset).
    pub fn version(&self) -> Result<String, DatasetError> {
        if let Some(v) = &self.shared.version {
            return Ok(v.clone());
        }
        let mut newest = String::from("0");
        for row in self.fetch()? {
            if let Some(x) = row?.get("_xact_id").and_then(Value::as_str)
                && (x.len(), x) > (newest.len(), newest.as_str())
            {
                newest = x.to_owned();
            }
        }
        Ok(newest)
    }

    /// Flushes, then asks the server for the record count and links
    /// (`GET /v1/dataset/{id}/summarize?summarize_data=true`).
    pub fn summarize(&self) -> Result<DatasetSummary, DatasetError> {
        self.flush()?;
        let id = self.resolve()?;
        let path = format!("/v1/dataset/{}/summarize", crate::api::path_segment(&id));
        let api = self.shared.api.clone();
        let answer =
            block_on(async move { api.get_json(&path, &[("summarize_data", "true")]).await })?;
        let text = |key: &str| answer.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(DatasetSummary {
            project_name: text("project_name"),
            dataset_name: text("dataset_name"),
            project_url: text("project_url"),
            dataset_url: text("dataset_url"),
            total_records: answer
                .pointer("/data_summary/total_records")
                .and_then(Value::as_u64),
        })
    }

    /// Delivers everything written so far (blocking).
    pub fn flush(&self) -> Result<(), FlushError> {
        self.shared.batcher.flush()
    }

    /// [`Dataset::flush`] without blocking the calling thread.
    pub async fn flush_async(&self) -> Result<(), FlushError> {
        self.shared.batcher.flush_async().await
    }

    /// Delivery counters.
    pub fn stats(&self) -> BatcherStats {
        self.shared.batcher.stats()
    }
}
