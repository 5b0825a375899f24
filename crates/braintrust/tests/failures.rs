//! Failure behaviour against braintrust-local with injected faults: rows arrive exactly once or
//! are counted and reported, and logging never blocks or crashes the caller.

mod common;

use std::time::{Duration, Instant};

use braintrust::http::HttpOptions;
use braintrust::{Event, FlushError, Logger, StartSpan, init_logger};
use braintrust_local::{Fault, LocalServer};
use common::{options, rows, server};
use serde_json::json;

fn log_spans(logger: &Logger, n: usize) {
    for i in 0..n {
        let span = logger.start_span(StartSpan::named(format!("span-{i}")));
        span.log(Event::new().input(json!(i)).output(json!(i * 2)))
            .unwrap();
        span.end();
    }
}

fn assert_each_once(server: &LocalServer, logger: &Logger, n: usize) {
    let rows = rows(server, logger);
    assert_eq!(rows.len(), n);
    for i in 0..n {
        let matching: Vec<_> = rows
            .iter()
            .filter(|r| r["span_attributes"]["name"] == format!("span-{i}"))
            .collect();
        assert_eq!(matching.len(), 1, "span-{i}");
        assert_eq!(matching[0]["output"], json!(i * 2));
        assert!(matching[0]["metrics"]["end"].is_f64());
    }
}

#[test]
fn server_errors_then_recovery_deliver_every_row_once() {
    let server = server();
    server.inject_fault("/logs3", Fault::Status(500), 2);
    server.inject_fault("/logs3", Fault::Status(503), 1);
    let logger = init_logger(options(&server, "recovers").num_retries(3)).unwrap();
    log_spans(&logger, 50);
    logger.flush().unwrap();
    assert_eq!(server.faults_fired(), 3);
    let stats = logger.stats();
    assert_eq!(
        (stats.retried, stats.failed, stats.dropped),
        (3, 0, 0),
        "{stats:?}"
    );
    assert_each_once(&server, &logger, 50);
}

#[test]
fn connection_resets_and_timeouts_are_retried() {
    let server = server();
    server.inject_fault("/logs3", Fault::DropConnection, 1);
    server.inject_fault("/logs3", Fault::Delay(Duration::from_secs(3)), 1);
    let http = HttpOptions {
        request_timeout: Duration::from_millis(300),
        ..HttpOptions::default()
    };
    let logger = init_logger(options(&server, "resets").http_options(http).num_retries(3)).unwrap();
    log_spans(&logger, 20);
    logger.flush().unwrap();
    assert_eq!(server.faults_fired(), 2);
    assert_eq!(logger.stats().retried, 2, "{:?}", logger.stats());
    assert_each_once(&server, &logger, 20);
}

