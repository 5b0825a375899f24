//! Attachments, fully offline: logs a span with an image (bytes), a PDF (a file) and a JSON
//! attachment to an in-process `braintrust-local`, stores the same files in a dataset, then
//! fetches the dataset back and downloads each attachment through its `ReadonlyAttachment`.
//!
//! Run: `cargo run --example attachments`

use braintrust::env_file::EnvLookup;
use braintrust::{
    Attachment, DatasetOptions, DatasetRecord, Event, ExternalAttachment, JsonAttachment,
    LoggerOptions, StartSpan,
};
use braintrust_local::LocalServer;
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A 1×1 red PNG.
const PNG: [u8; 70] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
    0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 252, 207, 192, 240, 31, 0,
    5, 5, 2, 0, 95, 200, 241, 210, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// A one-page PDF.
const PDF: &str = "%PDF-1.0\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\n\
trailer << /Root 1 0 R >>\n%%EOF\n";

fn main() -> Result<(), Error> {
    let server = LocalServer::start()?;
    let offline = || {
        LoggerOptions::new()
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([]))
    };
    let pdf_path =
        std::env::temp_dir().join(format!("braintrust-example-{}.pdf", std::process::id()));
    std::fs::write(&pdf_path, PDF)?;

    // Attachments go anywhere in a logged value; the row holds references, and the bytes are
    // uploaded in the background after the row is sent.
    let image = Attachment::new(PNG.to_vec(), "pixel.png", "image/png");
    let report = Attachment::from_file(&pdf_path); // report name and type from the path
    let settings = JsonAttachment::new(&json!({"model": "pretend-1", "temperature": 0.2}))?;
    let logger = braintrust::init_logger(offline().project("attachments"))?;
    let span = logger.start_span(StartSpan::named("describe"));
    span.log(
        Event::new()
            .input(json!({
                "question": "What is in these files?",
                "image": &image,
                "report": &report,
                "archive": ExternalAttachment::new("s3://bucket/archive.zip", "archive.zip", "application/zip"),
            }))
            .metadata(json!({"settings": &settings}))
            .output(json!("a red pixel and a blank page")),
    )?;
    span.end();
    logger.flush()?; // waits for the uploads too
    let stats = logger.stats();
    println!(
        "logged 1 span; {} attachments uploaded, {} failed",
        stats.attachments_uploaded, stats.attachments_failed
    );

    // The same files as dataset inputs, read back as ReadonlyAttachments.
    let dataset = braintrust::init_dataset(
        DatasetOptions::new("attachments", "files").connection(offline()),
    )?;
    dataset.insert(DatasetRecord::new(
        json!({"image": &image, "report": &report}),
    ));
    let mut pages = dataset.fetch()?;
    let mut rows = 0;
    while let Some(row) = pages.next() {
        let row = row?;
        rows += 1;
        for attachment in pages.attachments(&row) {
            let reference = attachment.reference();
            let bytes = attachment.data_blocking()?;
            let expected: &[u8] = if reference.content_type() == "image/png" {
                &PNG
            } else {
                PDF.as_bytes()
            };
            println!(
                "{} ({}): {} bytes, {}",
                reference.filename(),
                reference.content_type(),
                bytes.len(),
                if &*bytes == expected {
                    "identical to what was logged"
                } else {
                    "DIFFERENT from what was logged"
                }
            );
        }
    }
    println!("read back {rows} dataset record(s)");
    std::fs::remove_file(&pdf_path)?;
    Ok(())
}

/// `cargo test` runs this example too (`test = true` in Cargo.toml): every step above returns
/// its error.
#[cfg(test)]
#[test]
fn runs_offline() {
    if let Err(e) = main() {
        panic!("the example failed: {e}");
    }
}
