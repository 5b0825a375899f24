//! Built-in scorers, faithful to autoevals: [`ExactMatch`], [`Levenshtein`] (Unicode code
//! points), [`NumericDiff`], [`JsonDiff`], [`ValidJson`] (with an optional JSON schema),
//! [`ListContains`] (optimal assignment), the LLM classifiers ([`LlmClassifier`] and
//! [`Factuality`], [`ClosedQa`], [`Battle`], [`Humor`], [`Possible`], [`Security`], [`Sql`],
//! [`Summary`], [`Translation`]) and [`EmbeddingSimilarity`].
//!
//! Every scorer works on JSON values ([`JsonScorer::evaluate`]) and is a [`Scorer`] of any
//! serializable case types, so it can be added to an eval directly:
//!
//! ```
//! use braintrust_eval::scorers::{JsonScorer, Levenshtein};
//! use serde_json::json;
//!
//! let score = Levenshtein::new().evaluate(&json!("word"), Some(&json!("world")))?;
//! assert_eq!(score.score, Some(0.8));
//! # Ok::<(), braintrust_eval::scorers::ScorerError>(())
//! ```

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::score::{BoxError, BoxFuture, Score, ScoreOutput, Scorer, ScorerArgs, to_value};

mod json;
mod list;
mod llm;
mod string;

pub use json::{JsonDiff, NumericDiff, ValidJson};
pub use list::ListContains;
pub use llm::{
    Battle, ClosedQa, DEFAULT_EMBEDDING_MODEL, DEFAULT_MODEL, EmbeddingSimilarity, Factuality,
    Humor, LlmClassifier, LlmConfig, Possible, Security, Sql, Summary, Translation,
};
pub use string::{ExactMatch, Levenshtein};

/// Why a built-in scorer could not score.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// The scorer needs an expected value.
    #[error("{0} requires an expected value")]
    MissingExpected(&'static str),
    /// A value has the wrong shape.
    #[error("{scorer}: {message}")]
    InvalidValue {
        /// The scorer.
        scorer: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The JSON schema is invalid.
    #[error("invalid JSON schema: {0}")]
    InvalidSchema(String),
    /// The model call failed or answered unexpectedly.
    #[error("{0}")]
    Llm(String),
}

/// A scorer working on JSON values: the output and the expected value.
pub trait JsonScorer: Send + Sync {
    /// The scorer's name (its score's name).
    fn scorer_name(&self) -> &str;

    /// Scores an output against an expected value.
    fn evaluate(&self, output: &Value, expected: Option<&Value>) -> Result<Score, ScorerError>;
}

/// Every [`JsonScorer`] scores cases of any serializable types.
impl<T, I, O, E> Scorer<I, O, E> for T
where
    T: JsonScorer,
    I: Serialize + Sync,
    O: Serialize + Sync,
    E: Serialize + Sync,
{
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.scorer_name())
    }

    fn score<'a>(
        &'a self,
        args: ScorerArgs<'a, I, O, E>,
    ) -> BoxFuture<'a, Result<ScoreOutput, BoxError>> {
        let result = self
            .evaluate(&to_value(args.output), args.expected.map(to_value).as_ref())
            .map(|s| ScoreOutput::Scores(vec![s]))
            .map_err(BoxError::from);
        Box::pin(std::future::ready(result))
    }
}

/// The scorers that need no model, by name (what `examples/score.rs` runs).
pub fn by_name(name: &str) -> Option<Box<dyn JsonScorer>> {
    Some(match name {
        "ExactMatch" => Box::new(ExactMatch::new()),
        "Levenshtein" | "LevenshteinScorer" => Box::new(Levenshtein::new()),
        "NumericDiff" => Box::new(NumericDiff::new()),
        "JSONDiff" | "JsonDiff" => Box::new(JsonDiff::new()),
        "ValidJSON" | "ValidJson" => Box::new(ValidJson::new()),
        "ListContains" => Box::new(ListContains::new()),
        _ => return None,
    })
}

/// The names [`by_name`] knows.
pub const NON_LLM_SCORERS: [&str; 6] = [
    "ExactMatch",
    "Levenshtein",
    "NumericDiff",
    "JSONDiff",
    "ValidJSON",
    "ListContains",
];

/// Serializes like Python's `json.dumps` (`", "` and `": "` separators), as autoevals
/// stringifies non-string values.
pub(crate) fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(value, &mut out);
    out
}

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_python_json(v, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A value's string form: strings as they are, other values as JSON.
pub(crate) fn stringify(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_json(other),
    }
}
