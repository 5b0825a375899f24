//! `#[traced]` and the helpers without the macro, against braintrust-local: span tree shape,
//! captured input/output/error, panics, methods, generics, async on many tasks, async traits.
//!
//! Each test starts its own logger (not current) and calls traced code under a root span of
//! it, so tests running in parallel do not share state.

mod common;

use std::fmt;

use braintrust::{Event, Logger, Span, SpanFutureExt, StartSpan, init_logger, traced};
use common::{named, options, rows, server};
use serde::Serialize;
use serde_json::{Value, json};

fn start(project: &str) -> (braintrust_local::LocalServer, Logger, Span) {
    let server = server();
    let logger = init_logger(options(&server, project)).unwrap();
    let root = logger.start_span(StartSpan::named("test-root"));
    (server, logger, root)
}

/// Ends `root`, flushes and returns the rows.
fn finish(server: &braintrust_local::LocalServer, logger: &Logger, root: Span) -> Vec<Value> {
    root.end();
    logger.flush().unwrap();
    rows(server, logger)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn parent_of(row: &Value) -> Value {
    row["span_parents"][0].clone()
}

#[derive(Serialize, Debug, Clone)]
struct Query {
    text: String,
    top_k: u32,
}

#[traced]
fn retrieve(query: &Query, limit: usize) -> Vec<String> {
    (0..limit.min(query.top_k as usize))
        .map(|i| format!("doc-{i}"))
        .collect()
}

#[traced(name = "answer-question", type = "task", metadata = {"model": "m-1", "temperature": 0.5}, tags = ["rag"])]
fn answer(query: Query) -> String {
    let docs = retrieve(&query, 2);
    format!("{} from {}", query.text, docs.join("+"))
}

#[test]
fn nested_sync_calls_form_a_tree_with_input_and_output() {
    let (server, logger, root) = start("traced-nested");
    let result = root.in_scope(|| {
        answer(Query {
            text: "why".into(),
            top_k: 5,
        })
    });
    assert_eq!(result, "why from doc-0+doc-1");
    let rows = finish(&server, &logger, root);
    assert_eq!(rows.len(), 3, "{rows:#?}");

    let outer = named(&rows, "answer-question");
    assert_eq!(outer["span_attributes"]["type"], "task");
    assert_eq!(
        outer["input"],
        json!({"query": {"text": "why", "top_k": 5}})
    );
    assert_eq!(outer["output"], "why from doc-0+doc-1");
    assert_eq!(
        outer["metadata"],
        json!({"model": "m-1", "temperature": 0.5})
    );
    assert_eq!(outer["tags"], json!(["rag"]));
    assert_eq!(parent_of(outer), named(&rows, "test-root")["span_id"]);

    let inner = named(&rows, "retrieve");
    assert_eq!(
        inner["span_attributes"]["type"], "function",
        "the default type"
    );
    assert_eq!(
        inner["input"],
        json!({"query": {"text": "why", "top_k": 5}, "limit": 2})
    );
    assert_eq!(inner["output"], json!(["doc-0", "doc-1"]));
    assert_eq!(parent_of(inner), outer["span_id"]);
    assert_eq!(inner["root_span_id"], outer["root_span_id"]);
    for row in [outer, inner] {
        let metrics = &row["metrics"];
        assert!(metrics["end"].as_f64().unwrap() >= metrics["start"].as_f64().unwrap());
    }
}

#[derive(Debug)]
struct StoreError {
    source: std::io::Error,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("store unavailable")
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[traced]
fn parse_number(text: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = text.trim().parse()?;
    Ok(value * 2)
}

#[traced]
fn load(key: &str) -> Result<String, StoreError> {
    if key.is_empty() {
        return Err(StoreError {
            source: std::io::Error::other("disk on fire"),
        });
    }
    Ok(format!("value of {key}"))
}

#[test]
fn results_log_ok_as_output_and_err_as_error_with_its_source_chain() {
    let (server, logger, root) = start("traced-results");
    root.in_scope(|| {
        assert_eq!(parse_number(" 21 ").unwrap(), 42);
        assert!(parse_number("x").is_err());
        assert!(load("").is_err());
        assert_eq!(load("k").unwrap(), "value of k");
    });
    let rows = finish(&server, &logger, root);
    let by_input = |name: &str, input: Value| {
        rows.iter()
            .find(|r| r["span_attributes"]["name"] == name && r["input"] == input)
            .unwrap_or_else(|| panic!("no {name} with {input} in {rows:#?}"))
            .clone()
    };
    let ok = by_input("parse_number", json!({"text": " 21 "}));
    assert_eq!(ok["output"], 42);
    assert!(ok.get("error").is_none_or(Value::is_null));
    let err = by_input("parse_number", json!({"text": "x"}));
    assert_eq!(err["error"], "invalid digit found in string");
    assert!(err.get("output").is_none_or(Value::is_null), "{err}");
    let chained = by_input("load", json!({"key": ""}));
    assert_eq!(chained["error"], "store unavailable: disk on fire");
    assert_eq!(
        by_input("load", json!({"key": "k"}))["output"],
        "value of k"
    );
}

#[traced]
fn explode(depth: u32) -> u32 {
    if depth > 1 {
        panic!("boom at depth {depth}");
    }
    depth
}

#[test]
fn a_panic_is_logged_as_error_ends_the_span_and_keeps_unwinding() {
    let (server, logger, root) = start("traced-panic");
    let caught = root.in_scope(|| std::panic::catch_unwind(|| explode(3)));
    let payload = caught.expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("boom at depth 3")
    );
    // The current span is restored after the unwind: new spans nest under the root again.
    root.in_scope(|| assert_eq!(explode(1), 1));
    let rows = finish(&server, &logger, root);
    let panicked = rows
        .iter()
        .find(|r| r["input"] == json!({"depth": 3}))
        .unwrap();
    assert_eq!(panicked["error"], "panicked: boom at depth 3");
    assert!(panicked["metrics"]["end"].is_number(), "the span ended");
    let calm = rows
        .iter()
        .find(|r| r["input"] == json!({"depth": 1}))
        .unwrap();
    assert_eq!(parent_of(calm), panicked["span_parents"][0]);
}

/// Neither `Serialize` nor `Debug`.
struct Opaque;

/// `Debug` only.
#[derive(Debug)]
struct DebugOnly {
    id: u8,
}

#[traced(skip(api_key))]
fn call_service(api_key: &str, client: Opaque, target: DebugOnly, payload: Vec<u8>) -> usize {
    let _ = (api_key, client);
    payload.len() + usize::from(target.id)
}

#[traced(skip_all)]
fn all_skipped(password: String) -> usize {
    password.len()
}

#[traced(output = false)]
fn no_output(x: u8) -> String {
    format!("secret-{x}")
}

#[traced(notrace_io)]
fn manual(x: u8) -> u8 {
    let _ = braintrust::current_span().log(Event::new().input(json!({"custom": x})));
    x + 1
}

#[traced]
fn returns_opaque(n: u8) -> impl Iterator<Item = u8> + Clone {
    0..n
}

#[test]
fn skipped_secret_and_uncapturable_arguments_are_left_out() {
    let (server, logger, root) = start("traced-capture");
    root.in_scope(|| {
        assert_eq!(
            call_service("sk-secret", Opaque, DebugOnly { id: 7 }, vec![1, 2]),
            9
        );
        assert_eq!(all_skipped("hunter2".into()), 7);
        assert_eq!(no_output(3), "secret-3");
        assert_eq!(manual(1), 2);
        assert_eq!(returns_opaque(3).count(), 3);
    });
    let rows = finish(&server, &logger, root);
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("sk-secret") && !text.contains("hunter2"));

    let service = named(&rows, "call_service");
    assert_eq!(
        service["input"],
        json!({"target": "DebugOnly { id: 7 }", "payload": [1, 2]}),
        "Debug text for Debug-only values; nothing for opaque ones or skipped ones"
    );
    assert_eq!(service["output"], 9);
    assert!(
        named(&rows, "all_skipped")
            .get("input")
            .is_none_or(Value::is_null)
    );
    assert_eq!(named(&rows, "all_skipped")["output"], 7);
    let hidden = named(&rows, "no_output");
    assert_eq!(hidden["input"], json!({"x": 3}));
    assert!(hidden.get("output").is_none_or(Value::is_null));
    let custom = named(&rows, "manual");
    assert_eq!(custom["input"], json!({"custom": 1}));
    assert!(custom.get("output").is_none_or(Value::is_null));
    // `impl Trait` returns: the opaque value is logged by what it is known to implement (here
    // nothing), so no output, and the span is still recorded.
    let opaque = named(&rows, "returns_opaque");
    assert_eq!(opaque["input"], json!({"n": 3}));
}

