//! Results and summaries: one [`EvalResult`] per (case, trial), the [`EvalSummary`] (per-score
//! mean with counts; with a baseline, the change, improvements and regressions; metrics), and
//! [`Gates`] that turn a run into pass or fail.

use std::sync::Arc;

use braintrust_transport::experiment::{ExperimentSummary, MetricSummary};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::case::EvalCase;

/// Why a case has no output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum CaseError {
    /// The task returned an error or panicked (the text includes the source chain).
    Task(String),
    /// The case exceeded its per-case timeout.
    TimedOut,
    /// The run was cancelled or hit its global timeout before the case finished.
    Cancelled,
}

impl std::fmt::Display for CaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaseError::Task(message) => f.write_str(message),
            CaseError::TimedOut => f.write_str("the case timed out"),
            CaseError::Cancelled => f.write_str("the run was cancelled before the case finished"),
        }
    }
}

/// The outcome of one trial of one case.
#[derive(Debug, Clone)]
pub struct EvalResult<I, O, E> {
    /// The case (shared by its trials).
    pub case: Arc<EvalCase<I, E>>,
    /// The trial number, from 0.
    pub trial_index: usize,
    /// The task's output, unless it failed.
    pub output: Option<O>,
    /// Scores by name, in scorer order; `None` for skipped scores.
    pub scores: Vec<(String, Option<f64>)>,
    /// Classifications by classifier name.
    pub classifications: Map<String, Value>,
    /// The final metadata (after the task).
    pub metadata: Map<String, Value>,
    /// The final tags.
    pub tags: Vec<String>,
    /// Why the case has no output, if it has none.
    pub error: Option<CaseError>,
    /// Scorers that failed, with their errors.
    pub scorer_errors: Vec<(String, String)>,
    /// Classifiers that failed, with their errors.
    pub classifier_errors: Vec<(String, String)>,
    /// The origin logged on the root span.
    pub origin: Option<Value>,
    /// The root span's row id (`""` without logging).
    pub id: String,
    /// The root span's trace id (`""` without logging).
    pub root_span_id: String,
}

impl<I, O, E> EvalResult<I, O, E> {
    /// The case's input.
    pub fn input(&self) -> &I {
        &self.case.input
    }

    /// The case's expected value.
    pub fn expected(&self) -> Option<&E> {
        self.case.expected.as_ref()
    }

    /// The value of the score `name` (`None` when missing or skipped).
    pub fn score(&self, name: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| *v)
    }
}

/// How the run as a whole ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every case ran.
    Completed,
    /// The global timeout expired; the results are partial.
    TimedOut,
    /// The run was cancelled; the results are partial.
    Cancelled,
}

/// One score across the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreStats {
    /// The score's name.
    pub name: String,
    /// The mean of its values (the server's, when there is an experiment).
    pub mean: f64,
    /// How many values the mean is over.
    pub n: u64,
    /// Rows where it is missing because the scorer or the task failed.
    pub errors: u64,
    /// Rows where the scorer returned no value.
    pub skipped: u64,
    /// Mean minus the baseline's mean.
    pub diff: Option<f64>,
    /// Rows (matched by input) better than in the baseline.
    pub improvements: u64,
    /// Rows worse than in the baseline.
    pub regressions: u64,
}

/// The summary of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSummary {
    /// The eval's name (its project, unless a project id was given).
    pub eval_name: String,
    /// The project.
    pub project_name: Option<String>,
    /// The project's id.
    pub project_id: Option<String>,
    /// The experiment's id (none with `no_send_logs` or a parent).
    pub experiment_id: Option<String>,
    /// The experiment's name.
    pub experiment_name: Option<String>,
    /// A link to the project.
    pub project_url: Option<String>,
    /// A link to the experiment.
    pub experiment_url: Option<String>,
    /// The baseline's name.
    pub comparison_experiment_name: Option<String>,
    /// Scores in scorer order.
    pub scores: Vec<ScoreStats>,
    /// Metrics from the server (duration, tokens, cost, …).
    pub metrics: Vec<MetricSummary>,
    /// Why the server summary is missing, if it is.
    pub summary_skipped: Option<String>,
    /// How the run ended.
    pub outcome: RunOutcome,
    /// (case, trial) rows run.
    pub rows: u64,
    /// Rows whose task failed, timed out or was cancelled.
    pub failed_rows: u64,
    /// Rows with at least one scorer or classifier error.
    pub rows_with_scorer_errors: u64,
    /// Wall-clock seconds spent running the cases (not the final flush and summary).
    pub cases_seconds: f64,
}

impl EvalSummary {
    /// The stats of the score `name`.
    pub fn score(&self, name: &str) -> Option<&ScoreStats> {
        self.scores.iter().find(|s| s.name == name)
    }

    /// The metric `name` (from the server).
    pub fn metric(&self, name: &str) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.name == name)
    }
}

/// Every result and the summary.
#[derive(Debug, Clone)]
pub struct EvalResultWithSummary<I, O, E> {
    /// Results in data order (case by case, trials in order).
    pub results: Vec<EvalResult<I, O, E>>,
    /// The summary.
    pub summary: EvalSummary,
}

