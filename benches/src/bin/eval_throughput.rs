//! Eval runner throughput (workload W3 of the baselines):
//! 1. `--cases` cases (10,000) of a trivial synchronous task (`i + 1`) with two scorers:
//!    cases per second while the cases run (the final flush and summary are not timed);
//! 2. `--cases` cases of an async task sleeping `--sleep-ms` (10 ms) with max_concurrency 10:
//!    concurrency efficiency = ideal time (cases × sleep / 10) ÷ actual time. The task sleeps
//!    on a timerfd (`concurrency_efficiency`), which sleeps the time asked, and again with
//!    `tokio::time::sleep` (`tokio_timer_concurrency_efficiency`), whose millisecond ticks make
//!    a 10 ms sleep last about 11.3 ms. `mean_task_sleep_ms` is how long the sleeps lasted and
//!    `slot_utilization` the share of the 10 slots' time spent inside tasks: what the runner
//!    itself loses is `1 - slot_utilization`. `machine_sleep_efficiency` is the same ratio for
//!    one thread doing nothing but 200 such sleeps (`std::thread::sleep`), and
//!    `bare_runtime_concurrency_efficiency` the same for 10 plain tokio tasks doing the cases'
//!    sleeps on timerfds with no runner: the ceilings this machine and runtime put on any
//!    runner's efficiency (ten timers expiring together are handled one after the other).
//!
//! Both run in the baselines' local mode (`no_send_logs`: nothing is sent) and again logging
//! every span to an in-process braintrust-local. Prints one JSON line
//! `{"cases_per_sec":…,"concurrency_efficiency":…,"rows_acknowledged":…,
//! "logged_cases_per_sec":…,"logged_concurrency_efficiency":…}` (and the figures above) where
//! `rows_acknowledged` counts the rows the server stored for the logged runs; the run fails
//! unless all of them (four spans per case) were stored.
//!
//! ```text
//! cargo run --release -p braintrust-benches --bin eval_throughput [-- --cases 10000]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use braintrust::env_file::EnvLookup;
use braintrust::object::ObjectIds;
use braintrust::scorers::ExactMatch;
use braintrust::{Eval, EvalCase, LoggerOptions};
use braintrust_local::LocalServer;
// Linked for its global allocator when the `mimalloc` feature is on.
use braintrust_benches as _;
use clap::Parser;

/// How the async task sleeps.
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// `tokio::time::sleep`: tokio's timer has millisecond ticks and rounds a sleep up, so a
    /// 10 ms sleep lasts about 11.3 ms.
    Tokio,
    /// A Linux timerfd in tokio's reactor (`tokio_timerfd::sleep`): the time asked, to tens of
    /// microseconds.
    Precise,
}

