//! Process-wide state: no-op behaviour before any logger, the current logger and the top-level
//! functions. One test, because the state is global to the test binary.

mod common;

use braintrust::{Event, StartSpan, current_span, init_logger};
use common::{named, options, rows, server};
use serde_json::json;

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
    assert_eq!(child.span_parents(), [root.span_id().to_owned()]);
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

    assert!(braintrust::clear_current_logger().is_some());
    assert!(braintrust::start_span(StartSpan::named("after")).is_noop());
    logger.flush().unwrap();
    assert_eq!(common::rows(&server, &logger).len(), 3);
}
