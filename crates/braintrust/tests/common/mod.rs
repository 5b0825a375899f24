//! Shared helpers: a local server and loggers isolated from the process environment.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use braintrust::env_file::EnvLookup;
use braintrust::object::ObjectIds;
use braintrust::{Logger, LoggerOptions};
use braintrust_local::LocalServer;
use serde_json::Value;

pub fn server() -> LocalServer {
    LocalServer::builder()
        .record_requests(true)
        .start()
        .expect("start braintrust-local")
}

/// Options pointing at `server`, ignoring `BRAINTRUST_*` variables of the test process, not
/// becoming the current logger, retrying quickly.
pub fn options(server: &LocalServer, project: &str) -> LoggerOptions {
    LoggerOptions::new()
        .project(project)
        .api_key(server.api_key())
        .app_url(server.url())
        .env(EnvLookup::from_pairs::<&str, &str>([]))
        .set_current(false)
        .retry_base_delay(Duration::from_millis(10))
}

/// The stored rows of a logger's project (the logger must have flushed).
pub fn rows(server: &LocalServer, logger: &Logger) -> Vec<Value> {
    let id = logger.project_id().expect("project resolved by the flush");
    server
        .rows(&ObjectIds::project_logs(id))
        .expect("read rows")
}

/// The row whose `span_attributes.name` is `name`.
pub fn named<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["span_attributes"]["name"] == name)
        .unwrap_or_else(|| panic!("no span named {name} in {rows:#?}"))
}
