//! Shared helpers: a local server, a client for it, and prompt fixtures.
#![allow(dead_code, unreachable_pub)]

use braintrust_core::env_file::EnvLookup;
use braintrust_local::{LocalServer, LocalServerBuilder};
use braintrust_transport::api::{ApiClient, Host};
use braintrust_transport::login::LoginOptions;
use serde_json::{Value, json};

/// A client of `server` that ignores the process environment.
pub fn client(server: &LocalServer) -> ApiClient {
    ApiClient::new(server.login_options()).expect("client")
}

/// A client of whatever serves `url` (or nothing), ignoring the process environment.
pub fn client_for(url: &str, api_key: &str) -> ApiClient {
    ApiClient::new(LoginOptions {
        api_key: Some(api_key.to_owned()),
        app_url: Some(url.to_owned()),
        env: Some(EnvLookup::from_pairs::<&str, &str>([])),
        ..LoginOptions::default()
    })
    .expect("client")
}

pub fn start(builder: LocalServerBuilder) -> LocalServer {
    builder.record_requests(true).start().expect("server")
}

/// The chat prompt of the wire-protocol reference (§13.1).
pub fn greeter_data() -> Value {
    json!({
        "prompt": {"type": "chat", "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hi to {{name}} in {{lang}}."}]},
        "options": {"model": "gpt-4o-mini",
                    "params": {"temperature": 0.5, "max_tokens": 100, "use_cache": true}},
    })
}

/// Stores a prompt through the REST API; returns the stored row.
pub async fn create_prompt(client: &ApiClient, project: &str, slug: &str, data: Value) -> Value {
    client
        .post_json(
            Host::Api,
            "/v1/prompt",
            &json!({"project_name": project, "name": slug, "slug": slug, "prompt_data": data}),
            &[],
        )
        .await
        .expect("create prompt")
}
