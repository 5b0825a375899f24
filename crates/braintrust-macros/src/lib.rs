//! Procedural macros for braintrust-rs: `#[traced]` and `eval!`.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace layout; it
//! exports no macro. Tracked by the "`#[traced]`" and "Evals" issues. Use it through the
//! `braintrust` facade once it does.
