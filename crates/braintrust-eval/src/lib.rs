//! The Braintrust eval runner: data, tasks, scorers, experiments and summaries.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace layout; it
//! exports nothing. The runner, built-in scorers and `eval!` are tracked by the "Evals" issue.
