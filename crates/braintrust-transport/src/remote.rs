//! What the background worker learns from the server, once: the organisation (login), project
//! ids (registration by name), and the `/logs3` payload limit (`GET /version`). Everything here
//! runs on the worker thread, so each lookup is naturally single-flight; results are cached and
//! failures are not (the next batch tries again).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use braintrust_core::object::{ObjectIds, ObjectType};
use braintrust_core::span::ObjectRef;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::git::{GitMetadataSettings, ancestor_commits, collect_repo_info};
use crate::http::{HttpClient, HttpRequest, HttpResponse, Method};
use crate::login::{OrgState, login};

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("braintrust-rust/", env!("CARGO_PKG_VERSION"));

/// A request to the Braintrust API: `Authorization: Bearer <key>` and our `User-Agent`.
pub(crate) fn api_request(method: Method, url: String, api_key: &str) -> HttpRequest {
    HttpRequest::new(method, url)
        .header("Authorization", format!("Bearer {api_key}"))
        .header("User-Agent", USER_AGENT)
}

/// Default request size limit when the server advertises none.
pub(crate) const DEFAULT_MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// The `/logs3` size limit and whether the overflow path may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PayloadLimit {
    pub(crate) max_bytes: usize,
    pub(crate) overflow: bool,
}

/// Why a lookup failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub(crate) struct RemoteError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl RemoteError {
    fn fatal(message: String) -> RemoteError {
        RemoteError {
            message,
            retryable: false,
        }
    }
}

impl From<crate::login::LoginError> for RemoteError {
    fn from(e: crate::login::LoginError) -> RemoteError {
        use crate::login::LoginError;
        let retryable = match &e {
            LoginError::Http(_) => true,
            LoginError::InvalidApiKey { status, .. } => is_retryable(*status),
            _ => false,
        };
        RemoteError {
            message: e.to_string(),
            retryable,
        }
    }
}

/// Longest exponential backoff between two attempts.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// The delay before retry number `attempt` (from 0): `base` doubled per attempt, capped at 10 s.
pub(crate) fn backoff(base: std::time::Duration, attempt: u32) -> std::time::Duration {
    (base * 2u32.saturating_pow(attempt.min(16))).min(MAX_BACKOFF)
}

/// A `PUT` of `body` to a signed URL: no API key, the headers the signing answer gave, and the
/// `x-ms-blob-type: BlockBlob` header Azure Blob Storage requires.
pub(crate) fn signed_put(
    url: &str,
    headers: impl IntoIterator<Item = (String, String)>,
    body: impl Into<crate::http::RequestBody>,
) -> HttpRequest {
    let mut request = HttpRequest::new(Method::Put, url).header("User-Agent", USER_AGENT);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if is_azure_blob(url) {
        request = request.header("x-ms-blob-type", "BlockBlob");
    }
    request.body(body)
}

/// Whether a signed URL points at Azure Blob Storage (`*.blob.core.windows.net`).
pub(crate) fn is_azure_blob(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next().unwrap_or_default();
    host.to_ascii_lowercase()
        .ends_with(".blob.core.windows.net")
}

/// 408, 429 and 5xx are worth retrying; other statuses (413 and 4xx) are not.
pub(crate) fn is_retryable(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Server facts cached by the worker.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) client: Arc<dyn HttpClient>,
    pub(crate) config: Config,
    /// Shared with the logger (permalinks read it without asking the worker).
    pub(crate) org: Arc<OnceLock<OrgState>>,
    projects: HashMap<String, String>,
    limit: Option<PayloadLimit>,
}

impl Remote {
    pub(crate) fn new(
        client: Arc<dyn HttpClient>,
        config: Config,
        org: Arc<OnceLock<OrgState>>,
    ) -> Remote {
        Remote {
            client,
            config,
            org,
            projects: HashMap::new(),
            limit: None,
        }
    }

    pub(crate) fn api_key(&self) -> &str {
        self.config.api_key.as_deref().unwrap_or_default()
    }

    /// A request with the API key and our user agent.
    pub(crate) fn request(&self, method: Method, url: String) -> HttpRequest {
        api_request(method, url, self.api_key())
    }

    /// The organisation, logging in on first use.
    pub(crate) async fn org(&mut self) -> Result<OrgState, RemoteError> {
        if let Some(org) = self.org.get() {
            return Ok(org.clone());
        }
        let org = login(self.client.as_ref(), &self.config).await?;
        let _ = self.org.set(org.clone());
        Ok(org)
    }

    /// The API URL: configured, else from login.
    pub(crate) async fn api_url(&mut self) -> Result<String, RemoteError> {
        match &self.config.api_url {
            Some(url) => Ok(url.clone()),
            None => Ok(self.org().await?.api_url),
        }
    }

