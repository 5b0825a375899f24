//! The Braintrust span model, without network I/O.
//!
//! This crate holds what every other braintrust-rs crate agrees on:
//!
//! * [`id`]: span, trace and row ids (hex by default, legacy UUIDs on request);
//! * [`span_components`]: export slugs (SpanComponents V3/V4), byte-compatible with the official
//!   SDKs;
//! * [`object`]: which object (project logs, experiment, dataset, playground) a row belongs to;
//! * [`event`]: logged fields and their validation (scores, metrics, metadata, tags, span types);
//! * [`row`]: rows and the rows a span's lifecycle writes;
//! * [`merge`]: the merge rules for rows with equal keys, shared by client and server;
//! * [`mask`]: the global masking function;
//! * [`origin`]: `context.span_origin` and environment detection;
//! * [`env_file`]: settings from the environment and `.env.braintrust`;
//! * [`span`]: span handles writing to a [`span::SpanSink`], and the no-op span;
//! * [`context`]: the current span, across `.await` and into spawned tasks;
//! * [`propagation`]: W3C `traceparent` / `baggage` inject and extract;
//! * [`attachment`]: files and blobs logged by reference, and reading them back;
//! * [`inline_media`]: inline base64 media in LLM payloads turned into attachments.
//!
//! ```
//! use braintrust_core::span_components::SpanComponents;
//!
//! // A slug exported by the official Python SDK.
//! let slug = "BAICA/HpTKsIm2B7BKsMPfBirzYRiuc3Lxt2lVp7Im9iamVjdF9pZCI6Ijc0N2ViYzdiLTZhOWItNTk3ZS05NGYyLTUxMmNjZTQ4MTAwMCIsInJvd19pZCI6IjIzZjAzYThkLWY2MGMtNGYxNC1hOTAxLTVkZDU3MmQyMTlkYyJ9";
//! let parent = SpanComponents::parse(slug)?;
//! assert_eq!(parent.row.unwrap().span_id, "f1e94cab089b607b");
//! # Ok::<(), braintrust_core::span_components::SlugError>(())
//! ```

pub mod attachment;
pub mod context;
pub mod env_file;
pub mod event;
pub mod id;
pub mod inline_media;
pub mod mask;
pub mod merge;
pub mod object;
pub mod origin;
pub mod propagation;
pub mod row;
pub mod span;
pub mod span_components;
pub mod traced;
