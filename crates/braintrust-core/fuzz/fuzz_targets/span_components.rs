//! Fuzzes the export-slug parser: arbitrary input never panics, and whatever parses re-encodes
//! (V3 and V4) to a slug that parses back to the same components.
//!
//! Run with `cargo +nightly fuzz run span_components` from `crates/braintrust-core`.

#![no_main]

use base64::Engine as _;
use braintrust_core::span_components::{SlugVersion, SpanComponents};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Raw bytes as a slug string, and the bytes as the decoded blob of a slug.
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    check(&base64::engine::general_purpose::STANDARD.encode(data));
});

fn check(slug: &str) {
    if let Ok(parsed) = SpanComponents::parse(slug) {
        for version in [SlugVersion::V3, SlugVersion::V4] {
            let again = SpanComponents::parse(&parsed.encode(version)).expect("re-encoded slug parses");
            assert_eq!(again, parsed);
        }
    }
}
