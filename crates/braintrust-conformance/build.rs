//! Sets `cfg(conformance_data)` and `BRAINTRUST_CONFORMANCE_DIR_RESOLVED` when the llm-span
//! spec is found (`BRAINTRUST_CONFORMANCE_DIR`, else `../shared/conformance` beside the
//! checkout); without it the suite test is compiled as ignored, with the reason shown.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(conformance_data)");
    println!("cargo::rerun-if-env-changed=BRAINTRUST_CONFORMANCE_DIR");
    let dir = std::env::var("BRAINTRUST_CONFORMANCE_DIR")
        .ok()
        .filter(|d| !d.trim().is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
        });
    println!("cargo::rerun-if-changed={}", dir.display());
    if dir.join("spec").join("test").join("llm_span").is_dir() {
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo::rustc-cfg=conformance_data");
        println!(
            "cargo::rustc-env=BRAINTRUST_CONFORMANCE_DIR_RESOLVED={}",
            dir.display()
        );
    }
}
