//! Object registration and lookup: projects, experiments and datasets, in both the `/v1` family
//! (current Python SDK, our client) and the legacy `/api/*` family (JS SDK, older Python).
//!
//! Project ids are derived from the project name (UUID v5 of `project:<name>` in the URL
//! namespace), so a project keeps its id across restarts and databases; experiment and dataset
//! ids are random UUID v4s.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use braintrust_core::id::new_uuid_v4;
use braintrust_core::row::format_created;
use serde_json::{Map, Value, json};

use crate::app::{
    ApiResult, AppState, object_body, ok, opt_bool, opt_object, opt_str, opt_strings, query_map,
};
use crate::error::ApiError;
use crate::store::{ObjectKind, Store};

/// The id of the project called `name`.
pub(crate) fn project_id_for(name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("project:{name}").as_bytes(),
    )
    .hyphenated()
    .to_string()
}

pub(crate) fn now() -> String {
    format_created(SystemTime::now())
}

fn check_org(state: &AppState, body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(org) = opt_str(body, "org_name")?
        && org != state.settings.org_name
    {
        return Err(ApiError::not_found(format!(
            "Organization {org} not found. Must be one of {}",
            state.settings.org_name
        )));
    }
    if let Some(org_id) = opt_str(body, "org_id")?
        && org_id != state.settings.org_id
    {
        return Err(ApiError::not_found(format!(
            "Organization id {org_id} not found"
        )));
    }
    Ok(())
}

// === projects ===

pub(crate) fn get_or_create_project(
    state: &AppState,
    store: &Store,
    name: &str,
) -> Result<Value, ApiError> {
    let org_id = &state.settings.org_id;
    if let Some(project) = store.object_by_name(ObjectKind::Project, org_id, name)? {
        return Ok(project);
    }
    let id = project_id_for(name);
    let project = json!({
        "id": id, "org_id": org_id, "name": name, "created": now(),
        "deleted_at": null, "user_id": state.settings.user_id, "settings": null,
    });
    store.insert_object(ObjectKind::Project, &id, org_id, name, &project)?;
    Ok(project)
}

fn project_by_id(store: &Store, id: &str) -> Result<Value, ApiError> {
    store
        .object_by_id(ObjectKind::Project, id)?
        .ok_or_else(|| ApiError::not_found(format!("project {id} not found")))
}

/// Finds the project named by `project_id` or `project_name` (creating it by name when
/// `create` is set).
fn resolve_project(
    state: &AppState,
    store: &Store,
    body: &Map<String, Value>,
    create: bool,
) -> Result<Value, ApiError> {
    if let Some(id) = opt_str(body, "project_id")? {
        return project_by_id(store, &id);
    }
    let Some(name) = opt_str(body, "project_name")? else {
        return Err(ApiError::bad_request(
            "one of `project_id` or `project_name` is required",
        ));
    };
    if create {
        return get_or_create_project(state, store, &name);
    }
    store
        .object_by_name(ObjectKind::Project, &state.settings.org_id, &name)?
        .ok_or_else(|| ApiError::not_found(format!("project {name} not found")))
}

/// Like [`resolve_project`] without creating, but a missing project is `None`, not an error.
fn existing_project(
    state: &AppState,
    store: &Store,
    body: &Map<String, Value>,
) -> Result<Option<Value>, ApiError> {
    match resolve_project(state, store, body, false) {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn create_project(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    check_org(&state, &body)?;
    let name = opt_str(&body, "name")?.unwrap_or_else(|| "Global".to_owned());
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("`name` must not be empty"));
    }
    let store = state.store();
    ok(get_or_create_project(&state, &store, &name)?)
}

pub(crate) async fn list_projects(
    State(state): State<Arc<AppState>>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let store = state.store();
    let mut objects = store.objects_of(ObjectKind::Project, &state.settings.org_id)?;
    if let Some(name) = opt_str(&query, "project_name")? {
        objects.retain(|p| p["name"] == name.as_str());
    }
    ok(json!({ "objects": objects }))
}

pub(crate) async fn get_project(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = state.store();
    ok(project_by_id(&store, &id)?)
}

