//! Login: exchanges the API key for the organisation's id, name and URLs.

use braintrust_core::env_file::EnvLookup;
use serde_json::Value;

use crate::config::{Config, ConfigError, DEFAULT_API_URL, TEST_API_KEY, mask_api_key};
use crate::http::{HttpClient, HttpError, HttpOptions, HyperClient, Method};

/// The organisation the SDK works in, as login established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgState {
    /// The organisation's id.
    pub org_id: String,
    /// The organisation's name.
    pub org_name: String,
    /// Where `/v1`, `/logs3`, `/btql` and friends live.
    pub api_url: String,
    /// Where `/function/invoke` goes.
    pub proxy_url: String,
    /// The organisation's git metadata setting, as sent (`{collect, fields}`), if any.
    pub git_metadata: Option<Value>,
}

/// Why login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No API key anywhere.
    #[error(
        "no Braintrust API key: pass one explicitly, set BRAINTRUST_API_KEY, or add BRAINTRUST_API_KEY to a .env.braintrust file"
    )]
    MissingApiKey,
    /// The server rejected the key.
    #[error("Invalid API key {masked_key}: [{status}] {body}")]
    InvalidApiKey {
        /// The key with all but two characters at each end hidden.
        masked_key: String,
        /// The HTTP status.
        status: u16,
        /// The response body.
        body: String,
    },
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request failed.
    #[error("login request failed: {0}")]
    Http(#[from] HttpError),
    /// The response was not the expected JSON.
    #[error("unexpected login response: {0}")]
    InvalidResponse(String),
    /// The key belongs to no organisation.
    #[error("This user is not part of any organizations.")]
    NoOrganizations,
    /// The configured organisation is not among the key's.
    #[error("Organization {name} not found. Must be one of {available}")]
    OrgNotFound {
        /// The configured name.
        name: String,
        /// The key's organisations, comma-separated.
        available: String,
    },
    /// Neither the configuration nor the organisation gives an API URL.
    #[error(
        "Unable to log into organization '{0}'. Are you sure this credential is scoped to the organization?"
    )]
    NoApiUrl(String),
}

/// Logs in with the configured key (`POST {app_url}/api/apikey/login`) and picks the organisation:
/// the configured `org_name`, else the first. `BRAINTRUST_API_URL`/`_PROXY_URL` win over the URLs
/// the organisation gives. The test key skips the network.
pub async fn login(http: &dyn HttpClient, config: &Config) -> Result<OrgState, LoginError> {
    let key = config.api_key.as_deref().ok_or(LoginError::MissingApiKey)?;
    if key == TEST_API_KEY {
        let api_url = config
            .api_url
            .clone()
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        return Ok(OrgState {
            org_id: "test-org-id".into(),
            org_name: "test-org-name".into(),
            proxy_url: config.proxy_url.clone().unwrap_or_else(|| api_url.clone()),
            api_url,
            git_metadata: None,
        });
    }
    let request = crate::remote::api_request(
        Method::Post,
        format!("{}/api/apikey/login", config.app_url),
        key,
    )
    .header("Content-Type", "application/json");
    let response = http.send(request).await?;
    if !(200..300).contains(&response.status) {
        return Err(LoginError::InvalidApiKey {
            masked_key: mask_api_key(key),
            status: response.status,
            body: response.text(),
        });
    }
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| LoginError::InvalidResponse(e.to_string()))?;
    let orgs = body
        .get("org_info")
        .and_then(Value::as_array)
        .ok_or_else(|| LoginError::InvalidResponse("missing `org_info`".into()))?;
    if orgs.is_empty() {
        return Err(LoginError::NoOrganizations);
    }
    let org = match &config.org_name {
        Some(name) => orgs
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| LoginError::OrgNotFound {
                name: name.clone(),
                available: orgs
                    .iter()
                    .filter_map(|o| o.get("name").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        None => &orgs[0],
    };
    let field = |k: &str| {
        org.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('/').to_owned())
    };
    let org_name = field("name").unwrap_or_default();
    let api_url = config
        .api_url
        .clone()
        .or_else(|| field("api_url"))
        .ok_or_else(|| LoginError::NoApiUrl(org_name.clone()))?;
    let proxy_url = config
        .proxy_url
        .clone()
        .or_else(|| field("proxy_url").map(|u| u.trim_end_matches("/v1/proxy").to_owned()))
        .unwrap_or_else(|| api_url.clone());
    Ok(OrgState {
        org_id: field("id")
            .ok_or_else(|| LoginError::InvalidResponse("organisation without `id`".into()))?,
        org_name,
        api_url,
        proxy_url,
        git_metadata: org.get("git_metadata").filter(|g| !g.is_null()).cloned(),
    })
}

/// Options of [`login_blocking`] and [`login_async`]; unset values come from the environment.
/// `Debug` shows the API key masked.
#[derive(Clone, Default)]
pub struct LoginOptions {
    /// The API key.
    pub api_key: Option<String>,
    /// The app URL.
    pub app_url: Option<String>,
    /// The API URL (wins over the one login returns).
    pub api_url: Option<String>,
    /// The organisation to select.
    pub org_name: Option<String>,
    /// Where to read settings instead of the process environment.
    pub env: Option<EnvLookup>,
    /// Settings of the HTTP client (proxy, extra root certificates, timeouts); an explicit
    /// request timeout wins over `BRAINTRUST_HTTP_TIMEOUT`.
    pub http: Option<HttpOptions>,
}

impl std::fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOptions")
            .field("api_key", &self.api_key.as_deref().map(mask_api_key))
            .field("app_url", &self.app_url)
            .field("api_url", &self.api_url)
            .field("org_name", &self.org_name)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl LoginOptions {
    pub(crate) fn into_config(self, lookup: &EnvLookup) -> Result<Config, LoginError> {
        let mut config = Config::from_lookup(lookup)?;
        let url = |u: String| u.trim().trim_end_matches('/').to_owned();
        config.api_key = self.api_key.or(config.api_key);
        config.app_url = self.app_url.map_or(config.app_url, url);
        config.api_url = self.api_url.map(url).or(config.api_url);
        config.org_name = self.org_name.or(config.org_name);
        Ok(config)
    }
}

/// Logs in with the default HTTP client and returns the organisation. Loggers log in by
/// themselves in the background; call this to check credentials up front.
pub async fn login_async(options: LoginOptions) -> Result<OrgState, LoginError> {
    let explicit_http = options.http.clone();
    let lookup = options.env.clone().unwrap_or_else(EnvLookup::process);
    let config = options.into_config(&lookup)?;
    let http = explicit_http.unwrap_or_else(|| config.http_options());
    let client = HyperClient::with_env(http, |name| lookup.get(name))?;
    login(&client, &config).await
}

/// [`login_async`] for synchronous code: runs on a helper thread with its own runtime, so it is
/// safe to call from inside an async runtime too (it blocks the calling thread).
pub fn login_blocking(options: LoginOptions) -> Result<OrgState, LoginError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| HttpError::Connection(format!("cannot start a runtime: {e}")))?;
                runtime.block_on(login_async(options))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(LoginError::InvalidResponse(
                    "the login thread panicked".into(),
                ))
            })
    })
}
