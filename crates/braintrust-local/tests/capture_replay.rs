//! Replays the official SDKs' captured request sequences (`../shared/conformance/captures`)
//! against the local server and checks the rows it stored.
//!
//! Requests for endpoints that later work adds (prompts, invoke, attachments, summaries) are
//! skipped and listed. Without the conformance data these tests are ignored with the reason.

#![cfg_attr(not(conformance_data), allow(dead_code, unused_imports))]

mod common;

use std::path::PathBuf;

use braintrust_core::object::ObjectIds;
use braintrust_core::span_components::SpanComponents;
use braintrust_local::LocalServer;
use common::{Http, Reply};
use serde_json::{Map, Value, json};

const CAPTURE_KEY: &str = "sk-test-capture";
const CAPTURE_ORG: &str = "test-org";
const CAPTURE_ORG_ID: &str = "5d7c97d7-fef1-4cb7-bda6-7e3756a0ca8e";
const PROJECT_ID: &str = "747ebc7b-6a9b-597e-94f2-512cce481000";

fn captures_dir() -> PathBuf {
    PathBuf::from(option_env!("BRAINTRUST_CONFORMANCE_DIR_RESOLVED").unwrap_or_default())
        .join("captures")
}

/// Endpoints not replayed here: prompts and functions belong to their own tests; summaries name experiments by the capture's ids, which this server does not
/// assign (its own summary endpoints are tested in `api.rs`).
fn replayed_later(path: &str) -> bool {
    path.starts_with("/v1/prompt")
        || path.starts_with("/v1/function")
        || path == "/function/invoke"
        || path.ends_with("/summarize")
        || path == "/experiment-comparison2"
        || path == "/api/base_experiment/get_id"
}

/// One replayed request and the server's reply.
struct Exchange {
    record: Value,
    /// The path actually requested (signed URLs point at this server, not the capture's).
    sent_path: String,
    reply: Reply,
}

struct Replay {
    server: LocalServer,
    exchanges: Vec<Exchange>,
    skipped: Vec<String>,
}

impl Replay {
    fn rows(&self, object: &ObjectIds) -> Vec<Value> {
        self.server.rows(object).unwrap()
    }

    fn row(&self, object: &ObjectIds, id: &str) -> Map<String, Value> {
        self.rows(object)
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("row {id} not stored in {object:?}"))
            .as_object()
            .unwrap()
            .clone()
    }

    fn reply_to(&self, method: &str, path: &str) -> &Reply {
        &self
            .exchanges
            .iter()
            .find(|e| e.record["method"] == method && e.record["path"] == path)
            .unwrap_or_else(|| panic!("no replayed {method} {path}"))
            .reply
    }
}

fn query_string(query: &Map<String, Value>) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, values) in query {
        for v in values.as_array().into_iter().flatten() {
            ser.append_pair(k, v.as_str().unwrap_or_default());
        }
    }
    ser.finish()
}