struct Counter {
    prefix: String,
    count: u32,
}

impl Counter {
    #[traced]
    fn new(prefix: &str) -> Counter {
        Counter {
            prefix: prefix.to_owned(),
            count: 0,
        }
    }

    #[traced]
    fn label(&self, n: u32) -> String {
        format!("{}-{n}", self.prefix)
    }

    #[traced]
    fn bump(&mut self, by: u32) -> u32 {
        self.count += by;
        self.count
    }

    #[traced(name = "Counter::finish")]
    fn finish(self) -> u32 {
        self.count
    }
}

#[traced]
fn describe<T: Serialize + fmt::Debug>(value: T) -> String {
    format!("{value:?}")
}

#[traced]
fn generic_unbounded<T>(value: T) -> usize {
    std::mem::size_of_val(&value)
}

#[test]
fn methods_associated_and_generic_functions_are_traced() {
    let (server, logger, root) = start("traced-methods");
    root.in_scope(|| {
        let mut counter = Counter::new("c");
        assert_eq!(counter.label(1), "c-1");
        assert_eq!(counter.bump(2), 2);
        assert_eq!(counter.bump(3), 5);
        assert_eq!(counter.finish(), 5);
        assert_eq!(describe(vec![1, 2]), "[1, 2]");
        assert_eq!(generic_unbounded(7u64), 8);
    });
    let rows = finish(&server, &logger, root);
    assert_eq!(named(&rows, "new")["input"], json!({"prefix": "c"}));
    assert_eq!(
        named(&rows, "label")["input"],
        json!({"n": 1}),
        "self is not captured"
    );
    assert_eq!(named(&rows, "label")["output"], "c-1");
    let bumps: Vec<&Value> = rows
        .iter()
        .filter(|r| r["span_attributes"]["name"] == "bump")
        .collect();
    assert_eq!(bumps.len(), 2);
    assert_eq!(named(&rows, "Counter::finish")["output"], 5);
    assert_eq!(named(&rows, "describe")["input"], json!({"value": [1, 2]}));
    // A type parameter without bounds can be neither serialised nor printed.
    assert_eq!(named(&rows, "generic_unbounded")["input"], json!({}));
    assert_eq!(named(&rows, "generic_unbounded")["output"], 8);
}

