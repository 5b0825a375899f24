//! Recording of received requests, in the shape of the capture files of the official SDKs'
//! traffic (one JSON object per request).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// One received request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    /// Receive time, Unix seconds.
    pub t: f64,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Parsed query string; every value is a list.
    pub query: BTreeMap<String, Vec<String>>,
    /// Request headers in received order (names lower-cased by the HTTP stack).
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body, or `None` when there was none or it was not JSON.
    pub json: Option<Value>,
    /// The raw body when it was not JSON.
    pub text: Option<String>,
    /// Body length in bytes.
    pub body_len: usize,
    /// 1-based sequence number.
    pub n: usize,
}

impl RecordedRequest {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a query string into lists of values.
pub(crate) fn parse_query(query: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_pairs(query.unwrap_or("")) {
        out.entry(k).or_default().push(v);
    }
    out
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub(crate) fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
