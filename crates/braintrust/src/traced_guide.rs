//! Guide: `#[traced]`, the attribute that turns a function into a span.
//!
//! (Written in the next step.)