#[traced]
async fn fetch(id: u32) -> Result<String, String> {
    tokio::task::yield_now().await;
    let body = render(id).await;
    if id == 13 {
        return Err(format!("unlucky {id}"));
    }
    Ok(body)
}

#[traced(type = "tool")]
async fn render(id: u32) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(id % 3))).await;
    format!("page {id}")
}

#[test]
fn async_functions_on_many_tasks_each_get_their_own_parents() {
    let (server, logger, root) = start("traced-async");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut handles = Vec::new();
        for id in 0..40u32 {
            // One span per task, started under the root and carried into the task.
            let task_span = root.start_span(StartSpan::named(format!("task-{id}")));
            handles.push(tokio::spawn(
                async move { (id, fetch(id).await) }.in_span(task_span),
            ));
        }
        for handle in handles {
            let (id, result) = handle.await.unwrap();
            assert_eq!(result.is_err(), id == 13);
        }
    });
    let rows = finish(&server, &logger, root);
    for id in 0..40u32 {
        let task = named(&rows, &format!("task-{id}"));
        let fetched = find(&rows, "fetch", json!({"id": id}));
        assert_eq!(parent_of(fetched), task["span_id"], "fetch {id}");
        let rendered = find(&rows, "render", json!({"id": id}));
        assert_eq!(parent_of(rendered), fetched["span_id"], "render {id}");
        assert_eq!(rendered["output"], format!("page {id}"));
        assert_eq!(rendered["span_attributes"]["type"], "tool");
        if id == 13 {
            assert_eq!(fetched["error"], "unlucky 13");
            assert!(fetched.get("output").is_none_or(Value::is_null));
        } else {
            assert_eq!(fetched["output"], format!("page {id}"));
        }
    }
}

