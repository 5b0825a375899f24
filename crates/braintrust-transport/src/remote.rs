//! What the background worker learns from the server, once: the organisation (login), project
//! ids (registration by name), and the `/logs3` payload limit (`GET /version`). Everything here
//! runs on the worker thread, so each lookup is naturally single-flight; results are cached and
//! failures are not (the next batch tries again).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use braintrust_core::object::ObjectIds;
use braintrust_core::span::ObjectRef;
use serde_json::{Value, json};

use crate::config::Config;
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

    /// Resolves a lazily named project (get-or-create by name through `POST /v1/project`).
    pub(crate) async fn resolve(&mut self, object: &ObjectRef) -> Result<(), RemoteError> {
        if object.ids().is_some() {
            return Ok(());
        }
        let Some(name) = object.project_name().map(str::to_owned) else {
            return Err(RemoteError::fatal(
                "the object has neither ids nor a project name".into(),
            ));
        };
        if let Some(id) = self.projects.get(&name) {
            object.set_ids(ObjectIds::project_logs(id.clone()));
            return Ok(());
        }
        let org = self.org().await?;
        let api_url = self.api_url().await?;
        let mut body = json!({"name": name, "org_name": org.org_name});
        if let Some(group) = object
            .lazy_args()
            .and_then(|a| a.get("project_group_name"))
            .filter(|g| g.is_string())
        {
            body["project_group_name"] = group.clone();
        }
        let request = self
            .request(Method::Post, format!("{api_url}/v1/project"))
            .header("Content-Type", "application/json")
            .body(body.to_string().into_bytes());
        let response = self.client.send(request).await.map_err(|e| RemoteError {
            message: format!("registering project {name:?}: {e}"),
            retryable: true,
        })?;
        let value = json_ok(&response).map_err(|e| RemoteError {
            message: format!("registering project {name:?}: {e}"),
            retryable: is_retryable(response.status),
        })?;
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RemoteError::fatal(format!(
                    "registering project {name:?}: the response has no `id`"
                ))
            })?
            .to_owned();
        self.projects.insert(name, id.clone());
        object.set_ids(ObjectIds::project_logs(id));
        Ok(())
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
