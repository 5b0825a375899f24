//! The local server's HTTP API: auth, registration, ingestion with merge semantics, overflow,
//! reads, bad input, persistence and the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use braintrust_core::object::ObjectIds;
use braintrust_local::LocalServer;
use common::{Http, ok};
use serde_json::{Value, json};

fn server() -> (LocalServer, Http) {
    let server = LocalServer::builder()
        .api_key("k1")
        .org_name("acme")
        .start()
        .unwrap();
    let http = Http::new(server.url(), Some("k1"));
    (server, http)
}

/// A fresh directory, removed with everything in it (SQLite's -wal and -shm files too) on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let name = format!("bt-local-{}", braintrust_core::id::new_uuid_v4());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn login_and_auth() {
    let (server, http) = server();
    let body = ok(http.post("/api/apikey/login", &json!({})));
    let org = &body["org_info"][0];
    assert_eq!(org["name"], "acme");
    assert_eq!(org["api_url"], server.url());
    assert_eq!(org["proxy_url"], server.url());
    assert_eq!(org["id"], server.org_id());

    let wrong = Http::new(server.url(), Some("nope")).post("/api/apikey/login", &json!({}));
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body["error"]
            .as_str()
            .unwrap()
            .contains("Invalid API key")
    );
    assert!(!wrong.text.contains("k1"), "never echo the real key");
    let missing = Http::new(server.url(), None).post("/v1/project", &json!({"name": "p"}));
    assert_eq!(missing.status, 401);
    assert!(
        missing.body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization")
    );

    // The feature probe answers without a key.
    let version = ok(Http::new(server.url(), None).get("/version"));
    assert_eq!(version["logs3_payload_max_bytes"], 6 * 1024 * 1024);
    let ping = ok(http.get("/ping"));
    assert_eq!(ping["org_name"], "acme");
}

#[test]
fn version_can_omit_the_payload_limit() {
    let server = LocalServer::builder().payload_limit(None).start().unwrap();
    let version = ok(Http::new(server.url(), None).get("/version"));
    assert!(
        version.get("logs3_payload_max_bytes").is_none(),
        "{version}"
    );
}

#[test]
fn projects_are_get_or_create_in_both_families() {
    let (_server, http) = server();
    let a = ok(http.post(
        "/v1/project",
        &json!({"name": "capture-proj", "org_name": "acme"}),
    ));
    let b = ok(http.post("/v1/project", &json!({"name": "capture-proj"})));
    assert_eq!(a["id"], b["id"]);
    // Project ids are derived from the name, as the captured fake server issued them.
    assert_eq!(a["id"], "747ebc7b-6a9b-597e-94f2-512cce481000");
    let legacy = ok(http.post(
        "/api/project/register",
        &json!({"project_name": "capture-proj"}),
    ));
    assert_eq!(legacy["project"]["id"], a["id"]);
    let id = a["id"].as_str().unwrap();
    assert_eq!(
        ok(http.get(&format!("/v1/project/{id}")))["name"],
        "capture-proj"
    );
    assert_eq!(
        ok(http.get(&format!("/api/project?id={id}")))["name"],
        "capture-proj"
    );
    let listed = ok(http.get("/v1/project?project_name=capture-proj"));
    assert_eq!(listed["objects"].as_array().unwrap().len(), 1);
    assert_eq!(ok(http.post("/v1/project", &json!({})))["name"], "Global");

    let missing = http.get("/v1/project/00000000-0000-0000-0000-000000000000");
    assert_eq!(missing.status, 404);
    let other_org = http.post("/v1/project", &json!({"name": "p", "org_name": "other"}));
    assert_eq!(other_org.status, 404);
    assert!(
        other_org.body["error"]
            .as_str()
            .unwrap()
            .contains("Organization other not found")
    );
}

