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

/// Runs the default (child) workload: `spans` spans of 200-byte payloads, with `extra` flags.
fn run_children(spans: &str, extra: &[&str]) -> Value {
    let args: Vec<&str> = ["--spans", spans, "--payload-bytes", "200"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    run(&args)
}

/// Runs the bench binary with `args`, checks that it fails, and returns its standard error.
fn refused(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_log_throughput"))
        .args(args)
        .output()
        .expect("log_throughput runs");
    assert!(!output.status.success(), "{args:?} was accepted");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Checks a report of `spans` spans of `workload` with nothing dropped, and at least one
/// acknowledged row for each of the `stored` spans (the binary has checked the stored count;
/// a span's rows sent in different requests count once each).
fn assert_delivered(report: &Value, workload: &str, spans: u64, stored: u64) {
    assert_eq!(report["workload"], workload, "{report}");
    assert_eq!(report["spans"], spans, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    let acknowledged = report["rows_acknowledged"].as_u64().unwrap_or(0);
    assert!(acknowledged >= stored, "{report}");
}

/// The loop's wall time and the calling thread's CPU time, per span.
fn caller_times(report: &Value) -> (f64, f64) {
    let wall = report["caller_ns_per_span"].as_f64().unwrap_or(0.0);
    let cpu = report["caller_cpu_ns_per_span"].as_f64().unwrap_or(0.0);
    (wall, cpu)
}

#[test]
fn child_spans_are_all_stored_and_reported() {
    let report = run_children("300", &[]);
    assert_delivered(&report, "child", 300, 301);
    assert!(
        report["e2e_spans_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    // The thread's CPU time fits in the loop's wall time (1% for the clocks being read apart).
    let (wall, cpu) = caller_times(&report);
    assert!(cpu > 0.0 && cpu <= wall * 1.01, "{report}");
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
    assert_delivered(&report, "root", 300, 300);
}

#[test]
fn flushing_every_zero_spans_is_refused() {
    let stderr = refused(&["--spans", "10", "--flush-every", "0"]);
    assert!(stderr.contains("--flush-every"), "{stderr}");
}

#[test]
fn spans_logging_by_reference_are_all_stored() {
    let report = run_children("300", &["--log-by-reference"]);
    assert_delivered(&report, "child", 300, 301);
    assert_eq!(report["log_by_reference"], true, "{report}");
}

#[test]
fn with_a_one_row_queue_logging_waits_and_nothing_is_dropped() {
    let report = run_children("100", &["--queue-size", "1"]);
    assert_delivered(&report, "child", 100, 101);
    // Every row waited for room, so the loop's wall time is well beyond its CPU time (a
    // default queue holds all 302 rows at once, and the two are about equal).
    let (wall, cpu) = caller_times(&report);
    assert!(wall > 2.0 * cpu, "{report}");
}

#[test]
fn an_unknown_workload_is_refused() {
    let stderr = refused(&["--workload", "sideways", "--spans", "1"]);
    assert!(stderr.contains("sideways"), "{stderr}");
}

#[test]
fn flushing_every_span_sends_each_span_on_its_own() {
    let report = run_children("30", &["--flush-every", "1"]);
    assert_delivered(&report, "child", 30, 31);
    assert_eq!(report["flush_every"], 1, "{report}");
    // Each flush sends the span logged since the last one: at least one request a span (the
    // 91 rows of an unflushed run fit in one).
    let requests = report["requests"].as_u64().unwrap_or(0);
    assert!(requests >= 30, "{report}");
}
