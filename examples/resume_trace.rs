//! Continues a trace from an export slug, as a second service would.
//!
//! ```text
//! cargo run --example resume_trace -- <exported-slug>
//! cargo run --example resume_trace -- ""      # a new root span instead
//! ```
//!
//! Starts a span under the slug's parent (the slug may come from this SDK or from the official
//! Python/TypeScript SDKs; an empty argument starts a root span in the project named by
//! `BRAINTRUST_PROJECT`, default `resume-trace`), logs `{"output": "resumed"}`, flushes, and
//! prints the new span's export slug as the last line of stdout. Reads `BRAINTRUST_API_KEY`,
//! `BRAINTRUST_APP_URL`, `BRAINTRUST_API_URL` and `BRAINTRUST_PROJECT` as usual.

use braintrust::{Event, LoggerOptions, StartSpan};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let parent = std::env::args().nth(1).unwrap_or_default();
    let project = std::env::var("BRAINTRUST_PROJECT")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "resume-trace".to_owned());
    // A malformed slug is not fatal: the span becomes a root (the SDK also warns via `tracing`).
    if let Err(e) = braintrust::span_components::SpanComponents::parse(&parent)
        && !parent.trim().is_empty()
    {
        eprintln!("warning: {e}; starting a root span instead");
    }
    let logger = braintrust::init_logger(LoggerOptions::new().project(project))?;
    let span = logger.start_span(StartSpan::named("resumed").parent(parent.as_str()));
    span.log(Event::new().output(json!("resumed")))?;
    span.end();
    logger.flush()?;
    println!("{}", span.export());
    Ok(())
}