#[test]
fn experiments_honour_ensure_new_and_lookups() {
    let (_server, http) = server();
    let project = ok(http.post("/v1/project", &json!({"name": "p"})));
    let pid = project["id"].as_str().unwrap();
    let first = ok(http.post(
        "/v1/experiment",
        &json!({"project_id": pid, "name": "exp", "ensure_new": true,
                "repo_info": {"commit": "abc"}, "metadata": {"m": 1}, "tags": ["nightly"], "public": false}),
    ));
    assert_eq!(first["name"], "exp");
    assert_eq!(first["commit"], "abc");
    assert_eq!(first["tags"], json!(["nightly"]));
    let second = ok(http.post(
        "/v1/experiment",
        &json!({"project_id": pid, "name": "exp", "ensure_new": true}),
    ));
    assert_eq!(second["name"], "exp-1");
    assert_ne!(second["id"], first["id"]);
    let same = ok(http.post(
        "/v1/experiment",
        &json!({"project_id": pid, "name": "exp", "ensure_new": false}),
    ));
    assert_eq!(same["id"], first["id"]);

    let found = ok(http.get(&format!(
        "/v1/experiment?experiment_name=exp&project_id={pid}&org_name=acme"
    )));
    assert_eq!(found["objects"].as_array().unwrap().len(), 1);
    assert_eq!(found["objects"][0]["id"], first["id"]);
    let by_project_name = ok(http.get("/v1/experiment?project_name=p"));
    assert_eq!(by_project_name["objects"].as_array().unwrap().len(), 2);
    let id = first["id"].as_str().unwrap();
    assert_eq!(ok(http.get(&format!("/v1/experiment/{id}")))["name"], "exp");

    // Legacy family: register creates the project by name, resolves the base by name.
    let reg = ok(http.post(
        "/api/experiment/register",
        &json!({"project_name": "p", "experiment_name": "exp", "update": true}),
    ));
    assert_eq!(reg["experiment"]["id"], first["id"]);
    assert_eq!(reg["project"]["id"], pid);
    let with_base = ok(http.post(
        "/api/experiment/register",
        &json!({"project_name": "p", "experiment_name": "next", "base_experiment": "exp"}),
    ));
    assert_eq!(with_base["experiment"]["base_exp_id"], first["id"]);
    let bad_base = http.post(
        "/api/experiment/register",
        &json!({"project_name": "p", "experiment_name": "x", "base_experiment": "missing"}),
    );
    assert_eq!(bad_base.status, 400);
    assert!(
        bad_base.body["error"]
            .as_str()
            .unwrap()
            .contains("base experiment")
    );
    let got = ok(http.post(
        "/api/experiment/get",
        &json!({"project_name": "p", "experiment_name": "next"}),
    ));
    assert_eq!(got.as_array().unwrap().len(), 1);

    let no_project = http.post(
        "/v1/experiment",
        &json!({"project_id": "nope", "name": "e"}),
    );
    assert_eq!(no_project.status, 404);
    let bad_type = http.post("/v1/experiment", &json!({"project_id": pid, "name": 5}));
    assert_eq!(bad_type.status, 400);
    assert!(
        bad_type.body["error"]
            .as_str()
            .unwrap()
            .contains("`name` must be a string")
    );
}

#[test]
fn datasets_are_get_or_create() {
    let (_server, http) = server();
    let pid = ok(http.post("/v1/project", &json!({"name": "p"})))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = ok(http.post(
        "/v1/dataset",
        &json!({"project_id": pid, "name": "ds", "description": "d", "metadata": {"owner": "me"}}),
    ));
    let b = ok(http.post("/v1/dataset", &json!({"project_id": pid, "name": "ds"})));
    assert_eq!(a["id"], b["id"]);
    assert_eq!(a["metadata"], json!({"owner": "me"}));
    let logs = ok(http.post("/v1/dataset", &json!({"project_id": pid})));
    assert_eq!(logs["name"], "logs");
    let legacy = ok(http.post(
        "/api/dataset/register",
        &json!({"project_name": "p", "dataset_name": "ds"}),
    ));
    assert_eq!(legacy["dataset"]["id"], a["id"]);
    let id = a["id"].as_str().unwrap();
    assert_eq!(ok(http.get(&format!("/v1/dataset/{id}")))["name"], "ds");
    assert_eq!(
        ok(http.get(&format!("/v1/dataset?project_id={pid}&dataset_name=ds")))["objects"][0]["id"],
        a["id"]
    );
}

