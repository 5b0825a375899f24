//! Model-graded scorers against a loopback stub of an OpenAI-compatible endpoint: request
//! shape, choice scores, metadata, errors, and embeddings.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::routing::post;
use braintrust_eval::Eval;
use braintrust_eval::scorers::{
    ClosedQa, EmbeddingSimilarity, Factuality, Humor, LlmClassifier, LlmConfig,
};
use serde_json::{Value, json};

type Requests = Arc<Mutex<Vec<Value>>>;

/// Answers with the choice named in the prompt after `CHOOSE:` (no tool call for `NONE`).
async fn start_stub() -> (String, Requests) {
    let requests: Requests = Arc::default();
    let chat = requests.clone();
    let embed = requests.clone();
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(move |Json(body): Json<Value>| {
                let chat = chat.clone();
                async move {
                    chat.lock().unwrap().push(body.clone());
                    let prompt = body["messages"][0]["content"].as_str().unwrap_or_default();
                    let choice = prompt
                        .split("CHOOSE:")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .unwrap_or("C")
                        .to_owned();
                    if choice == "NONE" {
                        return Json(json!({"choices": [{"message": {"role": "assistant", "content": "hmm"}}]}));
                    }
                    let arguments = json!({"reasons": "because", "choice": format!(" {choice} ")});
                    Json(json!({"choices": [{"message": {"role": "assistant", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {
                            "name": "select_choice", "arguments": arguments.to_string()}}]}}]}))
                }
            }),
        )
        .route(
            "/v1/embeddings",
            post(move |Json(body): Json<Value>| {
                let embed = embed.clone();
                async move {
                    embed.lock().unwrap().push(body.clone());
                    let vector = |text: &str| if text.contains("cat") { json!([1.0, 0.0]) } else { json!([0.6, 0.8]) };
                    let inputs = body["input"].as_array().cloned().unwrap_or_default();
                    let data: Vec<Value> = inputs
                        .iter()
                        .enumerate()
                        .map(|(i, t)| json!({"index": i, "embedding": vector(t.as_str().unwrap_or_default())}))
                        .collect();
                    Json(json!({"data": data}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, requests)
}

#[tokio::test]
async fn factuality_sends_a_forced_tool_call_and_maps_the_choice() {
    let (url, requests) = start_stub().await;
    let config = LlmConfig::new(url, Some("sk-test".into()));
    let factuality = Factuality::new().config(config.clone()).model("gpt-test");
    let score = factuality
        .classify(
            &json!("What is 2+2? CHOOSE:A"),
            &json!("4"),
            Some(&json!("4")),
        )
        .await
        .unwrap();
    assert_eq!(score.name, "Factuality");
    assert_eq!(score.score, Some(0.4));
    assert_eq!(score.metadata["choice"], "A");
    assert_eq!(score.metadata["rationale"], "because");
    let body = requests.lock().unwrap()[0].clone();
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "select_choice"}})
    );
    let params = &body["tools"][0]["function"]["parameters"];
    assert_eq!(
        params["properties"]["choice"]["enum"],
        json!(["A", "B", "C", "D", "E"])
    );
    assert_eq!(params["required"], json!(["reasons", "choice"]));
    let prompt = body["messages"][0]["content"].as_str().unwrap();
    assert!(prompt.contains("[Question]: What is 2+2? CHOOSE:A"));
    assert!(prompt.contains("[Expert]: 4"));

    // Every stock choice maps to its documented score.
    for (choice, expected) in [("B", 0.6), ("C", 1.0), ("D", 0.0), ("E", 1.0)] {
        let s = factuality
            .classify(
                &json!(format!("q CHOOSE:{choice}")),
                &json!("o"),
                Some(&json!("e")),
            )
            .await
            .unwrap();
        assert_eq!(s.score, Some(expected), "choice {choice}");
    }
    let humor = Humor::new().config(config.clone());
    let s = humor
        .classify(&json!(null), &json!("a joke CHOOSE:Unsure"), None)
        .await
        .unwrap();
    assert_eq!(s.score, Some(0.5));
    // Extra variables render into the prompt; without CoT there is no `reasons`.
    let closed = ClosedQa::new("mentions CHOOSE:Y")
        .config(config.clone())
        .use_cot(false);
    let s = closed
        .classify(&json!("q"), &json!("a"), None)
        .await
        .unwrap();
    assert_eq!(s.score, Some(1.0));
    let last = requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last["tools"][0]["function"]["parameters"]["required"],
        json!(["choice"])
    );
    assert!(
        last["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("[Criterion]: mentions")
    );
}

#[tokio::test]
async fn missing_or_unknown_choices_are_scorer_errors_in_an_eval() {
    let (url, _) = start_stub().await;
    let config = LlmConfig::new(url, None);
    let custom = LlmClassifier::new("Tone", "Rate: {{output}}", [("good", 1.0), ("bad", 0.0)])
        .config(config);
    let result = Eval::<String, String, String>::new("llm-errors")
        .data(vec![
            "fine CHOOSE:good".to_string(),
            "x CHOOSE:NONE".to_string(),
            "y CHOOSE:weird".to_string(),
        ])
        .task(|i, _| i.clone())
        .add_scorer(custom)
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(result.results[0].score("Tone"), Some(1.0));
    assert_eq!(
        result.results[1].scorer_errors[0].1,
        "No tool call found in response"
    );
    assert!(
        result.results[2].scorer_errors[0]
            .1
            .contains("Unknown score choice")
    );
}

#[tokio::test]
async fn embedding_similarity_rescales_the_cosine() {
    let (url, requests) = start_stub().await;
    let scorer = EmbeddingSimilarity::new()
        .config(LlmConfig::new(url, None))
        .prefix("P: ");
    let same = scorer
        .compare(&json!("cat"), &json!("a cat"))
        .await
        .unwrap();
    assert_eq!(same.score, Some(1.0));
    // cos = 0.6: below expected_min 0.7, so 0.
    let far = scorer.compare(&json!("cat"), &json!("dog")).await.unwrap();
    assert_eq!(far.score, Some(0.0));
    let body = requests.lock().unwrap()[0].clone();
    assert_eq!(body["input"], json!(["P: cat", "P: a cat"]));
    assert_eq!(body["model"], "text-embedding-ada-002");
    assert!((scorer.score_vectors(&[1.0, 0.0], &[0.8, 0.6]) - (0.8 - 0.7) / 0.3).abs() < 1e-12);
    assert_eq!(scorer.score_vectors(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
}
