//! Local mode: without an API key, evals log to an in-process `braintrust-local` backed by a
//! persistent store, so each run is compared with the previous run of the same eval.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use braintrust_core::env_file::EnvLookup;
use braintrust_local::LocalServer;
use braintrust_transport::config::Config;
use braintrust_transport::logger::LoggerOptions;

use crate::eval::EvalError;

/// The environment variable naming the local store's database file.
pub const LOCAL_STORE_ENV: &str = "BRAINTRUST_LOCAL_STORE";

static SERVERS: Mutex<Option<HashMap<PathBuf, LocalServer>>> = Mutex::new(None);

/// Whether an API key is configured (explicitly, in the environment or `.env.braintrust`).
pub fn api_key_configured() -> bool {
    Config::from_lookup(&EnvLookup::process())
        .ok()
        .and_then(|c| c.api_key)
        .is_some_and(|k| !k.trim().is_empty())
}

/// The default database file: `<target dir>/braintrust-local/evals.db`, where the target
/// directory is `CARGO_TARGET_DIR`, else the `target` directory the running binary is in,
/// else `./target`.
pub fn default_store_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|p| p.file_name().is_some_and(|n| n == "target"))
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("braintrust-local").join("evals.db")
}

/// The local backend for `path` (started on first use, shared by the process).
pub fn local_server(path: &Path) -> Result<LocalServerHandle, EvalError> {
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    let servers = servers.get_or_insert_with(HashMap::new);
    if let Some(server) = servers.get(path) {
        return Ok(LocalServerHandle::of(server));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| EvalError::Local(format!("creating {}: {e}", dir.display())))?;
    }
    let server = LocalServer::builder()
        .db_path(path)
        .start()
        .map_err(|e| EvalError::Local(e.to_string()))?;
    eprintln!(
        "braintrust: no API key, so evals log to a local store ({}); set BRAINTRUST_API_KEY to log to Braintrust",
        path.display()
    );
    let handle = LocalServerHandle::of(&server);
    servers.insert(path.to_path_buf(), server);
    Ok(handle)
}

/// How to reach a local backend.
#[derive(Debug, Clone)]
pub struct LocalServerHandle {
    /// Its base URL.
    pub url: String,
    /// Its API key.
    pub api_key: String,
}

impl LocalServerHandle {
    fn of(server: &LocalServer) -> LocalServerHandle {
        LocalServerHandle {
            url: server.url().to_owned(),
            api_key: server.api_key().to_owned(),
        }
    }

    /// Connection options pointing at it.
    pub fn connection(&self) -> LoggerOptions {
        LoggerOptions::new()
            .api_key(self.api_key.clone())
            .app_url(self.url.clone())
            .api_url(self.url.clone())
    }
}

/// The connection of an eval without explicit credentials: the environment's when an API key
/// is configured, else the local backend.
pub(crate) fn default_connection(store: Option<PathBuf>) -> Result<LoggerOptions, EvalError> {
    if api_key_configured() {
        return Ok(LoggerOptions::new());
    }
    let path = store
        .or_else(|| std::env::var_os(LOCAL_STORE_ENV).map(PathBuf::from))
        .unwrap_or_else(default_store_path);
    Ok(local_server(&path)?.connection())
}
