//! HTTP transport for braintrust-rs.
//!
//! **Status: in progress.** Available now: [`http`], the HTTP layer behind the [`http::HttpClient`]
//! trait with the default [`http::HyperClient`] (hyper + rustls). Login, object registration and
//! the background batcher are tracked by the "Logging pipeline" issue.

pub mod http;
