//! A runner for eval suites in a `harness = false` test target (feature `suite`): each eval is
//! one test, so `cargo test` filters, `--skip`, `--exact`, `--list` and `--test-threads` work as
//! usual. Evals run one at a time by default (each has its own `max_concurrency`), with a
//! progress bar per eval on a terminal, and the suite ends with one summary table.
//!
//! ```toml
//! [[test]]
//! name = "evals"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/evals.rs
//! use braintrust_eval::suite::EvalSuite;
//! use braintrust_eval::{Eval, EvalCase, Gates, scorers::ExactMatch};
//!
//! fn main() -> std::process::ExitCode {
//!     EvalSuite::new()
//!         .eval("increment", Gates::new().min_score("ExactMatch", 0.9), || {
//!             Eval::<i64, i64, i64>::new("increment")
//!                 .data((0..100).map(|i| EvalCase::new(i).expected(i + 1)).collect::<Vec<_>>())
//!                 .task(|i, _hooks| i + 1)
//!                 .add_scorer(ExactMatch::new())
//!         })
//!         .run()
//! }
//! ```

use std::ffi::OsString;
use std::fmt::Write as _;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use libtest_mimic::{Arguments, Failed, FormatSetting, Trial};
use serde::Serialize;

use crate::eval::Eval;
use crate::report::{EvalReport, render_errors};
use crate::summary::Gates;
use crate::testing::problems;

/// What one eval of a suite produced.
struct Outcome {
    report: EvalReport,
    problems: Vec<String>,
}

/// Runs one eval, advancing the progress bar when there is one.
type RunEval = Box<dyn FnOnce(Option<&ProgressBar>) -> Result<Outcome, String> + Send>;

struct Entry {
    name: String,
    run: RunEval,
}

/// A suite of evals run as the tests of a `harness = false` target.
#[derive(Default)]
pub struct EvalSuite {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for EvalSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.name))
            .finish()
    }
}

/// How a suite run ended (what the test harness counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteConclusion {
    /// Evals that passed.
    pub passed: u64,
    /// Evals that failed: could not run, had task errors, failed a gate or did not complete.
    pub failed: u64,
    /// Evals left out by the filters.
    pub filtered_out: u64,
}

impl SuiteConclusion {
    /// The process exit code: failure when an eval failed.
    pub fn exit_code(&self) -> ExitCode {
        if self.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

impl EvalSuite {
    /// An empty suite.
    pub fn new() -> EvalSuite {
        EvalSuite::default()
    }

    /// Adds the eval `build` makes, checked against `gates`. `build` runs only when the eval
    /// does (not for `--list` or when filtered out). The eval's own reporter is replaced by the
    /// suite's table.
    pub fn eval<I, O, E>(
        mut self,
        name: impl Into<String>,
        gates: Gates,
        build: impl FnOnce() -> Eval<I, O, E> + Send + 'static,
    ) -> EvalSuite
    where
        I: Serialize + Send + Sync + 'static,
        O: Serialize + Send + Sync + 'static,
        E: Serialize + Send + Sync + 'static,
    {
        self.entries.push(Entry {
            name: name.into(),
            run: Box::new(move |bar| {
                let result = with_progress(build().quiet(), bar)
                    .run_blocking()
                    .map_err(|e| format!("the eval could not run: {e}"))?;
                Ok(Outcome {
                    report: EvalReport::from_result(&result),
                    problems: problems(&gates, &result),
                })
            }),
        });
        self
    }

    /// Adds an eval made by an async function (run, with the eval, on a current-thread tokio
    /// runtime). See [`EvalSuite::eval`].
    pub fn eval_async<I, O, E, F, Fut>(
        mut self,
        name: impl Into<String>,
        gates: Gates,
        build: F,
    ) -> EvalSuite
    where
        I: Serialize + Send + Sync + 'static,
        O: Serialize + Send + Sync + 'static,
        E: Serialize + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Eval<I, O, E>>,
    {
        self.entries.push(Entry {
            name: name.into(),
            run: Box::new(move |bar| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("could not start a runtime: {e}"))?;
                let result = runtime
                    .block_on(async { with_progress(build().await.quiet(), bar).run().await })
                    .map_err(|e| format!("the eval could not run: {e}"))?;
                Ok(Outcome {
                    report: EvalReport::from_result(&result),
                    problems: problems(&gates, &result),
                })
            }),
        });
        self
    }

