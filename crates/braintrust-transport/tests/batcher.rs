//! The batcher against braintrust-local: delivery, merging, batching, failures and shutdown.

use std::time::{Duration, SystemTime};

use braintrust_core::event::{Event, SpanAttributes};
use braintrust_core::id::IdFormat;
use braintrust_core::object::ObjectIds;
use braintrust_core::row::{Row, SpanIdentity};
use braintrust_local::{Fault, LocalServer};
use braintrust_transport::batcher::{Batcher, BatcherOptions, FlushError};
use serde_json::json;

fn options(server: &LocalServer) -> BatcherOptions {
    let mut o = BatcherOptions::new(server.url(), server.api_key());
    o.retry_base_delay = Duration::from_millis(1);
    o
}

/// Start, log and end rows of `n` root spans in one experiment.
fn span_rows(experiment: &str, n: usize) -> Vec<Row> {
    let obj = ObjectIds::experiment(experiment);
    let mut rows = Vec::new();
    for i in 0..n {
        let id = SpanIdentity::root(IdFormat::Hex);
        let start = Event::new().input(json!({"i": i})).into_fields().unwrap();
        rows.push(Row::span_start(
            &id,
            &obj,
            &SpanAttributes::named("s"),
            None,
            SystemTime::now(),
            start,
        ));
        let log = Event::new().output(json!(i * 2)).into_fields().unwrap();
        rows.push(Row::span_update(&id, &obj, log));
        rows.push(Row::span_end(&id, &obj, SystemTime::now()));
    }
    rows
}

#[test]
fn delivers_and_merges_span_rows() {
    let server = LocalServer::builder()
        .record_requests(true)
        .start()
        .unwrap();
    let batcher = Batcher::start(options(&server)).unwrap();
    for row in span_rows("e", 50) {
        assert!(batcher.enqueue(row));
    }
    batcher.flush().unwrap();
    let stored = server.rows(&ObjectIds::experiment("e")).unwrap();
    assert_eq!(stored.len(), 50);
    for row in &stored {
        let i = row["input"]["i"].as_u64().unwrap();
        assert_eq!(row["output"], i * 2);
        assert!(row["metrics"]["start"].is_number() && row["metrics"]["end"].is_number());
    }
    let stats = batcher.stats();
    assert_eq!((stats.enqueued, stats.merged, stats.sent), (150, 100, 50));
    assert_eq!((stats.dropped, stats.failed, stats.retried), (0, 0, 0));
    let logs3: Vec<_> = server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.path == "/logs3")
        .collect();
    assert_eq!(logs3.len() as u64, stats.requests);
    assert_eq!(logs3[0].header("content-type"), Some("application/json"));
    assert!(
        logs3[0]
            .header("user-agent")
            .unwrap()
            .starts_with("braintrust-rust/")
    );
}

