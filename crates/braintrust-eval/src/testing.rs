//! Support for `eval!` tests: run an eval, print its report, and fail the test on task errors,
//! an incomplete run, or a failed gate. Generated code calls these; they are public so the
//! facade can re-export them, but they are not a stable API.

use std::future::Future;

use serde::Serialize;

use crate::eval::Eval;
use crate::report::{EvalReport, render_errors, render_table};
use crate::summary::{EvalResultWithSummary, Gates, RunOutcome};

/// Runs `eval` (blocking) and panics with a compact report when it fails.
pub fn run_test<I, O, E>(name: &str, gates: Gates, eval: Eval<I, O, E>)
where
    I: Serialize + Send + Sync + 'static,
    O: Serialize + Send + Sync + 'static,
    E: Serialize + Send + Sync + 'static,
{
    let reported = eval.has_reporter();
    match eval.run_blocking() {
        Ok(result) => check(name, &gates, &result, reported),
        Err(e) => panic!("eval {name} could not run: {e}"),
    }
}

/// Builds the eval with an async function, then runs it, on a fresh current-thread runtime.
pub fn run_test_async<I, O, E, F, Fut>(name: &str, gates: Gates, build: F)
where
    I: Serialize + Send + Sync + 'static,
    O: Serialize + Send + Sync + 'static,
    E: Serialize + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Eval<I, O, E>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => panic!("eval {name} could not start a runtime: {e}"),
    };
    let run = runtime.block_on(async {
        let eval = build().await;
        let reported = eval.has_reporter();
        eval.run().await.map(|r| (r, reported))
    });
    match run {
        Ok((result, reported)) => check(name, &gates, &result, reported),
        Err(e) => panic!("eval {name} could not run: {e}"),
    }
}

/// Panics when the run is incomplete or a gate fails.
pub fn check<I: Serialize, O, E>(
    name: &str,
    gates: &Gates,
    result: &EvalResultWithSummary<I, O, E>,
    reported: bool,
) {
    let problems = problems(gates, result);
    if !problems.is_empty() {
        // The reporter printed the table and the failed rows above (captured by the test
        // harness and shown with the failure); without a reporter, include them here.
        let details = if reported {
            String::new()
        } else {
            let report = EvalReport::from_result(result);
            format!(
                "\n{}{}",
                render_table(&report, false),
                render_errors(&report, false)
            )
        };
        panic!(
            "eval {name} failed:\n{}{details}",
            problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
}

/// Why a run fails its test: failed gates and an incomplete run (none when it passes).
pub(crate) fn problems<I, O, E>(
    gates: &Gates,
    result: &EvalResultWithSummary<I, O, E>,
) -> Vec<String> {
    let mut problems: Vec<String> = result
        .check(gates)
        .iter()
        .map(ToString::to_string)
        .collect();
    match result.summary.outcome {
        RunOutcome::Completed => {}
        RunOutcome::TimedOut => problems.push("the run timed out".into()),
        RunOutcome::Cancelled => problems.push("the run was cancelled".into()),
    }
    problems
}
