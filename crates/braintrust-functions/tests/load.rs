//! `load_prompt` against braintrust-local: selectors, versions, environments, errors, the
//! request shapes of the official SDKs, cache fallback and single-flight.

mod common;

use std::collections::BTreeMap;

use braintrust_functions::{LoadPrompt, PromptCache, PromptError, get_prompt_versions};
use braintrust_local::LocalServer;
use braintrust_transport::api::Host;
use common::{client, create_prompt, greeter_data, start};
use serde_json::json;

fn no_cache() -> PromptCache {
    PromptCache::new(0, None, 0)
}

fn queries(
    server: &LocalServer,
    path_prefix: &str,
) -> Vec<(String, BTreeMap<String, Vec<String>>)> {
    server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(path_prefix))
        .map(|r| (r.path, r.query.into_iter().collect()))
        .collect()
}

#[tokio::test]
async fn loads_by_name_project_id_and_id_with_the_sdk_requests() {
    let server = start(LocalServer::builder());
    let client = client(&server);
    let row = create_prompt(&client, "capture-proj", "greeter", greeter_data()).await;
    let id = row["id"].as_str().unwrap().to_owned();
    let project_id = row["project_id"].as_str().unwrap().to_owned();
    let version = row["_xact_id"].as_str().unwrap().to_owned();

    let by_name = LoadPrompt::new("capture-proj", "greeter")
        .client(client.clone())
        .cache(no_cache())
        .load()
        .await
        .unwrap();
    assert_eq!(by_name.id(), id);
    assert_eq!(by_name.version(), Some(version.as_str()));
    assert_eq!(by_name.slug(), Some("greeter"));
    let by_version = LoadPrompt::new("capture-proj", "greeter")
        .version(&version)
        .client(client.clone())
        .cache(no_cache())
        .load()
        .await
        .unwrap();
    assert_eq!(by_version, by_name);
    let by_id = LoadPrompt::id(&id)
        .client(client.clone())
        .cache(no_cache())
        .load()
        .await
        .unwrap();
    assert_eq!(by_id.id(), id);
    let by_project_id = LoadPrompt::project_id(&project_id, "greeter")
        .client(client.clone())
        .cache(no_cache())
        .load()
        .await
        .unwrap();
    assert_eq!(by_project_id.id(), id);

    // The same requests as the Python SDK's capture (python-prompt.jsonl).
    let q = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
            .collect()
    };
    assert_eq!(
        queries(&server, "/v1/prompt"),
        vec![
            (
                "/v1/prompt".to_owned(),
                q(&[("project_name", "capture-proj"), ("slug", "greeter")])
            ),
            (
                "/v1/prompt".to_owned(),
                q(&[
                    ("project_name", "capture-proj"),
                    ("slug", "greeter"),
                    ("version", &version)
                ])
            ),
            (format!("/v1/prompt/{id}"), q(&[])),
            (
                "/v1/prompt".to_owned(),
                q(&[("project_id", &project_id), ("slug", "greeter")])
            ),
        ]
    );
}

