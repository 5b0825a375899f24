//! Process-wide state: no-op behaviour before any logger, the current logger and the top-level
//! functions. One test, because the state is global to the test binary.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use braintrust::{Event, StartSpan, current_span, init_logger, traced};
use common::{named, options, rows, server};
use serde::{Serialize, Serializer};
use serde_json::json;

static SERIALIZED: AtomicUsize = AtomicUsize::new(0);

/// Counts how often it is serialised.
struct Watched(u32);

impl Serialize for Watched {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SERIALIZED.fetch_add(1, Ordering::Relaxed);
        serializer.serialize_u32(self.0)
    }
}

#[traced]
fn watched(value: Watched) -> u32 {
    value.0 + 1
}

#[traced(parent = parent)]
fn continue_trace(parent: &str, step: u8) -> u8 {
    step
}

#[test]
fn no_op_until_a_logger_then_top_level_functions_use_the_current_logger() {
    // Nothing initialised: everything is a no-op that sends nothing and exports "".
    assert!(!braintrust::context::is_enabled());
    let noop = braintrust::start_span(StartSpan::named("nothing"));
    assert!(noop.is_noop() && current_span().is_noop());
    assert_eq!(noop.export(), "");
    assert!(noop.log(Event::new().input(json!(1))).is_ok());
    assert!(noop.start_span(StartSpan::named("child")).is_noop());
    assert_eq!(noop.permalink().unwrap(), braintrust::span::NOOP_PERMALINK);
    assert_eq!(
        braintrust::permalink("").unwrap(),
        braintrust::span::NOOP_PERMALINK
    );
    assert!(braintrust::current_logger().is_none());
    braintrust::flush().unwrap();
    // `#[traced]` with tracing disabled: the function runs, its arguments are not touched.
    assert_eq!(watched(Watched(1)), 2);
    assert_eq!(SERIALIZED.load(Ordering::Relaxed), 0);
    assert!(matches!(
        braintrust::update_span("", Event::new()),
        Err(braintrust::UpdateSpanError::Slug(_))
    ));

    let server = server();
    let logger = init_logger(options(&server, "global").set_current(true)).unwrap();
    assert!(braintrust::context::is_enabled());
    assert!(braintrust::current_logger().is_some());
    let root = braintrust::start_span(StartSpan::named("top"));
    let child = root.in_scope(|| {
        assert_eq!(current_span().id(), root.id());
        braintrust::start_span(StartSpan::named("nested"))
    });
    assert!(child.span_parents().eq([root.span_id()]));
    child.end();
    let exported = root.export();
    root.end();
    braintrust::update_span(&exported, Event::new().output(json!("updated later"))).unwrap();
    braintrust::flush().unwrap();
    let link = braintrust::permalink(&exported).unwrap();
    assert!(link.ends_with(&format!("&id={}", root.id())), "{link}");

    let rows = rows(&server, &logger);
    assert_eq!(named(&rows, "top")["output"], "updated later");
    assert_eq!(
        named(&rows, "nested")["span_parents"],
        json!([root.span_id()])
    );

    // A slug from elsewhere as parent through the top-level function uses the current logger.
    let resumed = braintrust::start_span(StartSpan::named("resumed").parent(exported.as_str()));
    assert_eq!(resumed.root_span_id(), root.root_span_id());
    drop(resumed);
    // `#[traced]` with no current span: a root of the current logger, or a child of a slug.
    assert_eq!(watched(Watched(41)), 42);
    assert_eq!(SERIALIZED.load(Ordering::Relaxed), 1);
    assert_eq!(continue_trace(&exported, 4), 4);

    assert!(braintrust::clear_current_logger().is_some());
    assert!(braintrust::start_span(StartSpan::named("after")).is_noop());
    logger.flush().unwrap();
    let rows = common::rows(&server, &logger);
    assert_eq!(rows.len(), 5);
    let traced_root = named(&rows, "watched");
    assert_eq!(traced_root["input"], json!({"value": 41}));
    assert!(
        traced_root
            .get("span_parents")
            .is_none_or(serde_json::Value::is_null)
    );
    let continued = named(&rows, "continue_trace");
    assert_eq!(continued["span_parents"], json!([root.span_id()]));
    assert_eq!(continued["root_span_id"], root.root_span_id());
}
