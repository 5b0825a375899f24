//! Experiment summaries computed server-side, as the service does: per-score means over
//! traces, metrics (duration, LLM duration, tokens, time to first token, estimated cost) from
//! the logged spans, and the comparison with a baseline experiment, rows matched by input.
//!
//! A trace's score is the mean of that score's values over the trace's spans; an experiment's
//! score is the mean over the traces that have it. Token metrics and cost count `llm` spans
//! that are not part of scoring (`purpose: scorer`). Lower is better for every metric.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use braintrust_core::object::ObjectIds;
use serde_json::{Map, Value, json};

use crate::app::{ApiResult, AppState, object_body, ok, opt_str, query_map};
use crate::error::ApiError;
use crate::store::{ObjectKind, Store};

/// Prices in dollars per million prompt and completion tokens, by model-name prefix (the
/// longest matching prefix wins).
const MODEL_PRICES: &[(&str, f64, f64)] = &[
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("o3", 2.00, 8.00),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-haiku-4", 1.00, 5.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-opus-4", 15.00, 75.00),
    ("gemini-1.5-flash", 0.075, 0.30),
    ("gemini-2.0-flash", 0.10, 0.40),
    ("gemini-2.5-flash", 0.30, 2.50),
    ("gemini-2.5-pro", 1.25, 10.00),
];

/// The estimated cost of a call to `model`, if its price is known.
fn estimated_cost(model: &str, prompt_tokens: f64, completion_tokens: f64) -> Option<f64> {
    let model = model.rsplit('/').next().unwrap_or(model);
    MODEL_PRICES
        .iter()
        .filter(|(prefix, _, _)| model.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|(_, input, output)| (prompt_tokens * input + completion_tokens * output) / 1e6)
}

/// The metrics a summary reports, with their units, in report order.
const METRICS: &[(&str, &str)] = &[
    ("duration", "s"),
    ("llm_duration", "s"),
    ("prompt_tokens", "tok"),
    ("completion_tokens", "tok"),
    ("total_tokens", "tok"),
    ("time_to_first_token", "s"),
    ("estimated_cost", "$"),
];

/// One trace reduced to what summaries need.
#[derive(Debug, Default)]
struct Trace {
    input_key: String,
    scores: Vec<(String, f64)>,
    metrics: HashMap<&'static str, f64>,
}

fn number(row: &Value, pointer: &str) -> Option<f64> {
    row.pointer(pointer).and_then(Value::as_f64)
}

fn is_root(row: &Value) -> bool {
    match row.get("span_parents") {
        None | Some(Value::Null) => true,
        Some(Value::Array(parents)) => parents.is_empty(),
        Some(_) => false,
    }
}

/// Groups an experiment's rows into traces (in the order their roots appear).
fn traces(rows: &[Value]) -> Vec<Trace> {
    let mut order: Vec<String> = Vec::new();
    let mut by_root: HashMap<String, Vec<&Value>> = HashMap::new();
    for row in rows {
        let Some(root) = row
            .get("root_span_id")
            .and_then(Value::as_str)
            .or_else(|| row.get("id").and_then(Value::as_str))
        else {
            continue;
        };
        let spans = by_root.entry(root.to_owned()).or_default();
        if spans.is_empty() {
            order.push(root.to_owned());
        }
        spans.push(row);
    }
    order
        .into_iter()
        .filter_map(|root| {
            let spans = &by_root[&root];
            let root_row = spans.iter().find(|r| is_root(r))?;
            Some(trace_of(root_row, spans))
        })
        .collect()
}

