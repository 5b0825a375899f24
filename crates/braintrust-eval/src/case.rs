//! Eval data: cases ([`EvalCase`]) and where they come from ([`Data`]): a `Vec`, any
//! iterator, an async stream, a Braintrust dataset, or the root spans of a base experiment.
//! Data is pulled lazily as the runner has room for more cases.

use std::pin::Pin;

use braintrust_transport::dataset::Dataset;
use braintrust_transport::experiment::ReadonlyExperiment;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// One eval case: an input, optionally what is expected, metadata and tags for the task and
/// scorers, a per-case trial count, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCase<I, E = Value> {
    /// The input given to the task (it identifies the case across experiments).
    pub input: I,
    /// The expected output.
    pub expected: Option<E>,
    /// Metadata (copied per trial; the task may change it).
    pub metadata: Map<String, Value>,
    /// Tags (copied per trial; the task may change them).
    pub tags: Vec<String>,
    /// How many times to run this case (else the eval's trial count).
    pub trial_count: Option<usize>,
    /// The root span's row id for trial 0 (later trials derive theirs from it).
    pub upsert_id: Option<String>,
    /// Where the case came from (`{object_type, object_id, id, _xact_id?, created?}`).
    pub origin: Option<Value>,
    /// The dataset record id, `_xact_id` and `created` of cases read from a dataset.
    pub(crate) record: Option<DatasetRecordIds>,
}

/// Identifiers of a dataset record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DatasetRecordIds {
    pub(crate) id: String,
    pub(crate) xact_id: String,
    pub(crate) created: Option<String>,
    pub(crate) dataset_id: String,
}

impl<I, E> EvalCase<I, E> {
    /// A case with this input.
    pub fn new(input: I) -> EvalCase<I, E> {
        EvalCase {
            input,
            expected: None,
            metadata: Map::new(),
            tags: Vec::new(),
            trial_count: None,
            upsert_id: None,
            origin: None,
            record: None,
        }
    }

    /// Sets the expected output.
    pub fn expected(mut self, expected: E) -> EvalCase<I, E> {
        self.expected = Some(expected);
        self
    }

    /// Sets the metadata (a JSON object; other values are stored under `value`).
    pub fn metadata(mut self, metadata: Value) -> EvalCase<I, E> {
        match metadata {
            Value::Object(map) => self.metadata = map,
            other => {
                self.metadata.insert("value".into(), other);
            }
        }
        self
    }

    /// Sets the tags.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> EvalCase<I, E> {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Runs this case `n` times (overrides the eval's trial count).
    pub fn trial_count(mut self, n: usize) -> EvalCase<I, E> {
        self.trial_count = Some(n);
        self
    }

    /// Forces the root span's row id (trial 0; trial k uses a UUID v5 derived from it).
    pub fn upsert_id(mut self, id: impl Into<String>) -> EvalCase<I, E> {
        self.upsert_id = Some(id.into());
        self
    }

    /// Sets the origin (ignored unless it is an object with a valid `object_type`,
    /// `object_id` and `id`).
    pub fn origin(mut self, origin: Value) -> EvalCase<I, E> {
        self.origin = Some(origin);
        self
    }

    /// The dataset record id, for cases read from a dataset.
    pub fn record_id(&self) -> Option<&str> {
        self.record.as_ref().map(|r| r.id.as_str())
    }

    /// The origin logged on the root span: the dataset record when known, else a valid
    /// explicit origin.
    pub(crate) fn effective_origin(&self) -> Option<Value> {
        if let Some(r) = &self.record
            && !r.id.is_empty()
            && !r.xact_id.is_empty()
        {
            let mut o = Map::new();
            o.insert("object_type".into(), Value::from("dataset"));
            o.insert("object_id".into(), Value::from(r.dataset_id.clone()));
            o.insert("id".into(), Value::from(r.id.clone()));
            o.insert("_xact_id".into(), Value::from(r.xact_id.clone()));
            if let Some(c) = &r.created {
                o.insert("created".into(), Value::from(c.clone()));
            }
            return Some(Value::Object(o));
        }
        self.origin.clone().filter(valid_origin)
    }
}

impl<I, E> From<I> for EvalCase<I, E> {
    fn from(input: I) -> EvalCase<I, E> {
        EvalCase::new(input)
    }
}

const ORIGIN_TYPES: [&str; 6] = [
    "project_logs",
    "experiment",
    "dataset",
    "prompt",
    "function",
    "prompt_session",
];

