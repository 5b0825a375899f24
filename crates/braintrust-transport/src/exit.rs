//! The flush at process exit. Rust runs no destructors for statics, so rows queued by a logger
//! that is still alive when `main` returns would be lost; like the official SDKs we register an
//! `atexit` handler that flushes live loggers (skipped with `BRAINTRUST_DISABLE_ATEXIT_FLUSH`).

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

extern "C" fn run_hook() {
    if let Some(hook) = HOOK.get() {
        // A panic must not unwind into the C runtime.
        let _ = std::panic::catch_unwind(hook);
    }
}

/// Registers `hook` to run once at process exit. Later calls do nothing.
pub(crate) fn flush_at_exit(hook: fn()) {
    if HOOK.set(hook).is_ok() {
        // SAFETY: `run_hook` is an `extern "C" fn()` with no arguments that never unwinds, as
        // `atexit` requires; registering it has no other effect.
        #[allow(unsafe_code)]
        let status = unsafe { libc::atexit(run_hook) };
        if status != 0 {
            tracing::warn!("braintrust: cannot register the flush at exit");
        }
    }
}
