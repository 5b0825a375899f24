//! The logger and span API against braintrust-local.

mod common;

use std::collections::HashMap;

use braintrust::object::ObjectIds;
use braintrust::span_components::{SlugObject, SpanComponents};
use braintrust::{
    Event, Feedback, SpanFutureExt, SpanType, StartSpan, current_span, extract_trace_context,
    init_logger,
};
use common::{named, options, rows, server};
use serde_json::{Value, json};

#[test]
fn nested_spans_form_one_merged_row_each() {
    let server = server();
    let logger = init_logger(options(&server, "nested")).unwrap();
    let root =
        logger.start_span(StartSpan::named("root-op").event(Event::new().input(json!({"q": 1}))));
    root.in_scope(|| {
        let child = logger.start_span(StartSpan::named("child").span_type(SpanType::Tool));
        child.in_scope(|| {
            let grandchild = logger.start_span(StartSpan::named("grandchild"));
            grandchild.log(Event::new().output(json!("deep"))).unwrap();
        }); // the grandchild ends when its last handle drops
        child
            .log(
                Event::new()
                    .output(json!("c"))
                    .metadata_entry("k", json!(1))
                    .metric("tokens", 3.0),
            )
            .unwrap();
        child.end();
    });
    root.log(Event::new().output(json!({"a": 2}))).unwrap();
    root.end();
    logger.flush().unwrap();

    let stats = logger.stats();
    assert_eq!((stats.failed, stats.dropped), (0, 0));
    assert!(stats.merged >= 6, "start/log/end rows merge: {stats:?}");
    let rows = rows(&server, &logger);
    assert_eq!(rows.len(), 3);
    let (r, c, g) = (
        named(&rows, "root-op"),
        named(&rows, "child"),
        named(&rows, "grandchild"),
    );
    assert_eq!(r["id"], root.id());
    assert_eq!(
        r["span_attributes"]["type"], "task",
        "logger roots default to task"
    );
    assert_eq!(r["input"], json!({"q": 1}));
    assert_eq!(r["output"], json!({"a": 2}));
    assert!(r.get("span_parents").is_none_or(Value::is_null));
    assert_eq!(c["span_parents"], json!([root.span_id()]));
    assert_eq!(g["span_parents"], json!([c["span_id"]]));
    for row in [r, c, g] {
        assert_eq!(row["root_span_id"], root.root_span_id());
        let (start, end) = (
            row["metrics"]["start"].as_f64().unwrap(),
            row["metrics"]["end"].as_f64().unwrap(),
        );
        assert!(end >= start, "{row}");
        assert_eq!(row["context"]["span_origin"]["name"], "braintrust.sdk.rust");
        assert!(row["span_attributes"]["exec_counter"].is_u64());
    }
    assert_eq!(c["span_attributes"]["type"], "tool");
    assert_eq!(c["metadata"], json!({"k": 1}));
    assert_eq!(c["metrics"]["tokens"], 3.0);
    assert_eq!(g["output"], "deep");
}

#[test]
fn values_logged_by_reference_arrive_as_serde_json_writes_them() {
    #[derive(serde::Serialize)]
    struct Request<'a> {
        model: &'a str,
        messages: Vec<(&'a str, &'a str)>,
        temperature: Option<f64>,
    }
    let server = server();
    let logger = init_logger(options(&server, "by-reference")).unwrap();
    let request = Request {
        model: "m",
        messages: vec![("user", "a \"quoted\" line\n")],
        temperature: None,
    };
    let span = logger.start_span(StartSpan::named("call"));
    span.log(
        Event::new()
            .input_serialized(&request)
            .metadata_serialized(&json!({"a": 1})),
    )
    .unwrap();
    // Later logs merge into what was logged as text (metadata) or replace it (output).
    span.log(
        Event::new()
            .output_serialized("first")
            .metadata(json!({"b": 2})),
    )
    .unwrap();
    span.log(Event::new().output(json!("second"))).unwrap();
    span.end();
    // The logger's own entry points take such events too.
    let logged = logger.log(Event::new().input_serialized(&request)).unwrap();
    logger
        .update_span(&logged, Event::new().expected_serialized(&["e"]))
        .unwrap();
    logger.flush().unwrap();

    let rows = rows(&server, &logger);
    let row = named(&rows, "call");
    let request = serde_json::to_value(&request).unwrap();
    assert_eq!(row["input"], request);
    assert_eq!(row["input"]["messages"][0][1], "a \"quoted\" line\n");
    assert_eq!(row["metadata"], json!({"a": 1, "b": 2}));
    assert_eq!(row["output"], "second");
    let root = rows
        .iter()
        .find(|row| row["id"] == logged)
        .expect("the logged root");
    assert_eq!(root["input"], request);
    assert_eq!(root["expected"], json!(["e"]));
}

