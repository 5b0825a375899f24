//! Golden outputs of `Prompt::build`: keys, order and values as the reference documents.

use braintrust_functions::mustache::TemplateError;
use braintrust_functions::{Prompt, PromptBody, PromptError};
use serde_json::{Value, json};

fn row(prompt_data: Value) -> Value {
    json!({
        "id": "8a3f2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c", "_xact_id": "1000192656880881099",
        "project_id": "747ebc7b-6a9b-597e-94f2-512cce481000", "org_id": "o", "log_id": "p",
        "name": "Greeter", "slug": "greeter", "description": "says hi", "created": "c",
        "tags": null, "metadata": null, "prompt_data": prompt_data,
    })
}

fn greeter() -> Prompt {
    Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hi to {{name}} in {{lang}}."}]},
        "options": {"model": "gpt-4o-mini",
                    "params": {"temperature": 0.5, "max_tokens": 100, "use_cache": true}},
    })))
    .unwrap()
}

#[test]
fn chat_prompt_matches_the_reference_byte_for_byte() {
    let built = greeter()
        .build(json!({"name": "Ada", "lang": "French"}))
        .unwrap();
    let expected = r#"{"temperature":0.5,"max_tokens":100,"model":"gpt-4o-mini","span_info":{"metadata":{"prompt":{"variables":{"name":"Ada","lang":"French"},"id":"8a3f2b1c-0d4e-4f5a-9b6c-7d8e9f0a1b2c","project_id":"747ebc7b-6a9b-597e-94f2-512cce481000","version":"1000192656880881099"}}},"messages":[{"content":"You are a helpful assistant.","role":"system"},{"content":"Say hi to Ada in French.","role":"user"}]}"#;
    assert_eq!(built.to_json().to_string(), expected);
    assert_eq!(serde_json::to_string(&built).unwrap(), expected);
    // The typed view agrees.
    assert_eq!(built.model, "gpt-4o-mini");
    assert_eq!(
        built.messages().unwrap()[1].text().as_deref(),
        Some("Say hi to Ada in French.")
    );
    // The request for a provider has no span_info.
    assert!(built.to_request().get("span_info").is_none());
}

#[test]
fn defaults_come_first_and_lose_to_prompt_params() {
    let built = greeter()
        .with_defaults(
            json!({"temperature": 0.1, "seed": 7})
                .as_object()
                .unwrap()
                .clone(),
        )
        .build(json!({"name": "Ada", "lang": "French"}))
        .unwrap()
        .to_json();
    let keys: Vec<&str> = built
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "temperature",
            "seed",
            "max_tokens",
            "model",
            "span_info",
            "messages"
        ]
    );
    assert_eq!(built["temperature"], 0.5);
    assert_eq!(built["seed"], 7);
}

#[test]
fn no_trace_omits_span_info_and_variables_may_be_structs() {
    #[derive(serde::Serialize)]
    struct Vars {
        name: &'static str,
        lang: &'static str,
    }
    let built = greeter()
        .with_no_trace(true)
        .build(Vars {
            name: "Bo",
            lang: "Dutch",
        })
        .unwrap()
        .to_json();
    assert!(built.get("span_info").is_none());
    assert_eq!(built["messages"][1]["content"], "Say hi to Bo in Dutch.");
}

#[test]
fn completion_prompts_render_into_prompt() {
    let prompt = Prompt::from_row(row(json!({
        "prompt": {"type": "completion", "content": "Complete: {{text}}"},
        "options": {"model": "gpt-3.5-turbo-instruct", "params": {"max_tokens": 5}},
    })))
    .unwrap();
    let built = prompt.build(json!({"text": "once upon"})).unwrap();
    assert_eq!(
        built.body,
        PromptBody::Completion {
            prompt: "Complete: once upon".into()
        }
    );
    let json = built.to_json();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["max_tokens", "model", "span_info", "prompt"]);
}