#[test]
fn splits_requests_by_row_count() {
    let server = LocalServer::builder()
        .record_requests(true)
        .start()
        .unwrap();
    let mut o = options(&server);
    o.config.batch_size = 100;
    let batcher = Batcher::start(o).unwrap();
    for i in 0..250 {
        let row = json!({"id": format!("r{i}"), "dataset_id": "d", "input": i});
        batcher.enqueue(Row::from_map(row.as_object().unwrap().clone()));
    }
    batcher.flush().unwrap();
    let sizes: Vec<usize> = server
        .recorded_requests()
        .iter()
        .filter(|r| r.path == "/logs3")
        .map(|r| r.json.as_ref().unwrap()["rows"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 250);
    assert!(sizes.iter().all(|s| *s <= 100), "{sizes:?}");
    assert_eq!(server.rows(&ObjectIds::dataset("d")).unwrap().len(), 250);
}

#[test]
fn client_errors_are_not_retried_and_flush_reports_them() {
    let server = LocalServer::start().unwrap();
    let mut o = options(&server);
    o.config.api_key = Some("wrong-key".into());
    let batcher = Batcher::start(o).unwrap();
    for row in span_rows("e", 3) {
        batcher.enqueue(row);
    }
    let err = batcher.flush().unwrap_err();
    match err {
        FlushError::Undelivered { rows, last_error } => {
            assert_eq!(rows, 3);
            assert!(last_error.contains("HTTP 401"), "{last_error}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let stats = batcher.stats();
    assert_eq!((stats.failed, stats.retried, stats.sent), (3, 0, 0));
    // The report is per flush: nothing new failed since.
    batcher.flush().unwrap();
}

#[test]
fn network_errors_are_retried_then_reported() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut o = BatcherOptions::new(format!("http://{addr}"), "k");
    o.retry_base_delay = Duration::from_millis(1);
    o.config.num_retries = 2;
    let batcher = Batcher::start(o).unwrap();
    for row in span_rows("e", 2) {
        batcher.enqueue(row);
    }
    let err = batcher.flush().unwrap_err();
    assert!(
        matches!(err, FlushError::Undelivered { rows: 2, .. }),
        "{err:?}"
    );
    let stats = batcher.stats();
    assert_eq!((stats.retried, stats.failed), (2, 2));
}

#[test]
fn rows_after_shutdown_are_dropped_and_counted() {
    let server = LocalServer::start().unwrap();
    let mut batcher = Batcher::start(options(&server)).unwrap();
    for row in span_rows("e", 1) {
        batcher.enqueue(row);
    }
    batcher.shutdown().unwrap();
    assert_eq!(
        server.rows(&ObjectIds::experiment("e")).unwrap().len(),
        1,
        "shutdown flushes"
    );
    assert!(!batcher.enqueue(span_rows("e", 1).remove(0)));
    assert_eq!(batcher.stats().dropped, 1);
    assert_eq!(batcher.flush(), Err(FlushError::Stopped));
}

#[test]
fn dropping_the_batcher_delivers_what_was_queued() {
    let server = LocalServer::start().unwrap();
    {
        let batcher = Batcher::start(options(&server)).unwrap();
        for row in span_rows("e", 5) {
            batcher.enqueue(row);
        }
    }
    assert_eq!(server.rows(&ObjectIds::experiment("e")).unwrap().len(), 5);
}

#[tokio::test(flavor = "current_thread")]
async fn flushes_from_inside_a_current_thread_runtime() {
    let server = LocalServer::start().unwrap();
    let batcher = Batcher::start(options(&server)).unwrap();
    for row in span_rows("e", 4) {
        batcher.enqueue(row);
    }
    batcher.flush_async().await.unwrap();
    assert_eq!(server.rows(&ObjectIds::experiment("e")).unwrap().len(), 4);
    for row in span_rows("e", 2) {
        batcher.enqueue(row);
    }
    // The blocking flush does not deadlock either: the worker has its own runtime.
    batcher.flush().unwrap();
    assert_eq!(server.rows(&ObjectIds::experiment("e")).unwrap().len(), 6);
}

#[test]
fn rows_are_sent_without_a_flush_after_the_interval() {
    let server = LocalServer::start().unwrap();
    let mut o = options(&server);
    o.flush_interval = Duration::from_millis(20);
    let batcher = Batcher::start(o).unwrap();
    for row in span_rows("e", 1) {
        batcher.enqueue(row);
    }
    // Wait for the delivery counter rather than for a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while batcher.stats().sent == 0 {
        assert!(std::time::Instant::now() < deadline, "rows were never sent");
        std::thread::yield_now();
    }
    assert_eq!(server.rows(&ObjectIds::experiment("e")).unwrap().len(), 1);
}

#[test]
fn dropping_the_batcher_finishes_attachment_uploads() {
    use braintrust_core::attachment::Attachment;
    let server = LocalServer::builder()
        .record_requests(true)
        .start()
        .unwrap();
    let batcher = Batcher::start(options(&server)).unwrap();
    let attachment = Attachment::new(vec![5; 4096], "five.bin", "application/octet-stream");
    let id = SpanIdentity::root(IdFormat::Hex);
    let fields = Event::new()
        .input(json!({"blob": &attachment}))
        .into_fields()
        .unwrap();
    let row = Row::span_start(
        &id,
        &ObjectIds::experiment("e"),
        &SpanAttributes::named("s"),
        None,
        SystemTime::now(),
        fields,
    );
    assert!(batcher.enqueue(row));
    drop(attachment);
    drop(batcher);
    let statuses: Vec<_> = server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.path == "/attachment/status")
        .collect();
    assert_eq!(statuses.len(), 1, "shutdown waited for the upload");
    assert_eq!(
        statuses[0].json.as_ref().unwrap()["status"],
        json!({"upload_status": "done"})
    );
}

#[test]
fn a_spans_rows_in_later_chunks_arrive_after_its_first_row() {
    let server = LocalServer::builder()
        .record_requests(true)
        .start()
        .unwrap();
    let mut o = options(&server);
    // One row per request and a chunk every 50 rows: a span's rows land in different chunks,
    // whose requests would race if chunks were not kept in order.
    o.config.batch_size = 1;
    let batcher = Batcher::start(o).unwrap();
    let rows = span_rows("e", 60);
    // The first span's first row is slow to land; its later rows must still wait for it.
    server.inject_fault("/logs3", Fault::Delay(Duration::from_millis(200)), 1);
    for phase in 0..3 {
        for row in rows.iter().skip(phase).step_by(3) {
            assert!(batcher.enqueue(row.clone()));
        }
    }
    batcher.flush().unwrap();
    let mut seen = std::collections::HashSet::new();
    for request in server
        .recorded_requests()
        .iter()
        .filter(|r| r.path == "/logs3")
    {
        for row in request.json.as_ref().unwrap()["rows"].as_array().unwrap() {
            let id = row["id"].as_str().unwrap().to_owned();
            let merge = row["_is_merge"].as_bool() == Some(true);
            assert!(
                seen.contains(&id) || !merge,
                "a merge row arrived first: {row}"
            );
            seen.insert(id);
        }
    }
    let stored = server.rows(&ObjectIds::experiment("e")).unwrap();
    assert_eq!(stored.len(), 60);
    for row in &stored {
        assert_eq!(row["output"], row["input"]["i"].as_u64().unwrap() * 2);
        assert!(row["metrics"]["end"].is_number(), "{row}");
    }
}

#[test]
fn rows_waiting_for_their_project_keep_their_order_after_it_is_registered() {
    use braintrust_core::span::{ObjectRef, PendingKind, PendingRow};
    let server = LocalServer::builder().start().unwrap();
    let mut o = options(&server);
    // Rows are moved aside only when something wakes the worker, and sent at the flush.
    o.flush_interval = Duration::from_secs(600);
    let batcher = Batcher::start(o).unwrap();
    let project = ObjectRef::project_named("waiting-order");
    let update = |output: i64| {
        PendingRow {
        object: Some(project.clone()),
        kind: PendingKind::Fields(
            json!({"id": "r", "_is_merge": true, "output": output, "metadata": {output.to_string(): true}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        ),
    }
    };
    assert!(batcher.submit(update(1)));
    // Resolving wakes the worker, which moves the first row aside (its project was not
    // registered yet) and then registers the project.
    batcher.resolve(Some(project.clone())).unwrap();
    let ids = project.ids().cloned().expect("registered");
    // The project is known now, but this row still comes after the first.
    assert!(batcher.submit(update(2)));
    batcher.flush().unwrap();
    let rows = server.rows(&ids).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["output"], 2, "the later row wins: {:?}", rows[0]);
    assert_eq!(rows[0]["metadata"], json!({"1": true, "2": true}));
    let stats = batcher.stats();
    assert_eq!((stats.enqueued, stats.merged, stats.sent), (2, 1, 1));
}