pub(crate) async fn register_project(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    check_org(&state, &body)?;
    let name = opt_str(&body, "project_name")?
        .ok_or_else(|| ApiError::bad_request("`project_name` is required"))?;
    let store = state.store();
    ok(json!({ "project": get_or_create_project(&state, &store, &name)? }))
}

pub(crate) async fn legacy_get_project(
    State(state): State<Arc<AppState>>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let id = opt_str(&query, "id")?.ok_or_else(|| ApiError::bad_request("`id` is required"))?;
    let store = state.store();
    let project = project_by_id(&store, &id)?;
    ok(json!({ "name": project["name"], "project": project }))
}

// === experiments ===

struct ExperimentSpec {
    project: Value,
    name: Option<String>,
    ensure_new: bool,
    body: Map<String, Value>,
    base_exp_id: Option<String>,
}

fn unique_name(
    store: &Store,
    parent: &str,
    kind: ObjectKind,
    base: &str,
) -> Result<String, ApiError> {
    let mut n = 1;
    loop {
        let candidate = format!("{base}-{n}");
        if store.object_by_name(kind, parent, &candidate)?.is_none() {
            return Ok(candidate);
        }
        n += 1;
    }
}

fn create_or_get_experiment(
    state: &AppState,
    store: &Store,
    spec: ExperimentSpec,
) -> Result<Value, ApiError> {
    let project_id = spec.project["id"].as_str().unwrap_or_default().to_owned();
    let kind = ObjectKind::Experiment;
    let name = match spec.name {
        Some(name) => {
            if let Some(existing) = store.object_by_name(kind, &project_id, &name)? {
                if !spec.ensure_new {
                    return Ok(existing);
                }
                unique_name(store, &project_id, kind, &name)?
            } else {
                name
            }
        }
        None => {
            let count = store.objects_of(kind, &project_id)?.len();
            let base = format!("experiment-{}", count + 1);
            match store.object_by_name(kind, &project_id, &base)? {
                None => base,
                Some(_) => unique_name(store, &project_id, kind, &base)?,
            }
        }
    };
    let b = &spec.body;
    let repo_info = opt_object(b, "repo_info")?;
    let id = new_uuid_v4();
    let experiment = json!({
        "id": id,
        "project_id": project_id,
        "name": name,
        "description": opt_str(b, "description")?,
        "created": now(),
        "repo_info": repo_info,
        "commit": repo_info.get("commit").cloned().unwrap_or(Value::Null),
        "base_exp_id": spec.base_exp_id,
        "deleted_at": null,
        "dataset_id": opt_str(b, "dataset_id")?,
        "dataset_version": b.get("dataset_version").cloned().unwrap_or(Value::Null),
        "parameters_id": opt_str(b, "parameters_id")?,
        "parameters_version": b.get("parameters_version").cloned().unwrap_or(Value::Null),
        "public": opt_bool(b, "public")?.unwrap_or(false),
        "user_id": state.settings.user_id,
        "metadata": opt_object(b, "metadata")?,
        "tags": opt_strings(b, "tags")?,
    });
    store.insert_object(kind, &id, &project_id, &name, &experiment)?;
    Ok(experiment)
}

pub(crate) async fn create_experiment(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body)?;
    let store = state.store();
    let project = resolve_project(&state, &store, &body, false)?;
    let spec = ExperimentSpec {
        project,
        name: opt_str(&body, "name")?,
        ensure_new: opt_bool(&body, "ensure_new")?.unwrap_or(false),
        base_exp_id: opt_str(&body, "base_exp_id")?,
        body,
    };
    ok(create_or_get_experiment(&state, &store, spec)?)
}

fn experiments_matching(
    state: &AppState,
    store: &Store,
    query: &Map<String, Value>,
) -> Result<Vec<Value>, ApiError> {
    check_org(state, query)?;
    let Some(project) = existing_project(state, store, query)? else {
        return Ok(Vec::new());
    };
    let project_id = project["id"].as_str().unwrap_or_default();
    let mut objects = store.objects_of(ObjectKind::Experiment, project_id)?;
    if let Some(name) = opt_str(query, "experiment_name")? {
        objects.retain(|e| e["name"] == name.as_str());
    }
    Ok(objects)
}

