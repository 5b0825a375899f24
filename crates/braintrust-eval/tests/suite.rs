//! The `harness = false` suite runner: filters, `--list`, gates and evals that cannot run.
#![cfg(feature = "suite")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use braintrust_eval::suite::{EvalSuite, SuiteConclusion};
use braintrust_eval::{Eval, EvalCase, Gates, scorers::ExactMatch};

/// An eval of `i + 1` on ten cases whose task adds `add`, recording that it was built.
fn increment(
    name: &str,
    add: i64,
    built: &Arc<AtomicBool>,
) -> impl FnOnce() -> Eval<i64, i64, i64> + use<> {
    let (name, built) = (name.to_owned(), built.clone());
    move || {
        built.store(true, Ordering::SeqCst);
        Eval::new(name)
            .data(
                (0..10)
                    .map(|i| EvalCase::new(i).expected(i + 1))
                    .collect::<Vec<_>>(),
            )
            .task(move |i, _hooks| i + add)
            .add_scorer(ExactMatch::new())
            .no_send_logs(true)
    }
}

/// Runs `suite` with `args`, the harness's output going to a log file (so that its `test
/// result:` lines are not mistaken for this test binary's); returns the log too.
fn run(suite: EvalSuite, args: &[&str]) -> (SuiteConclusion, String) {
    let log = std::env::temp_dir().join(format!(
        "bt-eval-suite-{}-{}.log",
        std::process::id(),
        args.join("_").replace(['/', ':'], "-")
    ));
    let log_arg = log.display().to_string();
    let mut argv = vec!["suite", "--logfile", log_arg.as_str()];
    argv.extend_from_slice(args);
    let conclusion = suite.run_from(argv);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    (conclusion, text)
}

fn flags() -> [Arc<AtomicBool>; 3] {
    std::array::from_fn(|_| Arc::new(AtomicBool::new(false)))
}

#[test]
fn gates_decide_each_eval_and_the_filter_selects_what_runs() {
    let [good, bad, other] = flags();
    let gates = || Gates::new().min_score("ExactMatch", 0.9);
    let suite = EvalSuite::new()
        .eval("math::increment", gates(), increment("increment", 1, &good))
        .eval(
            "math::off_by_one",
            gates(),
            increment("off_by_one", 2, &bad),
        )
        .eval("other::increment", gates(), increment("other", 1, &other));
    let (conclusion, log) = run(suite, &["math::"]);
    assert!(
        log.contains("below the minimum"),
        "the failed gate is reported: {log}"
    );
    assert!(
        log.contains("2 evals: 1 passed, 1 failed"),
        "the summary table follows: {log}"
    );
    assert_eq!(
        conclusion,
        SuiteConclusion {
            passed: 1,
            failed: 1,
            filtered_out: 1
        }
    );
    assert!(good.load(Ordering::SeqCst) && bad.load(Ordering::SeqCst));
    assert!(
        !other.load(Ordering::SeqCst),
        "a filtered-out eval is never built"
    );
    assert_eq!(conclusion.exit_code(), std::process::ExitCode::FAILURE);
}

#[test]
fn listing_and_skipping_build_nothing() {
    let [a, b, _] = flags();
    let suite = || {
        EvalSuite::new()
            .eval("a", Gates::new(), increment("a", 1, &a))
            .eval("b", Gates::new(), increment("b", 1, &b))
    };
    let (listed, log) = run(suite(), &["--list"]);
    assert_eq!((listed.passed, listed.failed), (0, 0));
    assert!(log.contains("a: test") && log.contains("b: test"), "{log}");
    assert!(!a.load(Ordering::SeqCst) && !b.load(Ordering::SeqCst));

    let (skipped, _) = run(suite(), &["--skip", "b", "--exact"]);
    assert_eq!(
        (skipped.passed, skipped.failed, skipped.filtered_out),
        (1, 0, 1)
    );
    assert!(a.load(Ordering::SeqCst) && !b.load(Ordering::SeqCst));
}

#[test]
fn async_evals_run_and_evals_that_cannot_run_fail() {
    let suite = EvalSuite::new()
        .eval_async(
            "sleepy",
            Gates::new().min_score("ExactMatch", 1.0),
            || async {
                Eval::<i64, i64, i64>::new("sleepy")
                    .data(
                        (0..5)
                            .map(|i| EvalCase::new(i).expected(i))
                            .collect::<Vec<_>>(),
                    )
                    .task_async(|i, _hooks| async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        i
                    })
                    .add_scorer(ExactMatch::new())
                    .no_send_logs(true)
            },
        )
        .eval("no_scorers", Gates::new(), || {
            Eval::<i64, i64, i64>::new("no_scorers")
                .data(vec![EvalCase::new(1)])
                .task(|i, _hooks| *i)
                .no_send_logs(true)
        });
    let (conclusion, log) = run(suite, &["--test-threads", "2"]);
    assert!(log.contains("could not run"), "{log}");
    assert_eq!((conclusion.passed, conclusion.failed), (1, 1));
    assert_eq!(conclusion.exit_code(), std::process::ExitCode::FAILURE);
}