#[derive(Parser, Debug)]
#[command(about = "Measure eval runner throughput and concurrency efficiency")]
struct Args {
    /// Cases per run.
    #[arg(long, default_value_t = 10_000)]
    cases: u64,
    /// The async task's sleep, in milliseconds.
    #[arg(long, default_value_t = 10)]
    sleep_ms: u64,
    /// max_concurrency of the async run.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eval_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, Box<dyn std::error::Error>> {
    let server = LocalServer::builder().in_memory().start()?;
    let connection = LoggerOptions::new()
        .api_key(server.api_key())
        .app_url(server.url())
        .env(EnvLookup::from_pairs::<&str, &str>([]))
        // Room for every row of a run, so that cases never wait for the sender (the final
        // flush, not timed, delivers them).
        .queue_size((16 * args.cases as usize).max(25_000));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    let cases = |n: u64| {
        (0..n)
            .map(|i| EvalCase::new(i).expected(i + 1))
            .collect::<Vec<_>>()
    };
    // W3 of the baselines: the task `i + 1`, exact match and a constant scorer, default
    // concurrency. `logged` sends every span to braintrust-local; otherwise nothing is sent
    // (the baselines' local mode, `no_send_logs`).
    let sync_run = |logged: bool| {
        let eval = Eval::<u64, u64, u64>::new("bench-sync")
            .data(cases(args.cases))
            .task(|i, _| *i + 1)
            .add_scorer(ExactMatch::new())
            .scorer("constant", |_| 0.5)
            .summarize_scores(false)
            .quiet();
        let eval = if logged {
            eval.connection(connection.clone())
        } else {
            eval.no_send_logs(true)
        };
        runtime.block_on(eval.run())
    };
    let sleep = Duration::from_millis(args.sleep_ms);
    // Nanoseconds the tasks actually spent sleeping (the runtime's timer rounds sleeps up).
    let slept = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let async_run = |logged: bool, timer: Timer| {
        slept.store(0, std::sync::atomic::Ordering::Relaxed);
        let slept = slept.clone();
        let eval = Eval::<u64, u64, u64>::new("bench-async")
            .data(cases(args.cases))
            .task_async(move |i, _| {
                let slept = slept.clone();
                async move {
                    let start = std::time::Instant::now();
                    match timer {
                        Timer::Tokio => tokio::time::sleep(sleep).await,
                        Timer::Precise => {
                            if tokio_timerfd::sleep(sleep).await.is_err() {
                                tokio::time::sleep(sleep).await;
                            }
                        }
                    }
                    let ns = start.elapsed().as_nanos() as u64;
                    slept.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
                    i + 1
                }
            })
            .add_scorer(ExactMatch::new())
            .scorer("constant", |_| 0.5)
            .max_concurrency(args.concurrency)
            .summarize_scores(false)
            .quiet();
        let eval = if logged {
            eval.connection(connection.clone())
        } else {
            eval.no_send_logs(true)
        };
        runtime.block_on(eval.run())
    };
    let ideal = args.cases as f64 * sleep.as_secs_f64() / args.concurrency as f64;
    let rate = |r: &braintrust::EvalResultWithSummary<u64, u64, u64>| {
        r.summary.rows as f64 / r.summary.cases_seconds
    };
    // Mean milliseconds a task slept, and the share of the slots' time spent in tasks.
    let sleep_stats = |r: &braintrust::EvalResultWithSummary<u64, u64, u64>| {
        let slept = slept.load(std::sync::atomic::Ordering::Relaxed) as f64;
        (
            slept / 1e6 / args.cases as f64,
            slept / 1e9 / (args.concurrency as f64 * r.summary.cases_seconds),
        )
    };
    let machine_sleep_efficiency = {
        let sleep = Duration::from_millis(args.sleep_ms);
        let started = Instant::now();
        for _ in 0..200 {
            std::thread::sleep(sleep);
        }
        200.0 * sleep.as_secs_f64() / started.elapsed().as_secs_f64()
    };
    // The same sleeps with no runner: `concurrency` tokio tasks sleeping one after the other on
    // timerfds, `cases` sleeps in all. Ten timers that expire together are handled one after
    // the other, so each sleep lasts longer than a lone one: this is the ceiling any runner on
    // this runtime and machine has.
    let bare_runtime_efficiency = {
        let concurrency = args.concurrency.max(1) as u64;
        let started = Instant::now();
        runtime.block_on(async {
            let mut sleepers = tokio::task::JoinSet::new();
            for k in 0..concurrency {
                let sleeps = args.cases / concurrency + u64::from(k < args.cases % concurrency);
                sleepers.spawn(async move {
                    for _ in 0..sleeps {
                        if tokio_timerfd::sleep(sleep).await.is_err() {
                            tokio::time::sleep(sleep).await;
                        }
                    }
                });
            }
            while sleepers.join_next().await.is_some() {}
        });
        ideal / started.elapsed().as_secs_f64()
    };
    let local_sync = sync_run(false)?;
    let local_async = async_run(false, Timer::Precise)?;
    let (mean_sleep_ms, slot_use) = sleep_stats(&local_async);
    let tokio_async = async_run(false, Timer::Tokio)?;
    let (tokio_sleep_ms, tokio_slot_use) = sleep_stats(&tokio_async);
    let sync = sync_run(true)?;
    let concurrent = async_run(true, Timer::Precise)?;
    for r in [&local_sync, &local_async, &tokio_async, &sync, &concurrent] {
        let exact = r.summary.score("ExactMatch").map_or(0.0, |s| s.mean);
        if r.results.len() as u64 != args.cases || exact != 1.0 {
            return Err(format!("{} results, ExactMatch {exact}", r.results.len()).into());
        }
    }

    let mut rows = 0;
    for result in [&sync, &concurrent] {
        let id = result
            .summary
            .experiment_id
            .clone()
            .ok_or("no experiment")?;
        rows += server.row_count(&ObjectIds::experiment(id))?;
        if result.summary.failed_rows > 0 {
            return Err(format!("{} rows failed", result.summary.failed_rows).into());
        }
    }
    let expected = 2 * 4 * args.cases;
    if rows != expected {
        return Err(format!("the server stored {rows} rows, expected {expected}").into());
    }
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(serde_json::json!({
        "cases_per_sec": rate(&local_sync).round(),
        "concurrency_efficiency": round3(ideal / local_async.summary.cases_seconds),
        "rows_acknowledged": rows,
        "mean_task_sleep_ms": round3(mean_sleep_ms),
        "slot_utilization": round3(slot_use),
        "machine_sleep_efficiency": round3(machine_sleep_efficiency),
        "bare_runtime_concurrency_efficiency": round3(bare_runtime_efficiency),
        "tokio_timer_concurrency_efficiency": round3(ideal / tokio_async.summary.cases_seconds),
        "tokio_timer_mean_task_sleep_ms": round3(tokio_sleep_ms),
        "tokio_timer_slot_utilization": round3(tokio_slot_use),
        "logged_cases_per_sec": rate(&sync).round(),
        "logged_concurrency_efficiency": round3(ideal / concurrent.summary.cases_seconds),
    })
    .to_string())
}
