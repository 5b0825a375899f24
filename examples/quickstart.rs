//! Quick start, fully offline: starts `braintrust-local` in-process, writes a small nested trace
//! built with the core span model through the Braintrust HTTP API (login, project registration,
//! `/logs3`), continues it under an exported slug as another service would, reads the trace back
//! with `/btql` and prints it as a tree with timings.
//!
//! Run: `cargo run --example quickstart`

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use braintrust::event::{Event, SpanAttributes, SpanType};
use braintrust::id::IdFormat;
use braintrust::merge::merge_row_batch;
use braintrust::object::ObjectIds;
use braintrust::origin::{CallerLocation, LOGGER_INSTRUMENTATION, span_context};
use braintrust::row::{Row, SpanIdentity, next_exec_counter};
use braintrust::span_components::{
    SlugObject, SlugVersion, SpanComponents, SpanObjectType, SpanRowIds,
};
use braintrust_local::LocalServer;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

/// A tiny JSON client for the example (the SDK's own transport replaces this).
struct Api {
    agent: ureq::Agent,
    url: String,
    key: String,
}

impl Api {
    fn post(&self, path: &str, body: &Value) -> Result<Value, Error> {
        let mut reply = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {}", self.key))
            .send_json(body)?;
        Ok(reply.body_mut().read_json()?)
    }
}

/// One span of the example trace: where it sits, and what it logs at start and at end.
struct Step {
    identity: SpanIdentity,
    attributes: SpanAttributes,
    start_ms: u64,
    end_ms: u64,
    at_start: Event,
    at_end: Event,
}

fn step(identity: SpanIdentity, name: &str, kind: SpanType, start_ms: u64, end_ms: u64) -> Step {
    let mut attributes = SpanAttributes::named(name).with_type(kind);
    attributes
        .extra
        .insert("exec_counter".into(), json!(next_exec_counter()));
    Step {
        identity,
        attributes,
        start_ms,
        end_ms,
        at_start: Event::new(),
        at_end: Event::new(),
    }
}

