//! Attachments against an in-process braintrust-local: the upload sequence, reading back,
//! failures at every step (the row is always delivered), retries, the flush deadline, and
//! converted inline media.

use std::time::Duration;

use braintrust_core::attachment::{
    Attachment, AttachmentError, ExternalAttachment, JsonAttachment, UploadStatus,
};
use braintrust_core::event::Event;
use braintrust_core::inline_media::convert_inline_media_always;
use braintrust_core::object::ObjectIds;
use braintrust_core::span::{FlushError, StartSpan};
use braintrust_local::{Fault, LocalServer};
use braintrust_transport::api::ApiClient;
use braintrust_transport::logger::{Logger, LoggerOptions, init_logger};
use serde_json::{Value, json};

fn server() -> LocalServer {
    LocalServer::builder()
        .in_memory()
        .record_requests(true)
        .start()
        .unwrap()
}

fn logger(server: &LocalServer) -> Logger {
    init_logger(
        LoggerOptions::new()
            .project("attachments")
            .api_key(server.api_key())
            .app_url(server.url())
            .api_url(server.url())
            .retry_base_delay(Duration::from_millis(1))
            .set_current(false),
    )
    .unwrap()
}

fn stored_rows(server: &LocalServer) -> Vec<Value> {
    let objects = server.objects_with_rows().unwrap();
    let project: &ObjectIds = objects.first().expect("rows stored");
    server.rows(project).unwrap()
}

fn requests(server: &LocalServer, method: &str, path: &str) -> Vec<Value> {
    server
        .recorded_requests()
        .into_iter()
        .filter(|r| r.method == method && r.path == path)
        .map(|r| r.json.unwrap_or(Value::Null))
        .collect()
}

#[test]
fn attachments_upload_after_their_rows_and_read_back_identical() {
    let server = server();
    let logger = logger(&server);
    let dir = std::env::temp_dir().join(format!("bt-attach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pdf_path = dir.join("report.pdf");
    let pdf_bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    std::fs::write(&pdf_path, &pdf_bytes).unwrap();

    let text = Attachment::new(
        b"hello attachment bytes".to_vec(),
        "hello.txt",
        "text/plain",
    );
    let pdf = Attachment::from_file(&pdf_path);
    let config = JsonAttachment::new(&json!({"temperature": 0.2, "tools": ["a", "b"]})).unwrap();
    let external = ExternalAttachment::new(
        "s3://my-bucket/path/file.pdf",
        "file.pdf",
        "application/pdf",
    );
    let span = logger.start_span(StartSpan::named("root"));
    span.log(
        Event::new()
            .input(json!({"doc": &text, "list": [&external, 1], "nested": {"pdf": &pdf}}))
            .metadata(json!({"config": &config}))
            .output(json!("ok")),
    )
    .unwrap();
    span.end();
    logger.flush().unwrap();

    let stats = logger.stats();
    assert_eq!(
        (stats.attachments_uploaded, stats.attachments_failed),
        (3, 0)
    );
    // The rows carry references only; the bytes went up after the /logs3 request.
    let rows = stored_rows(&server);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["input"]["doc"], serde_json::to_value(&text).unwrap());
    assert_eq!(row["input"]["list"][0]["type"], "external_attachment");
    assert_eq!(
        row["input"]["nested"]["pdf"]["content_type"],
        "application/pdf"
    );
    assert_eq!(row["metadata"]["config"]["filename"], "data.json");
    let order: Vec<String> = server
        .recorded_requests()
        .into_iter()
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.split('/').take(2).collect::<Vec<_>>().join("/")
            )
        })
        .filter(|p| !p.contains("/version") && !p.contains("/v1") && !p.contains("/api"))
        .collect();
    let first_upload = order.iter().position(|p| p == "POST /attachment").unwrap();
    let logs3 = order.iter().position(|p| p == "POST /logs3").unwrap();
    assert!(logs3 < first_upload, "{order:?}");
    // Signed uploads carry no API key.
    for put in server
        .recorded_requests()
        .iter()
        .filter(|r| r.method == "PUT")
    {
        assert_eq!(put.header("authorization"), None);
    }
    let statuses = requests(&server, "POST", "/attachment/status");
    assert_eq!(statuses.len(), 3);
    for status in &statuses {
        assert_eq!(status["status"], json!({"upload_status": "done"}));
        assert_eq!(status["org_id"], server.org_id());
    }

    // Read back through the API, as fetched rows would be.
    let client = ApiClient::new(server.login_options()).unwrap();
    let found = client.attachments_in(row);
    assert_eq!(found.len(), 4);
    let by_name = |name: &str| {
        found
            .iter()
            .find(|a| a.reference().filename() == name)
            .unwrap()
    };
    assert_eq!(
        &*by_name("hello.txt").data_blocking().unwrap(),
        b"hello attachment bytes"
    );
    assert_eq!(
        &*by_name("report.pdf").data_blocking().unwrap(),
        pdf_bytes.as_slice()
    );
    let json_bytes = by_name("data.json").data_blocking().unwrap();
    let parsed: Value = serde_json::from_slice(&json_bytes).unwrap();
    assert_eq!(parsed, json!({"temperature": 0.2, "tools": ["a", "b"]}));
    let meta = by_name("hello.txt").metadata_blocking().unwrap();
    assert_eq!(meta.status.upload_status, UploadStatus::Done);
    let external_meta = by_name("file.pdf").metadata_blocking().unwrap();
    assert_eq!(external_meta.download_url, "s3://my-bucket/path/file.pdf");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_attachment_logged_twice_uploads_once() {
    let server = server();
    let logger = logger(&server);
    let image = Attachment::new(vec![1, 2, 3], "a.png", "image/png");
    logger
        .log(Event::new().input(json!({"img": &image})))
        .unwrap();
    logger
        .log(Event::new().input(json!({"again": [&image, &image]})))
        .unwrap();
    logger.flush().unwrap();
    assert_eq!(logger.stats().attachments_uploaded, 1);
    assert_eq!(requests(&server, "POST", "/attachment").len(), 1);
    assert_eq!(stored_rows(&server).len(), 2);
}

