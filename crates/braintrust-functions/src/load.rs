//! [`load_prompt`]: fetches a prompt version, with an in-memory and an on-disk cache as the
//! fallback when the server cannot be reached.
//!
//! Loading is **eager** in Rust: `load_prompt(..).await` fetches the prompt right away, so
//! [`Prompt::build`](crate::Prompt::build) can stay synchronous and every error (not found, no
//! access, server down without a cached copy) surfaces at the load, where it can be handled.
//! (The official SDKs load lazily on first use; a Rust caller that wants that can keep the
//! [`LoadPrompt`] and load it when needed.)
//!
//! Concurrent loads of the same prompt share one request. Every successful load without a
//! pinned version or environment is remembered in memory (an LRU,
//! `BRAINTRUST_PROMPT_CACHE_MEMORY_MAX_SIZE` entries) and on disk
//! (`BRAINTRUST_PROMPT_CACHE_DIR`, default `~/.braintrust/prompt_cache`, at most
//! `BRAINTRUST_PROMPT_CACHE_DISK_MAX_SIZE` files). When the server is unreachable or fails
//! (connection errors, timeouts, 5xx), such a load falls back to the memory copy, then the disk
//! copy. A load that pins a version or environment never falls back.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use braintrust_transport::api::{ApiClient, ApiError};
use braintrust_transport::config::Config;
use dashmap::DashMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::PromptError;
use crate::prompt::Prompt;

/// Which prompt to load and how. Build one with [`LoadPrompt::new`] (project name + slug),
/// [`LoadPrompt::project_id`] or [`LoadPrompt::id`].
#[derive(Debug, Clone, Default)]
pub struct LoadPrompt {
    project_name: Option<String>,
    project_id: Option<String>,
    slug: Option<String>,
    id: Option<String>,
    version: Option<String>,
    environment: Option<String>,
    defaults: Map<String, Value>,
    no_trace: bool,
    client: Option<ApiClient>,
    cache: Option<PromptCache>,
}

impl LoadPrompt {
    /// The prompt `slug` of the project named `project_name`.
    pub fn new(project_name: impl Into<String>, slug: impl Into<String>) -> LoadPrompt {
        LoadPrompt {
            project_name: Some(project_name.into()),
            slug: Some(slug.into()),
            ..LoadPrompt::default()
        }
    }

    /// The prompt `slug` of the project with id `project_id`.
    pub fn project_id(project_id: impl Into<String>, slug: impl Into<String>) -> LoadPrompt {
        LoadPrompt {
            project_id: Some(project_id.into()),
            slug: Some(slug.into()),
            ..LoadPrompt::default()
        }
    }

    /// The prompt with this id.
    pub fn id(id: impl Into<String>) -> LoadPrompt {
        LoadPrompt {
            id: Some(id.into()),
            ..LoadPrompt::default()
        }
    }

    /// A specific version (`_xact_id`); wins over [`LoadPrompt::environment`].
    pub fn version(mut self, version: impl Into<String>) -> LoadPrompt {
        self.version = Some(version.into());
        self
    }

    /// The version deployed to an environment (`production`, …).
    pub fn environment(mut self, environment: impl Into<String>) -> LoadPrompt {
        self.environment = Some(environment.into());
        self
    }

    /// Parameters `build()` starts from (the prompt's own parameters win). Anything that
    /// serializes to a JSON object; other values are ignored.
    pub fn defaults(mut self, defaults: impl Serialize) -> LoadPrompt {
        if let Ok(Value::Object(map)) = serde_json::to_value(defaults) {
            self.defaults = map;
        }
        self
    }

    /// Leave `span_info` out of `build()`'s output.
    pub fn no_trace(mut self, no_trace: bool) -> LoadPrompt {
        self.no_trace = no_trace;
        self
    }

    /// Load through this client (default: [`ApiClient::shared`], configured from the
    /// environment).
    pub fn client(mut self, client: ApiClient) -> LoadPrompt {
        self.client = Some(client);
        self
    }

    /// Use this cache (default: [`PromptCache::global`]).
    pub fn cache(mut self, cache: PromptCache) -> LoadPrompt {
        self.cache = Some(cache);
        self
    }

    /// Loads the prompt (see [`load_prompt`]).
    pub async fn load(self) -> Result<Prompt, PromptError> {
        load_prompt(self).await
    }

    /// [`LoadPrompt::load`] for synchronous code: blocks the calling thread.
    pub fn load_blocking(self) -> Result<Prompt, PromptError> {
        braintrust_transport::api::block_on(load_prompt(self))
    }

