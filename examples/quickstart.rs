//! Quick start, fully offline: starts `braintrust-local` in-process, traces a small question
//! answering workflow through the public API (`#[traced]` functions, sync and async, nested
//! spans, a child carried into a spawned task and another into a thread, and a trace resumed
//! from an export slug as a second service would), flushes, reads the trace back from the
//! server and prints it as a tree with timings; then runs an eval of the retrieval step as an
//! experiment and prints its summary table.
//!
//! Run: `cargo run --example quickstart`

use std::collections::HashMap;
use std::time::Duration;

use braintrust::env_file::EnvLookup;
use braintrust::object::ObjectIds;
use braintrust::{
    Eval, EvalCase, Event, LoggerOptions, SpanFutureExt, SpanType, StartSpan, traced,
};
use braintrust_local::LocalServer;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A pretend retrieval step: `#[traced]` logs `question` as input and the documents as output.
#[traced(type = "tool")]
fn retrieve(question: &str) -> Result<Vec<String>, Error> {
    std::thread::sleep(Duration::from_millis(15));
    Ok(vec![format!("doc about {question}"), "faq.md".to_owned()])
}

/// A pretend model call, awaited inside a spawned task. With `notrace_io` the body logs input
/// (in the chat format) and output itself, with the model and token metrics.
#[traced(type = "llm", notrace_io)]
async fn generate(question: String, docs: Vec<String>) -> Result<String, Error> {
    tokio::time::sleep(Duration::from_millis(40)).await;
    let answer = format!("{question}? See {}.", docs.join(" and "));
    braintrust::current_span().log(
        Event::new()
            .input(json!([{"role": "user", "content": question}]))
            .output(json!(answer))
            .metadata_entry("model", json!("pretend-1"))
            .metric("prompt_tokens", 12.0)
            .metric("completion_tokens", 9.0),
    )?;
    Ok(answer)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let server = LocalServer::start()?;
    println!("braintrust-local listening on {}", server.url());
    // Isolated from BRAINTRUST_* variables, so the example always runs offline.
    let logger = braintrust::init_logger(
        LoggerOptions::new()
            .project("quickstart")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([])),
    )?;

    let question = "how do spans nest".to_owned();
    let root = braintrust::start_span(StartSpan::named("answer-question"));
    root.log(Event::new().input(json!({"question": question})))?;

    // Spans started while the root is current nest under it.
    let docs = root.in_scope(|| retrieve(&question))?;
    // `braintrust::spawn` carries the current span into the task.
    let task = root.in_scope(|| braintrust::spawn(generate(question.clone(), docs)));
    let answer = task.await??;
    // A thread gets the span explicitly.
    let scorer_parent = root.clone();
    let answer_for_scorer = answer.clone();
    std::thread::spawn(move || {
        scorer_parent.in_scope(|| {
            let span = braintrust::start_span(StartSpan::named("score").span_type(SpanType::Score));
            let score = if answer_for_scorer.contains("doc") {
                1.0
            } else {
                0.0
            };
            span.log(Event::new().score("cites_docs", score))
        })
    })
    .join()
    .map_err(|_| "the scorer thread panicked")??;
    root.log(Event::new().output(json!(answer)))?;

    // Another service continues the trace from the exported slug.
    let slug = root.export();
    async {
        let other_service = braintrust::init_logger(
            LoggerOptions::new()
                .project("quickstart")
                .api_key(server.api_key())
                .app_url(server.url())
                .env(EnvLookup::from_pairs::<&str, &str>([]))
                .set_current(false),
        )?;
        let resumed = other_service.start_span(StartSpan::named("follow-up").parent(slug.as_str()));
        resumed.log(Event::new().output(json!("resumed in another service")))?;
        resumed.end();
        other_service.flush_async().await?;
        Ok::<_, Error>(())
    }
    .in_span(root.clone())
    .await?;
    root.end();
    logger.flush_async().await?;

    let stats = logger.stats();
    println!(
        "this service delivered {} rows in {} request(s) ({} merged, {} failed, {} dropped)",
        stats.sent, stats.requests, stats.merged, stats.failed, stats.dropped
    );
    let project = logger
        .project_id()
        .ok_or("the project was not registered")?;
    let rows = server.rows(&ObjectIds::project_logs(project))?;
    println!("\ntrace {} ({} spans):", root.root_span_id(), rows.len());
    print_tree(&rows);
    println!("\npermalink: {}", root.permalink()?);

    // Then an eval of the retrieval step: an experiment in the same local server, each case
    // traced as eval -> task (with the #[traced] retrieve span inside) -> one span per scorer,
    // summarized by the server and printed as a table.
    let offline = LoggerOptions::new()
        .api_key(server.api_key())
        .app_url(server.url())
        .env(EnvLookup::from_pairs::<&str, &str>([]));
    let result =
        Eval::<String, Vec<String>, String>::new("quickstart")
            .data(["spans", "evals", "prompts"].map(|topic| {
                EvalCase::new(topic.to_owned()).expected(format!("doc about {topic}"))
            }))
            .try_task(|topic, _| retrieve(topic))
            .scorer("top_hit", |args| {
                args.expected
                    .is_some_and(|e| args.output.first() == Some(e))
            })
            .scorer("found_faq", |args| {
                args.output.iter().any(|d| d == "faq.md")
            })
            .experiment_name("retrieval")
            .connection(offline)
            .run()
            .await?;
    println!(
        "\neval: {} cases, top_hit {:.0}%",
        result.results.len(),
        100.0 * result.summary.score("top_hit").map_or(0.0, |s| s.mean)
    );
    Ok(())
}

/// Prints spans as a tree, children ordered by start time, with durations.
fn print_tree(rows: &[Value]) {
    let mut children: HashMap<String, Vec<&Value>> = HashMap::new();
    let mut roots = Vec::new();
    for row in rows {
        match row["span_parents"].get(0).and_then(Value::as_str) {
            Some(parent) => children.entry(parent.to_owned()).or_default().push(row),
            None => roots.push(row),
        }
    }
    let start = |r: &Value| r["metrics"]["start"].as_f64().unwrap_or(0.0);
    for list in children.values_mut() {
        list.sort_by(|a, b| start(a).total_cmp(&start(b)));
    }
    fn walk(row: &Value, depth: usize, children: &HashMap<String, Vec<&Value>>) {
        let metrics = &row["metrics"];
        let ms = (metrics["end"].as_f64().unwrap_or(0.0)
            - metrics["start"].as_f64().unwrap_or(0.0))
            * 1000.0;
        let attrs = &row["span_attributes"];
        let kind = attrs["type"].as_str().unwrap_or("-");
        let mut detail = String::new();
        if let Some(scores) = row.get("scores") {
            detail = format!("  scores={scores}");
        } else if let Some(output) = row.get("output") {
            detail = format!("  output={}", truncate(&output.to_string(), 48));
        }
        println!(
            "{}{} [{kind}] {ms:.1} ms{detail}",
            "  ".repeat(depth + 1),
            attrs["name"].as_str().unwrap_or("?"),
        );
        let id = row["span_id"].as_str().unwrap_or_default();
        for child in children.get(id).into_iter().flatten() {
            walk(child, depth + 1, children);
        }
    }
    for root in roots {
        walk(root, 0, &children);
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// `cargo test` runs the quick start too (`test = true` in Cargo.toml), so the README's first
/// command is checked with the rest: every step above returns its error.
#[cfg(test)]
#[test]
fn runs_offline() {
    if let Err(e) = main() {
        panic!("the quick start failed: {e}");
    }
}