#[tokio::test]
async fn older_versions_stay_loadable_and_environments_select_one() {
    let server = start(LocalServer::builder());
    let client = client(&server);
    let v1 = create_prompt(&client, "p", "greeter", greeter_data()).await;
    let mut data = greeter_data();
    data["options"]["model"] = json!("gpt-4o");
    let v2 = create_prompt(&client, "p", "greeter", data).await;
    assert_eq!(v1["id"], v2["id"], "an update keeps the prompt's id");
    assert_ne!(v1["_xact_id"], v2["_xact_id"]);
    let id = v1["id"].as_str().unwrap();
    let load = |options: LoadPrompt| {
        let client = client.clone();
        async move { options.client(client).cache(no_cache()).load().await }
    };

    let latest = load(LoadPrompt::new("p", "greeter")).await.unwrap();
    assert_eq!(latest.model(), Some("gpt-4o"));
    let old = load(LoadPrompt::new("p", "greeter").version(v1["_xact_id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(old.model(), Some("gpt-4o-mini"));
    let old_by_id = load(LoadPrompt::id(id).version(v1["_xact_id"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(old_by_id.model(), Some("gpt-4o-mini"));

    // Pin v1 to production; the environment selects it, and an explicit version wins.
    client
        .post_json(
            Host::Api,
            &format!("/environment-object/prompt/{id}/production"),
            &json!({"object_version": v1["_xact_id"]}),
            &[],
        )
        .await
        .unwrap();
    let production = load(LoadPrompt::new("p", "greeter").environment("production"))
        .await
        .unwrap();
    assert_eq!(production.model(), Some("gpt-4o-mini"));
    let both = load(
        LoadPrompt::new("p", "greeter")
            .environment("production")
            .version(v2["_xact_id"].as_str().unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(both.model(), Some("gpt-4o"));
    let requests = queries(&server, "/v1/prompt");
    let last = &requests.last().unwrap().1;
    assert!(
        last.contains_key("version") && !last.contains_key("environment"),
        "{last:?}"
    );

    // Every version, oldest first, from the audit log.
    let versions = get_prompt_versions(&client, v1["project_id"].as_str().unwrap(), id)
        .await
        .unwrap();
    assert_eq!(
        versions,
        vec![
            v1["_xact_id"].as_str().unwrap().to_owned(),
            v2["_xact_id"].as_str().unwrap().to_owned()
        ]
    );
}

#[tokio::test]
async fn missing_prompts_and_bad_arguments_are_typed_errors() {
    let server = start(LocalServer::builder());
    let client = client(&server);
    let err = LoadPrompt::new("p", "nope")
        .client(client.clone())
        .cache(no_cache())
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PromptError::NotFound(what) if what == "p/nope"),
        "{err:?}"
    );
    let err = LoadPrompt::id("00000000-0000-0000-0000-000000000000")
        .client(client.clone())
        .load()
        .await
        .unwrap_err();
    assert!(matches!(err, PromptError::NotFound(_)), "{err:?}");
    let err = LoadPrompt::default()
        .client(client.clone())
        .load()
        .await
        .unwrap_err();
    assert!(matches!(err, PromptError::InvalidArguments(_)));
    // A wrong key is a login error, not a fallback.
    let bad = common::client_for(server.url(), "wrong-key");
    let err = LoadPrompt::new("p", "x")
        .client(bad)
        .cache(no_cache())
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PromptError::Api(e) if !e.is_unavailable()),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong-key"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_falls_back_to_memory_then_disk() {
    let dir = std::env::temp_dir().join(format!("bt-prompt-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cache = PromptCache::new(16, Some(dir.clone()), 16);
    let server = start(LocalServer::builder());
    let url = server.url().to_owned();
    let key = server.api_key().to_owned();
    let client = client(&server);
    create_prompt(&client, "p", "greeter", greeter_data()).await;
    let loaded = LoadPrompt::new("p", "greeter")
        .client(client.clone())
        .cache(cache.clone())
        .load()
        .await
        .unwrap();
    server.shutdown();

    // Same URL, server gone: a fresh client (no pooled connection) cannot connect.
    let offline = common::client_for(&url, &key);
    let from_memory = LoadPrompt::new("p", "greeter")
        .defaults(json!({"seed": 1}))
        .client(offline.clone())
        .cache(cache.clone())
        .load()
        .await
        .unwrap();
    assert_eq!(from_memory.id(), loaded.id());
    assert_eq!(
        from_memory.build(json!({})).unwrap().params.get("seed"),
        Some(&json!(1)),
        "defaults still apply to cached prompts"
    );
    cache.clear_memory();
    let from_disk = LoadPrompt::new("p", "greeter")
        .client(offline.clone())
        .cache(cache.clone())
        .load()
        .await
        .unwrap();
    assert_eq!(from_disk.row(), loaded.row());
    // A fresh process would find the same file.
    let fresh = PromptCache::new(16, Some(dir.clone()), 16);
    assert!(
        LoadPrompt::new("p", "greeter")
            .client(offline.clone())
            .cache(fresh)
            .load()
            .await
            .is_ok()
    );

    // Pinned loads and unknown prompts never fall back.
    let pinned = LoadPrompt::new("p", "greeter")
        .version(loaded.version().unwrap())
        .client(offline.clone())
        .cache(cache.clone())
        .load()
        .await
        .unwrap_err();
    assert!(
        matches!(&pinned, PromptError::Api(e) if e.is_unavailable()),
        "{pinned:?}"
    );
    assert!(
        LoadPrompt::new("p", "other")
            .client(offline)
            .cache(cache)
            .load()
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_disk_cache_keeps_at_most_its_limit() {
    let dir = std::env::temp_dir().join(format!("bt-prompt-evict-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(LocalServer::builder());
    let client = client(&server);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cache = PromptCache::new(0, Some(dir.clone()), 2);
    runtime.block_on(async {
        for slug in ["a", "b", "c"] {
            create_prompt(&client, "p", slug, greeter_data()).await;
            LoadPrompt::new("p", slug)
                .client(client.clone())
                .cache(cache.clone())
                .load()
                .await
                .unwrap();
        }
    });
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(files, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_loads_of_one_prompt_share_a_request() {
    let server = start(LocalServer::builder());
    let client = client(&server);
    create_prompt(&client, "p", "greeter", greeter_data()).await;
    client.org().await.unwrap(); // log in first so only prompt requests race
    // Hold the request at the server until every task has started waiting.
    server.inject_fault(
        "/v1/prompt",
        braintrust_local::Fault::Delay(std::time::Duration::from_millis(300)),
        1,
    );
    let cache = PromptCache::new(0, None, 0);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let options = LoadPrompt::new("p", "greeter")
                .client(client.clone())
                .cache(cache.clone());
            tokio::spawn(options.load())
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().id().to_owned());
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let gets = queries(&server, "/v1/prompt").len();
    assert_eq!(gets, 1, "16 concurrent loads sent {gets} requests");
    // Later loads fetch again (the cache is a fallback, not a shortcut).
    LoadPrompt::new("p", "greeter")
        .client(client.clone())
        .cache(cache)
        .load()
        .await
        .unwrap();
    assert_eq!(queries(&server, "/v1/prompt").len(), gets + 1);
}