    /// The path and query of the request.
    fn request(&self) -> Result<(String, Query), PromptError> {
        let mut query = Vec::new();
        let path = match (&self.id, &self.slug) {
            (Some(id), _) => format!("/v1/prompt/{}", braintrust_transport::api::path_segment(id)),
            (None, Some(slug)) => {
                match (&self.project_id, &self.project_name) {
                    (Some(id), _) => query.push(("project_id", id.clone())),
                    (None, Some(name)) => query.push(("project_name", name.clone())),
                    (None, None) => {
                        return Err(PromptError::InvalidArguments(
                            "a slug needs a project name or project id".into(),
                        ));
                    }
                }
                query.push(("slug", slug.clone()));
                "/v1/prompt".to_owned()
            }
            (None, None) => {
                return Err(PromptError::InvalidArguments(
                    "give a prompt id, or a project and a slug".into(),
                ));
            }
        };
        match (&self.version, &self.environment) {
            (Some(version), _) => query.push(("version", version.clone())),
            (None, Some(environment)) => query.push(("environment", environment.clone())),
            (None, None) => {}
        }
        Ok((path, query))
    }

    fn describe(&self) -> String {
        let mut text = match (&self.id, &self.project_name, &self.project_id, &self.slug) {
            (Some(id), ..) => format!("id {id}"),
            (None, Some(project), _, Some(slug)) => format!("{project}/{slug}"),
            (None, None, Some(project_id), Some(slug)) => {
                format!("project {project_id}, slug {slug}")
            }
            _ => "(unnamed)".to_owned(),
        };
        if let Some(version) = &self.version {
            text.push_str(&format!(" version {version}"));
        } else if let Some(environment) = &self.environment {
            text.push_str(&format!(" environment {environment}"));
        }
        text
    }
}

/// Query parameters of a request.
type Query = Vec<(&'static str, String)>;

/// Loads a prompt (eagerly; see the [module docs](self) for caching and fallback).
///
/// ```
/// use braintrust_functions::{LoadPrompt, load_prompt};
/// # use braintrust_transport::api::{ApiClient, Host};
/// # let server = braintrust_local::LocalServer::start()?;
/// # let client = ApiClient::new(server.login_options())?;
/// # let data = serde_json::json!({"prompt": {"type": "chat", "messages": [
/// #     {"role": "user", "content": "Say hi to {{name}}."}]}, "options": {"model": "gpt-4o"}});
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// # client.post_json(Host::Api, "/v1/prompt", &serde_json::json!({"project_name": "docs",
/// #     "slug": "greeter", "prompt_data": data}), &[]).await?;
/// let prompt = load_prompt(LoadPrompt::new("docs", "greeter").client(client)).await?;
/// let built = prompt.build(serde_json::json!({"name": "Ada"}))?;
/// assert_eq!(built.messages().unwrap()[0].text().as_deref(), Some("Say hi to Ada."));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn load_prompt(options: LoadPrompt) -> Result<Prompt, PromptError> {
    let (path, query) = options.request()?;
    let client = match &options.client {
        Some(client) => client.clone(),
        None => ApiClient::shared()?,
    };
    let cache = options.cache.clone().unwrap_or_else(PromptCache::global);
    let config = client.config();
    let key = format!(
        "{}|{}|{}|{path}?{}",
        config.app_url,
        config.api_url.as_deref().unwrap_or(""),
        config.org_name.as_deref().unwrap_or(""),
        query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let pinned = options.version.is_some() || options.environment.is_some();
    let row = cache
        .single_flight(&key, || {
            fetch(client.clone(), path, query, options.describe())
        })
        .await;
    let row = match row {
        Ok(row) => {
            if !pinned {
                cache.remember(&key, &row);
            }
            row
        }
        Err(PromptError::Api(e)) if !pinned && e.is_unavailable() => match cache.recall(&key) {
            Some(row) => {
                tracing::warn!(
                    "braintrust: cannot reach the server to load prompt {} ({e}); using the cached copy",
                    options.describe()
                );
                row
            }
            None => return Err(PromptError::Api(e)),
        },
        Err(e) => return Err(e),
    };
    Ok(Prompt::from_row(row)?
        .with_defaults(options.defaults)
        .with_no_trace(options.no_trace))
}

async fn fetch(
    client: ApiClient,
    path: String,
    query: Query,
    described: String,
) -> Result<Value, PromptError> {
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = match client.get_json(&path, &query).await {
        Err(ApiError::Status { status: 404, .. }) => {
            return Err(PromptError::NotFound(described));
        }
        other => other?,
    };
    let row = match answer.get("objects") {
        Some(Value::Array(objects)) => match objects.len() {
            0 => return Err(PromptError::NotFound(described)),
            1 => objects[0].clone(),
            n => {
                return Err(PromptError::Ambiguous(format!(
                    "{described} matches {n} prompts"
                )));
            }
        },
        Some(_) => {
            return Err(PromptError::InvalidRow("`objects` is not a list".into()));
        }
        None => answer,
    };
    Prompt::from_row(row.clone())?;
    Ok(row)
}

/// Where loaded prompts are remembered, and the registry of loads in flight. Cheap to clone;
/// clones share everything.
#[derive(Clone)]
pub struct PromptCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    memory: Option<Mutex<lru::LruCache<String, Value>>>,
    disk: Option<DiskCache>,
    in_flight: DashMap<String, Arc<tokio::sync::OnceCell<Result<Value, PromptError>>>>,
}