    /// Runs the suite with the process's arguments (what `cargo test` passes) and returns the
    /// exit code for `main`.
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os()).exit_code()
    }

    /// Runs the suite with these arguments (the first is the program name), as the libtest
    /// harness reads them. Invalid arguments print the usage and exit, as a test binary does.
    pub fn run_from<A>(self, args: impl IntoIterator<Item = A>) -> SuiteConclusion
    where
        A: Into<OsString> + Clone,
    {
        let mut args = Arguments::from_iter(args);
        // Evals bring their own concurrency: one at a time unless asked otherwise.
        if args.test_threads.is_none() {
            args.test_threads = Some(1);
        }
        let bars = args.test_threads == Some(1)
            && !args.quiet
            && matches!(args.format, None | Some(FormatSetting::Pretty))
            && std::io::stderr().is_terminal()
            && std::io::stdout().is_terminal();
        let rows: Arc<Mutex<Vec<SuiteRow>>> = Arc::default();
        let trials = self
            .entries
            .into_iter()
            .map(|entry| {
                let rows = rows.clone();
                let name = entry.name.clone();
                Trial::test(entry.name, move || {
                    let started = Instant::now();
                    let bar = bars.then(|| progress_bar(&name));
                    let outcome = (entry.run)(bar.as_ref());
                    if let Some(bar) = bar {
                        let trials = bar.position();
                        bar.finish_and_clear();
                        // libtest's `ok` / `FAILED` ends this line.
                        eprint!("  {trials} trials in {} ... ", seconds(started.elapsed()));
                    }
                    let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(Outcome { report, problems }) => {
                            let passed = problems.is_empty();
                            let failure = (!passed).then(|| {
                                let mut message: String =
                                    problems.iter().map(|p| format!("  - {p}\n")).collect();
                                message.push_str(&render_errors(&report, false));
                                message
                            });
                            rows.push(SuiteRow {
                                name,
                                report: Some(report),
                                passed,
                            });
                            failure.map_or(Ok(()), |m| Err(Failed::from(m)))
                        }
                        Err(message) => {
                            rows.push(SuiteRow {
                                name,
                                report: None,
                                passed: false,
                            });
                            Err(Failed::from(message))
                        }
                    }
                })
            })
            .collect();
        let conclusion = libtest_mimic::run(&args, trials);
        let rows = std::mem::take(&mut *rows.lock().unwrap_or_else(|e| e.into_inner()));
        // The table follows the harness's output (into its log file when it has one), except
        // in JSON format, whose stream it would break.
        if !rows.is_empty() && args.format != Some(FormatSetting::Json) {
            let table = render_suite_table(&rows);
            let logged = args.logfile.as_ref().map(|path| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .and_then(|mut file| std::io::Write::write_all(&mut file, table.as_bytes()))
            });
            if !matches!(logged, Some(Ok(()))) {
                print!("{table}");
            }
        }
        SuiteConclusion {
            passed: conclusion.num_passed,
            failed: conclusion.num_failed,
            filtered_out: conclusion.num_filtered_out,
        }
    }
}

/// The eval with a progress bar following its finished trials.
fn with_progress<I, O, E>(eval: Eval<I, O, E>, bar: Option<&ProgressBar>) -> Eval<I, O, E>
where
    I: Serialize + Send + Sync + 'static,
    O: Serialize + Send + Sync + 'static,
    E: Serialize + Send + Sync + 'static,
{
    match bar {
        Some(bar) => {
            let bar = bar.clone();
            eval.on_trial_done(move |done| bar.set_position(done as u64))
        }
        None => eval,
    }
}