fn main() -> Result<(), Error> {
    let server = LocalServer::start()?;
    println!(
        "braintrust-local running in-process at {} (in memory)",
        server.url()
    );
    let api = Api {
        agent: ureq::Agent::new_with_defaults(),
        url: server.url().to_owned(),
        key: server.api_key().to_owned(),
    };

    let login = api.post("/api/apikey/login", &json!({}))?;
    let org = login["org_info"][0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let project = api.post(
        "/v1/project",
        &json!({"name": "quickstart", "org_name": org}),
    )?;
    let project_id = project["id"].as_str().unwrap_or_default().to_owned();
    println!("logged in to org `{org}`; project `quickstart` is {project_id}");
    let logs = ObjectIds::project_logs(&project_id);

    // The trace: a task with a retrieval step and an LLM call that formats its answer.
    let ids = IdFormat::from_env();
    let root_id = SpanIdentity::root(ids);
    let mut root = step(root_id.clone(), "answer_question", SpanType::Task, 0, 48);
    root.at_start = Event::new().input(json!({"question": "What is the capital of France?"}));
    root.at_end = Event::new().output(json!("Paris")).score("correct", true);
    let mut retrieve = step(root_id.child(ids), "retrieve", SpanType::Tool, 2, 14);
    retrieve.at_end = Event::new().output(json!(["doc-france", "doc-capitals"]));
    let generate_id = root_id.child(ids);
    let mut generate = step(generate_id.clone(), "generate", SpanType::Llm, 15, 44);
    generate.at_start =
        Event::new().input(json!([{"role": "user", "content": "Capital of France?"}]));
    generate.at_end = Event::new()
        .output(json!("The capital of France is Paris."))
        .metric("prompt_tokens", 12.0)
        .metric("completion_tokens", 8.0)
        .metric("tokens", 20.0)
        .metadata_entry("model", json!("example-model"));
    let mut format = step(generate_id.child(ids), "format", SpanType::Function, 40, 43);
    format.at_end = Event::new().output(json!("Paris"));
    let steps = [root, retrieve, generate, format];

    let t0 = SystemTime::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let context = span_context(LOGGER_INSTRUMENTATION, Some(CallerLocation::here()));

    // First request: every span's start row, plus a log on one of them (merged client-side).
    let mut rows = Vec::new();
    for s in &steps {
        let fields = s.at_start.clone().into_fields()?;
        rows.push(Row::span_start(
            &s.identity,
            &logs,
            &s.attributes,
            Some(context.clone()),
            at(s.start_ms),
            fields,
        ));
    }
    rows.push(Row::span_update(
        &steps[0].identity,
        &logs,
        Event::new().tags(["quickstart"]).into_fields()?,
    ));
    let first = merge_row_batch(rows);
    api.post("/logs3", &json!({"rows": first, "api_version": 2}))?;

    // Second request: outputs and end times as merge rows; the server merges them in.
    let mut rows = Vec::new();
    for s in &steps {
        rows.push(Row::span_update(
            &s.identity,
            &logs,
            s.at_end.clone().into_fields()?,
        ));
        rows.push(Row::span_end(&s.identity, &logs, at(s.end_ms)));
    }
    let second = merge_row_batch(rows);
    api.post("/logs3", &json!({"rows": second, "api_version": 2}))?;

    // Another service continues the trace from the root's export slug.
    let slug = SpanComponents {
        object_type: SpanObjectType::ProjectLogs,
        object: SlugObject::Id(project_id.clone()),
        row: Some(SpanRowIds {
            row_id: root_id.row_id.clone(),
            span_id: root_id.span_id.clone(),
            root_span_id: root_id.root_span_id.clone(),
        }),
        propagated_event: None,
    }
    .encode(SlugVersion::V4);
    println!("root span exported as {slug}");
    let parent = SpanComponents::parse(&slug)?;
    let remote_logs = parent.object_ids().ok_or("slug names its project by id")?;
    let parent_ids = parent.row.ok_or("slug names a span")?;
    let resumed = SpanIdentity::child_of_remote(&parent_ids, ids);
    let mut notify = step(resumed, "notify_user", SpanType::Task, 46, 47);
    notify.at_start = Event::new().input(json!({"channel": "email"}));
    let start = Row::span_start(
        &notify.identity,
        &remote_logs,
        &notify.attributes,
        Some(context),
        at(notify.start_ms),
        notify.at_start.clone().into_fields()?,
    );
    let end = Row::span_end(&notify.identity, &remote_logs, at(notify.end_ms));
    api.post(
        "/logs3",
        &json!({"rows": merge_row_batch([start, end]), "api_version": 2}),
    )?;

    // Read the whole trace back.
    let query = json!({"query": {
        "select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                 "args": [{"op": "literal", "value": project_id}]},
        "filter": {"op": "eq", "left": {"op": "ident", "name": ["root_span_id"]},
                   "right": {"op": "literal", "value": root_id.root_span_id}},
    }});
    let trace = api.post("/btql", &query)?;
    let spans = trace["data"].as_array().cloned().unwrap_or_default();
    println!(
        "read back {} spans of trace {}:",
        spans.len(),
        root_id.root_span_id
    );
    print_tree(&spans);
    Ok(())
}

fn print_tree(spans: &[Value]) {
    let mut children: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        match span["span_parents"][0].as_str() {
            Some(parent) => children.entry(parent).or_default().push(span),
            None => roots.push(span),
        }
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| start(a).total_cmp(&start(b)));
    }
    for root in roots {
        print_span(root, &children, "", true, true);
    }
}

fn start(span: &Value) -> f64 {
    span["metrics"]["start"].as_f64().unwrap_or_default()
}

fn print_span(
    span: &Value,
    children: &HashMap<&str, Vec<&Value>>,
    prefix: &str,
    last: bool,
    top: bool,
) {
    let name = span["span_attributes"]["name"].as_str().unwrap_or("?");
    let kind = span["span_attributes"]["type"].as_str().unwrap_or("-");
    let ms = (span["metrics"]["end"].as_f64().unwrap_or_default() - start(span)) * 1000.0;
    let mut line = format!("{name} [{kind}] {ms:.1} ms");
    if let Some(output) = span.get("output") {
        line.push_str(&format!("  output: {output}"));
    }
    if let Some(tokens) = span["metrics"].get("tokens") {
        line.push_str(&format!("  tokens: {tokens}"));
    }
    let branch = if top {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    println!("  {prefix}{branch}{line}");
    let child_prefix = if top {
        String::new()
    } else {
        format!("{prefix}{}", if last { "   " } else { "│  " })
    };
    let empty = Vec::new();
    let kids = span["span_id"]
        .as_str()
        .and_then(|id| children.get(id))
        .unwrap_or(&empty);
    for (i, child) in kids.iter().enumerate() {
        print_span(child, children, &child_prefix, i + 1 == kids.len(), false);
    }
}
