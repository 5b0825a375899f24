//! Experiments and datasets against an in-process braintrust-local: registration requests,
//! rows, summaries with baselines, reads, and the current experiment as the default root.

use braintrust_core::context;
use braintrust_core::event::Event;
use braintrust_core::span::{Feedback, StartSpan};
use braintrust_local::LocalServer;
use braintrust_transport::dataset::{DatasetOptions, DatasetRecord, init_dataset};
use braintrust_transport::experiment::{
    ExperimentOptions, SummarizeOptions, clear_current_experiment, init_experiment,
};
use braintrust_transport::git::{GitMetadataSettings, RepoInfo};
use braintrust_transport::logger::LoggerOptions;
use serde_json::{Value, json};

fn server() -> LocalServer {
    LocalServer::builder()
        .in_memory()
        .record_requests(true)
        .start()
        .unwrap()
}

fn connection(server: &LocalServer) -> LoggerOptions {
    LoggerOptions::new()
        .api_key(server.api_key())
        .app_url(server.url())
        .api_url(server.url())
}

fn requests(server: &LocalServer, method: &str, path: &str) -> Vec<Value> {
    server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .map(|r| r.json.unwrap_or(Value::Null))
        .collect()
}

fn case(experiment: &braintrust_transport::experiment::Experiment, input: &str, score: f64) {
    experiment
        .log(
            Event::new()
                .input(json!(input))
                .output(json!(input))
                .score("exact", Some(score)),
        )
        .unwrap();
}

#[test]
fn experiments_register_with_their_fields_and_summarize_against_a_baseline() {
    let server = server();
    let first = init_experiment(
        ExperimentOptions::new("exp-proj")
            .name("exp-one")
            .description("desc")
            .metadata(json!({"model": "gpt"}))
            .tags(["nightly", "nightly"])
            .repo_info(RepoInfo {
                commit: Some("abc".into()),
                ..RepoInfo::default()
            })
            .set_current(false)
            .connection(connection(&server)),
    )
    .unwrap();
    case(&first, "a", 1.0);
    case(&first, "b", 0.0);
    let summary = first.summarize(SummarizeOptions::default()).unwrap();
    assert_eq!(summary.experiment_name.as_deref(), Some("exp-one"));
    assert_eq!(summary.project_name.as_deref(), Some("exp-proj"));
    assert_eq!(summary.score("exact").unwrap().score, 0.5);
    assert_eq!(summary.comparison_experiment_name, None);
    assert!(
        summary
            .experiment_url
            .as_deref()
            .unwrap()
            .ends_with("/p/exp-proj/experiments/exp-one")
    );
    let registered = requests(&server, "POST", "/v1/experiment");
    assert_eq!(registered.len(), 1);
    let body = &registered[0];
    assert_eq!(body["ensure_new"], json!(true));
    assert_eq!(body["name"], json!("exp-one"));
    assert_eq!(body["description"], json!("desc"));
    assert_eq!(body["metadata"], json!({"model": "gpt"}));
    assert_eq!(body["tags"], json!(["nightly"]));
    assert_eq!(body["public"], json!(false));
    assert_eq!(body["repo_info"]["commit"], json!("abc"));
    assert!(body["project_id"].is_string());
    assert!(body["ancestor_commits"].is_array());
    assert!(body.get("project_name").is_none());

    // A second run compared by name: one improvement (b), one regression (a).
    let second = init_experiment(
        ExperimentOptions::new("exp-proj")
            .name("exp-two")
            .base_experiment("exp-one")
            .update(true)
            .set_current(false)
            .connection(connection(&server)),
    )
    .unwrap();
    case(&second, "a", 0.0);
    case(&second, "b", 1.0);
    case(&second, "c", 1.0);
    let summary = second.summarize(SummarizeOptions::default()).unwrap();
    let exact = summary.score("exact").unwrap();
    assert!((exact.score - 2.0 / 3.0).abs() < 1e-12);
    assert!((exact.diff.unwrap() - (2.0 / 3.0 - 0.5)).abs() < 1e-12);
    assert_eq!((exact.improvements, exact.regressions), (1, 1));
    assert_eq!(
        summary.comparison_experiment_name.as_deref(),
        Some("exp-one")
    );
    assert!(summary.metric("duration").is_some());
    let lookup = server
        .recorded_requests()
        .into_iter()
        .find(|r| r.method == "GET" && r.path == "/v1/experiment")
        .expect("the base experiment is looked up by name");
    assert_eq!(lookup.query["experiment_name"], vec!["exp-one".to_owned()]);
    let body = &requests(&server, "POST", "/v1/experiment")[1];
    assert_eq!(body["ensure_new"], json!(false));
    assert_eq!(body["base_exp_id"], json!(first.id().unwrap()));
    assert_eq!(second.base_experiment_id(), first.id());
    assert!(body.get("ancestor_commits").is_none());

    // Rows read back: the root spans carry the eval type.
    let rows: Vec<_> = second.fetch().unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r["span_attributes"]["type"] == "eval"));
}

