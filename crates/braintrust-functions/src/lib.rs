//! Braintrust prompts and functions: `load_prompt`, `Prompt::build`, `invoke`.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace layout; it
//! exports nothing. Tracked by the "Prompts and functions" issue.
