//! HTTP transport for braintrust-rs.
//!
//! **Status: in progress.** Available now:
//! * [`http`]: the HTTP layer behind the [`http::HttpClient`] trait, with the default
//!   [`http::HyperClient`] (hyper + rustls);
//! * [`batcher`]: the background [`batcher::Batcher`] that merges, masks, packs and delivers rows
//!   to `/logs3` with retries, counting every row it cannot deliver;
//! * [`config`]: settings with the documented precedence (explicit > environment >
//!   `.env.braintrust` > default);
//! * [`login`]: login and organisation selection.
//!
//! Lazy object registration, overflow uploads and the logger API are tracked by the "Logging
//! pipeline" issue.

pub mod batcher;
pub mod config;
mod exit;
pub mod http;
pub mod logger;
pub mod login;
mod remote;
