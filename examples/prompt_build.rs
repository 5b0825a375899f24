//! Loads the latest version of a prompt and prints what `build()` renders it to.
//!
//! Run: `cargo run --example prompt_build -- <project> <slug> '<variables-json>'`
//! (`<slug>` may be `id:<prompt id>`). The last line of stdout is `build()`'s JSON output.
//!
//! Credentials and URLs come from the usual settings (`BRAINTRUST_API_KEY`,
//! `BRAINTRUST_APP_URL`, `BRAINTRUST_API_URL`, `BRAINTRUST_ORG_NAME`, `.env.braintrust`). With no
//! API key anywhere it runs offline: it starts `braintrust-local` in-process with a demo
//! project `demo` holding the prompts `greeter` (chat) and `completer` (completion), e.g.
//! `cargo run --example prompt_build -- demo greeter '{"name": "Ada", "lang": "French"}'`.

use std::process::ExitCode;

use braintrust::LoadPrompt;
use braintrust::api::{ApiClient, Host};
use braintrust::env_file::EnvLookup;
use braintrust_local::LocalServer;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn usage() -> ExitCode {
    eprintln!("usage: prompt_build <project> <slug | id:<prompt id>> '<variables-json>'");
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [project, slug, variables] = args.as_slice() else {
        return usage();
    };
    let variables: Value = match serde_json::from_str(variables) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            eprintln!(
                "prompt_build: the variables must be a JSON object, e.g. '{{\"name\": \"Ada\"}}'"
            );
            return ExitCode::from(2);
        }
    };
    match run(project, slug, &variables).await {
        Ok(built) => {
            println!("{built}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("prompt_build: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(project: &str, slug: &str, variables: &Value) -> Result<Value, Error> {
    if EnvLookup::process().get("BRAINTRUST_API_KEY").is_some() {
        return build(ApiClient::shared()?, project, slug, variables).await;
    }
    let server = LocalServer::start()?;
    eprintln!(
        "prompt_build: no BRAINTRUST_API_KEY; using an in-process braintrust-local at {} with demo prompts",
        server.url()
    );
    demo_build(&server, project, slug, variables).await
}

/// [`build`] against `server`, after storing the demo prompts in it.
async fn demo_build(
    server: &LocalServer,
    project: &str,
    slug: &str,
    variables: &Value,
) -> Result<Value, Error> {
    let client = ApiClient::new(server.login_options())?;
    seed_demo(&client).await?;
    build(client, project, slug, variables).await
}

/// Loads the latest version of the prompt and renders it with `variables`.
async fn build(
    client: ApiClient,
    project: &str,
    slug: &str,
    variables: &Value,
) -> Result<Value, Error> {
    let options = match slug.strip_prefix("id:") {
        Some(id) => LoadPrompt::id(id),
        None => LoadPrompt::new(project, slug),
    };
    let prompt = options.client(client).load().await?;
    Ok(prompt.build(variables)?.to_json())
}

async fn seed_demo(client: &ApiClient) -> Result<(), Error> {
    let prompts = [
        json!({"project_name": "demo", "name": "Greeter", "slug": "greeter",
               "description": "says hi",
               "prompt_data": {
                   "prompt": {"type": "chat", "messages": [
                       {"role": "system", "content": "You are a helpful assistant."},
                       {"role": "user", "content": "Say hi to {{name}} in {{lang}}."}]},
                   "options": {"model": "gpt-4o-mini",
                               "params": {"temperature": 0.5, "max_tokens": 100, "use_cache": true}}}}),
        json!({"project_name": "demo", "name": "Completer", "slug": "completer",
               "prompt_data": {
                   "prompt": {"type": "completion", "content": "Complete: {{text}}"},
                   "options": {"model": "gpt-3.5-turbo-instruct", "params": {"max_tokens": 20}}}}),
    ];
    for prompt in prompts {
        client
            .post_json(Host::Api, "/v1/prompt", &prompt, &[])
            .await?;
    }
    Ok(())
}

/// `cargo test` runs this (`test = true` in Cargo.toml): both demo prompts, offline.
#[cfg(test)]
#[tokio::test]
async fn the_demo_prompts_build_offline() -> Result<(), Error> {
    let server = LocalServer::start()?;
    let vars = json!({"name": "Ada", "lang": "French"});
    let chat = demo_build(&server, "demo", "greeter", &vars).await?;
    assert_eq!(chat["model"], "gpt-4o-mini");
    assert_eq!(chat["messages"][1]["content"], "Say hi to Ada in French.");
    assert_eq!(chat["span_info"]["metadata"]["prompt"]["variables"], vars);
    // The demo prompts are stored again: the latest version is loaded, and an id works too.
    let completion = demo_build(&server, "demo", "completer", &json!({"text": "hello"})).await?;
    assert_eq!(completion["prompt"], "Complete: hello");
    let id = completion["span_info"]["metadata"]["prompt"]["id"]
        .as_str()
        .ok_or("the built prompt names its id")?;
    let by_id = demo_build(
        &server,
        "ignored",
        &format!("id:{id}"),
        &json!({"text": "x"}),
    )
    .await?;
    assert_eq!(by_id["prompt"], "Complete: x");
    Ok(())
}
