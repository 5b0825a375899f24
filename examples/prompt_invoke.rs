//! Prompts and functions, fully offline: starts `braintrust-local` in-process with two
//! function handlers, stores a prompt through the REST API, loads and builds it, invokes
//! functions (JSON and streaming) from inside a `#[traced]` function so the server-side spans
//! join the trace, and uses a function handle as a task and as a scorer.
//!
//! Run: `cargo run --example prompt_invoke`

use braintrust::api::{ApiClient, Host};
use braintrust::env_file::EnvLookup;
use braintrust::functions::ScorerInput;
use braintrust::object::ObjectIds;
use braintrust::{Invoke, InvokeChunk, LoadPrompt, LoggerOptions, traced};
use braintrust_local::LocalServer;
use futures_util::StreamExt;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Answers through the `summarize` function; the call is a child of this span.
#[traced(type = "task")]
async fn answer(client: ApiClient, text: String) -> Result<Value, Error> {
    Ok(Invoke::slug("demo", "summarize")
        .input(json!({"text": text}))
        .client(client)
        .call()
        .await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let server = LocalServer::builder()
        // Handlers stand in for the code functions a real project would deploy.
        .function("summarize", |call| {
            let text = call.input["text"].as_str().unwrap_or_default();
            Ok(json!(text.split_whitespace().take(3).collect::<Vec<_>>().join(" ") + "…"))
        })
        .function("exact-match", |call| {
            Ok(json!({"name": "exact-match",
                      "score": f64::from(u8::from(call.input["output"] == call.input["expected"]))}))
        })
        .start()?;
    println!("braintrust-local listening on {}", server.url());
    let client = ApiClient::new(server.login_options())?;

    // 1. Store a prompt (what the Braintrust UI does), then load and build it.
    client
        .post_json(
            Host::Api,
            "/v1/prompt",
            &json!({"project_name": "demo", "name": "Greeter", "slug": "greeter",
                    "prompt_data": {
                        "prompt": {"type": "chat", "messages": [
                            {"role": "system", "content": "You are terse."},
                            {"role": "user", "content": "Greet {{name}}{{#title}}, {{title}}{{/title}}."}]},
                        "options": {"model": "gpt-4o-mini", "params": {"temperature": 0.2}}}}),
            &[],
        )
        .await?;
    let prompt = LoadPrompt::new("demo", "greeter")
        .defaults(json!({"max_tokens": 64}))
        .client(client.clone())
        .load()
        .await?;
    let built = prompt.build(json!({"name": "Ada", "title": "Countess"}))?;
    println!(
        "\nbuilt request for {} (version {}):",
        built.model,
        prompt.version().unwrap_or("?")
    );
    println!("{}", serde_json::to_string_pretty(&built.to_request())?);

    // 2. A prompt is a function too: invoking it locally returns the rendered request.
    let rendered = Invoke::slug("demo", "greeter")
        .input(json!({"name": "Bo"}))
        .client(client.clone())
        .call()
        .await?;
    println!("\ninvoked prompt -> {}", rendered["messages"][1]["content"]);

    // 3. Invoke inside a traced function: the server-side span joins the trace.
    let logger = braintrust::init_logger(
        LoggerOptions::new()
            .project("demo")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([])),
    )?;
    let summary = answer(client.clone(), "Rust makes fast reliable software".into()).await?;
    println!("\nsummarize -> {summary}");

    // 4. Streaming: chunks as they arrive, or the assembled final value.
    let mut stream = Invoke::slug("demo", "summarize")
        .input(json!({"text": "streams arrive in small pieces over time"}))
        .client(client.clone())
        .stream()
        .await?;
    print!("streamed chunks:");
    while let Some(chunk) = stream.next().await {
        match chunk? {
            InvokeChunk::TextDelta(text) => print!(" [{text}]"),
            other => print!(" {other:?}"),
        }
    }
    println!();

    // 5. Function handles: a task and a scorer.
    let task = braintrust::init_function("demo", "summarize").client(client.clone());
    let output = task.invoke(json!({"text": "one two three four"})).await?;
    let scorer = braintrust::init_function("demo", "exact-match").client(client.clone());
    let score = scorer
        .score(&ScorerInput {
            input: json!({"text": "one two three four"}),
            output: output.clone(),
            expected: json!("one two three…"),
            metadata: Value::Null,
        })
        .await?;
    println!("task -> {output}, scorer -> {score}");

    logger.flush()?;
    let project_id = logger.project_id().ok_or("project not resolved")?;
    let rows = server.rows(&ObjectIds::project_logs(project_id))?;
    println!("\ntrace in project `demo`:");
    for row in &rows {
        println!(
            "  {:<10} {:<8} parents={}",
            row["span_attributes"]["name"].as_str().unwrap_or("?"),
            row["span_attributes"]["type"].as_str().unwrap_or("?"),
            row["span_parents"]
        );
    }
    Ok(())
}

/// `cargo test` runs this example too (`test = true` in Cargo.toml): every step above returns
/// its error.
#[cfg(test)]
#[test]
fn runs_offline() {
    if let Err(e) = main() {
        panic!("the example failed: {e}");
    }
}