#[test]
fn logs3_merges_server_side_and_assigns_increasing_xact_ids() {
    let (server, http) = server();
    let row = |extra: Value| {
        let mut base = json!({"id": "r1", "project_id": "p1", "log_id": "g", "span_id": "s", "root_span_id": "t"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    // No Content-Type, as the Python SDK sends it.
    let body = json!({"rows": [row(json!({"_is_merge": false, "created": "2026-01-01T00:00:00Z",
        "input": {"a": 1}, "metadata": {"m": {"x": 1}}, "tags": ["a"]}))], "api_version": 2});
    let first = ok(http.post_raw("/logs3", body.to_string().as_bytes()));
    let second = ok(http.post(
        "/logs3",
        &json!({"rows": [row(json!({"_is_merge": true, "created": "later", "span_id": "other",
            "metadata": {"m": {"y": 2}}, "tags": ["b", "a"], "output": "o"}))]}),
    ));
    let x1: u128 = first["xact_id"].as_str().unwrap().parse().unwrap();
    let x2: u128 = second["xact_id"].as_str().unwrap().parse().unwrap();
    assert!(x2 > x1);
    let rows = server.rows(&ObjectIds::project_logs("p1")).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["metadata"], json!({"m": {"x": 1, "y": 2}}));
    assert_eq!(r["tags"], json!(["a", "b"]));
    assert_eq!(r["created"], "2026-01-01T00:00:00Z");
    assert_eq!(r["span_id"], "s", "existing ids are kept");
    assert_eq!(r["_xact_id"], x2.to_string());
    assert!(r.get("_is_merge").is_none());

    // A row with no `_is_merge` is a full replacement; `created` stays that of the first row.
    ok(http.post(
        "/logs3",
        &json!({"rows": [row(json!({"output": "only", "created": "x"}))]}),
    ));
    let r = &server.rows(&ObjectIds::project_logs("p1")).unwrap()[0];
    assert_eq!(r["output"], "only");
    assert!(r.get("metadata").is_none());
    assert_eq!(r["created"], "2026-01-01T00:00:00Z");
}

#[test]
fn member_names_are_stored_as_they_came_escaped_or_not() {
    let (server, http) = server();
    // Names with escapes, one with a needless `\u` escape (the same name as a later plain
    // one, whose value wins), and non-ASCII names.
    let body = r#"{"rows": [{"id": "k", "experiment_id": "e",
        "say \"hi\"": 1, "back\\slash": 2, "tab\there": 3, "nul\u0000": 4,
        "pl\u0061in": 5, "été 日本": 6, "plain": 7}]}"#;
    ok(http.post_raw("/logs3", body.as_bytes()));
    let rows = server.rows(&ObjectIds::experiment("e")).unwrap();
    let row = rows[0].as_object().unwrap();
    for (name, value) in [
        ("say \"hi\"", 1),
        ("back\\slash", 2),
        ("tab\there", 3),
        ("nul\u{0}", 4),
        ("plain", 7),
        ("été 日本", 6),
    ] {
        assert_eq!(row.get(name), Some(&json!(value)), "{name:?} in {row:?}");
    }
}

#[test]
fn a_row_holding_a_number_out_of_range_does_not_break_reading_its_object() {
    let (server, http) = server();
    // `1e400` is valid JSON but no f64: the row is stored as it came and cannot be read back.
    let body = br#"{"rows": [
        {"id": "bad", "experiment_id": "e", "input": {"n": [1, 1e400]}},
        {"id": "good", "experiment_id": "e", "input": {"n": 2}}
    ]}"#;
    ok(http.post_raw("/logs3", body));
    let ids = |rows: Vec<Value>| rows.iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    let experiment = ObjectIds::experiment("e");
    assert_eq!(ids(server.rows(&experiment).unwrap()), [json!("good")]);
    // A merge into the unreadable version starts from nothing, and the row reads again.
    ok(http.post(
        "/logs3",
        &json!({"rows": [{"id": "bad", "experiment_id": "e", "_is_merge": true, "output": 3}]}),
    ));
    let rows = server.rows(&experiment).unwrap();
    assert_eq!(ids(rows.clone()), [json!("bad"), json!("good")]);
    assert_eq!(
        (&rows[0]["output"], rows[0].get("input")),
        (&json!(3), None)
    );
}

#[test]
fn bad_input_is_rejected_without_half_applying() {
    let (server, http) = server();
    let good = json!({"id": "ok", "experiment_id": "e", "input": 1});
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not valid JSON"),
        (b"[1]".to_vec(), "must be a JSON object"),
        (
            json!({"rows": 5}).to_string().into_bytes(),
            "`rows` must be an array",
        ),
        (json!({}).to_string().into_bytes(), "missing `rows`"),
        (
            json!({"rows": [good, {"id": "x", "input": 1}]})
                .to_string()
                .into_bytes(),
            "rows[1]: missing object ids",
        ),
        (
            json!({"rows": [good, {"id": "x", "project_id": "p"}]})
                .to_string()
                .into_bytes(),
            "rows[1]: missing object ids",
        ),
        (
            json!({"rows": [good, 7]}).to_string().into_bytes(),
            "rows[1]: a row must be a JSON object",
        ),
        (
            json!({"rows": [{"experiment_id": "e"}]})
                .to_string()
                .into_bytes(),
            "rows[0]: `id` must be a non-empty string",
        ),
        (
            json!({"rows": [good, {"id": "x", "experiment_id": "e", "tags": "t"}]})
                .to_string()
                .into_bytes(),
            "rows[1]: `tags`",
        ),
        (
            json!({"rows": [good, {"id": "x", "experiment_id": "e", "_is_merge": "yes"}]})
                .to_string()
                .into_bytes(),
            "`_is_merge` must be a boolean",
        ),
        (
            json!({"rows": [good, {"id": "x", "experiment_id": "e", "scores": {"s": "high"}}]})
                .to_string()
                .into_bytes(),
            "`scores`",
        ),
        (
            json!({"rows": [good, {"id": "x", "experiment_id": "e", "span_parents": [1]}]})
                .to_string()
                .into_bytes(),
            "`span_parents`",
        ),
        (
            json!({"rows": {"type": "other"}}).to_string().into_bytes(),
            "logs3_overflow",
        ),
    ];
    for (body, expected) in cases {
        let reply = http.post_raw("/logs3", &body);
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(&body));
        let message = reply.body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
    }
    assert!(
        server.rows(&ObjectIds::experiment("e")).unwrap().is_empty(),
        "a rejected batch must not write its valid rows"
    );
    let unknown = http.get("/v1/nothing/here");
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body["error"]
            .as_str()
            .unwrap()
            .contains("no such endpoint")
    );
}

