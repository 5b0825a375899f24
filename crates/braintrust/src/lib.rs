//! Braintrust SDK for Rust.
//!
//! This facade re-exports the braintrust-rs crates. Today it exposes the span model of
//! [`braintrust_core`] (ids, export slugs, rows, merge rules, masking); the logging API, `#[traced]`,
//! evals, prompts and provider wrappers arrive with their crates.
//!
//! ```
//! use braintrust::span_components::{SlugVersion, SpanComponents};
//!
//! let slug = "BAEAeyJvYmplY3RfaWQiOiI5OWFlMDBlNS0wMzkyLTU5ZWUtODU0MC1mNWFkMDZiNDFiMDEifQ==";
//! let parsed = SpanComponents::parse(slug)?;
//! assert_eq!(parsed.encode(SlugVersion::V4), slug);
//! # Ok::<(), braintrust::span_components::SlugError>(())
//! ```

#[doc(inline)]
pub use braintrust_core::{env_file, event, id, mask, merge, object, origin, row, span_components};