impl std::fmt::Debug for PromptCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptCache")
            .field(
                "memory_entries",
                &self.inner.memory.as_ref().map(|m| lock(m).len()),
            )
            .field("disk_dir", &self.inner.disk.as_ref().map(|d| &d.dir))
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl PromptCache {
    /// A cache keeping `memory_entries` prompts in memory and at most `disk_entries` files in
    /// `disk_dir` (0 or `None` disables a level).
    pub fn new(
        memory_entries: usize,
        disk_dir: Option<PathBuf>,
        disk_entries: usize,
    ) -> PromptCache {
        PromptCache {
            inner: Arc::new(CacheInner {
                memory: NonZeroUsize::new(memory_entries)
                    .map(|n| Mutex::new(lru::LruCache::new(n))),
                disk: disk_dir.filter(|_| disk_entries > 0).map(|dir| DiskCache {
                    dir,
                    max_entries: disk_entries,
                }),
                in_flight: DashMap::new(),
            }),
        }
    }

    /// A cache with the sizes and directory of `config` (the `BRAINTRUST_PROMPT_CACHE_*`
    /// settings).
    pub fn from_config(config: &Config) -> PromptCache {
        PromptCache::new(
            config.prompt_cache_memory_max,
            config.prompt_cache_dir.clone(),
            config.prompt_cache_disk_max,
        )
    }

    /// The process-wide cache, configured from the environment on first use.
    pub fn global() -> PromptCache {
        static GLOBAL: OnceLock<PromptCache> = OnceLock::new();
        GLOBAL
            .get_or_init(|| PromptCache::from_config(&Config::from_env().unwrap_or_default()))
            .clone()
    }

    /// Runs `fetch` once for concurrent callers with the same key; all get its result.
    async fn single_flight<F, Fut>(&self, key: &str, fetch: F) -> Result<Value, PromptError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Value, PromptError>>,
    {
        let cell = self
            .inner
            .in_flight
            .entry(key.to_owned())
            .or_default()
            .clone();
        let result = cell.get_or_init(fetch).await.clone();
        self.inner
            .in_flight
            .remove_if(key, |_, current| Arc::ptr_eq(current, &cell));
        result
    }

    fn remember(&self, key: &str, row: &Value) {
        if let Some(memory) = &self.inner.memory {
            lock(memory).put(key.to_owned(), row.clone());
        }
        if let Some(disk) = &self.inner.disk
            && let Err(e) = disk.store(key, row)
        {
            tracing::debug!(
                "braintrust: cannot write the prompt cache in {}: {e}",
                disk.dir.display()
            );
        }
    }

    fn recall(&self, key: &str) -> Option<Value> {
        if let Some(memory) = &self.inner.memory
            && let Some(row) = lock(memory).get(key)
        {
            return Some(row.clone());
        }
        self.inner.disk.as_ref()?.load(key)
    }

    /// Forgets everything kept in memory (the disk copies stay).
    pub fn clear_memory(&self) {
        if let Some(memory) = &self.inner.memory {
            lock(memory).clear();
        }
    }
}

/// One JSON file per prompt, named by a hash of its key; the file holds the key too, so a hash
/// collision reads as a miss.
#[derive(Debug)]
struct DiskCache {
    dir: PathBuf,
    max_entries: usize,
}

impl DiskCache {
    fn path(&self, key: &str) -> PathBuf {
        // FNV-1a: stable across builds and platforms (the std hasher is not).
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.dir.join(format!("{hash:016x}.json"))
    }

    fn store(&self, key: &str, row: &Value) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(key);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let body = serde_json::json!({"key": key, "row": row}).to_string();
        std::fs::write(&tmp, body)?;
        std::fs::rename(&tmp, &path)?;
        self.evict()
    }

    /// Removes the least recently written files beyond the limit.
    fn evict(&self) -> std::io::Result<()> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= self.max_entries {
            return Ok(());
        }
        files.sort();
        let excess = files.len() - self.max_entries;
        for (_, path) in files.into_iter().take(excess) {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    fn load(&self, key: &str) -> Option<Value> {
        let text = std::fs::read(self.path(key)).ok()?;
        let mut value: Value = serde_json::from_slice(&text).ok()?;
        if value.get("key").and_then(Value::as_str) != Some(key) {
            return None;
        }
        value.get_mut("row").map(Value::take)
    }
}