#[test]
fn overflow_uploads_go_through_a_signed_url_on_the_server() {
    let (server, http) = server();
    let grant = ok(http.post(
        "/logs3/overflow",
        &json!({"content_type": "application/json", "size_bytes": 10, "rows": []}),
    ));
    assert_eq!(grant["method"], "PUT");
    let url = grant["signedUrl"].as_str().unwrap();
    assert!(url.starts_with(server.url()), "{url}");
    let key = grant["key"].as_str().unwrap();
    let payload = json!({"rows": [{"id": "big", "project_id": "p", "log_id": "g", "input": "x".repeat(10_000)}], "api_version": 2});

    // Not yet uploaded.
    let early = http.post(
        "/logs3",
        &json!({"rows": {"type": "logs3_overflow", "key": key}}),
    );
    assert_eq!(early.status, 400);
    assert!(
        early.body["error"]
            .as_str()
            .unwrap()
            .contains("was not uploaded")
    );

    let anonymous = Http::new(server.url(), None);
    let forged = anonymous.send("PUT", &url.replace("token=", "token=x"), Some(b"{}"), &[]);
    assert_eq!(forged.status, 403);
    ok(anonymous.send(
        "PUT",
        url,
        Some(payload.to_string().as_bytes()),
        &[("Content-Type", "application/json")],
    ));
    ok(http.post("/logs3", &json!({"rows": {"type": "logs3_overflow", "key": key, "size_bytes": 10}, "api_version": 2})));
    let rows = server.rows(&ObjectIds::project_logs("p")).unwrap();
    assert_eq!(rows[0]["input"].as_str().unwrap().len(), 10_000);
}

#[test]
fn overflow_payloads_without_a_rows_array_are_rejected() {
    let (server, http) = server();
    let anonymous = Http::new(server.url(), None);
    for (payload, expected) in [
        (&b"{\"api_version\": 2}"[..], "has no `rows` array"),
        (&b"{\"rows\": {\"a\": 1}}"[..], "has no `rows` array"),
        (&b"{\"rows\": [1,"[..], "is not valid JSON"),
        (&b"[1]"[..], "must be a JSON object"),
    ] {
        let grant = ok(http.post("/logs3/overflow", &json!({"size_bytes": payload.len()})));
        let url = grant["signedUrl"].as_str().unwrap();
        ok(anonymous.send("PUT", url, Some(payload), &[]));
        let reference = json!({"rows": {"type": "logs3_overflow", "key": grant["key"]}});
        let response = http.post("/logs3", &reference);
        assert_eq!(response.status, 400);
        let error = response.body["error"].as_str().unwrap();
        assert!(
            error.contains("overflow payload") && error.contains(expected),
            "{error}"
        );
    }
    assert!(
        server
            .rows(&ObjectIds::project_logs("p"))
            .unwrap()
            .is_empty()
    );
}

fn seed_trace(http: &Http, object: Value, n: usize) {
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let mut row = json!({"id": format!("r{i}"), "span_id": format!("s{i}"),
                "root_span_id": if i % 2 == 0 { "even" } else { "odd" }, "input": i});
            row.as_object_mut()
                .unwrap()
                .extend(object.as_object().unwrap().clone());
            row
        })
        .collect();
    ok(http.post("/logs3", &json!({"rows": rows})));
}

