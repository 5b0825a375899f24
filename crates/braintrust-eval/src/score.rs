//! Scores and scorers: what a scorer receives ([`ScorerArgs`]), what it may return
//! ([`IntoScores`]: a number, a bool, an `Option`, a [`Score`], a `Vec<Score>`, or a `Result`
//! of those), the [`Scorer`] trait, and classifiers ([`Classification`]).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

/// A boxed future, as scorers and tasks return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An error from user code (task, scorer, classifier), kept with its source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a scorer sees of one case: the input, the task's output, the expected value, the
/// final metadata and tags, and the dataset record id.
#[derive(Debug)]
pub struct ScorerArgs<'a, I, O, E> {
    /// The case's input.
    pub input: &'a I,
    /// The task's output.
    pub output: &'a O,
    /// The expected value, if the case has one.
    pub expected: Option<&'a E>,
    /// The case metadata after the task ran (tasks may change it).
    pub metadata: &'a Map<String, Value>,
    /// The case tags after the task ran.
    pub tags: &'a [String],
    /// The dataset record id, for cases read from a dataset.
    pub id: Option<&'a str>,
}

impl<I, O, E> Clone for ScorerArgs<'_, I, O, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O, E> Copy for ScorerArgs<'_, I, O, E> {}

impl<I: Serialize, O: Serialize, E: Serialize> ScorerArgs<'_, I, O, E> {
    /// The arguments as JSON values (what scorers working on JSON, and score spans' `input`,
    /// use).
    pub fn to_json(&self) -> JsonArgs {
        JsonArgs {
            input: to_value(self.input),
            output: to_value(self.output),
            expected: self.expected.map(to_value),
            metadata: self.metadata.clone(),
            tags: self.tags.to_vec(),
            id: self.id.map(str::to_owned),
        }
    }
}

/// [`ScorerArgs`] as owned JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonArgs {
    /// The input.
    pub input: Value,
    /// The output.
    pub output: Value,
    /// The expected value.
    pub expected: Option<Value>,
    /// The metadata.
    pub metadata: Map<String, Value>,
    /// The tags.
    pub tags: Vec<String>,
    /// The dataset record id.
    pub id: Option<String>,
}

impl JsonArgs {
    /// The score span's `input`: `{input, output, expected, metadata, tags, id}`.
    pub fn to_span_input(&self) -> Value {
        serde_json::json!({
            "input": self.input,
            "output": self.output,
            "expected": self.expected,
            "metadata": self.metadata,
            "tags": if self.tags.is_empty() { Value::Null } else { serde_json::json!(self.tags) },
            "id": self.id,
        })
    }
}

pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("<unserializable: {e}>")))
}

/// One named score in [0, 1] (or `None`: skipped) with optional metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// The name (a scorer returning a `Score` may name it differently from itself).
    pub name: String,
    /// The value: a finite number in [0, 1], or `None` for "not applicable".
    pub score: Option<f64>,
    /// Extra information logged on the score span.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl Score {
    /// A score named `name`.
    pub fn new(name: impl Into<String>, score: impl Into<Option<f64>>) -> Score {
        Score {
            name: name.into(),
            score: score.into(),
            metadata: Map::new(),
        }
    }

    /// Adds metadata (a JSON object; other values are stored under `value`).
    pub fn metadata(mut self, metadata: Value) -> Score {
        match metadata {
            Value::Object(map) => self.metadata.extend(map),
            other => {
                self.metadata.insert("value".into(), other);
            }
        }
        self
    }
}

/// Scores before naming: values that did not choose a name take the scorer's.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreOutput {
    /// One unnamed value (named after the scorer), possibly skipped.
    Value(Option<f64>),
    /// Named scores.
    Scores(Vec<Score>),
}

/// What a scorer may return: `f64`/`f32`, `bool` (1 or 0), `Option<T>` (`None` skips),
/// [`Score`], `Vec<Score>`, [`ScoreOutput`], or a `Result` of one of these (the error becomes
/// a scorer error).
pub trait IntoScores {
    /// The scores, or the scorer's error.
    fn into_scores(self) -> Result<ScoreOutput, BoxError>;
}