#[test]
fn payload_too_large_is_not_retried_and_is_reported_then_logging_goes_on() {
    let server = server();
    let failed_dir = tempdir("failed");
    let all_dir = tempdir("all");
    let env = braintrust::env_file::EnvLookup::from_pairs([
        (
            "BRAINTRUST_FAILED_PUBLISH_PAYLOADS_DIR",
            failed_dir.to_str().unwrap(),
        ),
        (
            "BRAINTRUST_ALL_PUBLISH_PAYLOADS_DIR",
            all_dir.to_str().unwrap(),
        ),
    ]);
    let logger = init_logger(options(&server, "too-large").env(env)).unwrap();
    // Registration first, so that the injected fault hits the rows.
    logger.log(Event::new().input(json!("first"))).unwrap();
    logger.flush().unwrap();
    server.inject_fault("/logs3", Fault::Status(413), 1);
    log_spans(&logger, 5);
    let err = logger.flush().unwrap_err();
    match &err {
        FlushError::Undelivered { rows, last_error } => {
            assert_eq!(*rows, 5);
            assert!(last_error.contains("413"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(logger.stats().retried, 0);
    assert_eq!(logger.stats().failed, 5);
    // The failed payload was written out, and every payload went to the "all" directory.
    let failed: Vec<_> = std::fs::read_dir(&failed_dir).unwrap().collect();
    assert_eq!(failed.len(), 1);
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(failed[0].as_ref().unwrap().path()).unwrap())
            .unwrap();
    assert_eq!(body["rows"].as_array().unwrap().len(), 5);
    assert_eq!(std::fs::read_dir(&all_dir).unwrap().count(), 2);
    // The next flush is clean again.
    logger.log(Event::new().input(json!("after"))).unwrap();
    logger.flush().unwrap();
    assert_eq!(rows(&server, &logger).len(), 2);
    let _ = std::fs::remove_dir_all(failed_dir);
    let _ = std::fs::remove_dir_all(all_dir);
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "braintrust-test-{tag}-{}-{}",
        std::process::id(),
        braintrust::id::new_uuid_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_rejected_api_key_is_reported_masked() {
    let server = server();
    let logger =
        init_logger(options(&server, "unauthorised").api_key("sk-not-the-right-key-42")).unwrap();
    log_spans(&logger, 3);
    let err = logger.flush().unwrap_err().to_string();
    assert!(err.contains("Invalid API key sk**...**42"), "{err}");
    assert!(!err.contains("not-the-right"), "{err}");
    assert_eq!(
        logger.stats().failed,
        9,
        "start, log and end rows of 3 spans"
    );
}

#[test]
fn a_server_that_comes_up_late_gets_everything() {
    // Reserve a port with nothing listening on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    let logger = init_logger(
        braintrust::LoggerOptions::new()
            .project("late")
            .api_key("braintrust-local")
            .app_url(&url)
            .env(braintrust::env_file::EnvLookup::from_pairs::<&str, &str>([]))
            .set_current(false)
            .num_retries(10)
            .retry_base_delay(Duration::from_millis(20))
            .flush_interval(Duration::from_millis(5)),
    )
    .unwrap();
    log_spans(&logger, 10);
    // Wait until the background sender has seen the server down at least once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while logger.stats().retried == 0 {
        assert!(Instant::now() < deadline, "no retry observed");
        std::thread::yield_now();
    }
    let server = LocalServer::builder().addr(addr).start().unwrap();
    logger.flush().unwrap();
    let stats = logger.stats();
    assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
    assert_each_once(&server, &logger, 10);
}

#[test]
fn a_slow_server_applies_backpressure_without_dropping() {
    let server = server();
    for _ in 0..30 {
        server.inject_fault("/logs3", Fault::Delay(Duration::from_millis(20)), 1);
    }
    let logger = init_logger(
        options(&server, "backpressure")
            .queue_size(8)
            .batch_size(4)
            .enqueue_timeout(Duration::from_secs(60)),
    )
    .unwrap();
    log_spans(&logger, 300);
    logger.flush().unwrap();
    let stats = logger.stats();
    assert_eq!((stats.dropped, stats.failed), (0, 0), "{stats:?}");
    assert_eq!(stats.enqueued, 900);
    assert_each_once(&server, &logger, 300);
}

#[test]
fn rows_that_cannot_be_queued_are_counted_and_reported() {
    let server = server();
    server.inject_fault("/logs3", Fault::Delay(Duration::from_millis(300)), 1);
    let logger = init_logger(
        options(&server, "drops")
            .queue_size(1)
            .batch_size(1)
            .enqueue_timeout(Duration::ZERO),
    )
    .unwrap();
    for i in 0..200 {
        logger.log(Event::new().input(json!(i))).unwrap();
    }
    let stats = logger.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    match logger.flush().unwrap_err() {
        FlushError::Undelivered { rows, .. } => assert_eq!(rows, stats.dropped),
        other => panic!("{other:?}"),
    }
    let stats = logger.stats();
    assert_eq!(
        stats.enqueued + stats.dropped,
        400,
        "two rows per logged span"
    );
    assert_eq!(stats.enqueued, stats.sent + stats.merged + stats.failed);
}

#[test]
fn retry_after_is_honoured() {
    let server = server();
    let logger =
        init_logger(options(&server, "retry-after").retry_base_delay(Duration::from_millis(1)))
            .unwrap();
    logger.log(Event::new().input(json!(0))).unwrap();
    logger.flush().unwrap();
    server.inject_fault("/logs3", Fault::StatusRetryAfter(429, 1), 1);
    logger.log(Event::new().input(json!(1))).unwrap();
    let started = Instant::now();
    logger.flush().unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(rows(&server, &logger).len(), 2);
}

#[test]
fn oversized_rows_use_the_overflow_upload() {
    let server = LocalServer::builder()
        .record_requests(true)
        .payload_limit(Some(4_000))
        .start()
        .unwrap();
    let logger = init_logger(options(&server, "overflow")).unwrap();
    let big = "x".repeat(10_000);
    logger.log(Event::new().input(json!(big))).unwrap();
    logger.log(Event::new().input(json!("small"))).unwrap();
    logger.flush().unwrap();
    let paths: Vec<String> = server
        .recorded_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        paths.contains(&"POST /logs3/overflow".to_owned()),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.starts_with("PUT /objstore/")),
        "{paths:?}"
    );
    let rows = rows(&server, &logger);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().any(|r| r["input"] == big.as_str()));
}

#[test]
fn sync_flush_sends_only_when_asked() {
    let server = server();
    let logger = init_logger(
        options(&server, "sync-flush")
            .sync_flush(true)
            .flush_interval(Duration::from_millis(1)),
    )
    .unwrap();
    log_spans(&logger, 3);
    // Many flush intervals pass; in sync-flush mode none of them sends.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(logger.stats().requests, 0);
    logger.flush().unwrap();
    assert_eq!(logger.stats().requests, 1);
    assert_each_once(&server, &logger, 3);
}