fn valid_origin(origin: &Value) -> bool {
    let s = |k: &str| {
        origin
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    s("object_type").is_some_and(|t| ORIGIN_TYPES.contains(&t))
        && s("object_id").is_some()
        && s("id").is_some()
}

/// A boxed stream of cases.
pub type CaseStream<I, E> = Pin<Box<dyn Stream<Item = Result<EvalCase<I, E>, DataError>> + Send>>;

/// Why data could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    /// Reading a dataset or experiment failed.
    #[error("cannot read the eval data: {0}")]
    Read(String),
    /// A record could not be turned into a case.
    #[error("record {id:?} does not fit the case type: {message}")]
    Decode {
        /// The record id.
        id: String,
        /// The decoding error.
        message: String,
    },
    /// A base experiment needs an experiment to compare with (not with `no_send_logs`).
    #[error(
        "Cannot use BaseExperiment() without connecting to Braintrust (you most likely set --no-send-logs)"
    )]
    BaseExperimentWithoutLogs,
}

/// Where an eval's cases come from.
pub struct Data<I, E = Value> {
    pub(crate) source: DataSource<I, E>,
}

impl<I, E> std::fmt::Debug for Data<I, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            DataSource::Stream(_) => "stream",
            DataSource::Dataset(_) => "dataset",
            DataSource::BaseExperiment(_) => "base experiment",
        };
        f.debug_struct("Data").field("source", &kind).finish()
    }
}

pub(crate) enum DataSource<I, E> {
    Stream(CaseStream<I, E>),
    /// Read when the run starts (so that the experiment records the dataset).
    Dataset(Box<dyn FnOnce() -> DatasetSource<I, E> + Send>),
    /// The root spans of the base experiment become cases.
    BaseExperiment(Box<dyn FnOnce(ReadonlyExperiment) -> CaseStream<I, E> + Send>),
}

pub(crate) struct DatasetSource<I, E> {
    pub(crate) dataset: Dataset,
    pub(crate) cases: CaseStream<I, E>,
}

impl<I: Send + 'static, E: Send + 'static> Data<I, E> {
    /// Cases from any iterator (a `Vec`, a range mapped to cases, a generator), pulled as the
    /// runner has room.
    pub fn iter<C: Into<EvalCase<I, E>> + 'static>(
        cases: impl IntoIterator<Item = C, IntoIter: Send + 'static>,
    ) -> Data<I, E> {
        Data::stream(futures_util::stream::iter(
            cases.into_iter().map(Into::into),
        ))
    }

    /// Cases from an async stream.
    pub fn stream<C: Into<EvalCase<I, E>> + 'static>(
        cases: impl Stream<Item = C> + Send + 'static,
    ) -> Data<I, E> {
        Data {
            source: DataSource::Stream(Box::pin(cases.map(|c| Ok(c.into())))),
        }
    }

    /// Cases from a fallible async stream (a read error fails the run).
    pub fn try_stream(
        cases: impl Stream<Item = Result<EvalCase<I, E>, DataError>> + Send + 'static,
    ) -> Data<I, E> {
        Data {
            source: DataSource::Stream(Box::pin(cases)),
        }
    }
}

fn decode<T: DeserializeOwned>(id: &str, value: Value) -> Result<T, DataError> {
    serde_json::from_value(value).map_err(|e| DataError::Decode {
        id: id.to_owned(),
        message: e.to_string(),
    })
}

fn case_from_record<I: DeserializeOwned, E: DeserializeOwned>(
    mut row: Map<String, Value>,
    dataset_id: &str,
    output_as_expected: bool,
) -> Result<EvalCase<I, E>, DataError> {
    let id = row
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let input = decode(&id, row.remove("input").unwrap_or(Value::Null))?;
    let expected = match row.remove("expected") {
        Some(v) if !v.is_null() => Some(decode(&id, v)?),
        _ if output_as_expected => match row.remove("output") {
            Some(v) if !v.is_null() => Some(decode(&id, v)?),
            _ => None,
        },
        _ => None,
    };
    let mut case = EvalCase::new(input);
    case.expected = expected;
    if let Some(Value::Object(m)) = row.remove("metadata") {
        case.metadata = m;
    }
    if let Some(Value::Array(tags)) = row.remove("tags") {
        case.tags = tags
            .into_iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
    }
    let text =
        |row: &Map<String, Value>, k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
    case.record = Some(DatasetRecordIds {
        xact_id: text(&row, "_xact_id").unwrap_or_default(),
        created: text(&row, "created"),
        dataset_id: dataset_id.to_owned(),
        id,
    });
    Ok(case)
}

