//! Function handles ([`init_function`]) and lookups of functions and prompt versions.

use braintrust_transport::api::{ApiClient, ApiError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{InvokeError, PromptError};
use crate::invoke::{Invoke, InvokeStream};

/// A handle on a function stored in Braintrust (`project` + `slug`, optionally pinned to a
/// version). Nothing is sent until it is called. Use it directly, as an eval task
/// ([`Function::invoke`] with the case input) or as an eval scorer ([`Function::score`]).
#[derive(Debug, Clone)]
pub struct Function {
    project_name: String,
    slug: String,
    version: Option<String>,
    client: Option<ApiClient>,
}

/// A handle on the function `slug` of the project named `project_name`.
pub fn init_function(project_name: impl Into<String>, slug: impl Into<String>) -> Function {
    Function {
        project_name: project_name.into(),
        slug: slug.into(),
        version: None,
        client: None,
    }
}

/// What a scorer function receives: `{input, output, expected, metadata}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScorerInput {
    /// The case's input.
    pub input: Value,
    /// The task's output.
    pub output: Value,
    /// The expected output, if any.
    pub expected: Value,
    /// The case's metadata, if any.
    pub metadata: Value,
}

impl Function {
    /// Pins a version.
    pub fn version(mut self, version: impl Into<String>) -> Function {
        self.version = Some(version.into());
        self
    }

    /// Sends through this client (default: [`ApiClient::shared`]).
    pub fn client(mut self, client: ApiClient) -> Function {
        self.client = Some(client);
        self
    }

    /// The project name.
    pub fn project_name(&self) -> &str {
        &self.project_name
    }

    /// The slug.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// An [`Invoke`] of this function, to add messages, metadata, a parent, … before calling.
    pub fn invocation(&self) -> Invoke {
        let mut invoke = Invoke::slug(&self.project_name, &self.slug);
        if let Some(version) = &self.version {
            invoke = invoke.version(version);
        }
        if let Some(client) = &self.client {
            invoke = invoke.client(client.clone());
        }
        invoke
    }

    /// Runs the function with `input` and returns its output (as an eval task: the case's
    /// input goes in as is).
    pub async fn invoke(&self, input: impl Serialize) -> Result<Value, InvokeError> {
        self.invocation().input(input).call().await
    }

    /// Runs the function with `input`, streaming its output.
    pub async fn stream(&self, input: impl Serialize) -> Result<InvokeStream, InvokeError> {
        self.invocation().input(input).stream().await
    }

    /// Runs the function as a scorer: its input is `{input, output, expected, metadata}`;
    /// the result is the scorer's output (a number, or a score object).
    pub async fn score(&self, args: &ScorerInput) -> Result<Value, InvokeError> {
        self.invocation().input(args).call().await
    }
}

/// A function as `GET /v1/function` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionInfo {
    /// The whole row.
    pub row: Value,
}

impl FunctionInfo {
    fn text(&self, key: &str) -> Option<&str> {
        self.row.get(key).and_then(Value::as_str)
    }

    /// The id.
    pub fn id(&self) -> &str {
        self.text("id").unwrap_or_default()
    }

    /// The slug.
    pub fn slug(&self) -> Option<&str> {
        self.text("slug")
    }

    /// The version (`_xact_id`).
    pub fn version(&self) -> Option<&str> {
        self.text("_xact_id")
    }

    /// `prompt`, `tool`, `scorer`, `task`, `llm`, … (absent for plain prompts).
    pub fn function_type(&self) -> Option<&str> {
        self.text("function_type")
    }
}

/// Looks a function up by id (`GET /v1/function/{id}`), optionally at a version.
pub async fn get_function(
    client: &ApiClient,
    id: &str,
    version: Option<&str>,
) -> Result<FunctionInfo, PromptError> {
    let query: Vec<(&str, &str)> = version.map(|v| ("version", v)).into_iter().collect();
    let path = format!(
        "/v1/function/{}",
        braintrust_transport::api::path_segment(id)
    );
    match client.get_json(&path, &query).await {
        Ok(row) => Ok(FunctionInfo { row }),
        Err(ApiError::Status { status: 404, .. }) => {
            Err(PromptError::NotFound(format!("function {id}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Looks a function up by project name and slug (`GET /v1/function?project_name=&slug=`).
pub async fn find_function(
    client: &ApiClient,
    project_name: &str,
    slug: &str,
    version: Option<&str>,
) -> Result<FunctionInfo, PromptError> {
    let mut query = vec![("project_name", project_name), ("slug", slug)];
    if let Some(version) = version {
        query.push(("version", version));
    }
    let answer = client.get_json("/v1/function", &query).await?;
    let described = format!("function {project_name}/{slug}");
    match answer.get("objects").and_then(Value::as_array) {
        Some(rows) if rows.len() == 1 => Ok(FunctionInfo {
            row: rows[0].clone(),
        }),
        Some(rows) if rows.is_empty() => Err(PromptError::NotFound(described)),
        Some(rows) => Err(PromptError::Ambiguous(format!(
            "{described} matches {} functions",
            rows.len()
        ))),
        None => Err(PromptError::InvalidRow("`objects` is missing".into())),
    }
}

/// The versions (`_xact_id`s, oldest first) of a prompt, from its audit log (a BTQL query on
/// `project_prompts`, as the official SDKs do). Each loads with [`LoadPrompt::version`].
///
/// [`LoadPrompt::version`]: crate::LoadPrompt::version
pub async fn get_prompt_versions(
    client: &ApiClient,
    project_id: &str,
    prompt_id: &str,
) -> Result<Vec<String>, PromptError> {
    let query = json!({
        "from": {"op": "function", "name": {"op": "ident", "name": ["project_prompts"]},
                 "args": [{"op": "literal", "value": project_id}]},
        "select": [{"op": "star"}],
        "filter": {"op": "eq", "left": {"op": "ident", "name": ["id"]},
                   "right": {"op": "literal", "value": prompt_id}},
    });
    let body = json!({"query": query, "audit_log": true, "use_columnstore": false});
    let answer = client
        .post_json(braintrust_transport::api::Host::Api, "/btql", &body, &[])
        .await?;
    let rows = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| PromptError::InvalidRow("the BTQL answer has no `data` list".into()))?;
    let mut versions: Vec<String> = rows
        .iter()
        .filter(|row| {
            row.pointer("/audit_data/action")
                .and_then(Value::as_str)
                .is_none_or(|action| action == "upsert")
        })
        .filter_map(|row| {
            row.get("_xact_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    versions.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    versions.dedup();
    Ok(versions)
}