#[test]
fn fetch_pages_with_cursors_and_pins_versions() {
    let (_server, http) = server();
    seed_trace(&http, json!({"dataset_id": "d"}), 5);
    let mut inputs = Vec::new();
    let mut body = json!({"limit": 2});
    loop {
        let page = ok(http.post("/v1/dataset/d/fetch", &body));
        inputs.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["input"].as_i64().unwrap()),
        );
        assert!(page["events"][0]["_xact_id"].is_string());
        match page["cursor"].as_str() {
            Some(c) => body = json!({"limit": 2, "cursor": c}),
            None => break,
        }
    }
    assert_eq!(inputs, vec![0, 1, 2, 3, 4]);

    let version = ok(http.post("/v1/dataset/d/fetch", &json!({})))["events"][0]["_xact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(http.post("/logs3", &json!({"rows": [{"id": "r0", "dataset_id": "d", "_object_delete": true},
                                              {"id": "r1", "dataset_id": "d", "_is_merge": true, "expected": "e"}]})));
    let now = ok(http.post("/v1/dataset/d/fetch", &json!({})));
    assert_eq!(now["events"].as_array().unwrap().len(), 4);
    let then = ok(http.post("/v1/dataset/d/fetch", &json!({"version": version})));
    let then = then["events"].as_array().unwrap();
    assert_eq!(
        then.len(),
        5,
        "the pinned version still has the deleted row"
    );
    assert!(then.iter().all(|r| r.get("expected").is_none()));
    let via_get = ok(http.get("/v1/dataset/d/fetch?limit=1"));
    assert_eq!(via_get["events"].as_array().unwrap().len(), 1);

    assert_eq!(
        http.post("/v1/dataset/d/fetch", &json!({"limit": 0}))
            .status,
        400
    );
    assert_eq!(
        http.post("/v1/dataset/d/fetch", &json!({"cursor": "CURSOR-1"}))
            .status,
        400
    );
    assert_eq!(
        http.post("/v1/dataset/d/fetch", &json!({"version": "abc"}))
            .status,
        400
    );
    assert_eq!(
        http.post("/v1/prompt_session/d/fetch", &json!({})).status,
        404
    );
}

fn btql(object_type: &str, id: &str, extra: Value) -> Value {
    let mut query = json!({
        "select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": [object_type]},
                 "args": [{"op": "literal", "value": id}]},
    });
    query
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"query": query, "use_columnstore": false, "brainstore_realtime": true})
}

fn eq(field: &str, value: &str) -> Value {
    json!({"op": "eq", "left": {"op": "ident", "name": [field]}, "right": {"op": "literal", "value": value}})
}

#[test]
fn btql_filters_by_root_span_id_and_id_with_paging() {
    let (_server, http) = server();
    seed_trace(&http, json!({"project_id": "p", "log_id": "g"}), 6);
    seed_trace(&http, json!({"experiment_id": "e"}), 2);

    let all = ok(http.post("/btql", &btql("project_logs", "p", json!({}))));
    assert_eq!(all["data"].as_array().unwrap().len(), 6);
    assert!(all["cursor"].is_null());

    let even = ok(http.post(
        "/btql",
        &btql(
            "project_logs",
            "p",
            json!({"filter": eq("root_span_id", "even"), "limit": 2}),
        ),
    ));
    let ids: Vec<&str> = even["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r0", "r2"]);
    let cursor = even["cursor"].as_str().unwrap();
    let rest = ok(http.post(
        "/btql",
        &btql(
            "project_logs",
            "p",
            json!({"filter": eq("root_span_id", "even"), "limit": 2, "cursor": cursor}),
        ),
    ));
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["id"], "r4");
    assert!(rest["cursor"].is_null());

    let one = ok(http.post(
        "/btql",
        &btql("project_logs", "p", json!({"filter": {"op": "and", "left": eq("root_span_id", "odd"), "right": eq("id", "r3")}})),
    ));
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    let either = ok(http.post(
        "/btql",
        &btql(
            "experiment",
            "e",
            json!({"filter": {"op": "or", "children": [eq("id", "r0"), eq("id", "r1")]}}),
        ),
    ));
    assert_eq!(either["data"].as_array().unwrap().len(), 2);

    let bad_op = http.post(
        "/btql",
        &btql("project_logs", "p", json!({"filter": {"op": "like"}})),
    );
    assert_eq!(bad_op.status, 400);
    assert!(
        bad_op.body["error"]
            .as_str()
            .unwrap()
            .contains("unsupported BTQL filter op `like`")
    );
    let text = http.post(
        "/btql",
        &json!({"query": "select: * | from: project_logs('p')"}),
    );
    assert_eq!(text.status, 400);
    let bad_from = http.post("/btql", &json!({"query": {"from": "project_logs"}}));
    assert_eq!(bad_from.status, 400);
    assert!(bad_from.body["error"].as_str().unwrap().contains("`from`"));
}

