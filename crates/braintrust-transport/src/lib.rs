//! HTTP transport for braintrust-rs.
//!
//! **Status: in progress.** Available now:
//! * [`http`]: the HTTP layer behind the [`http::HttpClient`] trait, with the default
//!   [`http::HyperClient`] (hyper + rustls);
//! * [`batcher`]: the background [`batcher::Batcher`] that merges, masks, packs and delivers rows
//!   to `/logs3` with retries, counting every row it cannot deliver.
//!
//! Login, lazy object registration, overflow uploads and configuration from the environment are
//! tracked by the "Logging pipeline" issue.

pub mod batcher;
pub mod http;
