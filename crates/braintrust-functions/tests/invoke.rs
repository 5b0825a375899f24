//! `invoke` / `invoke_stream` / function handles against braintrust-local: request shapes,
//! JSON and SSE answers (sent in random byte pieces by the server), error events and statuses,
//! prompt functions, lookups, and the parent of the server-side span.

mod common;

use braintrust_core::env_file::EnvLookup;
use braintrust_core::span::StartSpan;
use braintrust_functions::{
    Invoke, InvokeChunk, InvokeError, InvokeMode, ScorerInput, find_function, get_function,
    init_function, invoke, invoke_stream,
};
use braintrust_local::{FunctionsFile, LocalServer};
use braintrust_transport::api::ApiError;
use braintrust_transport::logger::{LoggerOptions, init_logger};
use common::{client, create_prompt, greeter_data, start};
use futures_util::StreamExt;
use serde_json::{Value, json};

fn server() -> LocalServer {
    start(
        LocalServer::builder()
            .function("shout", |call| {
                Ok(json!(call.input.as_str().unwrap_or("").to_uppercase()))
            })
            .function("stats", |call| {
                let n = call.input["xs"].as_array().map_or(0, Vec::len);
                Ok(json!({"count": n, "metadata": call.metadata, "note": "ünïcode ☃ text"}))
            })
            .function("broken", |_| Err("division by zero".into()))
            .function("Factuality", |call| {
                Ok(json!({"score": f64::from(u8::from(call.input["output"] == call.input["expected"]))}))
            }),
    )
}

fn invokes(server: &LocalServer) -> Vec<braintrust_local::RecordedRequest> {
    server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.path == "/function/invoke")
        .collect()
}

#[tokio::test]
async fn json_invoke_sends_the_python_sdk_body_and_returns_the_output() {
    let server = server();
    let client = client(&server);
    let output = invoke(
        Invoke::slug("capture-proj", "shout")
            .input("hello")
            .metadata(json!({"m": 1}))
            .tags(["t"])
            .client(client.clone()),
    )
    .await
    .unwrap();
    assert_eq!(output, "HELLO");

    let request = invokes(&server).pop().unwrap();
    assert_eq!(
        request.json.unwrap(),
        json!({"api_version": 1, "project_name": "capture-proj", "slug": "shout",
               "input": "hello", "metadata": {"m": 1}, "tags": ["t"], "parent": "",
               "stream": false})
    );
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("accept").as_deref(), Some("application/json"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert!(header("x-bt-project-id").is_none() && header("x-bt-org-name").is_none());
}

#[tokio::test]
async fn global_functions_ids_versions_modes_and_headers() {
    let server = server();
    let client = client(&server);
    let score = Invoke::global("Factuality")
        .function_type("scorer")
        .input(json!({"output": "a", "expected": "a"}))
        .strict(true)
        .project_id("proj-ctx")
        .org_name("local")
        .client(client.clone())
        .call()
        .await
        .unwrap();
    assert_eq!(score, json!({"score": 1.0}));
    let request = invokes(&server).pop().unwrap();
    let body = request.json.unwrap();
    assert_eq!(body["global_function"], "Factuality");
    assert_eq!(body["function_type"], "scorer");
    assert_eq!(body["strict"], true);
    assert!(
        request
            .headers
            .iter()
            .any(|(k, v)| k == "x-bt-project-id" && v == "proj-ctx")
    );
    assert!(
        request
            .headers
            .iter()
            .any(|(k, v)| k == "x-bt-org-name" && v == "local")
    );

    // By id and version, with messages and a mode.
    let row = create_prompt(&client, "p", "shout", greeter_data()).await;
    let id = row["id"].as_str().unwrap();
    let output = Invoke::function_id(id)
        .version(row["_xact_id"].as_str().unwrap())
        .input("by id")
        .messages(json!([{"role": "user", "content": "extra"}]))
        .mode(InvokeMode::Auto)
        .client(client.clone())
        .call()
        .await
        .unwrap();
    assert_eq!(output, "BY ID", "the handler for the slug serves it");
    let body = invokes(&server).pop().unwrap().json.unwrap();
    assert_eq!(body["function_id"], id);
    assert_eq!(body["version"], row["_xact_id"]);
    assert_eq!(body["mode"], "auto");
    assert_eq!(body["messages"][0]["content"], "extra");
}

#[tokio::test]
async fn streams_text_and_json_and_assemble_final_values() {
    let server = server();
    let client = client(&server);
    // Text: start, text deltas (JSON string literals), done.
    let mut stream = invoke_stream(
        Invoke::slug("p", "shout")
            .input("streaming output that spans several deltas ☃")
            .client(client.clone()),
    )
    .await
    .unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.unwrap());
    }
    assert_eq!(chunks.first(), Some(&InvokeChunk::Start));
    assert_eq!(chunks.last(), Some(&InvokeChunk::Done));
    let text: String = chunks
        .iter()
        .filter_map(|c| match c {
            InvokeChunk::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "STREAMING OUTPUT THAT SPANS SEVERAL DELTAS ☃");
    assert!(chunks.len() > 4, "{chunks:?}");
    let request = invokes(&server).pop().unwrap();
    assert_eq!(request.json.as_ref().unwrap()["stream"], true);
    assert!(
        request
            .headers
            .iter()
            .any(|(k, v)| k == "accept" && v == "text/event-stream")
    );

    // JSON: json deltas concatenated and parsed; repeated to vary the server's byte pieces.
    for _ in 0..20 {
        let value = invoke_stream(
            Invoke::slug("p", "stats")
                .input(json!({"xs": [1, 2, 3]}))
                .metadata(json!({"k": "v"}))
                .client(client.clone()),
        )
        .await
        .unwrap()
        .final_value()
        .await
        .unwrap();
        assert_eq!(
            value,
            json!({"count": 3, "metadata": {"k": "v"}, "note": "ünïcode ☃ text"})
        );
    }
    // final_value after reading part of the stream still has everything.
    let mut stream = invoke_stream(Invoke::slug("p", "shout").input("abc").client(client))
        .await
        .unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap(), InvokeChunk::Start);
    assert_eq!(stream.final_value().await.unwrap(), "ABC");
}

