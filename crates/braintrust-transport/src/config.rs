//! Configuration: explicit option > non-blank environment variable > `.env.braintrust`
//! (allow-listed keys) > default. Build a [`Config`] from the environment, then set fields for
//! explicit options.

use std::path::PathBuf;
use std::time::Duration;

use braintrust_core::env_file::{EnvLookup, parse_bool};

use crate::background::DEFAULT_BACKGROUND_NICE;

/// Default app URL.
pub const DEFAULT_APP_URL: &str = "https://www.braintrust.dev";
/// API URL used when login gives none.
pub const DEFAULT_API_URL: &str = "https://api.braintrust.dev";
/// The special key that skips login (org `test-org-name`).
pub const TEST_API_KEY: &str = "___TEST_API_KEY__";

/// SDK settings.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// `BRAINTRUST_API_KEY`.
    pub api_key: Option<String>,
    /// `BRAINTRUST_APP_URL`.
    pub app_url: String,
    /// `BRAINTRUST_APP_PUBLIC_URL` (defaults to the app URL): the base of permalinks.
    pub app_public_url: String,
    /// `BRAINTRUST_API_URL`: wins over the URL login returns.
    pub api_url: Option<String>,
    /// `BRAINTRUST_PROXY_URL`: wins over the URL login returns.
    pub proxy_url: Option<String>,
    /// `BRAINTRUST_ORG_NAME`: which organisation to use.
    pub org_name: Option<String>,
    /// `BRAINTRUST_PROJECT`: the default project name.
    pub project: Option<String>,
    /// `BRAINTRUST_PROJECT_ID`: the default project id (wins over the name).
    pub project_id: Option<String>,
    /// `BRAINTRUST_DEFAULT_BATCH_SIZE` (100).
    pub batch_size: usize,
    /// `BRAINTRUST_MAX_REQUEST_SIZE` (unset: the server's limit or 6 MiB).
    pub max_request_size: Option<usize>,
    /// `BRAINTRUST_NUM_RETRIES` (2).
    pub num_retries: u32,
    /// `BRAINTRUST_QUEUE_SIZE` (25,000).
    pub queue_size: usize,
    /// `BRAINTRUST_QUEUE_DROP_LOGGING_PERIOD` (60 s).
    pub queue_drop_logging_period: Duration,
    /// `BRAINTRUST_SYNC_FLUSH` (false): flushes report errors synchronously.
    pub sync_flush: bool,
    /// `BRAINTRUST_DISABLE_ATEXIT_FLUSH` (false).
    pub disable_atexit_flush: bool,
    /// `BRAINTRUST_FAILED_PUBLISH_PAYLOADS_DIR`.
    pub failed_payloads_dir: Option<PathBuf>,
    /// `BRAINTRUST_ALL_PUBLISH_PAYLOADS_DIR`.
    pub all_payloads_dir: Option<PathBuf>,
    /// `BRAINTRUST_HTTP_TIMEOUT` in seconds (unset: 60 s).
    pub http_timeout: Option<Duration>,
    /// `BRAINTRUST_PROMPT_CACHE_DIR` (unset: `~/.braintrust/prompt_cache`; `None` when there
    /// is no home directory either).
    pub prompt_cache_dir: Option<PathBuf>,
    /// `BRAINTRUST_PROMPT_CACHE_MEMORY_MAX_SIZE`: prompts kept in memory (default 1024).
    pub prompt_cache_memory_max: usize,
    /// `BRAINTRUST_PROMPT_CACHE_DISK_MAX_SIZE`: prompts kept on disk (default 1048576).
    pub prompt_cache_disk_max: usize,
    /// `BRAINTRUST_BACKGROUND_NICE` (10): how many nice levels below the thread that starts a
    /// logger, experiment or dataset its background threads run (Linux; 0 keeps them level
    /// with it). See [`crate::background`].
    pub background_nice: u8,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &self.api_key.as_deref().map(mask_api_key))
            .field("app_url", &self.app_url)
            .field("api_url", &self.api_url)
            .field("org_name", &self.org_name)
            .field("project", &self.project)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// A setting whose value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {variable}: expected {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What it must be.
    pub expected: &'static str,
}