/// The row named `name` whose input is `input`.
fn find<'a>(rows: &'a [Value], name: &str, input: Value) -> &'a Value {
    rows.iter()
        .find(|r| r["span_attributes"]["name"] == name && r["input"] == input)
        .unwrap_or_else(|| panic!("no {name} with input {input} in {rows:#?}"))
}

#[async_trait::async_trait]
trait Tool: Send + Sync {
    async fn run(&self, query: String) -> Result<usize, String>;
}

struct WordCount;

#[async_trait::async_trait]
impl Tool for WordCount {
    #[traced(type = "tool")]
    async fn run(&self, query: String) -> Result<usize, String> {
        tokio::task::yield_now().await;
        let words = child_step(&query);
        if words == 0 {
            return Err("empty query".to_owned());
        }
        Ok(words)
    }
}

#[traced]
fn child_step(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `async fn` in a trait, natively.
trait Summarise {
    async fn summarise(&self, text: &str) -> String;
}

struct FirstWord;

impl Summarise for FirstWord {
    #[traced]
    async fn summarise(&self, text: &str) -> String {
        tokio::task::yield_now().await;
        text.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

#[test]
fn async_trait_and_native_async_trait_methods_are_traced() {
    let (server, logger, root) = start("traced-async-trait");
    let runtime = current_thread_runtime();
    runtime.block_on(
        async {
            let tool: Box<dyn Tool> = Box::new(WordCount);
            assert_eq!(tool.run("a b c".to_owned()).await, Ok(3));
            assert!(tool.run(" ".to_owned()).await.is_err());
            assert_eq!(FirstWord.summarise("hello world").await, "hello");
        }
        .in_span(root.clone()),
    );
    let rows = finish(&server, &logger, root);
    let ran = find(&rows, "run", json!({"query": "a b c"}));
    assert_eq!(ran["span_attributes"]["type"], "tool");
    assert_eq!(ran["output"], 3);
    assert_eq!(parent_of(ran), named(&rows, "test-root")["span_id"]);
    let step = find(&rows, "child_step", json!({"text": "a b c"}));
    assert_eq!(
        parent_of(step),
        ran["span_id"],
        "the body ran with the span current"
    );
    assert_eq!(
        find(&rows, "run", json!({"query": " "}))["error"],
        "empty query"
    );
    let summary = find(&rows, "summarise", json!({"text": "hello world"}));
    assert_eq!(summary["output"], "hello");
}

#[test]
fn helpers_trace_closures_futures_and_wrapped_functions() {
    let (server, logger, root) = start("traced-helpers");
    let runtime = current_thread_runtime();
    root.in_scope(|| {
        let value = traced("closure-step", |span| {
            span.log(Event::new().output(json!("from the closure")))
                .unwrap();
            child_step("one two")
        });
        assert_eq!(value, 2);
        let double = braintrust::wrap_traced(
            StartSpan::named("double").span_type(braintrust::SpanType::Tool),
            |x: i64| x * 2,
        );
        assert_eq!(double(21), 42);
    });
    let answer = runtime.block_on(
        braintrust::traced_async("async-step", |span| async move {
            tokio::task::yield_now().await;
            span.log(Event::new().metadata_entry("polled", json!(true)))
                .unwrap();
            child_step("x y z")
        })
        .in_span(root.clone()),
    );
    assert_eq!(answer, 3);
    let rows = finish(&server, &logger, root);
    let closure = named(&rows, "closure-step");
    assert_eq!(closure["output"], "from the closure");
    assert_eq!(closure["span_attributes"]["type"], "function");
    assert_eq!(
        parent_of(find(&rows, "child_step", json!({"text": "one two"}))),
        closure["span_id"]
    );
    let double = named(&rows, "double");
    assert_eq!(
        (double["input"].clone(), double["output"].clone()),
        (json!(21), json!(42))
    );
    assert_eq!(double["span_attributes"]["type"], "tool");
    let async_step = named(&rows, "async-step");
    assert_eq!(async_step["metadata"], json!({"polled": true}));
    assert_eq!(
        parent_of(find(&rows, "child_step", json!({"text": "x y z"}))),
        async_step["span_id"]
    );
}
