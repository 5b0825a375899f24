//! The whole suite against the shared conformance data, with streamed bodies split into small
//! random chunks and a pause after the first (`cargo xtask conformance` serves them whole).
//! Compiled as ignored, with the reason, when the data is absent.

use std::path::PathBuf;
use std::time::Duration;

use braintrust_conformance::replay::ReplayOptions;
use braintrust_conformance::{RunOptions, report, run_all};

#[test]
#[cfg_attr(
    not(conformance_data),
    ignore = "conformance data not found: set BRAINTRUST_CONFORMANCE_DIR"
)]
fn every_case_passes_with_chunked_and_delayed_streams() {
    let dir = PathBuf::from(option_env!("BRAINTRUST_CONFORMANCE_DIR_RESOLVED").unwrap_or_default());
    let results = run_all(&RunOptions {
        spec_dir: dir.join("spec"),
        cassettes_dir: dir.join("cassettes"),
        replay: ReplayOptions {
            max_chunk: Some(7),
            first_chunk_delay: Some(Duration::from_millis(30)),
        },
    })
    .unwrap();
    assert!(!results.is_empty());
    assert!(report(&results), "some cases failed");
}