impl Default for Config {
    /// The defaults, as with an empty environment.
    fn default() -> Config {
        Config {
            api_key: None,
            app_url: DEFAULT_APP_URL.to_owned(),
            app_public_url: DEFAULT_APP_URL.to_owned(),
            api_url: None,
            proxy_url: None,
            org_name: None,
            project: None,
            project_id: None,
            batch_size: 100,
            max_request_size: None,
            num_retries: 2,
            queue_size: 25_000,
            queue_drop_logging_period: Duration::from_secs(60),
            sync_flush: false,
            disable_atexit_flush: false,
            failed_payloads_dir: None,
            all_payloads_dir: None,
            http_timeout: None,
            prompt_cache_dir: default_prompt_cache_dir(),
            prompt_cache_memory_max: 1024,
            prompt_cache_disk_max: 1 << 20,
            background_nice: DEFAULT_BACKGROUND_NICE,
        }
    }
}

/// `~/.braintrust/prompt_cache`, if there is a home directory.
fn default_prompt_cache_dir() -> Option<PathBuf> {
    std::env::home_dir()
        .filter(|home| !home.as_os_str().is_empty())
        .map(|home| home.join(".braintrust").join("prompt_cache"))
}

impl Config {
    /// Settings of the default HTTP client: the defaults, with `BRAINTRUST_HTTP_TIMEOUT` as the
    /// request timeout when set.
    pub fn http_options(&self) -> crate::http::HttpOptions {
        let mut http = crate::http::HttpOptions::default();
        if let Some(timeout) = self.http_timeout {
            http.request_timeout = timeout;
        }
        http
    }

    /// Settings from the process environment and the nearest `.env.braintrust`.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(&EnvLookup::process())
    }

    /// Settings from a lookup (see [`EnvLookup`]).
    pub fn from_lookup(lookup: &EnvLookup) -> Result<Config, ConfigError> {
        let text = |name: &str| lookup.get(name).map(|v| v.trim().to_owned());
        let url = |name: &str| text(name).map(|v| v.trim_end_matches('/').to_owned());
        let app_url = url("BRAINTRUST_APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.to_owned());
        Ok(Config {
            api_key: text("BRAINTRUST_API_KEY"),
            app_public_url: url("BRAINTRUST_APP_PUBLIC_URL").unwrap_or_else(|| app_url.clone()),
            app_url,
            api_url: url("BRAINTRUST_API_URL"),
            proxy_url: url("BRAINTRUST_PROXY_URL"),
            org_name: text("BRAINTRUST_ORG_NAME"),
            project: text("BRAINTRUST_PROJECT"),
            project_id: text("BRAINTRUST_PROJECT_ID"),
            batch_size: number(lookup, "BRAINTRUST_DEFAULT_BATCH_SIZE", 1)?.unwrap_or(100),
            max_request_size: number(lookup, "BRAINTRUST_MAX_REQUEST_SIZE", 1)?,
            num_retries: number(lookup, "BRAINTRUST_NUM_RETRIES", 0)?
                .map_or(2, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            queue_size: number(lookup, "BRAINTRUST_QUEUE_SIZE", 1)?.unwrap_or(25_000),
            queue_drop_logging_period: Duration::from_secs(
                number(lookup, "BRAINTRUST_QUEUE_DROP_LOGGING_PERIOD", 0)?.unwrap_or(60) as u64,
            ),
            sync_flush: flag(lookup, "BRAINTRUST_SYNC_FLUSH")?,
            disable_atexit_flush: flag(lookup, "BRAINTRUST_DISABLE_ATEXIT_FLUSH")?,
            failed_payloads_dir: text("BRAINTRUST_FAILED_PUBLISH_PAYLOADS_DIR").map(PathBuf::from),
            all_payloads_dir: text("BRAINTRUST_ALL_PUBLISH_PAYLOADS_DIR").map(PathBuf::from),
            http_timeout: seconds(lookup, "BRAINTRUST_HTTP_TIMEOUT")?,
            prompt_cache_dir: text("BRAINTRUST_PROMPT_CACHE_DIR")
                .map(PathBuf::from)
                .or_else(default_prompt_cache_dir),
            prompt_cache_memory_max: number(lookup, "BRAINTRUST_PROMPT_CACHE_MEMORY_MAX_SIZE", 0)?
                .unwrap_or(1024),
            prompt_cache_disk_max: number(lookup, "BRAINTRUST_PROMPT_CACHE_DISK_MAX_SIZE", 0)?
                .unwrap_or(1 << 20),
            background_nice: match number(lookup, "BRAINTRUST_BACKGROUND_NICE", 0)? {
                Some(steps) => u8::try_from(steps).unwrap_or(u8::MAX),
                None => DEFAULT_BACKGROUND_NICE,
            },
        })
    }
}

fn number(
    lookup: &EnvLookup,
    name: &'static str,
    min: usize,
) -> Result<Option<usize>, ConfigError> {
    let Some(value) = lookup.get(name) else {
        return Ok(None);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(ConfigError {
            variable: name,
            expected: if min == 0 {
                "a whole number"
            } else {
                "a positive whole number"
            },
        }),
    }
}

fn flag(lookup: &EnvLookup, name: &'static str) -> Result<bool, ConfigError> {
    match lookup.get(name) {
        None => Ok(false),
        Some(v) => parse_bool(&v).ok_or(ConfigError {
            variable: name,
            expected: "true/false (also 1/0, yes/no, on/off)",
        }),
    }
}

fn seconds(lookup: &EnvLookup, name: &'static str) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = lookup.get(name) else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(ConfigError {
            variable: name,
            expected: "a positive number of seconds",
        }),
    }
}