#[test]
fn invalid_events_are_errors_and_nothing_is_sent_for_them() {
    let server = server();
    let logger = init_logger(options(&server, "invalid")).unwrap();
    let err = logger.log(Event::new().score("accuracy", 1.5)).unwrap_err();
    assert!(err.to_string().contains("accuracy"), "{err}");
    let span = logger.start_span(StartSpan::named("s"));
    assert!(span.log(Event::new().metadata(json!([1]))).is_err());
    span.end();
    logger.flush().unwrap();
    let rows = rows(&server, &logger);
    assert_eq!(
        rows.len(),
        1,
        "only the span, not the rejected log: {rows:#?}"
    );
    assert!(rows[0].get("metadata").is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn context_follows_await_spawned_tasks_and_threads() {
    let server = server();
    let logger = init_logger(options(&server, "context")).unwrap();
    let root = logger.start_span(StartSpan::named("request"));

    async fn step(logger: braintrust::Logger, name: &'static str) -> String {
        tokio::task::yield_now().await;
        let span = logger.start_span(StartSpan::named(name));
        tokio::task::yield_now().await;
        let parent: Vec<String> = span.span_parents().map(str::to_owned).collect();
        span.end();
        parent.join(",")
    }

    // Across .await, interleaved with an unrelated future on the same thread.
    let (a, b) = tokio::join!(
        step(logger.clone(), "awaited").in_span(root.clone()),
        step(logger.clone(), "outside"),
    );
    assert_eq!(a, root.span_id());
    assert_eq!(b, "", "a future without the span must not see it");

    // Into a spawned task (carried by braintrust::spawn).
    let spawned = root.in_scope(|| braintrust::spawn(step(logger.clone(), "spawned")));
    assert_eq!(spawned.await.unwrap(), root.span_id());

    // Into a thread.
    let (span, l) = (root.clone(), logger.clone());
    let from_thread = std::thread::spawn(move || {
        span.in_scope(|| {
            let child = l.start_span(StartSpan::named("threaded"));
            child.span_parents().collect::<Vec<_>>().join(",")
        })
    })
    .join()
    .unwrap();
    assert_eq!(from_thread, root.span_id());

    assert!(
        current_span().is_noop(),
        "nothing stays current after the scopes"
    );
    root.end();
    logger.flush_async().await.unwrap();
    let rows = rows(&server, &logger);
    assert_eq!(rows.len(), 5);
    assert_eq!(
        named(&rows, "spawned")["span_parents"],
        json!([root.span_id()])
    );
    assert!(
        named(&rows, "outside")
            .get("span_parents")
            .is_none_or(Value::is_null)
    );
}

#[test]
fn loggers_that_are_not_current_write_to_their_own_projects() {
    let server = server();
    let a = init_logger(options(&server, "project-a")).unwrap();
    let b = init_logger(options(&server, "project-b")).unwrap();
    a.log(Event::new().input(json!("to a"))).unwrap();
    b.log(Event::new().input(json!("to b"))).unwrap();
    // A span of `a` current does not capture spans of `b`.
    let span_a = a.start_span(StartSpan::named("a-span"));
    let span_b = span_a.in_scope(|| b.start_span(StartSpan::named("b-span")));
    assert_eq!(span_b.span_parents().len(), 0);
    drop((span_a, span_b));
    a.flush().unwrap();
    b.flush().unwrap();
    assert_ne!(a.project_id(), b.project_id());
    let (rows_a, rows_b) = (rows(&server, &a), rows(&server, &b));
    assert_eq!(rows_a.len(), 2);
    assert_eq!(rows_b.len(), 2);
    assert!(rows_a.iter().any(|r| r["input"] == "to a"));
    assert!(rows_b.iter().any(|r| r["input"] == "to b"));
}

#[test]
fn feedback_updates_exports_and_permalinks() {
    let server = server();
    let logger = init_logger(options(&server, "feedback")).unwrap();
    // Before the project is registered the export names it lazily, like vector 6.
    let lazy = SpanComponents::parse(&logger.export()).unwrap();
    assert!(matches!(&lazy.object, SlugObject::Lazy(args) if args["project_name"] == "feedback"));

    let id = logger
        .log(Event::new().input(json!("q")).output(json!("a")))
        .unwrap();
    logger
        .log_feedback(
            &id,
            Feedback::new()
                .score("helpful", true)
                .comment("nice")
                .tags(["good"]),
        )
        .unwrap();
    logger
        .update_span(&id, Event::new().metadata_entry("reviewed", json!(true)))
        .unwrap();
    let span = logger.start_span(StartSpan::named("linked"));
    let slug = span.export();
    span.end();
    logger.flush().unwrap();

    let project_id = logger.project_id().unwrap();
    let resolved = SpanComponents::parse(&logger.export()).unwrap();
    assert_eq!(resolved.object, SlugObject::Id(project_id.clone()));
    let rows = rows(&server, &logger);
    let logged = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(logged["scores"], json!({"helpful": 1}));
    assert_eq!(logged["tags"], json!(["good"]));
    assert_eq!(logged["metadata"], json!({"reviewed": true}));
    let comment = rows.iter().find(|r| r.get("comment").is_some()).unwrap();
    assert_eq!(comment["comment"]["text"], "nice");
    assert_eq!(comment["origin"]["id"], id.as_str());

    let link = span.permalink().unwrap();
    assert_eq!(
        link,
        format!(
            "{}/app/{}/object?object_type=project_logs&object_id={}&id={}",
            server.url(),
            server.org_name(),
            project_id,
            span.id()
        )
    );
    // The slug exported before resolution names the project lazily and still resolves.
    let parsed = SpanComponents::parse(&slug).unwrap();
    assert!(matches!(parsed.object, SlugObject::Lazy(_)));
    assert_eq!(parsed.row.unwrap().row_id, span.id());
}

#[test]
fn official_sdk_slugs_as_parents() {
    let server = server();
    let logger = init_logger(options(&server, "receiver")).unwrap();
    // Vector 1 (Python, lazy project "capture-proj") and vector 3 (propagated_event).
    let lazy = "BAICA2BRVY+63VVjBK+gqwCTWBwMv/QZfzA0ZeF7ImNvbXB1dGVfb2JqZWN0X21ldGFkYXRhX2FyZ3MiOnsicHJvamVjdF9uYW1lIjoiY2FwdHVyZS1wcm9qIiwicHJvamVjdF9pZCI6bnVsbH0sInJvd19pZCI6IjEwNTMxMzhiLTI1ZGYtNDcyNy1hYjVmLTQ1NzM0Njc3OWVlOSJ9";
    let propagated = "BAICA7XxgoRwE5wXBKsMPfBirzYRiuc3Lxt2lVp7InByb3BhZ2F0ZWRfZXZlbnQiOnsibWV0YWRhdGEiOnsicHJvcCI6InllcyJ9fSwib2JqZWN0X2lkIjoiNzQ3ZWJjN2ItNmE5Yi01OTdlLTk0ZjItNTEyY2NlNDgxMDAwIiwicm93X2lkIjoiMzExNDZkMTgtODRiYy00YTY3LTgxNGEtNTg3NWMzZTVmYzNlIn0=";
    let a = logger.start_span(StartSpan::named("under-python").parent(lazy));
    a.end();
    let b = logger.start_span(StartSpan::named("propagated").parent(propagated));
    let grandchild = b.start_span(StartSpan::named("inherits"));
    grandchild.end();
    // Our own export carries the propagated event onward.
    let exported = SpanComponents::parse(&b.export()).unwrap();
    assert_eq!(
        exported.propagated_event.unwrap()["metadata"],
        json!({"prop": "yes"})
    );
    b.end();
    logger.flush().unwrap();
    assert_eq!(logger.stats().failed, 0, "{:?}", logger.stats());

    // The lazy slug's project resolves by name: "capture-proj", whose id (derived from the name,
    // as in the captured traffic) is the object id of vector 3.
    assert_eq!(
        logger.project_id(),
        None,
        "nothing went to the logger's own project"
    );
    let rows_b = server
        .rows(&ObjectIds::project_logs(
            "747ebc7b-6a9b-597e-94f2-512cce481000",
        ))
        .unwrap();
    assert_eq!(rows_b.len(), 3);
    let row = named(&rows_b, "under-python");
    assert_eq!(row["root_span_id"], "afa0ab0093581c0cbff4197f303465e1");
    assert_eq!(row["span_parents"], json!(["6051558fbadd5563"]));
    assert!(row.get("metadata").is_none());
    for name in ["propagated", "inherits"] {
        let row = named(&rows_b, name);
        assert_eq!(row["root_span_id"], "ab0c3df062af36118ae7372f1b76955a");
        assert_eq!(row["metadata"], json!({"prop": "yes"}), "{name}");
    }
    assert_eq!(
        named(&rows_b, "propagated")["span_parents"],
        json!(["b5f1828470139c17"])
    );
}

#[test]
fn our_exports_and_w3c_headers_continue_traces_across_loggers() {
    let server = server();
    let sender = init_logger(options(&server, "sender")).unwrap();
    let receiver = init_logger(options(&server, "receiver")).unwrap();
    let origin = sender.start_span(StartSpan::named("origin"));

    let by_slug = receiver.start_span(StartSpan::named("by-slug").parent(origin.export()));
    let mut headers = HashMap::new();
    headers.insert("BAGGAGE".to_owned(), "tenant=acme".to_owned());
    origin.inject(&mut headers);
    assert_eq!(
        headers.len(),
        2,
        "the baggage header is replaced, not duplicated: {headers:?}"
    );
    assert!(headers["baggage"].starts_with("braintrust.parent=project_name:sender"));
    assert!(headers["baggage"].ends_with(",tenant=acme"));
    let remote = extract_trace_context(&headers).unwrap();
    let by_header = receiver.start_span(StartSpan::named("by-header").parent(remote));
    // Without baggage the span goes to the receiver's own project.
    headers.remove("baggage");
    let local = receiver.start_span(
        StartSpan::named("no-baggage").parent(extract_trace_context(&headers).unwrap()),
    );
    // An invalid traceparent extracts nothing: a fresh root.
    headers.insert("traceparent".into(), "garbage".into());
    assert!(extract_trace_context(&headers).is_none());
    drop((by_slug, by_header, local));
    origin.end();
    sender.flush().unwrap();
    receiver.flush().unwrap();

    let sender_rows = rows(&server, &sender);
    assert_eq!(sender_rows.len(), 3, "{sender_rows:#?}");
    for name in ["by-slug", "by-header"] {
        let row = named(&sender_rows, name);
        assert_eq!(row["root_span_id"], origin.root_span_id());
        assert_eq!(row["span_parents"], json!([origin.span_id()]));
    }
    let receiver_rows = rows(&server, &receiver);
    assert_eq!(
        named(&receiver_rows, "no-baggage")["root_span_id"],
        origin.root_span_id()
    );
}

#[test]
fn malformed_slug_parent_falls_back_to_a_root_span_with_a_warning() {
    let server = server();
    let logger = init_logger(options(&server, "malformed")).unwrap();
    let warnings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = warnings.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || Capture(sink.clone()))
        .with_ansi(false)
        .finish();
    let span = tracing::subscriber::with_default(subscriber, || {
        logger.start_span(StartSpan::named("fallback").parent("not a slug!"))
    });
    assert_eq!(span.span_parents().len(), 0);
    assert!(!span.is_noop());
    let text = String::from_utf8(warnings.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("malformed parent slug") && text.contains("root span"),
        "{text}"
    );
    span.end();
    logger.flush().unwrap();
    assert_eq!(
        named(&rows(&server, &logger), "fallback")["span_parents"],
        Value::Null
    );
}

struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn synchronous_logging_delivers_before_returning() {
    let server = server();
    let logger = init_logger(options(&server, "sync").async_flush(false)).unwrap();
    logger.log(Event::new().input(json!(1))).unwrap();
    // No flush: the row is already stored.
    assert_eq!(rows(&server, &logger).len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_flush_inside_a_current_thread_runtime() {
    let server = server();
    let logger = init_logger(options(&server, "in-runtime")).unwrap();
    logger.log(Event::new().input(json!(1))).unwrap();
    logger.flush().unwrap();
    assert_eq!(rows(&server, &logger).len(), 1);
}

#[test]
fn log_and_end_writes_the_last_fields_and_the_end_in_one_row() {
    let server = server();
    let logger = init_logger(options(&server, "log-and-end").sync_flush(true)).unwrap();
    let span = logger.start_span(StartSpan::named("once"));
    span.log_and_end(Event::new().output(json!("done")))
        .unwrap();
    assert!(span.is_ended());
    // After the end, fields are still merged in (as a separate row).
    span.log_and_end(Event::new().metadata_entry("late", json!(true)))
        .unwrap();
    drop(span);
    logger.flush().unwrap();
    assert_eq!(
        logger.stats().enqueued,
        3,
        "start, end with output, late update"
    );
    let rows = rows(&server, &logger);
    let once = named(&rows, "once");
    assert_eq!(once["output"], "done");
    assert_eq!(once["metadata"], json!({"late": true}));
    assert!(once["metrics"]["end"].as_f64().unwrap() >= once["metrics"]["start"].as_f64().unwrap());
}
