//! The eval runner against an in-process braintrust-local: span trees, trials, errors,
//! timeouts, cancellation, concurrency, data sources and baselines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use braintrust_core::event::Event;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::StartSpan;
use braintrust_eval::{
    CancellationToken, CaseError, Classification, Data, Eval, EvalCase, Gates, RunOutcome, Score,
    default_error_score_handler, scorers::ExactMatch,
};
use braintrust_local::LocalServer;
use braintrust_transport::dataset::{DatasetOptions, DatasetRecord, init_dataset};
use braintrust_transport::logger::LoggerOptions;
use serde_json::{Value, json};

fn server() -> LocalServer {
    LocalServer::builder().in_memory().start().unwrap()
}

fn connection(server: &LocalServer) -> LoggerOptions {
    LoggerOptions::new()
        .api_key(server.api_key())
        .app_url(server.url())
        .api_url(server.url())
}

fn rows(server: &LocalServer, experiment_id: &str) -> Vec<Value> {
    server.rows(&ObjectIds::experiment(experiment_id)).unwrap()
}

fn named<'a>(rows: &'a [Value], name: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["span_attributes"]["name"] == name)
        .collect()
}

#[tokio::test]
async fn each_case_is_an_eval_root_with_task_score_and_classifier_spans() {
    let server = server();
    let result = Eval::<String, String, String>::new("tree-proj")
        .data(vec![
            EvalCase::new("a".to_string())
                .expected("A".to_string())
                .metadata(json!({"k": 1}))
                .tags(["t1"]),
            EvalCase::new("b".to_string()).expected("x".to_string()),
        ])
        .task(|input, hooks| {
            let child = hooks.span().start_span(StartSpan::named("inner"));
            child.end();
            hooks.set_metadata("seen", json!(true));
            input.to_uppercase()
        })
        .scorer("exact", |args| {
            // Spans started inside a scorer inherit the scorer purpose.
            let llm = braintrust_core::context::start_span(StartSpan::named("judge"));
            llm.end();
            args.expected.is_some_and(|e| e == args.output)
        })
        .classifier("kind", |args| {
            Classification::new(if args.output == "A" { "vowel" } else { "other" })
        })
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(result.results.len(), 2);
    assert_eq!(result.results[0].score("exact"), Some(1.0));
    assert_eq!(result.results[1].score("exact"), Some(0.0));
    assert_eq!(result.summary.score("exact").unwrap().mean, 0.5);
    assert_eq!(result.summary.score("exact").unwrap().n, 2);

    let rows = rows(&server, result.summary.experiment_id.as_deref().unwrap());
    let roots = named(&rows, "eval");
    assert_eq!(roots.len(), 2);
    let root = roots.iter().find(|r| r["input"] == "a").unwrap();
    assert_eq!(root["span_attributes"]["type"], "eval");
    assert_eq!(root["span_parents"], Value::Null);
    assert_eq!(root["expected"], "A");
    assert_eq!(root["output"], "A");
    assert_eq!(root["tags"], json!(["t1"]));
    assert_eq!(root["metadata"], json!({"k": 1, "seen": true}));
    assert!(root.get("scores").is_none_or(Value::is_null));
    assert!(root["span_attributes"].get("purpose").is_none());
    assert_eq!(
        root["classifications"],
        json!({"kind": [{"id": "vowel", "label": "vowel"}]})
    );
    assert!(root["metrics"]["end"].is_number());
    let in_trace = |name: &str| {
        rows.iter()
            .find(|r| {
                r["span_attributes"]["name"] == name && r["root_span_id"] == root["root_span_id"]
            })
            .unwrap()
    };
    let task = in_trace("task");
    assert_eq!(task["span_attributes"]["type"], "task");
    assert_eq!(task["span_parents"], json!([root["span_id"]]));
    assert_eq!(
        (task["input"].clone(), task["output"].clone()),
        (json!("a"), json!("A"))
    );
    assert_eq!(task["expected"], "A");
    assert_eq!(in_trace("inner")["span_parents"], json!([task["span_id"]]));
    let score = in_trace("exact");
    assert_eq!(score["span_attributes"]["type"], "score");
    assert_eq!(score["span_attributes"]["purpose"], "scorer");
    assert_eq!(score["span_parents"], json!([root["span_id"]]));
    assert_eq!(
        score["input"],
        json!({"input": "a", "output": "A", "expected": "A",
               "metadata": {"k": 1, "seen": true}, "tags": ["t1"], "id": null})
    );
    assert_eq!(score["output"], json!({"score": 1.0}));
    assert_eq!(score["scores"], json!({"exact": 1.0}));
    let judge = in_trace("judge");
    assert_eq!(judge["span_parents"], json!([score["span_id"]]));
    assert_eq!(judge["span_attributes"]["purpose"], "scorer");
    let classifier = in_trace("kind");
    assert_eq!(classifier["span_attributes"]["type"], "classifier");
    assert_eq!(classifier["span_attributes"]["purpose"], "scorer");
}

