//! Compile tests of `#[traced]`: every accepted shape compiles, every misuse gives one precise
//! error. The expected diagnostics are those of the toolchain CI uses (Rust 1.95); other
//! toolchains word them differently, so there only the passing cases run.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    if rustc_is_pinned_version() {
        cases.compile_fail("tests/ui/fail/*.rs");
    } else {
        eprintln!(
            "note: skipping the compile-fail UI tests: their expected messages are those of Rust 1.95"
        );
    }
}

#[rustversion::stable(1.95)]
fn rustc_is_pinned_version() -> bool {
    true
}

#[rustversion::not(stable(1.95))]
fn rustc_is_pinned_version() -> bool {
    false
}