/// An API key as it may appear in messages: its first and last two characters only.
pub fn mask_api_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 4 {
        return "**...**".to_owned();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}**...**{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_lookup(&EnvLookup::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.app_url, DEFAULT_APP_URL);
        assert_eq!(c.app_public_url, DEFAULT_APP_URL);
        assert_eq!(
            (c.batch_size, c.num_retries, c.queue_size),
            (100, 2, 25_000)
        );
        assert_eq!(c.api_url, None);
        assert!(!c.sync_flush);
        assert_eq!(c.background_nice, 10);

        let c = Config::from_lookup(&EnvLookup::from_pairs([
            ("BRAINTRUST_API_KEY", " sk-abc "),
            ("BRAINTRUST_APP_URL", "http://localhost:8787/"),
            ("BRAINTRUST_DEFAULT_BATCH_SIZE", "7"),
            ("BRAINTRUST_NUM_RETRIES", "0"),
            ("BRAINTRUST_SYNC_FLUSH", "yes"),
            ("BRAINTRUST_HTTP_TIMEOUT", "2.5"),
            ("BRAINTRUST_ORG_NAME", "   "),
            ("BRAINTRUST_BACKGROUND_NICE", "0"),
        ]))
        .unwrap();
        assert_eq!(c.api_key.as_deref(), Some("sk-abc"));
        assert_eq!(c.app_url, "http://localhost:8787");
        assert_eq!(c.app_public_url, "http://localhost:8787");
        assert_eq!((c.batch_size, c.num_retries), (7, 0));
        assert!(c.sync_flush);
        assert_eq!(c.http_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(c.org_name, None, "blank counts as unset");
        assert_eq!(c.background_nice, 0);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (var, value) in [
            ("BRAINTRUST_DEFAULT_BATCH_SIZE", "0"),
            ("BRAINTRUST_QUEUE_SIZE", "lots"),
            ("BRAINTRUST_SYNC_FLUSH", "maybe"),
            ("BRAINTRUST_HTTP_TIMEOUT", "-1"),
            ("BRAINTRUST_BACKGROUND_NICE", "-5"),
        ] {
            let err = Config::from_lookup(&EnvLookup::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.variable, var);
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask_api_key("sk-1234567890ab"), "sk**...**ab");
        assert_eq!(mask_api_key("abc"), "**...**");
        let c = Config {
            api_key: Some("sk-secret-value-zz".into()),
            ..Config::from_lookup(&EnvLookup::from_pairs::<&str, &str>([])).unwrap()
        };
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("sk**...**zz"));
    }
}
