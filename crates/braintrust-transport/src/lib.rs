//! HTTP transport for braintrust-rs: login and org state, lazy object registration, and the
//! background batcher that delivers rows to `/logs3`.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace layout; it
//! exports nothing. The logging pipeline (hyper + rustls client, retries, overflow, flush) is
//! tracked by the "Logging pipeline" issue.