#[test]
fn environments_pin_object_versions() {
    let (_server, http) = server();
    let path = "/environment-object/dataset/d1/production";
    let missing = http.get(path);
    assert_eq!(missing.status, 404);
    assert!(
        missing.body["error"]
            .as_str()
            .unwrap()
            .contains("production")
    );
    let bad = http.send("PUT", path, Some(br#"{"object_version": "latest"}"#), &[]);
    assert_eq!(bad.status, 400);
    ok(http.send(
        "PUT",
        path,
        Some(br#"{"object_version": "1000000000000000007"}"#),
        &[],
    ));
    assert_eq!(ok(http.get(path))["object_version"], "1000000000000000007");
    assert_eq!(
        http.get("/environment-object/dataset/d1/staging").status,
        404
    );
}

#[test]
fn recorded_requests_have_the_capture_shape() {
    let server = LocalServer::builder()
        .record_requests(true)
        .start()
        .unwrap();
    let http = Http::new(server.url(), Some(server.api_key()));
    ok(http.post("/v1/project?x=1&x=2", &json!({"name": "p"})));
    let recorded = server.recorded_requests();
    assert_eq!(recorded.len(), 1);
    let r = &recorded[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.n),
        ("POST", "/v1/project", 1)
    );
    assert_eq!(r.query["x"], vec!["1", "2"]);
    assert_eq!(r.json, Some(json!({"name": "p"})));
    assert_eq!(r.header("authorization"), Some("Bearer braintrust-local"));
    let line = serde_json::to_value(r).unwrap();
    for key in [
        "t", "method", "path", "query", "headers", "json", "body_len", "n",
    ] {
        assert!(line.get(key).is_some(), "{key}");
    }
}

#[test]
fn data_survives_a_restart() {
    let dir = TempDir::new();
    let db = dir.file("restart.db");
    let (org_id, project_id) = {
        let server = LocalServer::builder().db_path(&db).start().unwrap();
        let http = Http::new(server.url(), Some(server.api_key()));
        let project = ok(http.post("/v1/project", &json!({"name": "persisted"})));
        let pid = project["id"].as_str().unwrap().to_owned();
        ok(http.post(
            "/logs3",
            &json!({"rows": [{"id": "r", "project_id": pid, "log_id": "g", "input": "kept"}]}),
        ));
        (server.org_id().to_owned(), pid)
    };
    let server = LocalServer::builder().db_path(&db).start().unwrap();
    assert_eq!(server.org_id(), org_id);
    let rows = server.rows(&ObjectIds::project_logs(&project_id)).unwrap();
    assert_eq!(rows[0]["input"], "kept");
    let http = Http::new(server.url(), Some(server.api_key()));
    assert_eq!(
        ok(http.get(&format!("/v1/project/{project_id}")))["name"],
        "persisted"
    );
}

/// Kills the child when dropped, so a failing assertion never leaks a server process.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary(db: &std::path::Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_braintrust-local"))
        .args(["--addr", "127.0.0.1:0", "--api-key", "bin-key", "--db"])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    (Running(child), line.trim().to_owned())
}

#[test]
fn the_binary_serves_and_persists_across_restarts() {
    let dir = TempDir::new();
    let db = dir.file("bin.db");
    {
        let (_child, url) = spawn_binary(&db);
        assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
        let http = Http::new(&url, Some("bin-key"));
        assert_eq!(Http::new(&url, None).get("/version").status, 200);
        assert_eq!(
            Http::new(&url, Some("other"))
                .post("/api/apikey/login", &json!({}))
                .status,
            401
        );
        ok(http.post(
            "/logs3",
            &json!({"rows": [{"id": "r", "experiment_id": "e", "output": 42}]}),
        ));
    }
    let (_child, url) = spawn_binary(&db);
    let http = Http::new(&url, Some("bin-key"));
    let events = ok(http.post("/v1/experiment/e/fetch", &json!({})));
    assert_eq!(events["events"][0]["output"], 42);
}

/// Logs one eval-like trace (root with input, one score span) into an experiment.
fn log_case(http: &Http, experiment_id: &str, root: &str, input: &str, score: f64) {
    ok(http.post(
        "/logs3",
        &json!({"rows": [
            {"id": root, "span_id": root, "root_span_id": root, "experiment_id": experiment_id,
             "input": input, "span_attributes": {"type": "eval", "name": "eval"},
             "metrics": {"start": 1.0, "end": 1.5}},
            {"id": format!("{root}-s"), "span_id": format!("{root}-s"), "root_span_id": root,
             "span_parents": [root], "experiment_id": experiment_id,
             "scores": {"exact": score}, "span_attributes": {"type": "score", "name": "exact"}}
        ], "api_version": 2}),
    ));
}

#[test]
fn experiment_summaries_compare_with_the_base_in_both_api_families() {
    let (_server, http) = server();
    let project = ok(http.post("/v1/project", &json!({"name": "sum"})));
    let base = ok(http.post(
        "/v1/experiment",
        &json!({"project_id": project["id"], "name": "run", "ensure_new": true}),
    ));
    let base_id = base["id"].as_str().unwrap();
    // No earlier experiment: no base (HTTP 400, as the service answers).
    let none = http.post("/api/base_experiment/get_id", &json!({"id": base_id}));
    assert_eq!(none.status, 400);
    log_case(&http, base_id, "a1", "a", 1.0);
    log_case(&http, base_id, "b1", "b", 0.0);
    let current = ok(http.post(
        "/v1/experiment",
        &json!({"project_id": project["id"], "name": "run", "ensure_new": true}),
    ));
    assert_eq!(current["name"], "run-1");
    let id = current["id"].as_str().unwrap();
    log_case(&http, id, "a2", "a", 1.0);
    log_case(&http, id, "b2", "b", 1.0);
    // The previous run of the same eval is the default base.
    let found = ok(http.post("/api/base_experiment/get_id", &json!({"id": id})));
    assert_eq!(
        found,
        json!({"base_exp_id": base_id, "base_exp_name": "run"})
    );

    let summary = ok(http.get(&format!(
        "/v1/experiment/{id}/summarize?summarize_scores=true"
    )));
    assert_eq!(summary["experiment_name"], "run-1");
    assert_eq!(summary["project_name"], "sum");
    assert_eq!(summary["comparison_experiment_name"], "run");
    assert!(
        summary["experiment_url"]
            .as_str()
            .unwrap()
            .ends_with("/p/sum/experiments/run-1")
    );
    let exact = &summary["scores"]["exact"];
    assert_eq!(exact["score"], json!(1.0));
    assert_eq!(exact["diff"], json!(0.5));
    assert_eq!(
        (exact["improvements"].clone(), exact["regressions"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(summary["metrics"]["duration"]["metric"], json!(0.5));
    assert_eq!(summary["metrics"]["duration"]["unit"], "s");

    // Without score summaries: names and links only.
    let bare = ok(http.get(&format!(
        "/v1/experiment/{id}/summarize?summarize_scores=false"
    )));
    assert!(bare.get("scores").is_none());
    // JS: experiment-comparison2 against an explicit base (here: itself, so no change).
    let comparison = ok(http.get(&format!(
        "/experiment-comparison2?experiment_id={id}&base_experiment_id={id}"
    )));
    assert_eq!(comparison["scores"]["exact"]["diff"], json!(0.0));
    assert_eq!(comparison["scores"]["exact"]["improvements"], json!(0));
    let missing = http.get("/v1/experiment/nope/summarize");
    assert_eq!(missing.status, 404);
}

#[test]
fn dataset_summaries_count_records() {
    let (_server, http) = server();
    let project = ok(http.post("/v1/project", &json!({"name": "dsum"})));
    let dataset = ok(http.post(
        "/v1/dataset",
        &json!({"project_id": project["id"], "name": "d"}),
    ));
    let id = dataset["id"].as_str().unwrap();
    ok(http.post(
        "/logs3",
        &json!({"rows": [{"id": "r1", "dataset_id": id, "input": 1},
                         {"id": "r2", "dataset_id": id, "input": 2}], "api_version": 2}),
    ));
    let summary = ok(http.get(&format!("/v1/dataset/{id}/summarize?summarize_data=true")));
    assert_eq!(summary["dataset_name"], "d");
    assert_eq!(summary["data_summary"]["total_records"], json!(2));
    assert!(
        summary["dataset_url"]
            .as_str()
            .unwrap()
            .ends_with("/p/dsum/datasets/d")
    );
}

#[test]
fn attachments_persist_beside_the_database_and_reject_bad_requests() {
    let dir = TempDir::new();
    let db = dir.file("local.db");
    let key = "fb8845f9-70a6-4ded-9414-0c42d7104211";
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let org_id;
    {
        let server = LocalServer::builder()
            .db_path(&db)
            .api_key("k1")
            .start()
            .unwrap();
        org_id = server.org_id().to_owned();
        let http = Http::new(server.url(), Some("k1"));
        let request = json!({"key": key, "filename": "a.bin", "content_type": "application/octet-stream", "org_id": org_id});
        let grant = ok(http.post("/attachment", &request));
        let url = grant["signedUrl"].as_str().unwrap();
        // The signed URL needs no key, but its token.
        let anonymous = Http::new(server.url(), None);
        let forged = url.replace("token=", "token=x");
        assert_eq!(
            anonymous.send("PUT", &forged, Some(&bytes), &[]).status,
            403
        );
        assert_eq!(anonymous.send("PUT", url, Some(&bytes), &[]).status, 200);
        // Before the client reports a status, readers see `uploading`.
        let query = format!(
            "/attachment?filename=a.bin&content_type=application%2Foctet-stream&org_id={org_id}&key={key}"
        );
        assert_eq!(ok(http.get(&query))["status"]["upload_status"], "uploading");
        let status = json!({"key": key, "org_id": org_id, "status": {"upload_status": "done"}});
        ok(http.post("/attachment/status", &status));
        // Bad requests.
        let bad_key =
            json!({"key": "../x", "filename": "a", "content_type": "text/plain", "org_id": org_id});
        assert_eq!(http.post("/attachment", &bad_key).status, 400);
        let other_org =
            json!({"key": key, "filename": "a", "content_type": "text/plain", "org_id": "nope"});
        assert_eq!(http.post("/attachment", &other_org).status, 403);
        let missing = json!({"key": key, "org_id": org_id});
        assert_eq!(http.post("/attachment", &missing).status, 400);
        let bad_status =
            json!({"key": key, "org_id": org_id, "status": {"upload_status": "finished"}});
        assert_eq!(http.post("/attachment/status", &bad_status).status, 400);
        let unknown = json!({"key": "abc", "org_id": org_id, "status": {"upload_status": "done"}});
        assert_eq!(http.post("/attachment/status", &unknown).status, 404);
        assert_eq!(Http::new(server.url(), None).get(&query).status, 401);
    }
    assert_eq!(
        std::fs::read(dir.file("local.db.attachments").join(key)).unwrap(),
        bytes,
        "blobs are files beside the database"
    );
    // A restarted server still serves it.
    let server = LocalServer::builder()
        .db_path(&db)
        .api_key("k1")
        .start()
        .unwrap();
    let http = Http::new(server.url(), Some("k1"));
    let query = format!(
        "/attachment?filename=a.bin&content_type=application%2Foctet-stream&org_id={org_id}&key={key}"
    );
    let described = ok(http.get(&query));
    assert_eq!(described["status"], json!({"upload_status": "done"}));
    let url = described["downloadUrl"].as_str().unwrap();
    let downloaded = Http::new(server.url(), None).get_bytes(url);
    assert_eq!(downloaded, bytes);
    let forged = url.replace("download=", "download=x");
    assert_eq!(Http::new(server.url(), None).get(&forged).status, 403);
}

/// Zero server threads count as one: the server starts and answers.
#[test]
fn zero_worker_threads_count_as_one() {
    let server = LocalServer::builder()
        .api_key("k1")
        .worker_threads(0)
        .start()
        .unwrap();
    let http = Http::new(server.url(), Some("k1"));
    assert_eq!(http.get("/version").status, 200);
}

/// Function handlers run off the server's threads: with a single one, a handler that asks the
/// server something itself (as one that logs and flushes does) gets its answer.
#[test]
fn a_handler_can_call_the_server_that_runs_it() {
    let url = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let known = url.clone();
    let server = LocalServer::builder()
        .api_key("k1")
        .worker_threads(1)
        .function("ask_back", move |_| {
            let base = known.get().ok_or("the server has no URL yet")?;
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(10)))
                .build()
                .into();
            let mut reply = agent
                .get(format!("{base}/version"))
                .call()
                .map_err(|e| e.to_string())?;
            let version: Value = reply.body_mut().read_json().map_err(|e| e.to_string())?;
            Ok(json!({"asked": version}))
        })
        .start()
        .unwrap();
    url.set(server.url().to_owned()).unwrap();
    let http = Http::new(server.url(), Some("k1"));
    let reply = http.post(
        "/function/invoke",
        &json!({"global_function": "ask_back", "input": null}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["asked"], ok(http.get("/version")));
}

/// A handler that panics gets an error answer naming it, and the server goes on serving.
#[test]
fn a_panicking_handler_is_an_error_and_the_server_goes_on() {
    let server = LocalServer::builder()
        .api_key("k1")
        .function("boom", |_| panic!("handler exploded"))
        .start()
        .unwrap();
    let http = Http::new(server.url(), Some("k1"));
    let reply = http.post(
        "/function/invoke",
        &json!({"global_function": "boom", "input": null}),
    );
    assert_eq!(reply.status, 500, "{}", reply.text);
    assert!(
        reply.text.contains("`boom` did not finish"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("panicked"), "{}", reply.text);
    assert_eq!(http.get("/version").status, 200);
}