impl IntoScores for ScoreOutput {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        Ok(self)
    }
}

impl IntoScores for f64 {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        Ok(ScoreOutput::Value(Some(self)))
    }
}

impl IntoScores for f32 {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        Ok(ScoreOutput::Value(Some(f64::from(self))))
    }
}

impl IntoScores for bool {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        Ok(ScoreOutput::Value(Some(if self { 1.0 } else { 0.0 })))
    }
}

impl IntoScores for Score {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        Ok(ScoreOutput::Scores(vec![self]))
    }
}

impl IntoScores for Vec<Score> {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        Ok(ScoreOutput::Scores(self))
    }
}

impl<T: IntoScores> IntoScores for Option<T> {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        match self {
            Some(v) => v.into_scores(),
            None => Ok(ScoreOutput::Value(None)),
        }
    }
}

impl<T: IntoScores, Err: Into<BoxError>> IntoScores for Result<T, Err> {
    fn into_scores(self) -> Result<ScoreOutput, BoxError> {
        self.map_err(Into::into)?.into_scores()
    }
}

/// A scorer of cases with input `I`, output `O` and expected value `E`. Implemented by
/// the built-in scorers (for any serializable types), by Braintrust functions, and by the
/// closures given to [`crate::Eval::scorer`].
pub trait Scorer<I, O, E>: Send + Sync {
    /// The scorer's name: the name of its single score, and of its span.
    fn name(&self) -> Cow<'_, str>;

    /// Scores one case.
    fn score<'a>(
        &'a self,
        args: ScorerArgs<'a, I, O, E>,
    ) -> BoxFuture<'a, Result<ScoreOutput, BoxError>>;
}

impl<I, O, E, S: Scorer<I, O, E> + ?Sized> Scorer<I, O, E> for Arc<S> {
    fn name(&self) -> Cow<'_, str> {
        (**self).name()
    }

    fn score<'a>(
        &'a self,
        args: ScorerArgs<'a, I, O, E>,
    ) -> BoxFuture<'a, Result<ScoreOutput, BoxError>> {
        (**self).score(args)
    }
}

/// A synchronous closure as a named scorer.
pub(crate) struct FnScorer<F> {
    pub(crate) name: String,
    pub(crate) f: F,
}

impl<I, O, E, F, R> Scorer<I, O, E> for FnScorer<F>
where
    F: Fn(ScorerArgs<'_, I, O, E>) -> R + Send + Sync,
    R: IntoScores,
    I: Sync,
    O: Sync,
    E: Sync,
{
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }

    fn score<'a>(
        &'a self,
        args: ScorerArgs<'a, I, O, E>,
    ) -> BoxFuture<'a, Result<ScoreOutput, BoxError>> {
        let result = (self.f)(args).into_scores();
        Box::pin(std::future::ready(result))
    }
}

/// Owned scorer arguments for async closures (which cannot borrow the case).
#[derive(Debug, Clone)]
pub struct OwnedScorerArgs<I, O, E> {
    /// The input.
    pub input: I,
    /// The output.
    pub output: O,
    /// The expected value.
    pub expected: Option<E>,
    /// The metadata.
    pub metadata: Map<String, Value>,
    /// The tags.
    pub tags: Vec<String>,
    /// The dataset record id.
    pub id: Option<String>,
}

/// An async closure as a named scorer.
pub(crate) struct AsyncFnScorer<F> {
    pub(crate) name: String,
    pub(crate) f: F,
}

impl<I, O, E, F, Fut, R> Scorer<I, O, E> for AsyncFnScorer<F>
where
    F: Fn(OwnedScorerArgs<I, O, E>) -> Fut + Send + Sync,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoScores,
    I: Clone + Sync,
    O: Clone + Sync,
    E: Clone + Sync,
{
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.name)
    }

    fn score<'a>(
        &'a self,
        args: ScorerArgs<'a, I, O, E>,
    ) -> BoxFuture<'a, Result<ScoreOutput, BoxError>> {
        let fut = (self.f)(OwnedScorerArgs {
            input: args.input.clone(),
            output: args.output.clone(),
            expected: args.expected.cloned(),
            metadata: args.metadata.clone(),
            tags: args.tags.to_vec(),
            id: args.id.map(str::to_owned),
        });
        Box::pin(async move { fut.await.into_scores() })
    }
}

