//! `log_throughput` end to end with a few spans: it logs to its in-process braintrust-local,
//! checks the stored count itself, and prints its JSON line.

use std::process::Command;

use serde_json::Value;

/// Runs the bench binary with `args` and returns its JSON line.
fn run(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_log_throughput"))
        .args(args)
        .output()
        .expect("log_throughput runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "log_throughput failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let line = stdout.lines().last().expect("a JSON line");
    serde_json::from_str(line).expect("the last line is JSON")
}

#[test]
fn child_spans_are_all_stored_and_reported() {
    let report = run(&["--spans", "300", "--payload-bytes", "200"]);
    assert_eq!(report["workload"], "child");
    assert_eq!(report["spans"], 300);
    assert_eq!(report["dropped"], 0);
    // The root and its 300 children, some rows sent apart from the rest of their span.
    assert!(
        report["rows_acknowledged"].as_u64().unwrap() >= 301,
        "{report}"
    );
    assert!(
        report["e2e_spans_per_sec"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

#[test]
fn root_spans_are_all_stored_and_reported() {
    let report = run(&[
        "--workload",
        "root",
        "--spans",
        "300",
        "--payload-bytes",
        "978",
    ]);
    assert_eq!(report["workload"], "root");
    assert_eq!(report["spans"], 300);
    assert_eq!(report["dropped"], 0);
    assert!(
        report["rows_acknowledged"].as_u64().unwrap() >= 300,
        "{report}"
    );
}

#[test]
fn with_a_one_row_queue_logging_waits_and_nothing_is_dropped() {
    let report = run(&[
        "--spans",
        "100",
        "--payload-bytes",
        "200",
        "--queue-size",
        "1",
    ]);
    assert_eq!(report["dropped"], 0, "{report}");
    // The binary has checked that all 101 spans were stored.
    assert!(
        report["rows_acknowledged"].as_u64().unwrap() >= 101,
        "{report}"
    );
    // The loop waited for room: its wall time exceeds the calling thread's CPU time.
    let cpu = report["caller_cpu_ns_per_span"].as_f64().unwrap();
    let wall = report["caller_ns_per_span"].as_f64().unwrap();
    assert!(wall > cpu, "{report}");
}

#[test]
fn an_unknown_workload_is_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_log_throughput"))
        .args(["--workload", "sideways", "--spans", "1"])
        .output()
        .expect("log_throughput runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sideways"), "{stderr}");
}