    /// Resolves a lazily named object: project logs by project name (get-or-create through
    /// `POST /v1/project`); experiments and datasets by registering them (`POST /v1/experiment`,
    /// `POST /v1/dataset`) in their project.
    pub(crate) async fn resolve(&mut self, object: &ObjectRef) -> Result<(), RemoteError> {
        if object.ids().is_some() {
            return Ok(());
        }
        let Some(args) = object.lazy_args().cloned() else {
            return Err(RemoteError::fatal(
                "the object has neither ids nor a project name".into(),
            ));
        };
        match object.object_type() {
            ObjectType::ProjectLogs | ObjectType::PlaygroundLogs => {
                let id = self.project_id(&args).await?;
                object.set_ids(ObjectIds::project_logs(id));
            }
            ObjectType::Experiment => {
                let registered = self.register_experiment(args).await?;
                set_registered(object, registered, ObjectIds::experiment)?;
            }
            ObjectType::Dataset => {
                let project_id = self.project_id(&args).await?;
                let mut body = Map::new();
                body.insert("project_id".into(), Value::String(project_id));
                for key in ["name", "description", "metadata"] {
                    if let Some(v) = args.get(key).filter(|v| !v.is_null()) {
                        body.insert(key.into(), v.clone());
                    }
                }
                let registered = self.post_object("dataset", Value::Object(body)).await?;
                set_registered(object, registered, ObjectIds::dataset)?;
            }
        }
        Ok(())
    }

    /// The id of the project `args` names: its `project_id`, else its `project_name`
    /// registered get-or-create (cached).
    async fn project_id(&mut self, args: &Map<String, Value>) -> Result<String, RemoteError> {
        if let Some(id) = args.get("project_id").and_then(Value::as_str) {
            return Ok(id.to_owned());
        }
        let Some(name) = args.get("project_name").and_then(Value::as_str) else {
            return Err(RemoteError::fatal(
                "the object has neither a project id nor a project name".into(),
            ));
        };
        if let Some(id) = self.projects.get(name) {
            return Ok(id.clone());
        }
        let org = self.org().await?;
        let mut body = json!({"name": name, "org_name": org.org_name});
        if let Some(group) = args.get("project_group_name").filter(|g| g.is_string()) {
            body["project_group_name"] = group.clone();
        }
        let project = self
            .post_object("project", body)
            .await
            .map_err(|e| RemoteError {
                message: format!("registering project {name:?}: {}", e.message),
                retryable: e.retryable,
            })?;
        let id = project
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RemoteError::fatal(format!(
                    "registering project {name:?}: the response has no `id`"
                ))
            })?
            .to_owned();
        self.projects.insert(name.to_owned(), id.clone());
        Ok(id)
    }

    /// `POST /v1/experiment` with the registration request, after resolving its project and
    /// a base experiment given by name.
    async fn register_experiment(
        &mut self,
        args: Map<String, Value>,
    ) -> Result<Map<String, Value>, RemoteError> {
        let project_id = self.project_id(&args).await?;
        let mut body = args;
        body.remove("project_name");
        body.remove("project_group_name");
        body.insert("project_id".into(), Value::String(project_id.clone()));
        let call_git = body
            .remove("git_metadata_settings")
            .and_then(|v| GitMetadataSettings::from_json(&v));
        let dir = std::env::current_dir().unwrap_or_default();
        if body.get("repo_info").is_none_or(Value::is_null) {
            let org = self.org().await?;
            let org_git = org
                .git_metadata
                .as_ref()
                .and_then(GitMetadataSettings::from_json);
            let settings = GitMetadataSettings::merge(call_git.as_ref(), org_git.as_ref());
            if let Some(info) = collect_repo_info(&dir, &settings) {
                body.insert("repo_info".into(), json!(info));
            }
        }
        let has_base = body.get("base_exp_id").is_some_and(Value::is_string)
            || body.get("base_experiment").is_some_and(Value::is_string);
        if !has_base {
            body.insert("ancestor_commits".into(), json!(ancestor_commits(&dir)));
        }
        if let Some(Value::String(base)) = body.remove("base_experiment") {
            match self.experiment_named(&project_id, &base).await? {
                Some(id) => {
                    body.insert("base_exp_id".into(), Value::String(id));
                }
                None => tracing::warn!(
                    "braintrust: base experiment {base:?} not found; comparing with the default"
                ),
            }
        }
        body.retain(|_, v| !v.is_null());
        self.post_object("experiment", Value::Object(body)).await
    }

    /// The id of the experiment called `name` in a project, if there is one.
    async fn experiment_named(
        &mut self,
        project_id: &str,
        name: &str,
    ) -> Result<Option<String>, RemoteError> {
        let org = self.org().await?;
        let api_url = self.api_url().await?;
        let query = [
            ("experiment_name", name),
            ("project_id", project_id),
            ("org_name", org.org_name.as_str()),
        ];
        let url = format!("{api_url}/v1/experiment?{}", encode_query(&query));
        let response = self
            .client
            .send(self.request(Method::Get, url))
            .await
            .map_err(|e| RemoteError {
                message: format!("looking up experiment {name:?}: {e}"),
                retryable: true,
            })?;
        let value = json_ok(&response).map_err(|e| RemoteError {
            message: format!("looking up experiment {name:?}: {e}"),
            retryable: is_retryable(response.status),
        })?;
        Ok(value
            .get("objects")
            .and_then(Value::as_array)
            .and_then(|objects| objects.first())
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// `POST /v1/{kind}` with a JSON body; the object the server answers with.
    async fn post_object(
        &mut self,
        kind: &str,
        body: Value,
    ) -> Result<Map<String, Value>, RemoteError> {
        let api_url = self.api_url().await?;
        let request = self
            .request(Method::Post, format!("{api_url}/v1/{kind}"))
            .header("Content-Type", "application/json")
            .body(body.to_string().into_bytes());
        let response = self.client.send(request).await.map_err(|e| RemoteError {
            message: format!("registering the {kind}: {e}"),
            retryable: true,
        })?;
        match json_ok(&response) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(RemoteError::fatal(format!(
                "registering the {kind}: the response is not an object"
            ))),
            Err(e) => Err(RemoteError {
                message: format!("registering the {kind}: {e}"),
                retryable: is_retryable(response.status),
            }),
        }
    }

    /// The payload limit: `GET /version` once; on any failure 6 MiB (or the configured size)
    /// without overflow.
    pub(crate) async fn payload_limit(&mut self, api_url: &str) -> PayloadLimit {
        if let Some(limit) = self.limit {
            return limit;
        }
        let configured = self.config.max_request_size;
        let request = self.request(Method::Get, format!("{api_url}/version"));
        let server = match self.client.send(request).await {
            Ok(response) => json_ok(&response)
                .ok()
                .and_then(|v| v.get("logs3_payload_max_bytes").and_then(Value::as_u64))
                .filter(|n| *n > 0),
            Err(e) => {
                tracing::debug!("braintrust: GET /version failed: {e}");
                None
            }
        };
        let limit = match server {
            Some(server) => PayloadLimit {
                max_bytes: configured.map_or(server as usize, |c| c.min(server as usize)),
                overflow: true,
            },
            None => PayloadLimit {
                max_bytes: configured.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
                overflow: false,
            },
        };
        self.limit = Some(limit);
        limit
    }
}

