//! Logging throughput: N spans, each with one log, then a flush. Prints one JSON line.
//!
//! Two workloads of `../shared/reference/baselines.md`:
//!
//! - `--workload child` (the default, their W1): N child spans under one root, each logging
//!   input and output of about B bytes of JSON each, 5 metadata keys and 3 metrics;
//! - `--workload root` (their W1-R, run against the official Rust SDK): N root spans, each
//!   logging input, output and 5 metadata keys totalling about B bytes of JSON, no metrics.
//!
//! ```text
//! cargo run --release -p braintrust-benches --bin log_throughput -- --spans 100000 --payload-bytes 1000
//! cargo run --release -p braintrust-benches --bin log_throughput -- --workload root --spans 100000 --payload-bytes 978
//! ```
//!
//! `caller_ns_per_span` is the logging loop's wall time per span, waits for room in a full
//! queue included; `caller_cpu_ns_per_span` is the calling thread's CPU time in that loop per
//! span, without them. `payload_cpu_ns_per_span` is the part of that CPU time the bench spends
//! making the values it logs (measured apart, before the loop).
//!
//! With `--flush-every 1000` (the baselines' `warm` runs) the logger is flushed every 1,000
//! spans, and the caller figures leave the flushes out. With `--log-by-reference` the spans log
//! input and output by reference (`Event::input_serialized`) instead of copies, and the
//! metadata as a typed struct (the same JSON).
//!
//! Without `--api-url` it starts an in-process braintrust-local (SQLite in a temporary file) and
//! checks that the server stored exactly the spans logged (N + 1 with the root). Login, project
//! registration and the payload-limit probe happen before the timed region, as in the baselines.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use braintrust::env_file::EnvLookup;
use braintrust::object::ObjectIds;
use braintrust::{Event, LoggerOptions, StartSpan};
use braintrust_local::LocalServer;
// Linked for its global allocator when the `mimalloc` feature is on.
use braintrust_benches as _;
use clap::{Parser, ValueEnum};
use cpu_time::ThreadTime;
use serde_json::{Value, json};

/// What each of the N spans is and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// A child of one root span: input and output of about B bytes each, 5 metadata keys and 3
    /// metrics (the baselines' W1).
    Child,
    /// A root span: input, output and 5 metadata keys totalling about B bytes, no metrics (the
    /// baselines' W1-R).
    Root,
}

#[derive(Parser, Debug)]
#[command(about = "Measure span logging cost and end-to-end throughput")]
struct Args {
    /// Spans to log.
    #[arg(long, default_value_t = 100_000)]
    spans: usize,
    /// Approximate bytes of JSON: in each of input and output (`child`), or in input, output
    /// and metadata together (`root`).
    #[arg(long, default_value_t = 1_000)]
    payload_bytes: usize,
    /// What each span is and logs.
    #[arg(long, value_enum, default_value_t = Workload::Child)]
    workload: Workload,
    /// Rows the logger's queue holds before logging waits (default: the SDK's, 25,000). Large
    /// enough for every row, logging never waits, and memory holds them all.
    #[arg(long)]
    queue_size: Option<usize>,
    /// Flush after every K spans, the flushes' time left out of the caller figures (the
    /// baselines' `warm` configuration, with K = 1,000): the caller's cost in a steady state,
    /// without waiting for room in the queue.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    flush_every: Option<u64>,
    /// Log input and output by reference (`Event::input_serialized`), as code that keeps its
    /// values does, and the metadata as a typed struct, instead of handing over a copy of each
    /// value and a metadata object (the baselines' runs copy them).
    #[arg(long)]
    log_by_reference: bool,
    /// Send to this API (and app) URL instead of an in-process braintrust-local.
    #[arg(long)]
    api_url: Option<String>,
    /// API key for `--api-url`.
    #[arg(long, env = "BRAINTRUST_API_KEY")]
    api_key: Option<String>,
    /// Project to log to.
    #[arg(long, default_value = "log-throughput")]
    project: String,
}

/// A chat-like JSON object of about `bytes` bytes.
fn payload(role: &str, bytes: usize) -> Value {
    let frame = json!({"messages": [{"role": role, "content": ""}]})
        .to_string()
        .len();
    let text: String = "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(bytes.saturating_sub(frame))
        .collect();
    json!({"messages": [{"role": role, "content": text}]})
}

/// The metadata of the `i`th span: 5 keys.
fn metadata(i: usize) -> Value {
    json!({
        "model": "gpt-4o-mini", "i": i, "user": "u-42",
        "region": "eu-west-1", "cached": false,
    })
}

/// [`metadata`] as a typed value, for spans that log by reference.
#[derive(serde::Serialize)]
struct Metadata {
    model: &'static str,
    i: usize,
    user: &'static str,
    region: &'static str,
    cached: bool,
}

impl Metadata {
    fn of(i: usize) -> Metadata {
        Metadata {
            model: "gpt-4o-mini",
            i,
            user: "u-42",
            region: "eu-west-1",
            cached: false,
        }
    }
}

