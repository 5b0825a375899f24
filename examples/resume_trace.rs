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

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let parent = std::env::args().nth(1).unwrap_or_default();
    let project = std::env::var("BRAINTRUST_PROJECT")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "resume-trace".to_owned());
    let slug = resume(&parent, LoggerOptions::new().project(project))?;
    println!("{slug}");
    Ok(())
}

/// Starts a span under `parent` (a root span when it is empty), logs `{"output": "resumed"}`,
/// flushes, and returns the span's export slug.
fn resume(parent: &str, options: LoggerOptions) -> Result<String, Error> {
    // A malformed slug is not fatal: the span becomes a root (the SDK also warns via `tracing`).
    if let Err(e) = braintrust::span_components::SpanComponents::parse(parent)
        && !parent.trim().is_empty()
    {
        eprintln!("warning: {e}; starting a root span instead");
    }
    let logger = braintrust::init_logger(options)?;
    let span = logger.start_span(StartSpan::named("resumed").parent(parent));
    span.log(Event::new().output(json!("resumed")))?;
    span.end();
    logger.flush()?;
    Ok(span.export())
}

/// `cargo test` runs this (`test = true` in Cargo.toml): a root span, then a span resumed from
/// its slug, both read back from an in-process braintrust-local.
#[cfg(test)]
#[test]
fn a_resumed_span_lands_under_its_parent() -> Result<(), Error> {
    use braintrust::env_file::EnvLookup;
    use braintrust::object::ObjectIds;
    use braintrust::span_components::SlugObject;
    use braintrust_local::LocalServer;

    let server = LocalServer::start()?;
    let options = || {
        LoggerOptions::new()
            .project("resume-trace")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([]))
            .set_current(false)
    };
    let first = resume("", options())?;
    let second = resume(&first, options())?;
    let first_ids = braintrust::span_components::SpanComponents::parse(&first)?;
    let second_ids = braintrust::span_components::SpanComponents::parse(&second)?;
    let (Some(parent), Some(child)) = (first_ids.row, second_ids.row) else {
        return Err("both slugs name their spans".into());
    };
    assert_eq!(child.root_span_id, parent.root_span_id, "one trace");
    assert_ne!(child.span_id, parent.span_id);

    let SlugObject::Id(project) = first_ids.object else {
        return Err("the slug names its project by id once flushed".into());
    };
    let rows = server.rows(&ObjectIds::project_logs(&project))?;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let stored = |span_id: &str| rows.iter().find(|r| r["span_id"] == span_id);
    let child_row = stored(&child.span_id).ok_or("the resumed span is stored")?;
    assert_eq!(child_row["span_parents"], json!([parent.span_id]));
    assert_eq!(child_row["output"], json!("resumed"));
    let root_row = stored(&parent.span_id).ok_or("the root span is stored")?;
    assert_eq!(root_row["span_parents"], json!(null), "{root_row}");
    // A malformed slug starts a root span of its own trace.
    let fallback = resume("not a slug", options())?;
    let fallback_ids = braintrust::span_components::SpanComponents::parse(&fallback)?;
    let fallback_row = fallback_ids.row.ok_or("the slug names its span")?;
    assert_ne!(fallback_row.root_span_id, parent.root_span_id);
    Ok(())
}