#[tokio::test]
async fn function_errors_are_typed_in_both_modes() {
    let server = server();
    let client = client(&server);
    let err = Invoke::slug("p", "broken")
        .client(client.clone())
        .call()
        .await
        .unwrap_err();
    match &err {
        InvokeError::Api(ApiError::Status { status, body, .. }) => {
            assert_eq!(*status, 500);
            assert!(body.contains("division by zero"), "{body}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let stream = Invoke::slug("p", "broken")
        .client(client.clone())
        .stream()
        .await
        .unwrap();
    let chunks: Vec<_> = stream.collect().await;
    assert!(
        chunks
            .iter()
            .any(|c| matches!(c, Ok(InvokeChunk::Error(m)) if m == "division by zero")),
        "{chunks:?}"
    );
    let err = Invoke::slug("p", "broken")
        .client(client.clone())
        .stream()
        .await
        .unwrap()
        .final_value()
        .await
        .unwrap_err();
    assert!(matches!(&err, InvokeError::Function(m) if m == "division by zero"));

    // Unknown functions are a 404 before any stream starts.
    let err = Invoke::slug("p", "nope")
        .client(client.clone())
        .stream()
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::Api(ref e) if e.status() == Some(404)),
        "{err:?}"
    );
    // Arguments that cannot be serialized fail before sending.
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), 3);
    let err = Invoke::slug("p", "shout")
        .input(bad)
        .client(client)
        .call()
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::Serialize { what: "input", .. }));
}

#[tokio::test]
async fn prompt_functions_render_the_request_locally() {
    let server = server();
    let client = client(&server);
    create_prompt(&client, "p", "greeter", greeter_data()).await;
    let output = Invoke::slug("p", "greeter")
        .input(json!({"name": "Ada", "lang": "French"}))
        .client(client.clone())
        .call()
        .await
        .unwrap();
    assert_eq!(
        output,
        json!({"temperature": 0.5, "max_tokens": 100, "model": "gpt-4o-mini",
               "messages": [{"content": "You are a helpful assistant.", "role": "system"},
                            {"content": "Say hi to Ada in French.", "role": "user"}]})
    );
}

#[tokio::test]
async fn handles_work_as_tasks_scorers_and_lookups() {
    let server = server();
    let client = client(&server);
    let row = create_prompt(&client, "p", "greeter", greeter_data()).await;
    let task = init_function("p", "shout").client(client.clone());
    assert_eq!(task.invoke("quiet").await.unwrap(), "QUIET");
    let scorer = init_function("p", "Factuality").client(client.clone());
    let score = scorer
        .score(&ScorerInput {
            input: json!("q"),
            output: json!("a"),
            expected: json!("a"),
            metadata: Value::Null,
        })
        .await
        .unwrap();
    assert_eq!(score, json!({"score": 1.0}));
    let body = invokes(&server).pop().unwrap().json.unwrap();
    assert_eq!(
        body["input"],
        json!({"input": "q", "output": "a", "expected": "a", "metadata": null})
    );
    let pinned = init_function("p", "greeter")
        .version(row["_xact_id"].as_str().unwrap())
        .client(client.clone());
    let rendered = pinned
        .invoke(json!({"name": "Bo", "lang": "Dutch"}))
        .await
        .unwrap();
    assert_eq!(rendered["model"], "gpt-4o-mini");

    let id = row["id"].as_str().unwrap();
    let by_id = get_function(&client, id, None).await.unwrap();
    assert_eq!(by_id.slug(), Some("greeter"));
    assert_eq!(by_id.version(), row["_xact_id"].as_str());
    let by_slug = find_function(&client, "p", "greeter", None).await.unwrap();
    assert_eq!(by_slug.id(), id);
    assert!(matches!(
        get_function(&client, "missing", None).await,
        Err(braintrust_functions::PromptError::NotFound(_))
    ));
}

