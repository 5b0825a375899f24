//! Benchmarks for braintrust-rs: criterion benches (`cargo bench -p braintrust-benches`) and,
//! as the pipeline grows, bench binaries.

use braintrust::traced;

/// `f(a, b) = a + b`, not inlined: the baseline of the `#[traced]` overhead benches.
#[inline(never)]
pub fn bare_add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}

/// [`bare_add`] under `#[traced]`.
#[traced]
#[inline(never)]
pub fn traced_add(a: u64, b: u64) -> u64 {
    a.wrapping_add(b)
}