/// Input and output for `args`: about B bytes each (`child`), or about B bytes together with
/// the metadata (`root`).
fn payloads(args: &Args) -> (Value, Value) {
    let each = match args.workload {
        Workload::Child => args.payload_bytes,
        Workload::Root => {
            let metadata = metadata(args.spans).to_string().len();
            args.payload_bytes.saturating_sub(metadata) / 2
        }
    };
    (payload("user", each), payload("assistant", each))
}

/// The calling thread's CPU time to make the values the logging loop makes for its spans
/// (copies of input and output and the metadata, or only a typed metadata when they are logged
/// by reference) and drop them, without logging them: the bench's own share of `caller_cpu_ns_per_span`.
fn payload_cpu_time(input: &Value, output: &Value, args: &Args) -> Duration {
    let started = ThreadTime::now();
    for i in 0..args.spans {
        if args.log_by_reference {
            std::hint::black_box(Metadata::of(i));
        } else {
            std::hint::black_box((input.clone(), output.clone(), metadata(i)));
        }
    }
    started.elapsed()
}

fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log_throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::temp_dir().join(format!("log-throughput-{}.sqlite", std::process::id()));
    let server = match &args.api_url {
        Some(_) => None,
        None => Some(LocalServer::builder().db_path(&db).start()?),
    };
    let (url, key) = match (&server, &args.api_url) {
        (Some(s), _) => (s.url().to_owned(), s.api_key().to_owned()),
        (None, Some(url)) => (
            url.clone(),
            args.api_key
                .clone()
                .ok_or("--api-key (or BRAINTRUST_API_KEY) is required with --api-url")?,
        ),
        (None, None) => unreachable!("a server is started when no URL is given"),
    };
    let mut options = LoggerOptions::new()
        .project(&args.project)
        .api_key(key)
        .app_url(&url)
        .env(EnvLookup::from_pairs::<&str, &str>([]));
    if let Some(rows) = args.queue_size {
        options = options.queue_size(rows);
    }
    let logger = braintrust::init_logger(options)?;
    let project_id = logger.resolve()?;

    let (input, output) = payloads(args);
    let payload_cpu = payload_cpu_time(&input, &output, args);
    let started = Instant::now();
    let started_cpu = ThreadTime::now();
    // The time spent in the intermediate flushes of `--flush-every`.
    let mut flushing = Duration::ZERO;
    let mut flushing_cpu = Duration::ZERO;
    // W1's children share one root; W1-R's spans are roots themselves and log no metrics.
    let root = (args.workload == Workload::Child)
        .then(|| logger.start_span(StartSpan::named("log-throughput")));
    for i in 0..args.spans {
        let step = StartSpan::named("step");
        let span = match &root {
            Some(root) => root.start_span(step),
            None => logger.start_span(step),
        };
        let event = if args.log_by_reference {
            Event::new()
                .input_serialized(&input)
                .output_serialized(&output)
                .metadata_serialized(&Metadata::of(i))
        } else {
            Event::new()
                .input(input.clone())
                .output(output.clone())
                .metadata(metadata(i))
        };
        let event = match root {
            Some(_) => event
                .metric("prompt_tokens", 812.0)
                .metric("completion_tokens", 245.0)
                .metric("tokens", 1057.0),
            None => event,
        };
        span.log(event)?;
        span.end();
        if args
            .flush_every
            .is_some_and(|k| (i as u64 + 1).is_multiple_of(k))
        {
            let (at, at_cpu) = (Instant::now(), ThreadTime::now());
            logger.flush()?;
            flushing += at.elapsed();
            flushing_cpu += at_cpu.elapsed();
        }
    }
    if let Some(root) = root {
        root.end();
    }
    let caller = started.elapsed() - flushing;
    let caller_cpu = started_cpu.elapsed() - flushing_cpu;
    let flushed = logger.flush();
    let total = started.elapsed();
    let peak_rss = peak_rss_bytes();
    let stats = logger.stats();
    flushed?;

    if let Some(server) = &server {
        let stored = server.row_count(&ObjectIds::project_logs(&project_id))?;
        let expected = match args.workload {
            Workload::Child => args.spans as u64 + 1,
            Workload::Root => args.spans as u64,
        };
        if stored != expected {
            return Err(format!("the server stored {stored} spans, expected {expected}").into());
        }
    }
    let line = json!({
        "spans": args.spans,
        "caller_ns_per_span": caller.as_nanos() as f64 / args.spans.max(1) as f64,
        "caller_cpu_ns_per_span": caller_cpu.as_nanos() as f64 / args.spans.max(1) as f64,
        "payload_cpu_ns_per_span": payload_cpu.as_nanos() as f64 / args.spans.max(1) as f64,
        "e2e_spans_per_sec": args.spans as f64 / total.as_secs_f64(),
        "rows_acknowledged": stats.sent,
        "dropped": stats.dropped,
        "peak_rss_bytes": peak_rss,
        "workload": args.workload.to_possible_value().map(|v| v.get_name().to_owned()),
        "flush_every": args.flush_every,
        "log_by_reference": args.log_by_reference,
        "requests": stats.requests,
    });
    println!("{line}");
    drop(logger);
    drop(server);
    for suffix in ["", "-wal", "-shm", "-rows"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}