pub(crate) async fn list_experiments(
    State(state): State<Arc<AppState>>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let store = state.store();
    ok(json!({ "objects": experiments_matching(&state, &store, &query)? }))
}

pub(crate) async fn get_experiment(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = state.store();
    let experiment = store
        .object_by_id(ObjectKind::Experiment, &id)?
        .ok_or_else(|| ApiError::not_found(format!("experiment {id} not found")))?;
    ok(experiment)
}

pub(crate) async fn register_experiment(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body)?;
    check_org(&state, &body)?;
    let store = state.store();
    let project = resolve_project(&state, &store, &body, true)?;
    let project_id = project["id"].as_str().unwrap_or_default().to_owned();
    let base_exp_id = match (
        opt_str(&body, "base_exp_id")?,
        opt_str(&body, "base_experiment")?,
    ) {
        (Some(id), _) => Some(id),
        (None, Some(name)) => Some(
            store
                .object_by_name(ObjectKind::Experiment, &project_id, &name)?
                .and_then(|e| e["id"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("base experiment {name} not found"))
                })?,
        ),
        (None, None) => None,
    };
    let spec = ExperimentSpec {
        project: project.clone(),
        name: opt_str(&body, "experiment_name")?,
        ensure_new: !opt_bool(&body, "update")?.unwrap_or(false),
        base_exp_id,
        body,
    };
    let experiment = create_or_get_experiment(&state, &store, spec)?;
    ok(json!({ "project": project, "experiment": experiment }))
}

pub(crate) async fn legacy_get_experiments(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> ApiResult {
    let body = object_body(&body)?;
    let store = state.store();
    ok(Value::Array(experiments_matching(&state, &store, &body)?))
}

// === datasets ===

fn get_or_create_dataset(
    state: &AppState,
    store: &Store,
    project_id: &str,
    body: &Map<String, Value>,
    name_field: &str,
) -> Result<Value, ApiError> {
    let name = opt_str(body, name_field)?.unwrap_or_else(|| "logs".to_owned());
    if let Some(existing) = store.object_by_name(ObjectKind::Dataset, project_id, &name)? {
        return Ok(existing);
    }
    let id = new_uuid_v4();
    let dataset = json!({
        "id": id, "project_id": project_id, "name": name,
        "description": opt_str(body, "description")?, "created": now(), "deleted_at": null,
        "user_id": state.settings.user_id, "metadata": opt_object(body, "metadata")?,
    });
    store.insert_object(ObjectKind::Dataset, &id, project_id, &name, &dataset)?;
    Ok(dataset)
}

pub(crate) async fn create_dataset(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    let store = state.store();
    let project = resolve_project(&state, &store, &body, false)?;
    let project_id = project["id"].as_str().unwrap_or_default();
    ok(get_or_create_dataset(
        &state, &store, project_id, &body, "name",
    )?)
}

pub(crate) async fn list_datasets(
    State(state): State<Arc<AppState>>,
    query: RawQuery,
) -> ApiResult {
    let query = query_map(&query);
    let store = state.store();
    let Some(project) = existing_project(&state, &store, &query)? else {
        return ok(json!({ "objects": [] }));
    };
    let mut objects = store.objects_of(
        ObjectKind::Dataset,
        project["id"].as_str().unwrap_or_default(),
    )?;
    if let Some(name) = opt_str(&query, "dataset_name")? {
        objects.retain(|d| d["name"] == name.as_str());
    }
    ok(json!({ "objects": objects }))
}

pub(crate) async fn get_dataset(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = state.store();
    let dataset = store
        .object_by_id(ObjectKind::Dataset, &id)?
        .ok_or_else(|| ApiError::not_found(format!("dataset {id} not found")))?;
    ok(dataset)
}

pub(crate) async fn register_dataset(State(state): State<Arc<AppState>>, body: Bytes) -> ApiResult {
    let body = object_body(&body)?;
    check_org(&state, &body)?;
    let store = state.store();
    let project = resolve_project(&state, &store, &body, true)?;
    let project_id = project["id"].as_str().unwrap_or_default().to_owned();
    let dataset = get_or_create_dataset(&state, &store, &project_id, &body, "dataset_name")?;
    ok(json!({ "project": project, "dataset": dataset }))
}
