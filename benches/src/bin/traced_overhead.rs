//! `#[traced]` overhead: a function `f(a, b) = a + b` called bare, traced with tracing disabled
//! (no logger: the one-atomic-load path), and traced with a logger sending to an in-process
//! braintrust-local (two small arguments captured, output captured). Prints one JSON line
//! `{"bare_ns":…,"disabled_ns":…,"enabled_ns":…,"enabled_cpu_ns":…}` (nanoseconds per call).
//! `enabled_ns` is wall time; `enabled_cpu_ns` is the CPU time of the calling thread, which
//! leaves out the time the caller spends preempted by the sender and the in-process server
//! when they share few cores.
//!
//! ```text
//! cargo run --release -p braintrust-benches --bin traced_overhead -- --calls 100000 [--sync-flush]
//! ```
//!
//! The enabled calls run in chunks; each chunk is followed by a flush outside the timed region,
//! so the figure is the caller's cost, not the time the sender and server take. The run fails
//! unless the server stored every enabled span.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use braintrust::LoggerOptions;
use braintrust::env_file::EnvLookup;
use braintrust::object::ObjectIds;
use braintrust_benches::{bare_add, traced_add};
use braintrust_local::LocalServer;
use clap::Parser;
use cpu_time::ThreadTime;

#[derive(Parser, Debug)]
#[command(about = "Measure the per-call overhead of #[traced]")]
struct Args {
    /// Timed calls of the bare and the disabled function.
    #[arg(long, default_value_t = 10_000_000)]
    disabled_calls: u64,
    /// Timed calls of the enabled function.
    #[arg(long, default_value_t = 100_000)]
    calls: u64,
    /// Enabled calls between flushes (outside the timed region).
    #[arg(long, default_value_t = 5_000)]
    chunk: u64,
    /// Send only on flush (`BRAINTRUST_SYNC_FLUSH`), so the timed calls do not share the cores
    /// with the sender and the server.
    #[arg(long)]
    sync_flush: bool,
}

/// Nanoseconds per call of `f` over `calls` calls (after a warm-up of a tenth as many).
fn per_call(calls: u64, f: impl Fn(u64, u64) -> u64) -> f64 {
    let mut sink = 0u64;
    for i in 0..calls / 10 {
        sink = sink.wrapping_add(f(black_box(i), black_box(1)));
    }
    let start = Instant::now();
    for i in 0..calls {
        sink = sink.wrapping_add(f(black_box(i), black_box(1)));
    }
    let elapsed = start.elapsed();
    black_box(sink);
    elapsed.as_nanos() as f64 / calls as f64
}

fn main() -> ExitCode {
    let args = Args::parse();
    if braintrust::context::is_enabled() {
        eprintln!("tracing is already enabled; the disabled path cannot be measured");
        return ExitCode::FAILURE;
    }
    // Interleave bare and disabled runs and keep the best of three, to damp frequency noise.
    let mut bare_ns = f64::MAX;
    let mut disabled_ns = f64::MAX;
    for _ in 0..3 {
        bare_ns = bare_ns.min(per_call(args.disabled_calls, bare_add));
        disabled_ns = disabled_ns.min(per_call(args.disabled_calls, traced_add));
    }

    let server = match LocalServer::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot start braintrust-local: {e}");
            return ExitCode::FAILURE;
        }
    };
    let logger = match braintrust::init_logger(
        LoggerOptions::new()
            .project("traced-overhead")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([]))
            .sync_flush(args.sync_flush),
    ) {
        Ok(logger) => logger,
        Err(e) => {
            eprintln!("cannot start the logger: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logger.resolve() {
        eprintln!("cannot reach braintrust-local: {e}");
        return ExitCode::FAILURE;
    }
    let mut timed = Duration::ZERO;
    let mut timed_cpu = Duration::ZERO;
    let mut done = 0;
    while done < args.calls {
        let n = args.chunk.min(args.calls - done);
        let start = Instant::now();
        let start_cpu = ThreadTime::now();
        for i in 0..n {
            black_box(traced_add(black_box(done + i), black_box(1)));
        }
        timed_cpu += start_cpu.elapsed();
        timed += start.elapsed();
        if let Err(e) = logger.flush() {
            eprintln!("flush failed: {e}");
            return ExitCode::FAILURE;
        }
        done += n;
    }
    let enabled_ns = timed.as_nanos() as f64 / args.calls as f64;
    let enabled_cpu_ns = timed_cpu.as_nanos() as f64 / args.calls as f64;
    let stored = logger
        .project_id()
        .map(|id| server.row_count(&ObjectIds::project_logs(id)));
    match stored {
        Some(Ok(rows)) if rows == args.calls => {}
        other => {
            eprintln!("expected {} stored spans, found {other:?}", args.calls);
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "bare_ns": bare_ns,
            "disabled_ns": disabled_ns,
            "enabled_ns": enabled_ns,
            "enabled_cpu_ns": enabled_cpu_ns,
        })
    );
    ExitCode::SUCCESS
}
