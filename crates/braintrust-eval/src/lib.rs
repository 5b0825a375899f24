//! The Braintrust eval runner: data, tasks, scorers, experiments and summaries.
//!
//! An [`Eval`] pairs data ([`EvalCase`]s from a `Vec`, an iterator, an async stream, a
//! Braintrust dataset or a base experiment) with a task and scorers. Running it creates an
//! experiment (or, without an API key, logs to a local store so that each run is compared
//! with the previous one), traces every case as `eval` → `task` + one `score` span per scorer,
//! and returns every result with an [`EvalSummary`]: per-score means with counts, the
//! comparison with the baseline, and metrics.
//!
//! * [`scorers`]: the built-in scorers (ExactMatch, Levenshtein, NumericDiff, JSONDiff,
//!   ValidJSON, ListContains, the LLM classifiers, EmbeddingSimilarity);
//! * [`Gates`]: pass/fail conditions (minimum means, regressions, pass rate) for tests;
//! * [`report`]: the console table and JSON-lines output.

pub mod case;
pub mod eval;
mod function;
mod intake;
pub mod local;
pub mod report;
pub mod score;
pub mod scorers;
#[cfg(feature = "suite")]
pub mod suite;
pub mod summary;
pub mod task;
#[doc(hidden)]
pub mod testing;

pub use case::{Data, DataError, EvalCase};
pub use eval::{
    DEFAULT_MAX_CONCURRENCY, ErrorScoreContext, ErrorScoreHandler, Eval, EvalError,
    default_error_score_handler,
};
pub use report::{ConsoleReporter, EvalReport, Reporter};
pub use score::{
    Classification, IntoClassifications, IntoScores, OwnedScorerArgs, Score, ScoreOutput, Scorer,
    ScorerArgs,
};
pub use summary::{
    CaseError, EvalResult, EvalResultWithSummary, EvalSummary, GateFailure, Gates, PassRate,
    RunOutcome, ScoreStats,
};
pub use task::{EvalHooks, ProgressEvent, ProgressKind, ProgressReport, Task};
pub use tokio_util::sync::CancellationToken;
