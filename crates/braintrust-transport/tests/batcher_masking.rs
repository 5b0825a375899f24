//! Masking in the batcher. Its own test binary: the masking function is process-wide.

use std::time::Duration;

use braintrust_core::mask::{MaskingFunction, set_masking_function};
use braintrust_core::object::ObjectIds;
use braintrust_core::row::Row;
use braintrust_local::LocalServer;
use braintrust_transport::batcher::{Batcher, BatcherOptions};
use serde_json::{Value, json};

#[test]
fn masking_applies_after_merging() {
    set_masking_function(Some(MaskingFunction::infallible(|v: &Value| match v {
        Value::String(s) => Value::String(s.replace("secret", "***")),
        other => other.clone(),
    })));
    let server = LocalServer::start().unwrap();
    let mut options = BatcherOptions::new(server.url(), server.api_key());
    options.retry_base_delay = Duration::from_millis(1);
    let batcher = Batcher::start(options).unwrap();
    let rows = [
        json!({"id": "r", "experiment_id": "e", "_is_merge": false, "input": "my secret", "tags": ["secret"]}),
        json!({"id": "r", "experiment_id": "e", "_is_merge": true, "output": "the secret answer"}),
    ];
    for row in rows {
        batcher.enqueue(Row::from_map(row.as_object().unwrap().clone()));
    }
    batcher.flush().unwrap();
    set_masking_function(None);
    let stored = server.rows(&ObjectIds::experiment("e")).unwrap();
    assert_eq!(stored[0]["input"], "my ***");
    assert_eq!(stored[0]["output"], "the *** answer");
    assert_eq!(
        stored[0]["tags"],
        json!(["secret"]),
        "tags are never masked"
    );
}