/// Records a registered object's ids (from its `id`) and the server's description of it.
fn set_registered(
    object: &ObjectRef,
    registered: Map<String, Value>,
    ids: fn(String) -> ObjectIds,
) -> Result<(), RemoteError> {
    let id = registered
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| RemoteError::fatal("the registration response has no `id`".into()))?
        .to_owned();
    object.set_registration(registered);
    object.set_ids(ids(id));
    Ok(())
}

/// `k=v&…` with RFC 3986 escaping.
fn encode_query(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The JSON body of a 2xx response, or an error naming the status and body.
pub(crate) fn json_ok(response: &HttpResponse) -> Result<Value, String> {
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "HTTP {}: {}",
            response.status,
            truncate(&response.text(), 500)
        ));
    }
    serde_json::from_slice(&response.body).map_err(|e| format!("invalid JSON response: {e}"))
}

/// At most `max` characters of `text`.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_hosts_are_recognised_by_host_only() {
        assert!(is_azure_blob(
            "https://acct.blob.core.windows.net/c/key?sig=1"
        ));
        assert!(is_azure_blob("https://ACCT.BLOB.CORE.WINDOWS.NET:443/c"));
        assert!(!is_azure_blob(
            "https://s3.amazonaws.com/b/k?x=blob.core.windows.net"
        ));
        assert!(!is_azure_blob("http://127.0.0.1:9000/objstore/k"));
    }

    #[test]
    fn signed_puts_carry_the_signed_headers_and_no_api_key() {
        let headers = |r: &HttpRequest| -> Vec<String> {
            r.headers
                .iter()
                .map(|(k, _)| k.to_ascii_lowercase())
                .collect()
        };
        let plain = signed_put(
            "http://h/k",
            [("x-a".to_owned(), "1".to_owned())],
            &b"x"[..],
        );
        assert_eq!(headers(&plain), ["user-agent", "x-a"]);
        let azure = signed_put("https://a.blob.core.windows.net/c", [], &b"x"[..]);
        assert!(headers(&azure).contains(&"x-ms-blob-type".to_owned()));
        assert_eq!(&*azure.body, b"x");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = std::time::Duration::from_millis(500);
        assert_eq!(backoff(base, 0), base);
        assert_eq!(backoff(base, 2), base * 4);
        assert_eq!(backoff(base, 40), std::time::Duration::from_secs(10));
    }
}
