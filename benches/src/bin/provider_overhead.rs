//! Provider-wrapper overhead on the caller's side, from the recorded openai/completions and
//! openai/streaming cassettes. Prints one JSON line `{"span_build_ns":…,"stream_chunk_ns":…}`
//! (wall time), with `span_build_cpu_ns` and `stream_chunk_cpu_ns`: the same measured as the
//! calling thread's CPU time, which leaves out time spent preempted by the sender and the
//! in-process server on a small machine.
//!
//! It times what the built-in clients add to a call, with a logger sending to an in-process
//! braintrust-local:
//!
//! * `span_build_ns`: per call, starting and finishing the span from the bytes sent and
//!   received (`LlmCallSpan::start_with` + `finish_with`; the span fields are built from them
//!   later, on the sender's thread);
//! * `stream_chunk_ns`: per chunk of the streamed answer, what the wrapper adds (the
//!   first-token mark, keeping the chunk's data in a `RecordedStream`, and its share of the
//!   final row): the streamed call minus the same call with no chunks, divided by the chunks;
//! * `span_build_eager_ns`: per call, building the span fields on the caller's thread from
//!   borrowed request and response values (`LlmCallSpan::start` + `finish`), as code that calls
//!   the span builders itself does.
//!
//! Each call's inputs (the bytes a client owns once it has read them) are made before the timed
//! region.
//!
//! ```text
//! cargo run --release -p braintrust-benches --bin provider_overhead -- --calls 20000
//! ```
//!
//! The cassettes come from `BRAINTRUST_CONFORMANCE_DIR` (else `../shared/conformance`).

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use braintrust::LoggerOptions;
use braintrust::env_file::EnvLookup;
use braintrust_local::LocalServer;
// Linked for its global allocator when the `mimalloc` feature is on.
use braintrust_benches as _;
use braintrust_providers::{LlmCallSpan, RecordedStream, openai};
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

/// One timed call, owning its inputs.
type Call = Box<dyn FnOnce()>;

/// Starts a chat span as the built-in client does, from the bytes it sends.
fn start_call(sent: &Arc<[u8]>) -> LlmCallSpan {
    let sent = sent.clone();
    LlmCallSpan::start_with(openai::CHAT_SPAN_NAME, openai::INSTRUMENTATION, move || {
        openai::chat_request_fields(&serde_json::from_slice(&sent).unwrap_or(Value::Null))
    })
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
    let (request, response_bytes) = cassette("completions")?;
    let response: Value = serde_json::from_slice(&response_bytes).map_err(|e| e.to_string())?;
    let (request, response) = (Arc::new(request), Arc::new(response));
    let (stream_request, sse) = cassette("streaming")?;
    let chunks: Vec<String> = String::from_utf8_lossy(&sse)
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| *d != "[DONE]" && !d.is_empty())
        .map(str::to_owned)
        .collect();

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

    // What the built-in clients do: the span fields are built on the sender's thread from the
    // bytes sent (shared with the HTTP request) and received (owned once parsed for the caller),
    // and a stream's events are kept as the SSE data strings the parser produced.
    let request_body: Arc<[u8]> = serde_json::to_vec(&*request)
        .map_err(|e| e.to_string())?
        .into();
    let stream_body: Arc<[u8]> = serde_json::to_vec(&stream_request)
        .map_err(|e| e.to_string())?
        .into();
    let one_call = || -> Call {
        let received = response_bytes.clone();
        let request_body = request_body.clone();
        Box::new(move || {
            let call = start_call(black_box(&request_body));
            call.finish_with(move || {
                openai::chat_response_fields(
                    &serde_json::from_slice(&received).unwrap_or(Value::Null),
                )
            });
        })
    };
    let streamed = |events: Vec<String>| -> Call {
        let stream_body = stream_body.clone();
        Box::new(move || {
            let mut call = start_call(black_box(&stream_body));
            let mut recorded = RecordedStream::new();
            for data in events {
                call.mark_first_token();
                recorded.push(String::new(), black_box(data));
            }
            call.finish_with(move || recorded.fields::<openai::ChatStream>());
        })
    };
    let one_stream = || streamed(chunks.clone());
    let no_chunks = || streamed(Vec::new());
    // The span builders on borrowed values, for code that calls them itself.
    let eager_call = || -> Call {
        let (request, response) = (request.clone(), response.clone());
        Box::new(move || {
            let call = LlmCallSpan::start(
                openai::CHAT_SPAN_NAME,
                openai::INSTRUMENTATION,
                openai::chat_request_fields(black_box(&request)),
            );
            call.finish(openai::chat_response_fields(black_box(&response)));
        })
    };
    // (wall, CPU) nanoseconds per call; each call's inputs are made before the timed region.
    let time = |make: &dyn Fn() -> Call| -> Result<(f64, f64), String> {
        for _ in 0..args.chunk.min(args.calls) {
            make()();
        }
        logger.flush().map_err(|e| e.to_string())?;
        let mut total = 0u128;
        let mut total_cpu = 0u128;
        let mut done = 0;
        while done < args.calls {
            let n = args.chunk.min(args.calls - done);
            let calls: Vec<Call> = (0..n).map(|_| make()).collect();
            let start = Instant::now();
            let start_cpu = ThreadTime::now();
            for call in calls {
                call();
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
    let bare_ns = time(&no_chunks)?;
    let eager_ns = time(&eager_call)?;
    let stats = logger.stats();
    if stats.failed + stats.dropped > 0 {
        return Err(format!("rows were lost: {stats:?}"));
    }
    let per_chunk = |streamed: f64, bare: f64| ((streamed - bare) / chunks.len() as f64).max(0.0);
    Ok(serde_json::json!({
        "span_build_ns": call_ns.0.round(),
        "stream_chunk_ns": (per_chunk(stream_ns.0, bare_ns.0) * 10.0).round() / 10.0,
        "span_build_cpu_ns": call_ns.1.round(),
        "stream_chunk_cpu_ns": (per_chunk(stream_ns.1, bare_ns.1) * 10.0).round() / 10.0,
        "span_build_eager_ns": eager_ns.0.round(),
        "chunks": chunks.len(),
    })
    .to_string())
}