/// Local statistics over results: means with counts, in scorer order.
pub(crate) fn local_stats<I, O, E>(
    results: &[EvalResult<I, O, E>],
    scorer_names: &[String],
) -> Vec<ScoreStats> {
    let mut names: Vec<String> = scorer_names.to_vec();
    for r in results {
        for (name, _) in &r.scores {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let mut stats: Vec<ScoreStats> = names
        .into_iter()
        .map(|name| ScoreStats {
            name,
            mean: 0.0,
            n: 0,
            errors: 0,
            skipped: 0,
            diff: None,
            improvements: 0,
            regressions: 0,
        })
        .collect();
    let mut sums = vec![0.0; stats.len()];
    for r in results {
        for (i, s) in stats.iter_mut().enumerate() {
            match r.scores.iter().find(|(n, _)| *n == s.name) {
                Some((_, Some(v))) => {
                    sums[i] += v;
                    s.n += 1;
                }
                Some((_, None)) => s.skipped += 1,
                None => {
                    let failed = r.error.is_some()
                        || r.scorer_errors.iter().any(|(name, _)| *name == s.name);
                    if failed {
                        s.errors += 1;
                    }
                }
            }
        }
    }
    for (s, sum) in stats.iter_mut().zip(sums) {
        if s.n > 0 {
            s.mean = sum / s.n as f64;
        }
    }
    // Scorers that never produced their own name (they return named scores) are dropped
    // unless they failed somewhere.
    stats.retain(|s| s.n + s.skipped + s.errors > 0);
    stats
}

/// Combines local stats with the server's summary (means, comparison, metrics).
pub(crate) fn merge_server(stats: &mut [ScoreStats], server: &ExperimentSummary) {
    for s in stats.iter_mut() {
        if let Some(remote) = server.score(&s.name) {
            s.mean = remote.score;
            s.diff = remote.diff;
            s.improvements = remote.improvements;
            s.regressions = remote.regressions;
        }
    }
}

/// Pass/fail conditions for a run (used by `eval!` and the harness).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates {
    /// Minimum mean per score.
    pub min_scores: Vec<(String, f64)>,
    /// At most this many regressions (summed over scores) against the baseline.
    pub max_regressions: Option<u64>,
    /// A row passes when it has no error and all its scores are at least the threshold;
    /// at least `min_rate` of the rows must pass.
    pub pass_rate: Option<PassRate>,
    /// Task errors do not fail the run.
    pub allow_task_errors: bool,
}

/// See [`Gates::pass_rate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassRate {
    /// The per-row threshold every score must reach.
    pub threshold: f64,
    /// The fraction of rows that must pass.
    pub min_rate: f64,
}

impl Gates {
    /// No gates (only task errors fail).
    pub fn new() -> Gates {
        Gates::default()
    }

    /// Requires the mean of `score` to be at least `min`.
    pub fn min_score(mut self, score: impl Into<String>, min: f64) -> Gates {
        self.min_scores.push((score.into(), min));
        self
    }

    /// Allows at most `n` regressions against the baseline.
    pub fn max_regressions(mut self, n: u64) -> Gates {
        self.max_regressions = Some(n);
        self
    }

    /// Requires `min_rate` of the rows to have every score ≥ `threshold`.
    pub fn pass_rate(mut self, threshold: f64, min_rate: f64) -> Gates {
        self.pass_rate = Some(PassRate {
            threshold,
            min_rate,
        });
        self
    }

    /// Whether task errors are tolerated.
    pub fn allow_task_errors(mut self, allow: bool) -> Gates {
        self.allow_task_errors = allow;
        self
    }
}

/// A failed gate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateFailure {
    /// Some rows failed.
    #[error("{0} row(s) failed (task error, timeout or cancellation)")]
    TaskErrors(u64),
    /// A score's mean is below its minimum.
    #[error("score {name:?} has mean {mean:.4}, below the minimum {min:.4}")]
    ScoreBelowMinimum {
        /// The score.
        name: String,
        /// Its mean.
        mean: f64,
        /// The minimum.
        min: f64,
    },
    /// A gated score has no values at all.
    #[error("score {0:?} has no values")]
    MissingScore(String),
    /// Too many regressions.
    #[error("{found} regression(s) against the baseline, at most {max} allowed")]
    TooManyRegressions {
        /// How many.
        found: u64,
        /// The limit.
        max: u64,
    },
    /// Too few rows pass.
    #[error("{rate:.2}% of rows have every score >= {threshold}, {min_rate:.2}% required")]
    PassRateTooLow {
        /// The pass rate, in percent.
        rate: f64,
        /// The per-row threshold.
        threshold: f64,
        /// The required rate, in percent.
        min_rate: f64,
    },
}

impl<I, O, E> EvalResultWithSummary<I, O, E> {
    /// Every gate that fails (empty: the run passes).
    pub fn check(&self, gates: &Gates) -> Vec<GateFailure> {
        let mut failures = Vec::new();
        let s = &self.summary;
        if !gates.allow_task_errors && s.failed_rows > 0 {
            failures.push(GateFailure::TaskErrors(s.failed_rows));
        }
        for (name, min) in &gates.min_scores {
            match s.score(name).filter(|st| st.n > 0) {
                Some(st) if st.mean + 1e-12 < *min => {
                    failures.push(GateFailure::ScoreBelowMinimum {
                        name: name.clone(),
                        mean: st.mean,
                        min: *min,
                    });
                }
                Some(_) => {}
                None => failures.push(GateFailure::MissingScore(name.clone())),
            }
        }
        if let Some(max) = gates.max_regressions {
            let found: u64 = s.scores.iter().map(|st| st.regressions).sum();
            if found > max {
                failures.push(GateFailure::TooManyRegressions { found, max });
            }
        }
        if let Some(rate) = gates.pass_rate {
            let total = self.results.len().max(1) as f64;
            let passing = self
                .results
                .iter()
                .filter(|r| {
                    r.error.is_none()
                        && r.scores
                            .iter()
                            .all(|(_, v)| v.is_none_or(|v| v + 1e-12 >= rate.threshold))
                })
                .count() as f64;
            if passing / total + 1e-12 < rate.min_rate {
                failures.push(GateFailure::PassRateTooLow {
                    rate: 100.0 * passing / total,
                    threshold: rate.threshold,
                    min_rate: 100.0 * rate.min_rate,
                });
            }
        }
        failures
    }
}
