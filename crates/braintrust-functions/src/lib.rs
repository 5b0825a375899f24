//! Braintrust prompts and functions: `load_prompt`, `Prompt::build`, `invoke`.

pub mod mustache;