fn replay(file: &str) -> Replay {
    let server = LocalServer::builder()
        .api_key(CAPTURE_KEY)
        .org_name(CAPTURE_ORG)
        .org_id(CAPTURE_ORG_ID)
        .record_requests(true)
        .start()
        .unwrap();
    let http = Http::new(server.url(), None);
    let text = std::fs::read_to_string(captures_dir().join(file)).unwrap();
    let mut exchanges = Vec::new();
    let mut skipped = Vec::new();
    let mut overflow_grant: Option<Value> = None;
    let mut attachment_grant: Option<Value> = None;
    let mut download: Option<Value> = None;
    let mut cursors: std::collections::HashMap<String, Option<String>> = Default::default();

    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value = serde_json::from_str(line).unwrap();
        let method = record["method"].as_str().unwrap();
        let path = record["path"].as_str().unwrap().to_owned();
        let n = record["n"].as_u64().unwrap();
        if replayed_later(&path) {
            skipped.push(format!("#{n} {method} {path}"));
            continue;
        }
        let mut body: Option<Value> = record.get("json").filter(|j| !j.is_null()).cloned();
        let mut target = path.clone();
        let query = record["query"].as_object().cloned().unwrap_or_default();
        if !query.is_empty() {
            target = format!("{target}?{}", query_string(&query));
        }
        // Follow this server's answers where the capture holds the fake server's values.
        if method == "PUT" && path.starts_with("/objstore/overflow/") {
            let grant = overflow_grant
                .as_ref()
                .expect("overflow PUT before its grant");
            target = grant["signedUrl"].as_str().unwrap().to_owned();
        } else if method == "PUT" && path.starts_with("/objstore/") {
            let grant = attachment_grant
                .as_ref()
                .expect("attachment PUT before its grant");
            target = grant["signedUrl"].as_str().unwrap().to_owned();
        } else if method == "GET" && path == "/objstore/download" {
            let answer = download.as_ref().expect("download before GET /attachment");
            target = answer["downloadUrl"].as_str().unwrap().to_owned();
        }
        if let Some(rows) = body
            .as_mut()
            .and_then(|b| b.get_mut("rows"))
            .filter(|r| r.is_object())
        {
            let grant = overflow_grant
                .as_ref()
                .expect("overflow reference before its grant");
            rows["key"] = grant["key"].clone();
        }
        let cursor_slot = body.as_mut().and_then(|b| {
            if b.get("cursor").is_some() {
                b.get_mut("cursor")
            } else {
                b.get_mut("query").and_then(|q| q.get_mut("cursor"))
            }
        });
        if let Some(cursor) = cursor_slot {
            match cursors.get(&path).cloned().flatten() {
                Some(ours) => *cursor = Value::String(ours),
                None => {
                    skipped.push(format!(
                        "#{n} {method} {path} (this server returned every row on the first page)"
                    ));
                    continue;
                }
            }
        }
        let bytes = match (&body, record.get("text").and_then(Value::as_str)) {
            (Some(json), _) => Some(serde_json::to_vec(json).unwrap()),
            (None, Some(text)) => Some(text.as_bytes().to_vec()),
            (None, None) => None,
        };
        let headers: Vec<(String, String)> = record["headers"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.to_ascii_lowercase().as_str(),
                    "content-length" | "host" | "connection" | "accept-encoding"
                )
            })
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let reply = http.send(method, &target, bytes.as_deref(), &header_refs);
        assert!(
            (200..300).contains(&reply.status),
            "{file} #{n} {method} {path}: status {} {}",
            reply.status,
            reply.text
        );
        match (method, path.as_str()) {
            ("POST", "/logs3/overflow") => overflow_grant = Some(reply.body.clone()),
            ("POST", "/attachment") => attachment_grant = Some(reply.body.clone()),
            ("GET", "/attachment") => download = Some(reply.body.clone()),
            _ => {}
        }
        if let Some(cursor) = reply.body.get("cursor") {
            cursors.insert(path.clone(), cursor.as_str().map(str::to_owned));
        }
        let sent_path = target
            .strip_prefix(server.url())
            .unwrap_or(&target)
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        exchanges.push(Exchange {
            record,
            sent_path,
            reply,
        });
    }
    // The server saw exactly the replayed requests, in order.
    let seen: Vec<(String, String)> = server
        .recorded_requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let sent: Vec<(String, String)> = exchanges
        .iter()
        .map(|e| {
            (
                e.record["method"].as_str().unwrap().to_owned(),
                e.sent_path.clone(),
            )
        })
        .collect();
    assert_eq!(seen, sent, "{file}: request sequence");
    if !skipped.is_empty() {
        eprintln!("{file}: not replayed here: {}", skipped.join(", "));
    }
    Replay {
        server,
        exchanges,
        skipped,
    }
}

fn project() -> ObjectIds {
    ObjectIds::project_logs(PROJECT_ID)
}