#[test]
fn experiment_rows_feedback_updates_and_exports() {
    let server = server();
    let experiment = init_experiment(
        ExperimentOptions::new("exp-rows")
            .set_current(false)
            .connection(connection(&server)),
    )
    .unwrap();
    let id = experiment
        .log(Event::new().input(json!(1)).output(json!(2)))
        .unwrap();
    experiment
        .log_feedback(&id, Feedback::new().score("human", Some(0.25)))
        .unwrap();
    experiment
        .update_span(&id, Event::new().metadata(json!({"checked": true})))
        .unwrap();
    let span = experiment.start_span(StartSpan::named("manual"));
    let child = span.start_span(StartSpan::named("child"));
    // Exporting a span needs the experiment's id: it is registered on demand.
    let exported = child.export();
    assert!(!exported.is_empty());
    child.end();
    span.end();
    let slug = braintrust_core::span_components::SpanComponents::parse(&exported).unwrap();
    assert_eq!(
        slug.object,
        braintrust_core::span_components::SlugObject::Id(experiment.id().unwrap())
    );
    assert!(!experiment.export().is_empty());
    experiment.flush().unwrap();
    let rows: Vec<_> = experiment.fetch().unwrap().map(Result::unwrap).collect();
    let logged = rows.iter().find(|r| r["id"] == json!(id)).unwrap();
    assert_eq!(logged["scores"]["human"], json!(0.25));
    assert_eq!(logged["metadata"]["checked"], json!(true));
    let manual = rows
        .iter()
        .find(|r| r["span_attributes"]["name"] == "manual")
        .unwrap();
    assert_eq!(manual["span_attributes"]["type"], json!("eval"));
    let child_row = rows
        .iter()
        .find(|r| r["span_attributes"]["name"] == "child")
        .unwrap();
    assert_eq!(child_row["span_parents"], json!([manual["span_id"]]));
    assert_eq!(experiment.stats().failed, 0);
}

#[test]
fn the_current_experiment_is_the_default_root_of_spans() {
    let server = server();
    let experiment =
        init_experiment(ExperimentOptions::new("exp-current").connection(connection(&server)))
            .unwrap();
    let span = context::start_span(StartSpan::named("top"));
    assert!(!span.is_noop());
    span.end();
    assert!(context::current_root_export().is_some_and(|e| !e.is_empty()));
    experiment.flush().unwrap();
    clear_current_experiment();
    let rows: Vec<_> = experiment.fetch().unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["span_attributes"]["name"], json!("top"));
}

#[test]
fn git_metadata_settings_merge_with_the_organisation_setting() {
    let server = server();
    let off = init_experiment(
        ExperimentOptions::new("exp-git")
            .git_metadata_settings(GitMetadataSettings::None)
            .set_current(false)
            .connection(connection(&server)),
    )
    .unwrap();
    off.resolve().unwrap();
    let on = init_experiment(
        ExperimentOptions::new("exp-git")
            .git_metadata_settings(GitMetadataSettings::Some(vec![
                "commit".into(),
                "git_diff".into(),
            ]))
            .set_current(false)
            .connection(connection(&server)),
    )
    .unwrap();
    on.resolve().unwrap();
    let bodies = requests(&server, "POST", "/v1/experiment");
    assert!(bodies[0].get("repo_info").is_none());
    let in_repo = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    if in_repo {
        let info = &bodies[1]["repo_info"];
        assert_eq!(info["commit"].as_str().map(str::len), Some(40));
        assert_eq!(info["branch"], Value::Null);
        assert_eq!(info["author_name"], Value::Null);
        // The organisation (braintrust-local) does not allow the diff.
        assert_eq!(info["git_diff"], Value::Null);
    } else {
        eprintln!("skipping the repo_info check: not run inside a git checkout");
    }
}

#[test]
fn datasets_insert_update_delete_fetch_and_summarize() {
    let server = server();
    let dataset = init_dataset(
        DatasetOptions::new("ds-proj", "ds-one")
            .description("a dataset")
            .metadata(json!({"owner": "me"}))
            .connection(connection(&server)),
    )
    .unwrap();
    let a = dataset.insert(
        DatasetRecord::new(json!({"q": "a"}))
            .expected(json!("A"))
            .metadata(json!({"k": 1}))
            .tags(["x"]),
    );
    let b = dataset.insert(
        DatasetRecord::new(json!({"q": "b"}))
            .expected(json!("B"))
            .id("custom-id-2"),
    );
    assert_eq!(b, "custom-id-2");
    dataset.update(
        &b,
        DatasetRecord::update().metadata(json!({"updated": true})),
    );
    for i in 0..5 {
        dataset.insert(DatasetRecord::new(json!({"q": i})));
    }
    dataset.flush().unwrap();
    let version_before_delete = dataset.version().unwrap();
    dataset.delete(&a);
    let rows: Vec<_> = dataset
        .fetch()
        .unwrap()
        .page_size(2)
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["id"] != json!(a)));
    let updated = rows.iter().find(|r| r["id"] == json!(b)).unwrap();
    assert_eq!(updated["expected"], json!("B"));
    assert_eq!(updated["metadata"], json!({"updated": true}));
    assert!(updated["_xact_id"].is_string());
    let pages = requests(
        &server,
        "POST",
        &format!("/v1/dataset/{}/fetch", dataset.id().unwrap()),
    );
    assert!(pages.iter().any(|p| p.get("cursor").is_some()));
    assert_eq!(dataset.summarize().unwrap().total_records, Some(6));

    // Pinned to the version before the delete, the deleted record is still there.
    let pinned = init_dataset(
        DatasetOptions::new("ds-proj", "ds-one")
            .version(version_before_delete)
            .connection(connection(&server)),
    )
    .unwrap();
    assert_eq!(pinned.id(), None);
    let old: Vec<_> = pinned.fetch().unwrap().map(Result::unwrap).collect();
    assert_eq!(old.len(), 7);
    assert_eq!(pinned.id(), dataset.id());
    let registered = requests(&server, "POST", "/v1/dataset");
    assert_eq!(registered[0]["name"], json!("ds-one"));
    assert_eq!(registered[0]["description"], json!("a dataset"));
    assert_eq!(registered[0]["metadata"], json!({"owner": "me"}));
}
