//! Finds the shared conformance data (`../shared/conformance` beside the checkout, or
//! `BRAINTRUST_CONFORMANCE_DIR`) for the capture-replay tests. When it is absent those tests are
//! compiled as ignored, with the reason shown by the test runner.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(conformance_data)");
    println!("cargo::rerun-if-env-changed=BRAINTRUST_CONFORMANCE_DIR");
    let dir = match std::env::var("BRAINTRUST_CONFORMANCE_DIR") {
        Ok(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
        _ => {
            let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
            manifest.join("../../../shared/conformance")
        }
    };
    println!("cargo::rerun-if-changed={}", dir.display());
    if dir.join("captures").is_dir() {
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo::rustc-cfg=conformance_data");
        println!(
            "cargo::rustc-env=BRAINTRUST_CONFORMANCE_DIR_RESOLVED={}",
            dir.display()
        );
    } else {
        println!(
            "cargo::warning=conformance data not found at {}: capture-replay tests are skipped (set BRAINTRUST_CONFORMANCE_DIR)",
            dir.display()
        );
    }
}
