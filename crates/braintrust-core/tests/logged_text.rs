//! A span writes logged values as JSON text on the logging thread, except while an attachment
//! is alive (sinks find attachments in values), and the rows it sends are the same either way.
//!
//! This file holds one test so that no other test of the process keeps an attachment alive or
//! installs a masking function while it runs (either keeps values as values).

use std::sync::{Arc, Mutex};

use braintrust_core::attachment::Attachment;
use braintrust_core::event::Event;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::{
    FlushError, LinkError, ObjectRef, PendingKind, PendingRow, Span, SpanSink, StartSpan,
};
use braintrust_core::span_components::SpanComponents;
use serde_json::{Value, json};

#[derive(Debug, Default)]
struct Sink {
    rows: Mutex<Vec<PendingRow>>,
}

impl SpanSink for Sink {
    fn submit(&self, row: PendingRow) {
        self.rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(row);
    }

    fn flush(&self) -> Result<(), FlushError> {
        Ok(())
    }

    fn permalink(&self, _: &SpanComponents) -> Result<String, LinkError> {
        Err(LinkError::Unsupported("test".into()))
    }
}

#[derive(serde::Serialize)]
struct Messages {
    messages: Vec<Message>,
}

#[derive(serde::Serialize)]
struct Message {
    role: &'static str,
    content: &'static str,
}

/// Logs one event and ends with another; returns whether the update and end rows held JSON
/// text, and the rows built from them.
fn log_and_end() -> (Vec<bool>, Vec<Value>) {
    let sink = Arc::new(Sink::default());
    let object = ObjectRef::resolved(ObjectIds::project_logs("p"));
    let span = Span::start(sink.clone(), object, StartSpan::named("step"));
    // The input (and the output at the end) is given by reference, text from the start; the
    // metadata is given as a value.
    let input = Messages {
        messages: vec![Message {
            role: "user",
            content: "hi",
        }],
    };
    span.log(
        Event::new()
            .input_serialized(&input)
            .metadata(json!({"model": "m"}))
            .metric("tokens", 3.0),
    )
    .expect("a valid event");
    span.log_and_end(Event::new().output_serialized(&["a", "b"]))
        .expect("a valid event");

    let rows = std::mem::take(&mut *sink.rows.lock().unwrap_or_else(|e| e.into_inner()));
    let held_text = rows
        .iter()
        .filter_map(|row| match &row.kind {
            PendingKind::SpanUpdate { fields, .. } | PendingKind::SpanEnd { fields, .. } => {
                Some(fields.has_json_text())
            }
            _ => None,
        })
        .collect();
    let built = rows
        .into_iter()
        .map(|row| {
            let mut row: Value = row.into_row().into();
            // Times differ between the two runs; everything else must not.
            for key in ["id", "span_id", "root_span_id", "created", "metrics"] {
                row.as_object_mut().map(|row| row.remove(key));
            }
            row.as_object_mut().map(|row| row.remove("span_attributes"));
            row
        })
        .collect();
    (held_text, built)
}

#[test]
fn logged_values_are_written_as_text_unless_an_attachment_is_alive() {
    let (text_by_default, rows_by_default) = log_and_end();
    // An attachment counts once it has been serialised into a value (a reference).
    let attachment = Attachment::new(b"x".to_vec(), "x.txt", "text/plain");
    let reference = serde_json::to_value(&attachment).expect("a reference");
    assert!(reference.is_object(), "{reference}");
    let (text_with_attachment, rows_with_attachment) = log_and_end();
    drop(attachment);

    assert_eq!(
        text_by_default,
        vec![true, true],
        "the sink receives JSON text"
    );
    assert_eq!(
        text_with_attachment,
        vec![false, false],
        "while an attachment is alive the sink receives values"
    );
    assert_eq!(rows_by_default, rows_with_attachment);
    let update = &rows_by_default[1];
    assert_eq!(update["input"]["messages"][0]["content"], json!("hi"));
    assert_eq!(update["metadata"], json!({"model": "m"}));
    assert_eq!(rows_by_default[2]["output"], json!(["a", "b"]));
}