/// A label assigned by a classifier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The classification's group name (default: the classifier's name).
    #[serde(skip)]
    pub name: Option<String>,
    /// The class id.
    pub id: String,
    /// A display label (default: the id).
    pub label: String,
    /// Extra information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Classification {
    /// A classification with this id (and label).
    pub fn new(id: impl Into<String>) -> Classification {
        let id = id.into();
        Classification {
            name: None,
            label: id.clone(),
            id,
            metadata: None,
        }
    }

    /// Sets the label.
    pub fn label(mut self, label: impl Into<String>) -> Classification {
        self.label = label.into();
        self
    }

    /// Groups it under `name` instead of the classifier's name.
    pub fn name(mut self, name: impl Into<String>) -> Classification {
        self.name = Some(name.into());
        self
    }

    /// Adds metadata.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Classification {
        self.metadata = Some(metadata);
        self
    }
}

/// What a classifier may return: a [`Classification`], a `Vec` of them, an `Option` (`None`:
/// no label), or a `Result` of these.
pub trait IntoClassifications {
    /// The classifications, or the classifier's error.
    fn into_classifications(self) -> Result<Vec<Classification>, BoxError>;
}

impl IntoClassifications for Classification {
    fn into_classifications(self) -> Result<Vec<Classification>, BoxError> {
        Ok(vec![self])
    }
}

impl IntoClassifications for Vec<Classification> {
    fn into_classifications(self) -> Result<Vec<Classification>, BoxError> {
        Ok(self)
    }
}

impl<T: IntoClassifications> IntoClassifications for Option<T> {
    fn into_classifications(self) -> Result<Vec<Classification>, BoxError> {
        self.map_or(Ok(Vec::new()), IntoClassifications::into_classifications)
    }
}

impl<T: IntoClassifications, Err: Into<BoxError>> IntoClassifications for Result<T, Err> {
    fn into_classifications(self) -> Result<Vec<Classification>, BoxError> {
        self.map_err(Into::into)?.into_classifications()
    }
}

/// A classifier: like a scorer, but producing labels.
pub(crate) type ClassifierFn<I, O, E> =
    dyn for<'a> Fn(ScorerArgs<'a, I, O, E>) -> Result<Vec<Classification>, BoxError> + Send + Sync;

/// Renders an error and its source chain: `outer: cause: root cause`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Checks a score value: finite and within [0, 1].
pub(crate) fn validate_score(name: &str, value: f64) -> Result<(), String> {
    if !value.is_finite() {
        return Err(format!("score {name:?} is not a finite number ({value})"));
    }
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("score {name:?} ({value}) must be between 0 and 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_become_scores() {
        assert_eq!(0.5f64.into_scores().unwrap(), ScoreOutput::Value(Some(0.5)));
        assert_eq!(true.into_scores().unwrap(), ScoreOutput::Value(Some(1.0)));
        assert_eq!(false.into_scores().unwrap(), ScoreOutput::Value(Some(0.0)));
        assert_eq!(None::<f64>.into_scores().unwrap(), ScoreOutput::Value(None));
        assert_eq!(
            Score::new("x", 0.25).into_scores().unwrap(),
            ScoreOutput::Scores(vec![Score::new("x", 0.25)])
        );
        let failed: Result<f64, std::io::Error> = Err(std::io::Error::other("boom"));
        assert_eq!(failed.into_scores().unwrap_err().to_string(), "boom");
    }

    #[test]
    fn validation_rejects_nan_infinity_and_out_of_range() {
        assert!(validate_score("s", 0.0).is_ok());
        assert!(validate_score("s", 1.0).is_ok());
        assert!(validate_score("s", f64::NAN).is_err());
        assert!(validate_score("s", f64::INFINITY).is_err());
        assert_eq!(
            validate_score("s", 1.5).unwrap_err(),
            "score \"s\" (1.5) must be between 0 and 1"
        );
        assert!(validate_score("s", -0.1).is_err());
    }

    #[test]
    fn error_chains_include_sources_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
