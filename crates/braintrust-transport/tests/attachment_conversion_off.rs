//! A failed upload of converted inline media turns the conversion off for the process (its own
//! test binary: the switch is process-wide).

use std::time::Duration;

use braintrust_core::event::Event;
use braintrust_core::inline_media::{auto_conversion_enabled, convert_inline_media};
use braintrust_local::{Fault, LocalServer};
use braintrust_transport::logger::{LoggerOptions, init_logger};
use serde_json::json;

#[test]
fn a_failed_converted_upload_keeps_later_media_inline() {
    if std::env::var("BRAINTRUST_AUTO_CONVERT_AI_ATTACHMENTS").is_ok() {
        eprintln!("skipped: BRAINTRUST_AUTO_CONVERT_AI_ATTACHMENTS is set in the environment");
        return;
    }
    let server = LocalServer::builder().in_memory().start().unwrap();
    let logger = init_logger(
        LoggerOptions::new()
            .project("conversion")
            .api_key(server.api_key())
            .app_url(server.url())
            .api_url(server.url())
            .retry_base_delay(Duration::from_millis(1))
            .set_current(false),
    )
    .unwrap();
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let payload = json!({"image_url": {"url": format!("data:image/png;base64,{png}")}});
    assert!(auto_conversion_enabled());
    let converted = convert_inline_media(&payload).expect("converted while enabled");
    server.inject_fault("/attachment", Fault::Status(403), 1);
    logger.log(Event::new().input(converted.value)).unwrap();
    assert!(logger.flush().is_err());
    assert!(!auto_conversion_enabled());
    assert!(
        convert_inline_media(&payload).is_none(),
        "later spans keep their inline base64"
    );
}
