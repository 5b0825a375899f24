//! The scheduling priority of background threads: a logger's batcher and sender run a few
//! steps below the application's threads, so that when the cores are busy the application's
//! own work comes first and logging catches up after (an in-process braintrust-local can too,
//! see its `LocalServerBuilder::background_nice`).

/// How many nice levels below the thread that starts them the SDK's background threads run,
/// unless `BRAINTRUST_BACKGROUND_NICE` or an option says otherwise.
pub const DEFAULT_BACKGROUND_NICE: u8 = 10;

/// The lowest priority (highest nice value) a thread can have.
#[cfg(target_os = "linux")]
const LOWEST: i32 = 19;

/// Lowers the calling thread's scheduling priority by `steps` nice levels (at most to the
/// lowest). Threads it starts afterwards inherit the lowered priority.
///
/// Only Linux gives each thread a priority of its own; elsewhere this does nothing, as does
/// `steps == 0`. A refusal is reported through `tracing` and changes nothing.
pub fn lower_current_thread_priority(steps: u8) {
    if steps == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // Linux keeps the nice value per thread; its thread id names this thread alone.
        let thread = Some(rustix::thread::gettid());
        let lowered = getpriority_process(thread)
            .and_then(|nice| setpriority_process(thread, (nice + i32::from(steps)).min(LOWEST)));
        if let Err(e) = lowered {
            tracing::debug!("braintrust: cannot lower a background thread's priority: {e}");
        }
    }
}