#[tokio::test]
async fn trials_run_each_case_several_times_with_derived_upsert_ids() {
    let server = server();
    let result = Eval::<i64, i64, i64>::new("trials-proj")
        .data(vec![
            EvalCase::new(1).expected(1).upsert_id("case-1"),
            EvalCase::new(2).expected(3).trial_count(1),
        ])
        .task(|i, hooks| *i + hooks.trial_index() as i64 % 2)
        .scorer("exact", |a| a.expected == Some(a.output))
        .trial_count(3)
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    let trials: Vec<(i64, usize)> = result
        .results
        .iter()
        .map(|r| (*r.input(), r.trial_index))
        .collect();
    assert_eq!(trials, vec![(1, 0), (1, 1), (1, 2), (2, 0)]);
    // Trial 1 adds 1: 1 -> 2 mismatches; 2 of 3 trials of case 1 match, case 2 never does.
    assert_eq!(result.summary.score("exact").unwrap().mean, 0.5);
    assert_eq!(result.results[0].id, "case-1");
    let expected_trial_1 = uuid_v5("braintrust:eval:case-1:trial:1");
    assert_eq!(result.results[1].id, expected_trial_1);
    let rows = rows(&server, result.summary.experiment_id.as_deref().unwrap());
    assert!(rows.iter().any(|r| r["id"] == "case-1"));
    assert_eq!(named(&rows, "eval").len(), 4);
}

fn uuid_v5(name: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
        .hyphenated()
        .to_string()
}

fn reference_eval(handler: bool) -> Eval<String, String, Value> {
    let eval = Eval::<String, String, Value>::new("errors-proj")
        .data(vec![
            "ok".to_string(),
            "boom".to_string(),
            "bad-scorer".to_string(),
        ])
        .try_task(|input, _| {
            if input == "boom" {
                Err("task exploded")
            } else {
                Ok(input.clone())
            }
        })
        .scorer("good", |_| 1.0)
        .scorer("flaky", |a| {
            if a.input == "bad-scorer" {
                Err("scorer exploded")
            } else {
                Ok(0.5)
            }
        })
        .scorer("out_of_range", |_| 1.5)
        .no_send_logs(true)
        .quiet();
    if handler {
        eval.error_score_handler(default_error_score_handler)
    } else {
        eval
    }
}

fn sorted_scores(
    r: &braintrust_eval::EvalResult<String, String, Value>,
) -> Vec<(String, Option<f64>)> {
    let mut s = r.scores.clone();
    s.sort_by(|a, b| a.0.cmp(&b.0));
    s
}

