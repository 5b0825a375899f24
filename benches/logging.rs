//! Criterion benches of the logging path: `#[traced]` with tracing disabled against the bare
//! function, the no-op span, a traced span on the caller's thread, queueing a row, and
//! serialising a request body.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use braintrust::env_file::EnvLookup;
use braintrust::http::{HttpClient, HttpRequest, HttpResponse, ResponseFuture};
use braintrust::row::Row;
use braintrust::{Event, Logger, LoggerOptions, StartSpan};
use braintrust_benches::{bare_add, traced_add};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

/// Answers every request with `200 {}` at once, so only the client side is measured.
#[derive(Debug)]
struct NullClient;

impl HttpClient for NullClient {
    fn send(&self, _request: HttpRequest) -> ResponseFuture<'_> {
        Box::pin(async {
            Ok(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: b"{}".to_vec(),
            })
        })
    }
}

fn logger() -> Logger {
    braintrust::init_logger(
        LoggerOptions::new()
            .project_id("747ebc7b-6a9b-597e-94f2-512cce481000")
            .api_key("bench")
            .app_url("http://bench.invalid")
            .api_url("http://bench.invalid")
            .env(EnvLookup::from_pairs::<&str, &str>([]))
            .http_client(Arc::new(NullClient))
            .set_current(false)
            .queue_size(200_000),
    )
    .expect("logger")
}

fn payload(role: &str) -> Value {
    json!({"messages": [{"role": role, "content": "lorem ipsum dolor sit amet ".repeat(36)}]})
}

/// Runs `iters` calls of `f`, flushing every `chunk` calls outside the measured time so the
/// queue never fills (this measures the caller's cost, not the sender's).
fn timed_in_chunks(logger: &Logger, iters: u64, chunk: u64, mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        total += start.elapsed();
        let _ = logger.flush();
        done += n;
    }
    total
}

fn spans(c: &mut Criterion) {
    // Before any logger exists: `#[traced]` against the bare function, then the no-op span.
    c.bench_function("baseline", |b| {
        b.iter(|| bare_add(black_box(1), black_box(2)));
    });
    c.bench_function("traced_disabled", |b| {
        b.iter(|| traced_add(black_box(1), black_box(2)));
    });
    c.bench_function("span_disabled", |b| {
        b.iter(|| {
            let span = braintrust::start_span(StartSpan::named("disabled"));
            let _ = span.log(Event::new().output(black_box(json!(1))));
            span.end();
        });
    });

    let logger = logger();
    let (input, output) = (payload("user"), payload("assistant"));
    let root = logger.start_span(StartSpan::named("root"));
    c.bench_function("span_enabled", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(&logger, iters, 20_000, || {
                let span = root.start_span(StartSpan::named("step"));
                let _ = span.log(
                    Event::new()
                        .input(input.clone())
                        .output(output.clone())
                        .metadata(json!({"model": "m", "i": 1, "user": "u", "region": "r", "cached": false}))
                        .metric("prompt_tokens", 812.0)
                        .metric("completion_tokens", 245.0)
                        .metric("tokens", 1057.0),
                );
                span.end();
            })
        });
    });

    let batcher_row = Row::from_map(
        json!({"id": "r", "project_id": "p", "log_id": "g", "output": "x", "_is_merge": true})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    c.bench_function("enqueue_row", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(&logger, iters, 50_000, || {
                let _ = logger.update_span("r", Event::new().output(json!("x")));
            })
        });
    });
    black_box(batcher_row);
}

/// 100 merged span rows of about 2.8 KB, as one `/logs3` request carries them.
fn request_rows() -> Vec<Value> {
    (0..100)
        .map(|i| {
            json!({
                "id": format!("{i:08}-0000-4000-8000-000000000000"), "span_id": "6051558fbadd5563",
                "root_span_id": "afa0ab0093581c0cbff4197f303465e1", "span_parents": ["f1e94cab089b607b"],
                "created": "2026-11-21T12:56:37.315226Z", "project_id": "747ebc7b-6a9b-597e-94f2-512cce481000",
                "log_id": "g", "span_attributes": {"name": "step", "exec_counter": i},
                "metrics": {"start": 1795265797.3152213, "end": 1795265797.3162213, "tokens": 1057},
                "context": {"span_origin": {"name": "braintrust.sdk.rust", "version": "0.1.0",
                            "instrumentation": {"name": "braintrust-rust-logger"}}},
                "input": payload("user"), "output": payload("assistant"),
                "metadata": {"model": "m", "i": i, "user": "u", "region": "r", "cached": false},
            })
        })
        .collect()
}

/// serde_json against simd-json. The batcher serialises request bodies with simd-json (faster
/// here, and exact: see `serialised_rows_round_trip` in braintrust-transport); parsing stays
/// with serde_json and its `float_roundtrip` feature, which reads every float exactly.
fn serialize(c: &mut Criterion) {
    let rows = request_rows();
    let body = json!({"rows": rows, "api_version": 2});
    c.bench_function("serialize_batch/serde_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&body)));
    });
    c.bench_function("serialize_batch/simd_json", |b| {
        b.iter(|| simd_json::serde::to_vec(black_box(&body)));
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    c.bench_function("parse_batch/serde_json", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)));
    });
    c.bench_function("parse_batch/simd_json", |b| {
        b.iter_batched(
            || bytes.clone(),
            |mut copy| simd_json::serde::from_slice::<Value>(&mut copy),
            criterion::BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, spans, serialize);
criterion_main!(benches);
