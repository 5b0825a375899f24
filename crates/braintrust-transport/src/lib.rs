//! HTTP transport and loggers for braintrust-rs.
//!
//! * [`http`]: the HTTP layer behind the [`http::HttpClient`] trait, with the default
//!   [`http::HyperClient`] (hyper + rustls, HTTP/1.1 and HTTP/2);
//! * [`config`]: settings with the documented precedence (explicit > environment >
//!   `.env.braintrust` > default);
//! * [`login`]: login and organisation selection;
//! * [`batcher`]: the background [`batcher::Batcher`]: lazy login and project registration,
//!   merging, masking, packing by rows and bytes, overflow uploads, retries, payload dumps, and
//!   counters for every row it cannot deliver;
//! * [`logger`]: [`logger::init_logger`], [`logger::Logger`] and the top-level span functions;
//! * [`api`]: [`api::ApiClient`], request/response calls (prompts, functions) from any runtime;
//! * [`experiment`]: [`experiment::init_experiment`], [`experiment::Experiment`] and summaries;
//! * [`dataset`]: [`dataset::init_dataset`] and [`dataset::Dataset`] records;
//! * [`fetch`]: reading rows back page by page; [`git`]: the git metadata of experiments;
//! * [`sse`]: an incremental server-sent-events parser;
//! * [`background`]: the lowered scheduling priority of background threads.

pub mod api;
pub mod background;
pub mod batcher;
pub mod config;
pub mod dataset;
mod exit;
pub mod experiment;
pub mod fetch;
pub mod git;
pub mod http;
pub mod logger;
pub mod login;
mod remote;
pub mod sse;
mod upload;
