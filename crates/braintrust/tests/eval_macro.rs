//! `eval!` in a test file: passing evals (sync and async, gates that hold), and a failing
//! gate run in a subprocess to check that it fails the test with a readable report.

use braintrust::scorers::{ExactMatch, Levenshtein};
use braintrust::{Data, Eval, EvalCase};

fn cases() -> Vec<EvalCase<String, String>> {
    ["Ada", "Bob", "Cy"]
        .into_iter()
        .map(|n| EvalCase::new(n.to_string()).expected(format!("Hi {n}")))
        .collect()
}

braintrust::eval! {
    /// Every greeting is exact.
    #[eval(min_score("ExactMatch", 1.0), pass_rate(1, 1.0))]
    fn greetings_are_exact() -> Eval<String, String, String> {
        Eval::new("eval-macro-sync")
            .data(cases())
            .task(|name, _| format!("Hi {name}"))
            .add_scorer(ExactMatch::new())
            .add_scorer(Levenshtein::new())
            .no_send_logs(true)
    }
}

braintrust::eval! {
    #[eval(min_score("Levenshtein", 0.5), max_regressions = 3, allow_task_errors)]
    async fn async_builder_and_task() -> Eval<String, String, String> {
        // An async builder may read data first; the task itself is async too.
        tokio::task::yield_now().await;
        Eval::new("eval-macro-async")
            .data(Data::iter(cases()))
            .task_async(|name, _| async move { format!("Hello {name}") })
            .add_scorer(Levenshtein::new())
            .local_store(fresh_store_path("eval-macro-async.db"))
    }
}

/// A store file under Cargo's scratch directory for integration tests (so runs leave nothing
/// in the system's temporary directory), without what an earlier run left there.
fn fresh_store_path(name: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    for suffix in ["", "-wal", "-shm", "-rows"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

#[test]
fn a_failing_gate_fails_the_generated_test() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "test",
            "--quiet",
            "-p",
            "braintrust",
            "--test",
            "eval_gate_fixture",
            "--",
            "--test-threads=1",
        ])
        .env_remove("BRAINTRUST_API_KEY")
        .env("BT_EVAL_NO_SEND_LOGS", "1")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the fixture must fail:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test below_the_minimum ... FAILED")
            || stdout.contains("below_the_minimum"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("eval below_the_minimum failed:"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("score \"ExactMatch\" has mean 0.3333, below the minimum 0.9000"),
        "{stdout}"
    );
    assert!(stdout.contains("1 row(s) failed"), "{stdout}");
    assert!(
        stdout.contains("test result: FAILED. 1 passed; 2 failed"),
        "{stdout}"
    );
}
