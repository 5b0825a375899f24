//! Provider-wrapper overhead on the caller's side, from the recorded openai/completions and
//! openai/streaming cassettes. Prints one JSON line `{"span_build_ns":…,"stream_chunk_ns":…}`
//! (wall time), with `span_build_cpu_ns` and `stream_chunk_cpu_ns`: the same measured as the
//! calling thread's CPU time, which leaves out time spent preempted by the sender and the
//! in-process server on a small machine.
//!
//! * `span_build_ns`: per call, building the span fields from the request and the response and
//!   recording them (`LlmCallSpan::start` + `finish`) with a logger sending to an in-process
//!   braintrust-local;
//! * `stream_chunk_ns`: per chunk of the streamed answer, what the wrapper adds (folding the
//!   chunk into the aggregate, the first-token mark, and its share of the final output): the
//!   streamed call minus the same call with no chunks, divided by the chunks.
//!
//! ```text
//! cargo run --release -p braintrust-benches --bin provider_overhead -- --calls 20000
//! ```
//!
//! The cassettes come from `BRAINTRUST_CONFORMANCE_DIR` (else `../shared/conformance`).

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use braintrust::LoggerOptions;
use braintrust::env_file::EnvLookup;
use braintrust_local::LocalServer;
use braintrust_providers::{LlmCallSpan, openai};
use clap::Parser;
use cpu_time::ThreadTime;
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "Measure the caller-side overhead of the provider wrappers")]
struct Args {
    /// Timed calls.
    #[arg(long, default_value_t = 20_000)]
    calls: u64,
    /// Calls between flushes (outside the timed region).
    #[arg(long, default_value_t = 2_000)]
    chunk: u64,
}

fn cassettes() -> PathBuf {
    std::env::var_os("BRAINTRUST_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        })
        .join("cassettes")
        .join("openai")
}

/// The recorded request body and response file of a cassette.
fn cassette(name: &str) -> Result<(Value, Vec<u8>), String> {
    let dir = cassettes();
    let mapping: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.mapping.json")))
            .map_err(|e| format!("{}: {e} (set BRAINTRUST_CONFORMANCE_DIR)", dir.display()))?,
    )
    .map_err(|e| e.to_string())?;
    let request: Value = serde_json::from_str(
        mapping["request"]["bodyPatterns"][0]["equalToJson"]
            .as_str()
            .ok_or("no request body in the mapping")?,
    )
    .map_err(|e| e.to_string())?;
    let prefix = format!("{name}.body.");
    let body = std::fs::read_dir(&dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .ok_or("no body file")?;
    Ok((
        request,
        std::fs::read(body.path()).map_err(|e| e.to_string())?,
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("provider_overhead: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let (request, response) = cassette("completions")?;
    let response: Value = serde_json::from_slice(&response).map_err(|e| e.to_string())?;
    let (stream_request, sse) = cassette("streaming")?;
    let chunks: Vec<Value> = String::from_utf8_lossy(&sse)
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| *d != "[DONE]" && !d.is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;

    let server = LocalServer::builder()
        .in_memory()
        .start()
        .map_err(|e| e.to_string())?;
    let logger = braintrust::init_logger(
        LoggerOptions::new()
            .project("provider-overhead")
            .api_key(server.api_key())
            .app_url(server.url())
            .api_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([])),
    )
    .map_err(|e| e.to_string())?;

    let one_call = || {
        let call = LlmCallSpan::start(
            openai::CHAT_SPAN_NAME,
            openai::INSTRUMENTATION,
            openai::chat_request_fields(black_box(&request)),
        );
        call.finish(openai::chat_response_fields(black_box(&response)));
    };
    let one_stream = || {
        let mut call = LlmCallSpan::start(
            openai::CHAT_SPAN_NAME,
            openai::INSTRUMENTATION,
            openai::chat_request_fields(black_box(&stream_request)),
        );
        let mut aggregate = openai::ChatStream::new();
        for chunk in &chunks {
            call.mark_first_token();
            aggregate.push(black_box(chunk));
        }
        call.finish(openai::chat_response_fields(&aggregate.response()));
    };
    // (wall, CPU) nanoseconds per call.
    let time = |f: &dyn Fn()| -> Result<(f64, f64), String> {
        for _ in 0..args.chunk.min(args.calls) {
            f();
        }
        logger.flush().map_err(|e| e.to_string())?;
        let mut total = 0u128;
        let mut total_cpu = 0u128;
        let mut done = 0;
        while done < args.calls {
            let n = args.chunk.min(args.calls - done);
            let start = Instant::now();
            let start_cpu = ThreadTime::now();
            for _ in 0..n {
                f();
            }
            total_cpu += start_cpu.elapsed().as_nanos();
            total += start.elapsed().as_nanos();
            logger.flush().map_err(|e| e.to_string())?;
            done += n;
        }
        let calls = args.calls as f64;
        Ok((total as f64 / calls, total_cpu as f64 / calls))
    };
    let call_ns = time(&one_call)?;
    let stream_ns = time(&one_stream)?;
    // The per-chunk figure is the streamed call minus the same call with no chunks.
    let no_chunks = time(&|| {
        let call = LlmCallSpan::start(
            openai::CHAT_SPAN_NAME,
            openai::INSTRUMENTATION,
            openai::chat_request_fields(black_box(&stream_request)),
        );
        call.finish(openai::chat_response_fields(
            &openai::ChatStream::new().response(),
        ));
    })?;
    let stats = logger.stats();
    if stats.failed + stats.dropped > 0 {
        return Err(format!("rows were lost: {stats:?}"));
    }
    let per_chunk = |streamed: f64, bare: f64| ((streamed - bare) / chunks.len() as f64).max(0.0);
    Ok(serde_json::json!({
        "span_build_ns": call_ns.0.round(),
        "stream_chunk_ns": (per_chunk(stream_ns.0, no_chunks.0) * 10.0).round() / 10.0,
        "span_build_cpu_ns": call_ns.1.round(),
        "stream_chunk_cpu_ns": (per_chunk(stream_ns.1, no_chunks.1) * 10.0).round() / 10.0,
        "chunks": chunks.len(),
    })
    .to_string())
}
