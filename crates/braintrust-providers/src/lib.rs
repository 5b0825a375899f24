//! LLM provider wrappers (OpenAI, Anthropic, Gemini, Bedrock) that turn each call into a
//! spec-conformant `llm` span.
//!
//! **Status: not implemented yet.** This crate is a placeholder in the workspace layout; it
//! exports nothing. Tracked by the "Provider wrappers" issue.