#[test]
fn tools_are_rendered_then_parsed_and_follow_messages() {
    let tools =
        r#"[{"type":"function","function":{"name":"{{tool}}","parameters":{"type":"object"}}}]"#;
    let prompt = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": [{"role": "user", "content": "hi"}],
                   "tools": tools},
        "options": {"model": "gpt-4o"},
    })))
    .unwrap();
    let json = prompt.build(json!({"tool": "lookup"})).unwrap().to_json();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["model", "span_info", "messages", "tools"]);
    assert_eq!(json["tools"][0]["function"]["name"], "lookup");
    // Tools that are not JSON after rendering are a clear error.
    let broken = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": [], "tools": "[{{x}}"},
        "options": {"model": "gpt-4o"},
    })))
    .unwrap();
    assert!(matches!(
        broken.build(json!({"x": 1})),
        Err(PromptError::InvalidPrompt(m)) if m.contains("prompt.tools")
    ));
}

#[test]
fn response_format_schema_strings_are_templated() {
    let prompt = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": [{"role": "user", "content": "x"}]},
        "options": {"model": "gpt-4o", "params": {"response_format": {
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": "{\"type\":\"object\",\"description\":\"{{what}}\"}"}}}},
    })))
    .unwrap();
    let json = prompt
        .build(json!({"what": "an answer"}))
        .unwrap()
        .to_json();
    assert_eq!(
        json["response_format"]["json_schema"]["schema"],
        json!({"type": "object", "description": "an answer"})
    );
}

#[test]
fn content_parts_are_rendered_and_other_message_fields_kept() {
    let prompt = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": [
            {"role": "user", "name": "u1", "content": [
                {"type": "text", "text": "Describe {{thing}}"},
                {"type": "image_url", "image_url": {"url": "{{url}}", "detail": "low"}}]}]},
        "options": {"model": "gpt-4o"},
    })))
    .unwrap();
    let json = prompt
        .build(json!({"thing": "this", "url": "https://x/y.png"}))
        .unwrap()
        .to_json();
    assert_eq!(
        json["messages"][0],
        json!({"content": [
            {"type": "text", "text": "Describe this"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}],
            "role": "user", "name": "u1"})
    );
}

#[test]
fn model_errors_strictness_and_template_formats() {
    let no_model = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": []}, "options": {}})))
    .unwrap();
    let err = no_model.build(json!({})).unwrap_err();
    assert_eq!(err.to_string(), "No model specified");
    // A model in the defaults is enough.
    let with_default = no_model.with_defaults(json!({"model": "m"}).as_object().unwrap().clone());
    assert_eq!(with_default.build(json!({})).unwrap().model, "m");

    // Strict builds name the missing variable; lenient ones render it empty.
    let err = greeter().build_strict(json!({"name": "Ada"})).unwrap_err();
    match &err {
        PromptError::Template { field, source } => {
            assert_eq!(field, "prompt.messages[1].content");
            assert_eq!(
                source,
                &TemplateError::MissingVariable {
                    name: "lang".into()
                }
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("Could not find key 'lang'"));
    let lenient = greeter().build(json!({"name": "Ada"})).unwrap().to_json();
    assert_eq!(lenient["messages"][1]["content"], "Say hi to Ada in .");

    let nunjucks = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": []}, "options": {"model": "m"},
        "template_format": "nunjucks"})))
    .unwrap();
    assert!(matches!(
        nunjucks.build(json!({})),
        Err(PromptError::UnsupportedTemplateFormat(f)) if f == "nunjucks"
    ));
    let plain = Prompt::from_row(row(json!({
        "prompt": {"type": "chat", "messages": [{"role": "user", "content": "{{kept}}"}]},
        "options": {"model": "m"}, "template_format": "none"})))
    .unwrap();
    assert_eq!(
        plain.build(json!({})).unwrap().to_json()["messages"][0]["content"],
        "{{kept}}"
    );

    // Variables must be an object; rows must be prompts.
    assert!(matches!(
        greeter().build(json!([1])),
        Err(PromptError::InvalidVariables(_))
    ));
    assert!(matches!(
        Prompt::from_row(json!({"id": "x"})),
        Err(PromptError::InvalidRow(_))
    ));
}