/// Logs one row referencing `attachment`, flushes, and returns the flush result.
fn log_one(
    server: &LocalServer,
    logger: &Logger,
    attachment: &Attachment,
) -> Result<(), FlushError> {
    logger
        .log(
            Event::new()
                .input(json!({"file": attachment}))
                .output(json!("kept")),
        )
        .unwrap();
    let result = logger.flush();
    // Whatever happened to the upload, the row is there.
    let rows = stored_rows(server);
    assert!(
        rows.iter()
            .any(|r| r["input"]["file"]["key"] == attachment.key())
    );
    result
}

fn last_status(server: &LocalServer) -> Value {
    requests(server, "POST", "/attachment/status")
        .pop()
        .expect("a status was posted")["status"]
        .clone()
}

#[test]
fn a_refused_signed_url_request_records_an_error_status() {
    let server = server();
    let logger = logger(&server);
    server.inject_fault("/attachment", Fault::Status(400), 1);
    let a = Attachment::new(b"x".to_vec(), "x.txt", "text/plain");
    let err = log_one(&server, &logger, &a).unwrap_err();
    let FlushError::AttachmentsFailed {
        attachments,
        last_error,
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!(attachments, 1);
    assert!(
        last_error.contains("Failed to request signed URL from API server"),
        "{last_error}"
    );
    let status = last_status(&server);
    assert_eq!(status["upload_status"], "error");
    assert!(
        status["error_message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to request signed URL from API server: HTTP 400")
    );
    // 4xx is not retried.
    assert_eq!(requests(&server, "POST", "/attachment").len(), 1);
    let stats = logger.stats();
    assert_eq!(
        (stats.attachments_failed, stats.failed, stats.sent),
        (1, 0, 1)
    );
    // The next flush has nothing new to report.
    logger.flush().unwrap();
}

#[test]
fn a_failed_upload_records_an_error_readers_see() {
    let server = server();
    let logger = logger(&server);
    let a = Attachment::new(b"x".to_vec(), "x.txt", "text/plain");
    server.inject_fault(
        &format!("/objstore/attachments/{}", a.key()),
        Fault::Status(403),
        1,
    );
    let err = log_one(&server, &logger, &a).unwrap_err();
    assert!(
        err.to_string()
            .contains("Failed to upload attachment to object store"),
        "{err}"
    );
    let client = ApiClient::new(server.login_options()).unwrap();
    let readonly = client.attachment(a.reference());
    let meta = readonly.metadata_blocking().unwrap();
    assert_eq!(meta.status.upload_status, UploadStatus::Error);
    assert!(
        meta.status
            .error_message
            .unwrap()
            .starts_with("Failed to upload attachment to object store: HTTP 403")
    );
    assert!(matches!(
        readonly.data_blocking(),
        Err(AttachmentError::NotUploaded {
            status: UploadStatus::Error,
            ..
        })
    ));
}

#[test]
fn an_unreadable_file_records_an_error_status() {
    let server = server();
    let logger = logger(&server);
    let a = Attachment::from_file("/no/such/dir/missing.pdf");
    let err = log_one(&server, &logger, &a).unwrap_err();
    assert!(err.to_string().contains("Failed to read file"), "{err}");
    let status = last_status(&server);
    assert!(
        status["error_message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to read file: ")
    );
    assert!(
        requests(&server, "POST", "/attachment").is_empty(),
        "nothing to sign"
    );
}

#[test]
fn a_failed_status_report_is_counted() {
    let server = server();
    let logger = logger(&server);
    server.inject_fault("/attachment/status", Fault::Status(400), 1);
    let a = Attachment::new(b"x".to_vec(), "x.txt", "text/plain");
    let err = log_one(&server, &logger, &a).unwrap_err();
    assert!(
        err.to_string().contains("status could not be recorded"),
        "{err}"
    );
    assert_eq!(logger.stats().attachments_failed, 1);
}

#[test]
fn server_errors_and_dropped_connections_are_retried() {
    let server = server();
    let logger = logger(&server);
    let a = Attachment::new(vec![9; 1000], "x.bin", "application/octet-stream");
    server.inject_fault("/attachment", Fault::Status(503), 2);
    server.inject_fault(
        &format!("/objstore/attachments/{}", a.key()),
        Fault::DropConnection,
        1,
    );
    server.inject_fault("/attachment/status", Fault::Status(500), 1);
    log_one(&server, &logger, &a).unwrap();
    assert_eq!(logger.stats().attachments_uploaded, 1);
    assert_eq!(requests(&server, "POST", "/attachment").len(), 3);
    let client = ApiClient::new(server.login_options()).unwrap();
    assert_eq!(
        &*client.attachment(a.reference()).data_blocking().unwrap(),
        &[9; 1000][..]
    );
}

#[test]
fn flush_gives_up_waiting_for_slow_uploads_at_its_deadline() {
    let server = server();
    let logger = init_logger(
        LoggerOptions::new()
            .project("attachments")
            .api_key(server.api_key())
            .app_url(server.url())
            .api_url(server.url())
            .attachment_flush_timeout(Duration::from_millis(50))
            .set_current(false),
    )
    .unwrap();
    let a = Attachment::new(b"slow".to_vec(), "slow.txt", "text/plain");
    server.inject_fault(
        &format!("/objstore/attachments/{}", a.key()),
        Fault::Delay(Duration::from_millis(1500)),
        1,
    );
    let err = log_one(&server, &logger, &a).unwrap_err();
    assert_eq!(err, FlushError::AttachmentsPending { attachments: 1 });
    // The upload goes on; a later flush (with the same short deadline) sees it finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while logger.stats().attachments_uploaded == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "upload never finished"
        );
        let _ = logger.flush();
    }
    logger.flush().unwrap();
}

#[test]
fn converted_inline_media_uploads_and_the_original_is_untouched() {
    let server = server();
    let logger = logger(&server);
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let request = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}},
    ]}]});
    let before = request.to_string();
    let converted = convert_inline_media_always(&request).unwrap();
    logger
        .log(Event::new().input(converted.value.clone()))
        .unwrap();
    drop(converted.attachments);
    logger.flush().unwrap();
    assert_eq!(
        request.to_string(),
        before,
        "the outbound request is not modified"
    );
    assert_eq!(logger.stats().attachments_uploaded, 1);
    let rows = stored_rows(&server);
    let reference = &rows[0]["input"]["messages"][0]["content"][0]["image_url"]["url"];
    let client = ApiClient::new(server.login_options()).unwrap();
    let data = client.attachments_in(reference)[0].data_blocking().unwrap();
    use base64::Engine as _;
    assert_eq!(
        &*data,
        base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap()
            .as_slice()
    );
}
