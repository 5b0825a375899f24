//! Benchmarks for braintrust-rs: criterion benches (`cargo bench -p braintrust-benches`) and,
//! as the pipeline grows, bench binaries.

use braintrust::traced;

/// With the `mimalloc` feature every bench binary uses mimalloc instead of the system
/// allocator: handing rows to the sender thread means the caller allocates and another thread
/// frees, which glibc's malloc handles slowly and mimalloc handles well.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
