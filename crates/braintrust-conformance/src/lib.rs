//! The llm-span conformance runner: for every `test/llm_span/<provider>/<case>.yaml` under a
//! spec directory, replays the case's recorded provider responses on a loopback server, sends
//! the case's requests through braintrust-providers' built-in clients under a parent span,
//! reads the logged `llm` spans back from an in-process braintrust-local and validates them
//! against `expected_brainstore_spans`.
//!
//! `cargo xtask conformance [--spec DIR] [--cassettes DIR]` runs it (defaults:
//! `../shared/conformance/spec` and `../shared/conformance/cassettes`).

pub mod matcher;
pub mod replay;
pub mod runner;
pub mod spec;

pub use runner::{CaseResult, RunOptions, Runner, report, run_all};
