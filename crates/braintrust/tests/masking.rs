//! The global masking function, applied in the background; its own binary because it is
//! process-wide.

mod common;

use braintrust::{Event, MaskingFunction, StartSpan, init_logger, set_masking_function};
use common::{named, options, rows, server};
use serde_json::{Value, json};

#[test]
fn a_panicking_masking_function_yields_placeholders_and_logging_goes_on() {
    let server = server();
    let logger = init_logger(options(&server, "masking")).unwrap();
    set_masking_function(Some(MaskingFunction::infallible(|value: &Value| {
        if value.to_string().contains("secret") {
            panic!("cannot mask this");
        }
        if let Value::String(s) = value {
            return Value::String(s.replace("password", "********"));
        }
        value.clone()
    })));
    let span = logger.start_span(StartSpan::named("masked"));
    span.log(
        Event::new()
            .input(json!("my password"))
            .output(json!({"token": "secret"}))
            .score("ok", 1.0),
    )
    .unwrap();
    span.end();
    logger.flush().unwrap();
    let after = logger.start_span(StartSpan::named("after"));
    after.log(Event::new().input(json!("plain"))).unwrap();
    after.end();
    logger.flush().unwrap();
    set_masking_function(None);

    let rows = rows(&server, &logger);
    let masked = named(&rows, "masked");
    assert_eq!(masked["input"], "my ********");
    assert_eq!(
        masked["output"],
        "ERROR: Failed to mask field 'output' - Panic"
    );
    assert_eq!(masked["scores"], json!({"ok": 1.0}));
    assert_eq!(named(&rows, "after")["input"], "plain");
    assert_eq!(logger.stats().failed, 0);
}