fn trace_of(root: &Value, spans: &[&Value]) -> Trace {
    let mut trace = Trace {
        input_key: root.get("input").map(Value::to_string).unwrap_or_default(),
        ..Trace::default()
    };
    let mut sums: Vec<(String, f64, u32)> = Vec::new();
    for span in spans {
        let Some(scores) = span.get("scores").and_then(Value::as_object) else {
            continue;
        };
        for (name, value) in scores {
            let Some(v) = value.as_f64() else { continue };
            match sums.iter_mut().find(|(n, _, _)| n == name) {
                Some(entry) => {
                    entry.1 += v;
                    entry.2 += 1;
                }
                None => sums.push((name.clone(), v, 1)),
            }
        }
    }
    trace.scores = sums
        .into_iter()
        .map(|(name, sum, n)| (name, sum / f64::from(n)))
        .collect();
    if let (Some(start), Some(end)) = (number(root, "/metrics/start"), number(root, "/metrics/end"))
    {
        trace.metrics.insert("duration", (end - start).max(0.0));
    }
    let mut add = |key: &'static str, v: f64| *trace.metrics.entry(key).or_insert(0.0) += v;
    let mut ttft = (0.0, 0u32);
    for span in spans {
        let attrs = span.get("span_attributes");
        let is_llm = attrs.and_then(|a| a.get("type")).and_then(Value::as_str) == Some("llm");
        let scoring =
            attrs.and_then(|a| a.get("purpose")).and_then(Value::as_str) == Some("scorer");
        if !is_llm || scoring {
            continue;
        }
        if let (Some(start), Some(end)) =
            (number(span, "/metrics/start"), number(span, "/metrics/end"))
        {
            add("llm_duration", (end - start).max(0.0));
        }
        let prompt = number(span, "/metrics/prompt_tokens");
        let completion = number(span, "/metrics/completion_tokens");
        for (key, value) in [
            ("prompt_tokens", prompt),
            ("completion_tokens", completion),
            ("total_tokens", number(span, "/metrics/tokens")),
        ] {
            if let Some(v) = value {
                add(key, v);
            }
        }
        if let Some(t) = number(span, "/metrics/time_to_first_token") {
            ttft.0 += t;
            ttft.1 += 1;
        }
        let model = span.pointer("/metadata/model").and_then(Value::as_str);
        if let Some(cost) =
            model.and_then(|m| estimated_cost(m, prompt.unwrap_or(0.0), completion.unwrap_or(0.0)))
        {
            add("estimated_cost", cost);
        }
    }
    if ttft.1 > 0 {
        trace
            .metrics
            .insert("time_to_first_token", ttft.0 / f64::from(ttft.1));
    }
    trace
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// `{scores, metrics}` of `rows`, compared with `base` rows when given.
pub(crate) fn summarize(
    rows: &[Value],
    base: Option<&[Value]>,
) -> (Map<String, Value>, Map<String, Value>) {
    let current = traces(rows);
    let base = base.map(traces);
    // Base values by input, for per-row comparisons.
    let base_by_input = |pick: &dyn Fn(&Trace) -> Option<f64>| -> HashMap<&str, f64> {
        let mut acc: HashMap<&str, (f64, u32)> = HashMap::new();
        for t in base.iter().flatten() {
            if let Some(v) = pick(t) {
                let e = acc.entry(t.input_key.as_str()).or_insert((0.0, 0));
                e.0 += v;
                e.1 += 1;
            }
        }
        acc.into_iter()
            .map(|(k, (s, n))| (k, s / f64::from(n)))
            .collect()
    };
    let compare = |pick: &dyn Fn(&Trace) -> Option<f64>, higher_is_better: bool| {
        let score = mean(current.iter().filter_map(pick));
        let base_mean = base.as_ref().and_then(|b| mean(b.iter().filter_map(pick)));
        let by_input = base_by_input(pick);
        let (mut improvements, mut regressions) = (0u64, 0u64);
        for t in &current {
            let (Some(v), Some(b)) = (pick(t), by_input.get(t.input_key.as_str())) else {
                continue;
            };
            let delta = if higher_is_better { v - b } else { b - v };
            if delta > 1e-12 {
                improvements += 1;
            } else if delta < -1e-12 {
                regressions += 1;
            }
        }
        let diff = match (score, base_mean) {
            (Some(s), Some(b)) => json!(s - b),
            _ => Value::Null,
        };
        (score, diff, improvements, regressions)
    };
    let mut names: Vec<&str> = Vec::new();
    for t in &current {
        for (name, _) in &t.scores {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut scores = Map::new();
    for name in names {
        let pick = |t: &Trace| t.scores.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let (score, diff, improvements, regressions) = compare(&pick, true);
        scores.insert(
            name.to_owned(),
            json!({"name": name, "score": score, "diff": diff,
                   "improvements": improvements, "regressions": regressions}),
        );
    }
    let mut metrics = Map::new();
    for (name, unit) in METRICS {
        let pick = |t: &Trace| t.metrics.get(name).copied();
        let (metric, diff, improvements, regressions) = compare(&pick, false);
        if let Some(metric) = metric {
            metrics.insert(
                (*name).to_owned(),
                json!({"name": name, "metric": metric, "unit": unit, "diff": diff,
                       "improvements": improvements, "regressions": regressions}),
            );
        }
    }
    (scores, metrics)
}

/// The trailing `-<digits>` the server adds to make a name unique, removed.
fn name_stem(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((stem, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => stem,
        _ => name,
    }
}

/// The baseline of `experiment`: its `base_exp_id`, else the newest earlier experiment of the
/// project with the same name stem (the previous run of the same eval), else the newest
/// earlier experiment of the project.
fn default_base(store: &Store, experiment: &Value) -> Result<Option<Value>, ApiError> {
    if let Some(id) = experiment.get("base_exp_id").and_then(Value::as_str)
        && let Some(base) = store.object_by_id(ObjectKind::Experiment, id)?
    {
        return Ok(Some(base));
    }
    let project_id = experiment["project_id"].as_str().unwrap_or_default();
    let all = store.objects_of(ObjectKind::Experiment, project_id)?;
    let position = all.iter().position(|e| e["id"] == experiment["id"]);
    let earlier = &all[..position.unwrap_or(all.len())];
    let stem = name_stem(experiment["name"].as_str().unwrap_or_default());
    let same_eval = earlier
        .iter()
        .rev()
        .find(|e| name_stem(e["name"].as_str().unwrap_or_default()) == stem);
    Ok(same_eval.or_else(|| earlier.last()).cloned())
}

fn experiment(store: &Store, id: &str) -> Result<Value, ApiError> {
    store
        .object_by_id(ObjectKind::Experiment, id)?
        .ok_or_else(|| ApiError::not_found(format!("experiment {id} not found")))
}

/// An experiment compared with its baseline.
struct Comparison {
    current: Value,
    base: Option<Value>,
    scores: Map<String, Value>,
    metrics: Map<String, Value>,
}

/// Scores and metrics of `id` against `base` (explicit, else the default baseline).
fn compare_experiments(
    store: &Store,
    id: &str,
    base: Option<&str>,
) -> Result<Comparison, ApiError> {
    let current = experiment(store, id)?;
    let base = match base {
        Some(base) => Some(experiment(store, base)?),
        None => default_base(store, &current)?,
    };
    let rows = store.all_rows(&ObjectIds::experiment(id))?;
    let base_rows = match &base {
        Some(b) => {
            Some(store.all_rows(&ObjectIds::experiment(b["id"].as_str().unwrap_or_default()))?)
        }
        None => None,
    };
    let (scores, metrics) = summarize(&rows, base_rows.as_deref());
    Ok(Comparison {
        current,
        base,
        scores,
        metrics,
    })
}

fn app_links(state: &AppState, project: &str, experiment: &str) -> (String, String) {
    let segment = |s: &str| braintrust_transport::api::path_segment(s);
    let project_url = format!(
        "{}/app/{}/p/{}",
        state.base_url,
        segment(&state.settings.org_name),
        segment(project)
    );
    let experiment_url = format!("{project_url}/experiments/{}", segment(experiment));
    (project_url, experiment_url)
}

/// `GET /v1/experiment/{id}/summarize?summarize_scores=…&comparison_experiment_id=…`.
pub(crate) async fn summarize_experiment(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let summarize_scores = opt_str(&query, "summarize_scores")?.as_deref() != Some("false");
    let comparison = opt_str(&query, "comparison_experiment_id")?;
    let store = state.store();
    let Comparison {
        current,
        base,
        scores,
        metrics,
    } = compare_experiments(&store, &id, comparison.as_deref())?;
    let project_id = current["project_id"].as_str().unwrap_or_default();
    let project_name = store
        .object_by_id(ObjectKind::Project, project_id)?
        .and_then(|p| p["name"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let experiment_name = current["name"].as_str().unwrap_or_default();
    let (project_url, experiment_url) = app_links(&state, &project_name, experiment_name);
    let mut answer = json!({
        "project_name": project_name,
        "experiment_name": experiment_name,
        "project_url": project_url,
        "experiment_url": experiment_url,
        "comparison_experiment_name": base.as_ref().map(|b| b["name"].clone()),
    });
    if summarize_scores {
        answer["scores"] = Value::Object(scores);
        answer["metrics"] = Value::Object(metrics);
    }
    ok(answer)
}

/// `GET /experiment-comparison2?experiment_id=…[&base_experiment_id=…]` (JS, older Python).
pub(crate) async fn experiment_comparison(
    State(state): State<Arc<AppState>>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let id = opt_str(&query, "experiment_id")?
        .ok_or_else(|| ApiError::bad_request("experiment_id is required"))?;
    let base = opt_str(&query, "base_experiment_id")?;
    let store = state.store();
    let comparison = compare_experiments(&store, &id, base.as_deref())?;
    ok(json!({"scores": comparison.scores, "metrics": comparison.metrics}))
}

/// `POST /api/base_experiment/get_id {"id"}` → `{base_exp_id, base_exp_name}`; 400 when the
/// experiment has no baseline.
pub(crate) async fn base_experiment_id(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body)?;
    let id = opt_str(&body, "id")?.ok_or_else(|| ApiError::bad_request("id is required"))?;
    let store = state.store();
    let current = experiment(&store, &id)?;
    match default_base(&store, &current)? {
        Some(base) => ok(json!({"base_exp_id": base["id"], "base_exp_name": base["name"]})),
        None => Err(ApiError::bad_request(format!(
            "experiment {id} has no base experiment"
        ))),
    }
}

/// `GET /v1/dataset/{id}/summarize?summarize_data=true`.
pub(crate) async fn summarize_dataset(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = state.store();
    let dataset = store
        .object_by_id(ObjectKind::Dataset, &id)?
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} not found")))?;
    let project_name = store
        .object_by_id(
            ObjectKind::Project,
            dataset["project_id"].as_str().unwrap_or_default(),
        )?
        .and_then(|p| p["name"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = dataset["name"].as_str().unwrap_or_default();
    let (project_url, _) = app_links(&state, &project_name, name);
    let dataset_url = format!(
        "{project_url}/datasets/{}",
        braintrust_transport::api::path_segment(name)
    );
    let total = store.row_count(&ObjectIds::dataset(id))?;
    ok(json!({
        "project_name": project_name,
        "dataset_name": name,
        "project_url": project_url,
        "dataset_url": dataset_url,
        "data_summary": {"total_records": total},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(id: &str, input: &str, start: f64, end: f64) -> Value {
        json!({"id": id, "span_id": id, "root_span_id": id, "span_parents": null, "input": input,
               "metrics": {"start": start, "end": end}, "span_attributes": {"type": "eval"}})
    }

    fn score(root: &str, name: &str, v: Value) -> Value {
        json!({"id": format!("{root}-{name}"), "root_span_id": root, "span_parents": [root],
               "scores": {name: v}, "span_attributes": {"type": "score", "purpose": "scorer"}})
    }

    fn llm(root: &str, model: &str, prompt: u64, completion: u64, purpose: Option<&str>) -> Value {
        let mut attrs = json!({"type": "llm"});
        if let Some(p) = purpose {
            attrs["purpose"] = json!(p);
        }
        json!({"id": format!("{root}-llm-{prompt}"), "root_span_id": root, "span_parents": [root],
               "span_attributes": attrs, "metadata": {"model": model},
               "metrics": {"start": 1.0, "end": 1.5, "prompt_tokens": prompt,
                           "completion_tokens": completion, "tokens": prompt + completion,
                           "time_to_first_token": 0.25}})
    }

    #[test]
    fn scores_are_means_over_traces_and_skip_missing_values() {
        let rows = vec![
            root("a", "x", 0.0, 2.0),
            score("a", "exact", json!(1.0)),
            root("b", "y", 0.0, 1.0),
            score("b", "exact", json!(0.0)),
            root("c", "z", 0.0, 3.0),
            score("c", "exact", Value::Null),
        ];
        let (scores, metrics) = summarize(&rows, None);
        assert_eq!(scores["exact"]["score"], json!(0.5));
        assert_eq!(scores["exact"]["diff"], Value::Null);
        assert_eq!(metrics["duration"]["metric"], json!(2.0));
        assert_eq!(metrics["duration"]["unit"], json!("s"));
        assert!(!metrics.contains_key("prompt_tokens"));
    }

    #[test]
    fn comparison_counts_improvements_and_regressions_by_input() {
        let base = vec![
            root("a", "x", 0.0, 1.0),
            score("a", "s", json!(0.5)),
            root("b", "y", 0.0, 1.0),
            score("b", "s", json!(1.0)),
            root("c", "w", 0.0, 1.0),
            score("c", "s", json!(0.5)),
        ];
        let current = vec![
            root("d", "x", 0.0, 2.0),
            score("d", "s", json!(1.0)),
            root("e", "y", 0.0, 0.5),
            score("e", "s", json!(0.0)),
            root("f", "new", 0.0, 1.0),
            score("f", "s", json!(1.0)),
        ];
        let (scores, metrics) = summarize(&current, Some(&base));
        let s = &scores["s"];
        assert!((s["score"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((s["diff"].as_f64().unwrap() - (2.0 / 3.0 - 2.0 / 3.0)).abs() < 1e-12);
        assert_eq!(s["improvements"], json!(1));
        assert_eq!(s["regressions"], json!(1));
        // Durations: x got slower (regression), y faster (improvement).
        assert_eq!(metrics["duration"]["improvements"], json!(1));
        assert_eq!(metrics["duration"]["regressions"], json!(1));
    }

    #[test]
    fn token_metrics_and_cost_skip_scorer_llm_calls() {
        let rows = vec![
            root("a", "x", 0.0, 2.0),
            llm("a", "gpt-4o-mini-2024-07-18", 1000, 500, None),
            llm("a", "gpt-4o", 7, 7, Some("scorer")),
        ];
        let (_, metrics) = summarize(&rows, None);
        assert_eq!(metrics["prompt_tokens"]["metric"], json!(1000.0));
        assert_eq!(metrics["completion_tokens"]["metric"], json!(500.0));
        assert_eq!(metrics["total_tokens"]["metric"], json!(1500.0));
        assert_eq!(metrics["llm_duration"]["metric"], json!(0.5));
        assert_eq!(metrics["time_to_first_token"]["metric"], json!(0.25));
        let cost = metrics["estimated_cost"]["metric"].as_f64().unwrap();
        assert!((cost - (1000.0 * 0.15 + 500.0 * 0.60) / 1e6).abs() < 1e-15);
        assert_eq!(metrics["estimated_cost"]["unit"], json!("$"));
    }

    #[test]
    fn name_stems_drop_only_numeric_suffixes() {
        assert_eq!(name_stem("my-eval-3"), "my-eval");
        assert_eq!(name_stem("my-eval"), "my-eval");
        assert_eq!(name_stem("eval"), "eval");
        assert_eq!(name_stem("run-v2"), "run-v2");
    }
}