/// A spinner with the trials done, on stderr, below the harness's `test … ...` line.
fn progress_bar(name: &str) -> ProgressBar {
    eprintln!();
    let bar = ProgressBar::new_spinner().with_message(name.to_owned());
    if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg}: {pos} trials, {elapsed}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.2} s", elapsed.as_secs_f64())
}

/// One eval's line in the suite's summary.
struct SuiteRow {
    name: String,
    /// `None` when the eval could not run.
    report: Option<EvalReport>,
    passed: bool,
}

/// The suite's summary table: one line per eval that ran (name, rows, task errors, time, score
/// means with their change against the baseline, result).
fn render_suite_table(rows: &[SuiteRow]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            let result = if row.passed { "pass" } else { "FAIL" }.to_owned();
            match &row.report {
                Some(report) => {
                    let s = &report.summary;
                    let scores = s
                        .scores
                        .iter()
                        .map(|score| {
                            let diff = score
                                .diff
                                .map(|d| format!(" ({:+.2}%)", d * 100.0))
                                .unwrap_or_default();
                            format!("{} {:.2}%{diff}", score.name, score.mean * 100.0)
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    [
                        row.name.clone(),
                        s.rows.to_string(),
                        s.failed_rows.to_string(),
                        seconds(Duration::from_secs_f64(s.cases_seconds.max(0.0))),
                        scores,
                        result,
                    ]
                }
                None => [
                    row.name.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "could not run".into(),
                    result,
                ],
            }
        })
        .collect();
    let header = ["eval", "rows", "errors", "time", "scores", "result"];
    let mut widths = header.map(|h| h.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::from("\neval suite summary\n");
    let mut line = |cells: &[String; 6]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width - cell.chars().count();
            // Names and scores align left, numbers right.
            if matches!(i, 1..=3) {
                let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for cells in &cells {
        line(cells);
    }
    let failed = rows.iter().filter(|r| !r.passed).count();
    let _ = writeln!(
        out,
        "{} evals: {} passed, {failed} failed",
        rows.len(),
        rows.len() - failed
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{EvalSummary, RunOutcome, ScoreStats};

    fn row(name: &str, mean: f64, diff: Option<f64>, failed_rows: u64, passed: bool) -> SuiteRow {
        let summary = EvalSummary {
            eval_name: name.into(),
            project_name: None,
            project_id: None,
            experiment_id: None,
            experiment_name: None,
            project_url: None,
            experiment_url: None,
            comparison_experiment_name: None,
            metrics: Vec::new(),
            summary_skipped: None,
            rows_with_scorer_errors: 0,
            scores: vec![ScoreStats {
                name: "exact".into(),
                mean,
                n: 10,
                errors: 0,
                skipped: 0,
                diff,
                improvements: 0,
                regressions: 0,
            }],
            outcome: RunOutcome::Completed,
            rows: 10,
            failed_rows,
            cases_seconds: 1.5,
        };
        SuiteRow {
            name: name.into(),
            report: Some(EvalReport {
                summary,
                failed_rows: Vec::new(),
                scorer_errors: Vec::new(),
            }),
            passed,
        }
    }

    #[test]
    fn the_summary_table_has_one_aligned_line_per_eval() {
        let rows = [
            row("increment", 1.0, None, 0, true),
            row("a_longer_name", 0.5, Some(-0.25), 2, false),
            SuiteRow {
                name: "broken".into(),
                report: None,
                passed: false,
            },
        ];
        let table = render_suite_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[1], "eval suite summary");
        assert!(lines[2].starts_with("eval           rows  errors    time  scores"));
        assert_eq!(
            lines[3],
            "increment        10       0  1.50 s  exact 100.00%           pass"
        );
        assert_eq!(
            lines[4],
            "a_longer_name    10       2  1.50 s  exact 50.00% (-25.00%)  FAIL"
        );
        assert!(lines[5].starts_with("broken            -       -       -  could not run"));
        assert_eq!(lines[6], "3 evals: 1 passed, 2 failed");
    }
}