fn ids(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

fn assert_no_control_fields(rows: &[Value]) {
    for row in rows {
        for key in row.as_object().unwrap().keys() {
            assert!(
                !key.starts_with('_') || key == "_xact_id",
                "control field {key} stored in {row}"
            );
        }
    }
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_logger() {
    let r = replay("python-logger.jsonl");
    let login = r.reply_to("POST", "/api/apikey/login");
    assert_eq!(login.body["org_info"][0]["name"], CAPTURE_ORG);
    assert_eq!(r.reply_to("POST", "/v1/project").body["id"], PROJECT_ID);
    assert!(r.reply_to("GET", "/version").body["logs3_payload_max_bytes"].is_u64());

    let rows = r.rows(&project());
    assert_eq!(rows.len(), 4);
    assert_no_control_fields(&rows);
    let root = r.row(&project(), "fda72fcb-489c-4c39-aea5-67f7f34d8920");
    assert_eq!(root["input"], json!({"q": "what is 1+1"}));
    assert_eq!(root["output"], "2");
    assert_eq!(root["scores"], json!({"acc": 1}));
    assert_eq!(root["metrics"]["custom"], 3);
    assert_eq!(root["tags"], json!(["t1"]));
    let llm = r.row(&project(), "10bcc377-b544-4ba3-a445-869cb11a554c");
    assert_eq!(llm["span_attributes"]["type"], "llm");
    assert_eq!(llm["span_parents"], json!(["6051558fbadd5563"]));
    assert_eq!(llm["metrics"]["tokens"], 7);

    // The span parented by an exported slug (reference vector 1) lands under that span.
    let vector1 = SpanComponents::parse("BAICA2BRVY+63VVjBK+gqwCTWBwMv/QZfzA0ZeF7ImNvbXB1dGVfb2JqZWN0X21ldGFkYXRhX2FyZ3MiOnsicHJvamVjdF9uYW1lIjoiY2FwdHVyZS1wcm9qIiwicHJvamVjdF9pZCI6bnVsbH0sInJvd19pZCI6IjEwNTMxMzhiLTI1ZGYtNDcyNy1hYjVmLTQ1NzM0Njc3OWVlOSJ9").unwrap();
    let parent = vector1.row.unwrap();
    let from_export = r.row(&project(), "9d970609-f891-48d6-a7da-54dbfb70b7de");
    assert_eq!(from_export["root_span_id"], parent.root_span_id.as_str());
    assert_eq!(from_export["span_parents"], json!([parent.span_id]));
    let parent_row = r.row(&project(), &parent.row_id);
    assert_eq!(parent_row["span_id"], parent.span_id.as_str());
    assert_eq!(parent_row["metadata"], json!({"stage": "end"}));
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_spans_merge_across_flushes() {
    let r = replay("python-spans.jsonl");
    let rows = r.rows(&project());
    assert_eq!(rows.len(), 5, "root, child, failing child, two comments");
    assert_no_control_fields(&rows);

    let root = r.row(&project(), "23f03a8d-f60c-4f14-a901-5dd572d219dc");
    assert_eq!(root["created"], "2026-11-21T12:57:00.113126+00:00");
    assert_eq!(root["input"], json!({"a": 1}));
    assert_eq!(root["output"], "partial");
    assert_eq!(root["metadata"], json!({"m1": {"x": 1, "y": 2}}));
    assert_eq!(root["tags"], json!(["a", "b", "ft"]));
    assert_eq!(root["scores"], json!({"s": 0.5, "fb": 1, "fb2": 0}));
    assert_eq!(root["expected"], "e", "feedback merged");
    assert_eq!(root["metrics"]["start"], 1_795_265_820.113_116_5);
    assert_eq!(root["metrics"]["end"], 1_795_265_820.332_930_6);
    assert_eq!(root["span_attributes"]["name"], "root-span");
    assert_eq!(root["span_id"], "f1e94cab089b607b");

    let child = r.row(&project(), "31146d18-84bc-4a67-814a-5875c3e5fc3e");
    assert_eq!(
        child["metadata"],
        json!({"prop": "yes"}),
        "propagated_event"
    );
    assert_eq!(child["output"], "child-out");
    assert_eq!(child["span_parents"], json!(["f1e94cab089b607b"]));
    assert!(child["metrics"]["end"].is_number());

    let failing = r.row(&project(), "2051bc3a-605e-491b-ba05-3967983e24ea");
    assert!(
        failing["error"]
            .as_str()
            .unwrap()
            .contains("ValueError: boom")
    );

    let comments: Vec<&Value> = rows.iter().filter(|r| r.get("comment").is_some()).collect();
    assert_eq!(comments.len(), 2);
    for c in &comments {
        assert_eq!(c["origin"]["id"], "23f03a8d-f60c-4f14-a901-5dd572d219dc");
    }
    let texts: Vec<&str> = comments
        .iter()
        .map(|c| c["comment"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["nice", "logger-level"]);
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_experiment() {
    let r = replay("python-experiment.jsonl");
    let exchanges: Vec<&Exchange> = r
        .exchanges
        .iter()
        .filter(|e| e.record["path"] == "/v1/experiment")
        .collect();
    assert_eq!(exchanges[0].reply.body["name"], "exp-one");
    assert_eq!(exchanges[0].reply.body["project_id"], PROJECT_ID);
    assert_eq!(exchanges[0].reply.body["repo_info"]["branch"], "main");
    assert_eq!(exchanges[0].reply.body["tags"], json!(["nightly"]));
    // The base experiment lookup by name finds the first experiment.
    let lookup = &exchanges[1].reply.body["objects"];
    assert_eq!(lookup.as_array().unwrap().len(), 1);
    assert_eq!(lookup[0]["id"], exchanges[0].reply.body["id"]);
    assert_eq!(exchanges[2].reply.body["name"], "exp-two");
    assert!(r.skipped.iter().any(|s| s.contains("summarize")));

    let exp = ObjectIds::experiment("99ae00e5-0392-59ee-8540-f5ad06b41b01");
    let rows = r.rows(&exp);
    assert_eq!(
        ids(&rows),
        ["row-1", "de2eab70-b707-4b99-a1ab-3490c2cc88b7"]
    );
    let custom = r.row(&exp, "row-1");
    assert_eq!(custom["scores"], json!({"exact": 1.0}));
    assert_eq!(custom["metadata"], json!({"case": "a"}));
    let traced = r.row(&exp, "de2eab70-b707-4b99-a1ab-3490c2cc88b7");
    assert_eq!(traced["metrics"]["end"], 1_795_265_828.926_737);
    assert_eq!(traced["scores"], json!({"exact": 0}));
    assert_eq!(
        r.rows(&ObjectIds::experiment(
            "1f2a61a0-8879-5e3a-b0f6-98c61d334fbf"
        ))
        .len(),
        1
    );
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_dataset_insert_delete_fetch() {
    let r = replay("python-dataset.jsonl");
    let created = &r.reply_to("POST", "/v1/dataset").body;
    assert_eq!(created["name"], "ds-one");
    assert_eq!(created["metadata"], json!({"owner": "me"}));
    let ds = ObjectIds::dataset("0a8df178-e8b5-598f-a32f-3260e8f5d4ac");
    let rows = r.rows(&ds);
    assert_eq!(ids(&rows), ["custom-id-2"], "the first record was deleted");
    assert_eq!(rows[0]["expected"], "B");
    assert_eq!(rows[0]["metadata"], json!({"updated": true}));
    assert_eq!(rows[0]["tags"], Value::Null);
    let fetched = &r
        .reply_to(
            "POST",
            "/v1/dataset/0a8df178-e8b5-598f-a32f-3260e8f5d4ac/fetch",
        )
        .body;
    assert_eq!(ids(fetched["events"].as_array().unwrap()), ["custom-id-2"]);
    assert!(fetched["events"][0]["_xact_id"].is_string());
    assert!(fetched["cursor"].is_null());
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_legacy_ids() {
    let r = replay("python-legacy-ids.jsonl");
    let root = r.row(&project(), "af3e1110-e066-4ac3-afbc-72cc5e9521e2");
    assert_eq!(root["span_id"], "f261f974-fe83-4030-85f6-d36a25a1162d");
    assert_eq!(
        root["root_span_id"], root["span_id"],
        "legacy roots reuse the span id"
    );
    assert!(root["metrics"]["start"].is_number() && root["metrics"]["end"].is_number());
    let child = r.row(&project(), "957a70b7-ca43-4b6b-8ceb-0403fc95b00b");
    assert_eq!(
        child["span_parents"],
        json!(["f261f974-fe83-4030-85f6-d36a25a1162d"])
    );
    let exp = ObjectIds::experiment("d6e0865f-98c8-5a16-8290-99097a8f469e");
    let row = r.row(&exp, "a9493d20-43ad-4ecb-b417-9e4ef127a629");
    assert_eq!(row["span_id"], "d00c1d91-0d94-4b99-88c2-6eae3c17f8e9");
    assert_eq!(row["root_span_id"], row["span_id"]);
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_masking_and_batches() {
    let r = replay("python-masking.jsonl");
    let batch_sizes: Vec<usize> = r
        .exchanges
        .iter()
        .filter(|e| e.record["path"] == "/logs3")
        .map(|e| e.record["json"]["rows"].as_array().unwrap().len())
        .collect();
    assert_eq!(batch_sizes, [1, 1, 100, 49]);
    let rows = r.rows(&project());
    assert_eq!(rows.len(), 151);
    let masked = r.row(&project(), "mask-row");
    assert_eq!(masked["input"], "my ***");
    assert_eq!(
        masked["output"],
        "ERROR: Failed to mask field 'output' - KeyError"
    );
    assert_eq!(
        masked["metadata"],
        json!({"error": "ERROR: Failed to mask field 'metadata' - KeyError"})
    );
    assert_eq!(
        masked["error"],
        "ERROR: Failed to mask field 'scores' - KeyError"
    );
    assert!(masked.get("scores").is_none());
    for i in 0..150 {
        assert_eq!(r.row(&project(), &format!("batch-{i}"))["input"], i);
    }
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_overflow() {
    let r = replay("python-overflow.jsonl");
    let grant = &r.reply_to("POST", "/logs3/overflow").body;
    assert_eq!(grant["method"], "PUT");
    assert!(
        grant["signedUrl"]
            .as_str()
            .unwrap()
            .starts_with(r.server.url())
    );
    let uploaded = r
        .exchanges
        .iter()
        .find(|e| e.record["method"] == "PUT")
        .map(|e| e.record["json"]["rows"][0]["input"].clone())
        .unwrap();
    let big = r.row(&project(), "big-row");
    assert_eq!(big["input"], uploaded);
    assert!(big["input"].as_str().unwrap().len() > 3000);
    assert_eq!(r.row(&project(), "small-row")["input"], "small");
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn js_legacy_registration_logs_and_btql() {
    let r = replay("js-logger-experiment-dataset.jsonl");
    let project_reply = &r.reply_to("POST", "/api/project/register").body;
    assert_eq!(project_reply["project"]["id"], PROJECT_ID);
    let exp_reply = &r.reply_to("POST", "/api/experiment/register").body;
    assert_eq!(exp_reply["experiment"]["name"], "js-exp");
    assert_eq!(exp_reply["experiment"]["metadata"], json!({"a": 1}));
    let ds_reply = &r.reply_to("POST", "/api/dataset/register").body;
    assert_eq!(ds_reply["dataset"]["name"], "js-ds");

    let rows = r.rows(&project());
    let root = r.row(&project(), "7027d3a3eb272650");
    assert_eq!(root["created"], "2026-11-21T12:59:03.138Z");
    assert_eq!(
        root["metrics"],
        json!({"start": 1_795_265_943.135, "end": 1_795_265_943.14})
    );
    assert_eq!(root["span_attributes"]["exec_counter"], 0);
    let child = r.row(&project(), "1abeac448faa9bad");
    assert_eq!(child["span_parents"], json!(["50d33ec6c46c3b53"]));
    assert!(
        rows.iter().all(|r| r["id"].as_str().unwrap().len() == 16),
        "JS hex row ids"
    );

    let exp = r.row(
        &ObjectIds::experiment("ef8e5943-34ff-5253-9526-d98a591f7324"),
        "f8c72fd009827f60",
    );
    assert_eq!(exp["metrics"]["end"], 1_795_265_943.292);
    assert_eq!(exp["scores"], json!({"exact": 1}));

    let btql = &r.reply_to("POST", "/btql").body;
    let data = btql["data"].as_array().unwrap();
    assert_eq!(ids(data), ["4fae94de-ba06-4fb7-ae15-5abcda61b7c5"]);
    assert_eq!(data[0]["input"], "a");
    assert!(btql["cursor"].is_null());
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn js_span_under_a_python_slug() {
    let r = replay("js-cross-sdk-invoke.jsonl");
    let row = r.row(&project(), "d08460fab823ba24");
    assert_eq!(row["root_span_id"], "afa0ab0093581c0cbff4197f303465e1");
    assert_eq!(row["span_parents"], json!(["6051558fbadd5563"]));
    assert_eq!(row["input"], "child of python span");
    assert!(row["metrics"]["end"].is_number());
    assert_eq!(r.skipped.len(), 2, "the two invoke calls: {:?}", r.skipped);
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_eval_rows() {
    let r = replay("python-eval.jsonl");
    let exp = ObjectIds::experiment("15cea707-24a7-5b36-b262-e677a0e6510c");
    let rows = r.rows(&exp);
    let by_type = |t: &str| {
        rows.iter()
            .filter(|r| r["span_attributes"]["type"] == t)
            .count()
    };
    assert_eq!(by_type("eval"), 2);
    assert_eq!(by_type("task"), 2);
    assert_eq!(by_type("score"), 2);
    for root in rows
        .iter()
        .filter(|r| r["span_attributes"]["type"] == "eval")
    {
        assert!(
            root["metrics"]["end"].is_number(),
            "eval roots end in a later flush: {root}"
        );
        assert!(root.get("span_parents").is_none_or(Value::is_null));
    }
}

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn python_attachment_upload_and_download() {
    let r = replay("python-attachment.jsonl");
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    let row = r.rows(&project()).pop().expect("the row");
    assert_eq!(row["input"]["doc"]["type"], "braintrust_attachment");
    assert_eq!(row["input"]["list"][0]["type"], "external_attachment");
    // The signed URL points at this server and the upload needed no API key.
    let grant = &r.reply_to("POST", "/attachment").body;
    assert!(
        grant["signedUrl"]
            .as_str()
            .unwrap()
            .starts_with(r.server.url())
    );
    let put = r
        .exchanges
        .iter()
        .find(|e| e.record["method"] == "PUT")
        .unwrap();
    assert!(put.record["headers"].get("Authorization").is_none());
    // The status the client posted is what the download lookup reports, and the downloaded
    // bytes are the uploaded ones.
    let described = &r.reply_to("GET", "/attachment").body;
    assert_eq!(described["status"], json!({"upload_status": "done"}));
    let downloaded = r.reply_to("GET", "/objstore/download");
    assert_eq!(downloaded.text, put.record["text"].as_str().unwrap());
}