#[tokio::test]
async fn functions_files_declare_prompts_and_handlers() {
    let file: FunctionsFile = serde_json::from_value(json!({
        "prompts": [{"project_name": "demo", "slug": "greeter", "prompt_data": greeter_data()}],
        "functions": [{"name": "tmpl", "template": "Hello {{input.name}}!"},
                      {"name": "answer", "output": 42},
                      {"name": "echo", "echo": true}],
    }))
    .unwrap();
    let server = start(LocalServer::builder().functions_file(file));
    let client = client(&server);
    let call = |slug: &'static str, input: Value| {
        Invoke::slug("demo", slug)
            .input(input)
            .client(client.clone())
            .call()
    };
    assert_eq!(
        call("tmpl", json!({"name": "Ada"})).await.unwrap(),
        "Hello Ada!"
    );
    assert_eq!(call("answer", json!(null)).await.unwrap(), 42);
    assert_eq!(call("echo", json!([1, 2])).await.unwrap(), json!([1, 2]));
    let rendered = call("greeter", json!({"name": "Ada", "lang": "Latin"}))
        .await
        .unwrap();
    assert_eq!(
        rendered["messages"][1]["content"],
        "Say hi to Ada in Latin."
    );
    // A declaration with no behaviour is refused at start.
    let bad: FunctionsFile = serde_json::from_value(json!({"functions": [{"name": "x"}]})).unwrap();
    assert!(LocalServer::builder().functions_file(bad).start().is_err());
}

#[tokio::test]
async fn the_parent_is_the_current_span_and_the_server_span_joins_the_trace() {
    let server = server();
    let client = client(&server);
    let logger = init_logger(
        LoggerOptions::new()
            .project("invoke-parent")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([]))
            .set_current(false),
    )
    .unwrap();
    let span = logger.start_span(StartSpan::named("caller"));
    let slug = span.export();
    // Inside the span (current for the future's polls), the parent is the span's export.
    use braintrust_core::context::SpanFutureExt;
    let output = Invoke::slug("p", "shout")
        .input("in span")
        .client(client.clone())
        .call()
        .in_span(span.clone())
        .await
        .unwrap();
    assert_eq!(output, "IN SPAN");
    assert_eq!(
        invokes(&server).pop().unwrap().json.unwrap()["parent"],
        slug
    );
    // An explicit parent wins.
    Invoke::slug("p", "shout")
        .parent(&span)
        .client(client.clone())
        .call()
        .await
        .unwrap();
    assert_eq!(
        invokes(&server).pop().unwrap().json.unwrap()["parent"],
        slug
    );
    span.end();
    logger.flush().unwrap();

    let project_id = logger.project_id().unwrap();
    let rows = server
        .rows(&braintrust_core::object::ObjectIds::project_logs(
            project_id,
        ))
        .unwrap();
    let caller = rows
        .iter()
        .find(|r| r["span_attributes"]["name"] == "caller")
        .unwrap();
    let server_spans: Vec<&Value> = rows
        .iter()
        .filter(|r| r["span_attributes"]["type"] == "function")
        .collect();
    assert_eq!(server_spans.len(), 2, "{rows:#?}");
    for row in server_spans {
        assert_eq!(row["root_span_id"], caller["root_span_id"]);
        assert_eq!(row["span_parents"], json!([caller["span_id"]]));
        assert_eq!(row["span_attributes"]["name"], "shout");
        assert!(row["output"].is_string());
    }
}

/// A one-shot OpenAI-compatible endpoint: answers one request with `answer` and hands back the
/// request (head and body).
async fn fake_llm(answer: Value) -> (String, tokio::task::JoinHandle<(String, Value)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        let (head, body_start, length) = loop {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the request ended");
            data.extend_from_slice(&buf[..n]);
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                break (head, end + 4, length);
            }
        };
        while data.len() < body_start + length {
            let n = socket.read(&mut buf).await.unwrap();
            data.extend_from_slice(&buf[..n]);
        }
        let body: Value = serde_json::from_slice(&data[body_start..body_start + length]).unwrap();
        let text = answer.to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        (head, body)
    });
    (url, task)
}

#[tokio::test]
async fn prompt_functions_go_to_a_configured_llm_endpoint() {
    let (llm_url, request) = fake_llm(json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Salut Ada !"}}]
    }))
    .await;
    let server = start(LocalServer::builder().llm_endpoint(llm_url, Some("sk-llm".into())));
    let client = client(&server);
    create_prompt(&client, "p", "greeter", greeter_data()).await;
    let output = Invoke::slug("p", "greeter")
        .input(json!({"name": "Ada", "lang": "French"}))
        .client(client)
        .call()
        .await
        .unwrap();
    assert_eq!(output, "Salut Ada !");
    let (head, body) = request.await.unwrap();
    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    assert!(
        head.contains("authorization: Bearer sk-llm")
            || head.contains("Authorization: Bearer sk-llm"),
        "{head}"
    );
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["messages"][1]["content"], "Say hi to Ada in French.");
    assert!(body.get("span_info").is_none() && body.get("use_cache").is_none());
}