fn error_names(r: &braintrust_eval::EvalResult<String, String, Value>) -> Vec<&str> {
    let mut n: Vec<&str> = r.scorer_errors.iter().map(|(n, _)| n.as_str()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn scorer_and_task_errors_match_the_reference_with_and_without_a_handler() {
    let plain = reference_eval(false).run().await.unwrap();
    let [ok, boom, bad] = &plain.results[..] else {
        panic!("three rows")
    };
    let s = |v: &[(&str, f64)]| -> Vec<(String, Option<f64>)> {
        v.iter().map(|(n, x)| ((*n).to_owned(), Some(*x))).collect()
    };
    assert_eq!(sorted_scores(ok), s(&[("flaky", 0.5), ("good", 1.0)]));
    assert_eq!(error_names(ok), ["out_of_range"]);
    assert!(ok.scorer_errors[0].1.contains("must be between 0 and 1"));
    assert_eq!(ok.error, None);
    assert_eq!(sorted_scores(boom), vec![]);
    assert_eq!(boom.error, Some(CaseError::Task("task exploded".into())));
    assert_eq!(boom.output, None);
    assert!(boom.scorer_errors.is_empty());
    assert_eq!(sorted_scores(bad), s(&[("good", 1.0)]));
    assert_eq!(error_names(bad), ["flaky", "out_of_range"]);
    let good = plain.summary.score("good").unwrap();
    assert_eq!((good.n, good.errors, good.mean), (2, 1, 1.0));
    let flaky = plain.summary.score("flaky").unwrap();
    assert_eq!((flaky.n, flaky.errors, flaky.mean), (1, 2, 0.5));
    assert_eq!(plain.summary.failed_rows, 1);
    assert_eq!(plain.summary.rows_with_scorer_errors, 2);

    let handled = reference_eval(true).run().await.unwrap();
    let [ok, boom, bad] = &handled.results[..] else {
        panic!("three rows")
    };
    assert_eq!(
        sorted_scores(ok),
        s(&[("flaky", 0.5), ("good", 1.0), ("out_of_range", 0.0)])
    );
    assert_eq!(
        sorted_scores(boom),
        s(&[("flaky", 0.0), ("good", 0.0), ("out_of_range", 0.0)])
    );
    assert_eq!(
        sorted_scores(bad),
        s(&[("flaky", 0.0), ("good", 1.0), ("out_of_range", 0.0)])
    );
    assert_eq!(error_names(bad), ["flaky", "out_of_range"]);
}

#[tokio::test]
async fn scorer_errors_are_logged_on_the_score_span_and_root_metadata() {
    let server = server();
    let result = Eval::<String, String, Value>::new("scorer-errors")
        .data(vec!["x".to_string()])
        .task(|i, _| i.clone())
        .scorer("nan", |_| f64::NAN)
        .scorer("dup_a", |_| Score::new("same", 1.0))
        .scorer("dup_b", |_| Score::new("same", 0.0))
        .scorer("skipped", |_| None::<f64>)
        .scorer("panics", |_| -> f64 { panic!("scorer bug") })
        .scorer("multi", |_| {
            vec![
                Score::new("m1", 1.0),
                Score::new("m2", 0.0).metadata(json!({"why": "no"})),
            ]
        })
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    let r = &result.results[0];
    let errors: Vec<&str> = r.scorer_errors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(errors, ["nan", "dup_b", "panics"]);
    assert!(r.scorer_errors[1].1.contains("duplicate score name"));
    assert!(r.scorer_errors[2].1.contains("scorer bug"));
    assert_eq!(r.score("same"), Some(1.0));
    assert_eq!(
        r.scores.iter().find(|(n, _)| n == "skipped"),
        Some(&("skipped".to_owned(), None))
    );
    let skipped = result.summary.score("skipped").unwrap();
    assert_eq!((skipped.n, skipped.skipped), (0, 1));
    let rows = rows(&server, result.summary.experiment_id.as_deref().unwrap());
    let root = named(&rows, "eval")[0];
    let logged: Vec<&String> = root["metadata"]["scorer_errors"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(logged, ["nan", "dup_b", "panics"]);
    assert!(root.get("error").is_none_or(Value::is_null));
    let nan = named(&rows, "nan")[0];
    assert!(
        nan["error"]
            .as_str()
            .unwrap()
            .contains("not a finite number")
    );
    assert!(nan.get("scores").is_none_or(Value::is_null));
    let skipped_span = named(&rows, "skipped")[0];
    assert!(skipped_span.get("scores").is_none_or(Value::is_null));
    let multi = named(&rows, "multi")[0];
    assert_eq!(
        multi["output"],
        json!({"m1": {"score": 1.0}, "m2": {"score": 0.0}})
    );
    assert_eq!(multi["scores"], json!({"m1": 1.0, "m2": 0.0}));
    assert_eq!(multi["metadata"], json!({"m2": {"why": "no"}}));
}

#[tokio::test]
async fn task_errors_and_panics_are_recorded_on_the_root_and_task_spans() {
    let server = server();
    let result = Eval::<i32, i32, i32>::new("task-errors")
        .data(vec![1, 2])
        .task(|i, _| if *i == 2 { panic!("bad input {i}") } else { *i })
        .scorer("one", |_| 1.0)
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(
        result.results[1].error,
        Some(CaseError::Task("panicked: bad input 2".into()))
    );
    assert_eq!(result.summary.failed_rows, 1);
    let failures = result.check(&Gates::new());
    assert_eq!(failures.len(), 1);
    assert!(
        result
            .check(&Gates::new().allow_task_errors(true))
            .is_empty()
    );
    let rows = rows(&server, result.summary.experiment_id.as_deref().unwrap());
    let failed_root = named(&rows, "eval")
        .into_iter()
        .find(|r| r["input"] == 2)
        .unwrap();
    assert_eq!(failed_root["error"], "panicked: bad input 2");
    assert!(failed_root.get("output").is_none_or(Value::is_null));
    let failed_task = rows
        .iter()
        .find(|r| r["span_attributes"]["name"] == "task" && r["input"] == 2)
        .unwrap();
    assert_eq!(failed_task["error"], "panicked: bad input 2");
    // No scorer ran for the failed case.
    assert_eq!(named(&rows, "one").len(), 1);
}

#[tokio::test]
async fn per_case_timeouts_keep_the_other_cases() {
    let result = Eval::<u64, u64, u64>::new("case-timeouts")
        .data(vec![1, 500, 2])
        .task_async(|ms, _| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .scorer("ran", |_| 1.0)
        .case_timeout(Duration::from_millis(100))
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    let errors: Vec<Option<CaseError>> = result.results.iter().map(|r| r.error.clone()).collect();
    assert_eq!(errors, vec![None, Some(CaseError::TimedOut), None]);
    assert_eq!(result.summary.outcome, RunOutcome::Completed);
    assert_eq!(result.summary.score("ran").unwrap().n, 2);
}

#[tokio::test]
async fn a_global_timeout_cancels_running_cases_and_keeps_partial_results() {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let result = Eval::<u64, u64, u64>::new("global-timeout")
        .data((0..50).collect::<Vec<u64>>())
        .task_async(move |i, hooks| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                // Cases 0 and 1 finish at once; the rest wait until cancelled.
                if i >= 2 {
                    hooks.cancel_token().cancelled().await;
                }
                i
            }
        })
        .scorer("ran", |_| 1.0)
        .max_concurrency(4)
        .timeout(Duration::from_millis(200))
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(result.summary.outcome, RunOutcome::TimedOut);
    let finished = result.results.iter().filter(|r| r.error.is_none()).count();
    let cancelled = result
        .results
        .iter()
        .filter(|r| r.error == Some(CaseError::Cancelled))
        .count();
    assert_eq!(finished, 2);
    assert!(cancelled >= 1, "in-flight cases are reported as cancelled");
    assert!(result.results.len() < 50, "queued cases never start");
    assert!(started.load(Ordering::SeqCst) <= 2 + 4);
    assert_eq!(result.summary.score("ran").unwrap().n, 2);
    assert!(!result.check(&Gates::new()).is_empty());
}

#[tokio::test]
async fn cancelling_the_token_stops_the_run() {
    let token = CancellationToken::new();
    let inside = token.clone();
    let result = Eval::<u32, u32, u32>::new("cancelled")
        .data((0..100).collect::<Vec<u32>>())
        .task(move |i, _| {
            if *i == 5 {
                inside.cancel();
            }
            *i
        })
        .scorer("ran", |_| 1.0)
        .max_concurrency(1)
        .cancel_token(token)
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(result.summary.outcome, RunOutcome::Cancelled);
    assert!(result.results.len() <= 7, "{}", result.results.len());
    assert!(result.results.len() >= 6);
}

#[tokio::test]
async fn concurrency_is_bounded_and_data_is_pulled_lazily() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let lag = Arc::new(AtomicUsize::new(0));
    let source = {
        let pulled = pulled.clone();
        (0..40u32).inspect(move |_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        })
    };
    let (p, f, k, l) = (pulled.clone(), in_flight.clone(), peak.clone(), lag.clone());
    let result = Eval::<u32, u32, u32>::new("bounded")
        .data(Data::iter(source))
        .task_async(move |i, _| {
            let (p, f, k, l) = (p.clone(), f.clone(), k.clone(), l.clone());
            async move {
                let now = f.fetch_add(1, Ordering::SeqCst) + 1;
                k.fetch_max(now, Ordering::SeqCst);
                // How far data intake runs ahead of the case that just started.
                l.fetch_max(p.load(Ordering::SeqCst) - i as usize, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                f.fetch_sub(1, Ordering::SeqCst);
                i
            }
        })
        .scorer("ran", |_| 1.0)
        .max_concurrency(3)
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(result.results.len(), 40);
    let order: Vec<u32> = result.results.iter().map(|r| *r.input()).collect();
    assert_eq!(
        order,
        (0..40).collect::<Vec<_>>(),
        "results come back in data order"
    );
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert!(
        lag.load(Ordering::SeqCst) <= 4,
        "intake ran {} cases ahead",
        lag.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_second_run_is_compared_with_the_first() {
    let server = server();
    let run = |scores: [f64; 3]| {
        Eval::<String, String, Value>::new("baseline-proj")
            .data(vec!["a".to_string(), "b".to_string(), "c".to_string()])
            .task(|i, _| i.clone())
            .scorer("s", move |a| match a.input.as_str() {
                "a" => scores[0],
                "b" => scores[1],
                _ => scores[2],
            })
            .connection(connection(&server))
            .quiet()
            .run()
    };
    let first = run([1.0, 0.5, 0.0]).await.unwrap();
    let second = run([0.0, 0.5, 1.0]).await.unwrap();
    let s = second.summary.score("s").unwrap();
    assert_eq!(
        second.summary.comparison_experiment_name,
        first.summary.experiment_name
    );
    assert_ne!(
        second.summary.experiment_name,
        first.summary.experiment_name
    );
    assert_eq!((s.improvements, s.regressions), (1, 1));
    assert_eq!(s.diff, Some(0.0));
    assert!(second.summary.metric("duration").is_some());
    let gates = Gates::new().max_regressions(0);
    assert_eq!(second.check(&gates).len(), 1);
    assert!(second.check(&Gates::new().max_regressions(1)).is_empty());
    assert!(second.check(&Gates::new().min_score("s", 0.5)).is_empty());
    assert_eq!(second.check(&Gates::new().min_score("s", 0.6)).len(), 1);
    assert_eq!(second.check(&Gates::new().pass_rate(0.5, 0.6)).len(), 0);
    assert_eq!(second.check(&Gates::new().pass_rate(0.5, 0.7)).len(), 1);
    assert_eq!(second.check(&Gates::new().pass_rate(0.6, 0.5)).len(), 1);
}

#[tokio::test]
async fn dataset_records_are_cases_with_their_origin() {
    let server = server();
    let dataset =
        init_dataset(DatasetOptions::new("ds-eval", "qa").connection(connection(&server))).unwrap();
    dataset.insert(
        DatasetRecord::new(json!("hi"))
            .expected(json!("HI"))
            .metadata(json!({"m": 1})),
    );
    dataset.insert(
        DatasetRecord::new(json!("yo"))
            .expected(json!("YO"))
            .tags(["t"]),
    );
    dataset.flush().unwrap();
    let result = Eval::<String, String, String>::new("ds-eval")
        .data(Data::dataset(dataset.clone()))
        .task(|i, _| i.to_uppercase())
        .add_scorer(ExactMatch::new())
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    assert_eq!(result.summary.score("ExactMatch").unwrap().mean, 1.0);
    let origin = result.results[0].origin.as_ref().unwrap();
    assert_eq!(origin["object_type"], "dataset");
    assert_eq!(origin["object_id"], json!(dataset.id().unwrap()));
    assert!(origin["_xact_id"].is_string());
    assert_eq!(
        result.results[0].metadata,
        *json!({"m": 1}).as_object().unwrap()
    );
    let rows = rows(&server, result.summary.experiment_id.as_deref().unwrap());
    let root = named(&rows, "eval")
        .into_iter()
        .find(|r| r["input"] == "hi")
        .unwrap();
    assert_eq!(root["origin"]["id"], origin["id"]);
}

#[tokio::test]
async fn the_base_experiment_can_be_the_data() {
    let server = server();
    let base = Eval::<String, String, String>::new("base-data")
        .data(vec![
            EvalCase::new("q1".to_string()).expected("a1".to_string()),
            EvalCase::new("q2".to_string()),
        ])
        .task(|i, _| format!("out-{i}"))
        .scorer("one", |_| 1.0)
        .experiment_name("base")
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    let result = Eval::<String, String, String>::new("base-data")
        .data(Data::base_experiment())
        .task(|i, _| i.clone())
        .scorer("one", |_| 1.0)
        .base_experiment(base.summary.experiment_name.clone().unwrap())
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    let mut cases: Vec<(String, Option<String>)> = result
        .results
        .iter()
        .map(|r| (r.input().clone(), r.expected().cloned()))
        .collect();
    cases.sort();
    // expected falls back to the base's output.
    assert_eq!(
        cases,
        vec![
            ("q1".to_string(), Some("a1".to_string())),
            ("q2".to_string(), Some("out-q2".to_string()))
        ]
    );
    assert_eq!(
        result.summary.comparison_experiment_name.as_deref(),
        Some("base")
    );
    let err = Eval::<String, String, String>::new("base-data")
        .data(Data::base_experiment())
        .task(|i, _| i.clone())
        .scorer("one", |_| 1.0)
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Cannot use BaseExperiment() without connecting")
    );
}

#[tokio::test]
async fn no_send_logs_runs_locally_and_options_are_validated() {
    let result = Eval::<i32, i32, i32>::new("offline")
        .data(vec![1, 2, 3])
        .task(|i, _| *i)
        .scorer("even", |a| a.output % 2 == 0)
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    let even = result.summary.score("even").unwrap();
    assert!((even.mean - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(result.summary.experiment_id, None);
    assert!(result.summary.metrics.is_empty());
    let err = Eval::<i32, i32, i32>::new("x")
        .data(vec![1])
        .task(|i, _| *i)
        .no_send_logs(true)
        .run()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "At least one of `scores` or `classifiers` must be provided."
    );
}

#[tokio::test]
async fn parent_mode_logs_cases_under_an_existing_span() {
    let server = server();
    let logger = braintrust_transport::logger::init_logger(
        connection(&server)
            .project("parent-proj")
            .set_current(false),
    )
    .unwrap();
    let parent = logger.start_span(StartSpan::named("nightly"));
    let result = Eval::<i32, i32, i32>::new("parent-proj")
        .data(vec![1, 2])
        .task(|i, _| *i)
        .scorer("one", |_| 1.0)
        .parent(parent.export())
        .connection(connection(&server))
        .quiet()
        .run()
        .await
        .unwrap();
    parent.log(Event::new().output(json!("done"))).unwrap();
    parent.end();
    logger.flush().unwrap();
    assert_eq!(result.summary.experiment_id, None);
    let project = logger.project_id().unwrap();
    let rows = server.rows(&ObjectIds::project_logs(project)).unwrap();
    let roots = named(&rows, "eval");
    assert_eq!(roots.len(), 2);
    assert!(
        roots
            .iter()
            .all(|r| r["span_parents"] == json!([parent.span_id()]))
    );
}

#[tokio::test]
async fn progress_events_reach_the_stream_option() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    Eval::<String, String, String>::new("progress")
        .data(vec!["a".to_string()])
        .task(|i, hooks| {
            hooks.report_progress(braintrust_eval::ProgressEvent {
                format: "code".into(),
                output_type: "completion".into(),
                event: braintrust_eval::ProgressKind::JsonDelta,
                data: format!("{i:?}"),
            });
            i.clone()
        })
        .scorer("one", |_| 1.0)
        .stream(move |e| sink.lock().unwrap().push(serde_json::to_value(e).unwrap()))
        .no_send_logs(true)
        .quiet()
        .run()
        .await
        .unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["name"], "progress");
    assert_eq!(events[0]["object_type"], "task");
    assert_eq!(events[0]["event"], "json_delta");
    assert_eq!(events[0]["data"], "\"a\"");
}

#[test]
fn run_blocking_works_from_sync_code_and_inside_a_runtime() {
    let eval = || {
        Eval::<i32, i32, i32>::new("blocking")
            .data(vec![1])
            .task(|i, _| *i)
            .scorer("one", |_| 1.0)
            .no_send_logs(true)
            .quiet()
    };
    assert_eq!(eval().run_blocking().unwrap().results.len(), 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = runtime.block_on(async { eval().run_blocking().unwrap().results.len() });
    assert_eq!(n, 1);
}