impl<I, E> Data<I, E>
where
    I: DeserializeOwned + Send + 'static,
    E: DeserializeOwned + Send + 'static,
{
    /// The records of a Braintrust dataset (at its pinned version, if any). The experiment
    /// records the dataset and version, and each case's root span gets the record as origin.
    pub fn dataset(dataset: Dataset) -> Data<I, E> {
        Data {
            source: DataSource::Dataset(Box::new(move || {
                let reader = dataset.clone();
                let cases = futures_util::stream::once(async move {
                    let id = reader
                        .resolve_async()
                        .await
                        .map_err(|e| DataError::Read(e.to_string()))?;
                    let pages = reader
                        .fetch_async()
                        .await
                        .map_err(|e| DataError::Read(e.to_string()))?;
                    Ok::<_, DataError>((id, pages))
                })
                .flat_map(|first| match first {
                    Err(e) => futures_util::stream::iter(vec![Err(e)]).boxed(),
                    Ok((id, pages)) => rows_stream(pages)
                        .map(move |row| row.and_then(|r| case_from_record(r, &id, false)))
                        .boxed(),
                });
                DatasetSource {
                    dataset,
                    cases: Box::pin(cases),
                }
            })),
        }
    }

    /// The root spans of the eval's base experiment (`input`; `expected`, else `output`, as
    /// expected; `metadata`; `tags`). The base experiment is the one named with
    /// [`crate::Eval::base_experiment`], else the new experiment's default baseline. It also
    /// becomes the comparison baseline.
    pub fn base_experiment() -> Data<I, E> {
        Data {
            source: DataSource::BaseExperiment(Box::new(|base: ReadonlyExperiment| {
                let id = base.id().to_owned();
                let rows = rows_stream(base.fetch()).filter(|row| {
                    let root = row.as_ref().map_or(true, |r| {
                        r.get("span_parents")
                            .is_none_or(|p| p.is_null() || p.as_array().is_some_and(Vec::is_empty))
                    });
                    std::future::ready(root)
                });
                Box::pin(rows.map(move |row| {
                    let mut case = case_from_record(row?, &id, true)?;
                    // Rows of an experiment are not dataset records.
                    case.record = None;
                    Ok(case)
                }))
            })),
        }
    }
}

/// The rows of paged reads as a stream (each page is fetched when the previous is used up).
fn rows_stream(
    pages: braintrust_transport::fetch::RowPages,
) -> impl Stream<Item = Result<Map<String, Value>, DataError>> + Send {
    futures_util::stream::unfold(Some(pages), |pages| async move {
        let mut pages = pages?;
        match pages.next_page().await {
            Ok(Some(rows)) => Some((Ok(rows), Some(pages))),
            Ok(None) => None,
            Err(e) => Some((Err(DataError::Read(e.to_string())), None)),
        }
    })
    .flat_map(|page| match page {
        Ok(rows) => futures_util::stream::iter(rows.into_iter().map(Ok).collect::<Vec<_>>()),
        Err(e) => futures_util::stream::iter(vec![Err(e)]),
    })
}

impl<I: Send + 'static, E: Send + 'static, C: Into<EvalCase<I, E>> + Send + 'static> From<Vec<C>>
    for Data<I, E>
{
    fn from(cases: Vec<C>) -> Data<I, E> {
        Data::iter(cases)
    }
}

impl<I, E, C, const N: usize> From<[C; N]> for Data<I, E>
where
    I: Send + 'static,
    E: Send + 'static,
    C: Into<EvalCase<I, E>> + Send + 'static,
{
    fn from(cases: [C; N]) -> Data<I, E> {
        Data::iter(cases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dataset_records_become_cases_with_their_origin() {
        let row = json!({"id": "r1", "_xact_id": "1000", "created": "2026-01-01T00:00:00Z",
                         "input": {"q": 1}, "expected": "A", "metadata": {"k": 1}, "tags": ["t"]});
        let case: EvalCase<Value, String> =
            case_from_record(row.as_object().unwrap().clone(), "ds", false).unwrap();
        assert_eq!(case.input, json!({"q": 1}));
        assert_eq!(case.expected.as_deref(), Some("A"));
        assert_eq!(case.tags, vec!["t"]);
        assert_eq!(
            case.effective_origin(),
            Some(
                json!({"object_type": "dataset", "object_id": "ds", "id": "r1",
                        "_xact_id": "1000", "created": "2026-01-01T00:00:00Z"})
            )
        );
        let bad = json!({"id": "r2", "input": "not a number"});
        let err = case_from_record::<u32, Value>(bad.as_object().unwrap().clone(), "ds", false)
            .unwrap_err();
        assert!(matches!(err, DataError::Decode { id, .. } if id == "r2"));
    }

    #[test]
    fn explicit_origins_are_used_only_when_valid() {
        let ok = json!({"object_type": "experiment", "object_id": "e", "id": "r"});
        let case = EvalCase::<i32, Value>::new(1).origin(ok.clone());
        assert_eq!(case.effective_origin(), Some(ok));
        let bad = json!({"object_type": "nope", "object_id": "e", "id": "r"});
        assert_eq!(
            EvalCase::<i32, Value>::new(1)
                .origin(bad)
                .effective_origin(),
            None
        );
        let missing = json!({"object_type": "dataset", "id": "r"});
        assert_eq!(
            EvalCase::<i32, Value>::new(1)
                .origin(missing)
                .effective_origin(),
            None
        );
    }
}
