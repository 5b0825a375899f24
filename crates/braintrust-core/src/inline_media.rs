//! Automatic conversion of inline base64 media in logged LLM payloads into attachments.
//!
//! Provider wrappers call [`convert_inline_media`] on the copy of a request or response they
//! log; the request sent to the provider is never touched. Each vendor's shape is recognised:
//!
//! | vendor | detected | replaced by a reference |
//! |---|---|---|
//! | OpenAI | a data URI at `image_url.url`, `file.file_data`, `input_audio.data`, `image_generation_call.result` | the string (siblings such as `file.filename` kept) |
//! | Anthropic | `source: {"type": "base64", "media_type", "data"}` | the whole `source` |
//! | Gemini | a part with `inline_data {mime_type, data}` or `inlineData {mimeType, data}` | the part's key: `image_url: {url}` for images, else `file: {file_data}` |
//! | Bedrock | an `image`/`document`/`video`/`audio` block with `format` and `source.bytes` | `source.bytes` |
//!
//! A cheap pass over the string leaves rules out values without candidate media before anything
//! is copied; nesting is followed to a depth of 128. Conversion is all-or-nothing: if any media
//! found cannot be decoded, the value is logged unchanged. Existing references are kept and
//! remote URLs are never fetched. `BRAINTRUST_AUTO_CONVERT_AI_ATTACHMENTS=false` turns it off.
//!
//! ```
//! use braintrust_core::inline_media::convert_inline_media;
//! use serde_json::json;
//!
//! let request = json!({"messages": [{"role": "user", "content": [
//!     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}},
//! ]}]});
//! let converted = convert_inline_media(&request).expect("one image");
//! let reference = &converted.value["messages"][0]["content"][0]["image_url"]["url"];
//! assert_eq!(reference["type"], "braintrust_attachment");
//! assert_eq!(reference["content_type"], "image/png");
//! assert_eq!(converted.attachments.len(), 1);
//! // The original is untouched.
//! assert!(request["messages"][0]["content"][0]["image_url"]["url"].is_string());
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::attachment::{Attachment, BRAINTRUST_ATTACHMENT, EXTERNAL_ATTACHMENT};

/// Deepest nesting followed.
const MAX_DEPTH: usize = 128;

/// Shortest base64 run considered media by the prefilter.
const MIN_BASE64_RUN: usize = 20;

/// The environment variable that turns conversion off (`false`).
pub const AUTO_CONVERT_ENV: &str = "BRAINTRUST_AUTO_CONVERT_AI_ATTACHMENTS";

/// A converted value and the attachments its references point to. Keep `attachments` alive
/// until `value` is logged: the sink finds the bytes through them.
#[derive(Debug, Clone)]
pub struct ConvertedMedia {
    /// The value with media replaced by references.
    pub value: Value,
    /// The new attachments, in document order.
    pub attachments: Vec<Attachment>,
}

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Whether conversion is on: not turned off by the environment, nor after an upload pipeline
/// failure ([`disable_auto_conversion`]).
pub fn auto_conversion_enabled() -> bool {
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    let env = *FROM_ENV.get_or_init(|| {
        std::env::var(AUTO_CONVERT_ENV)
            .ok()
            .and_then(|v| crate::env_file::parse_bool(&v))
            .unwrap_or(true)
    });
    env && !DISABLED.load(Ordering::Relaxed)
}

/// Turns conversion off for the rest of the process (later spans keep their inline base64),
/// warning once. Sinks call it when uploading a converted attachment fails.
pub fn disable_auto_conversion(reason: &str) {
    if !DISABLED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "braintrust: attachment upload failed; inline media in later LLM spans stays inline: {reason}"
        );
    }
}

/// Replaces inline base64 media in a copy of `value` with attachment references. `None` when
/// there is nothing to convert, when conversion is off, or when some media cannot be decoded.
pub fn convert_inline_media(value: &Value) -> Option<ConvertedMedia> {
    if !auto_conversion_enabled() {
        return None;
    }
    convert_inline_media_always(value)
}

/// [`convert_inline_media`] regardless of the environment and earlier failures.
pub fn convert_inline_media_always(value: &Value) -> Option<ConvertedMedia> {
    if !has_candidate(value, 0) {
        return None;
    }
    let mut copy = value.clone();
    let mut converter = Converter::default();
    converter.walk(&mut copy, 0);
    if converter.failed || converter.attachments.is_empty() {
        return None;
    }
    Some(ConvertedMedia {
        value: copy,
        attachments: converter.attachments,
    })
}

/// The prefilter: whether any string leaf is a data URI or a long base64 run.
fn has_candidate(value: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::String(s) => is_data_uri(s) || looks_like_base64(s),
        Value::Array(items) => items.iter().any(|v| has_candidate(v, depth + 1)),
        Value::Object(map) => map.values().any(|v| has_candidate(v, depth + 1)),
        _ => false,
    }
}

fn looks_like_base64(s: &str) -> bool {
    s.len() >= MIN_BASE64_RUN
        && s.bytes()
            .take(64)
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// A string that is entirely a data URI (no quotes, backslashes or spaces).
fn is_data_uri(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("data:")
        && s.contains(";base64,")
        && !s.bytes().any(|b| matches!(b, b'"' | b'\'' | b'\\' | b' '))
}

#[derive(Default)]
struct Converter {
    attachments: Vec<Attachment>,
    failed: bool,
}

impl Converter {
    fn walk(&mut self, value: &mut Value, depth: usize) {
        if depth > MAX_DEPTH || self.failed {
            return;
        }
        match value {
            Value::Array(items) => {
                for v in items {
                    self.walk(v, depth + 1);
                }
            }
            Value::Object(map) => {
                if self.convert_node(map) {
                    return;
                }
                for v in map.values_mut() {
                    self.walk(v, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// Applies the first matching detector to an object; true when it matched (its children
    /// are then not visited).
    fn convert_node(&mut self, map: &mut Map<String, Value>) -> bool {
        if matches!(
            map.get("type").and_then(Value::as_str),
            Some(BRAINTRUST_ATTACHMENT | EXTERNAL_ATTACHMENT | "inline_attachment")
        ) {
            return true;
        }
        self.openai(map) || self.anthropic(map) || self.gemini(map) || self.bedrock(map)
    }

    /// OpenAI: data URIs at `image_url.url`, `file.file_data`, `input_audio.data`, and
    /// `result` of an `image_generation_call`.
    fn openai(&mut self, map: &mut Map<String, Value>) -> bool {
        let mut matched = false;
        for (outer, inner, filename_key) in [
            ("image_url", "url", None),
            ("file", "file_data", Some("filename")),
            ("input_audio", "data", None),
        ] {
            let Some(Value::Object(part)) = map.get_mut(outer) else {
                continue;
            };
            let filename = filename_key
                .and_then(|k| part.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(slot) = part.get_mut(inner) {
                matched |= self.replace_data_uri(slot, filename);
            }
        }
        if map.get("type").and_then(Value::as_str) == Some("image_generation_call")
            && let Some(slot) = map.get_mut("result")
        {
            matched |= self.replace_data_uri(slot, None);
        }
        matched
    }

    fn replace_data_uri(&mut self, slot: &mut Value, filename: Option<String>) -> bool {
        let Some(uri) = slot.as_str().filter(|s| is_data_uri(s)) else {
            return false;
        };
        let Some((mime, data)) = split_data_uri(uri.trim()) else {
            self.failed = true;
            return true;
        };
        if let Some(reference) = self.attach(data, mime, filename) {
            *slot = reference;
        }
        true
    }

    /// Anthropic: `source: {"type": "base64", "media_type", "data"}` becomes a reference.
    fn anthropic(&mut self, map: &mut Map<String, Value>) -> bool {
        let Some(Value::Object(source)) = map.get("source") else {
            return false;
        };
        if source.get("type").and_then(Value::as_str) != Some("base64") {
            return false;
        }
        let (Some(mime), Some(data)) = (
            source.get("media_type").and_then(Value::as_str),
            source.get("data").and_then(Value::as_str),
        ) else {
            return false;
        };
        let (mime, data) = (mime.to_owned(), data.to_owned());
        if let Some(reference) = self.attach(&data, &mime, None) {
            map.insert("source".into(), reference);
        }
        true
    }

    /// Gemini: a part's `inline_data` / `inlineData` key becomes `image_url` or `file`.
    fn gemini(&mut self, map: &mut Map<String, Value>) -> bool {
        for (key, mime_key) in [("inline_data", "mime_type"), ("inlineData", "mimeType")] {
            let Some(Value::Object(inline)) = map.get(key) else {
                continue;
            };
            let (Some(mime), Some(data)) = (
                inline.get(mime_key).and_then(Value::as_str),
                inline.get("data").and_then(Value::as_str),
            ) else {
                continue;
            };
            let (mime, data) = (mime.to_owned(), data.to_owned());
            let Some(reference) = self.attach(&data, &mime, None) else {
                return true;
            };
            let replacement = if mime.starts_with("image/") {
                ("image_url", serde_json::json!({"url": reference}))
            } else {
                ("file", serde_json::json!({"file_data": reference}))
            };
            // Replace the key in place, keeping the part's other keys in order.
            let old = std::mem::take(map);
            for (k, v) in old {
                if k == key {
                    map.insert(replacement.0.into(), replacement.1.clone());
                } else {
                    map.insert(k, v);
                }
            }
            return true;
        }
        false
    }

    /// Bedrock: `{image|document|video|audio: {format, source: {bytes}}}`; the bytes become a
    /// reference.
    fn bedrock(&mut self, map: &mut Map<String, Value>) -> bool {
        let mut matched = false;
        for kind in ["image", "document", "video", "audio"] {
            let Some(Value::Object(block)) = map.get_mut(kind) else {
                continue;
            };
            let Some(format) = block.get("format").and_then(Value::as_str) else {
                continue;
            };
            let Some(mime) = bedrock_mime(kind, format) else {
                continue;
            };
            let Some(Value::Object(source)) = block.get_mut("source") else {
                continue;
            };
            let Some(data) = source.get("bytes").and_then(Value::as_str) else {
                continue;
            };
            let data = data.to_owned();
            matched = true;
            if let Some(reference) = self.attach(&data, mime, None) {
                source.insert("bytes".into(), reference);
            }
        }
        matched
    }

    /// Decodes base64 `data` into a new attachment and returns its reference; on invalid
    /// base64 marks the whole conversion failed.
    fn attach(&mut self, data: &str, mime: &str, filename: Option<String>) -> Option<Value> {
        let mime = mime.trim().to_ascii_lowercase();
        let Some(bytes) = decode_base64(data) else {
            self.failed = true;
            return None;
        };
        if mime.is_empty() || bytes.is_empty() {
            self.failed = true;
            return None;
        }
        let filename = filename
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| format!("attachment.{}", extension_for(&mime)));
        let attachment = Attachment::converted(bytes, filename, mime);
        let reference = serde_json::to_value(&attachment).ok();
        self.attachments.push(attachment);
        reference
    }
}

/// `data:<mime>[;params];base64,<data>` → (mime, data).
fn split_data_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("data:")?;
    let (header, data) = rest.split_once(',')?;
    let header = header.strip_suffix(";base64")?;
    let mime = header.split(';').next().unwrap_or_default();
    Some((if mime.is_empty() { "text/plain" } else { mime }, data))
}

fn decode_base64(data: &str) -> Option<Vec<u8>> {
    let data = data.trim();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(data))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data))
        .ok()
}

/// The MIME type of a Bedrock content block's `format`.
fn bedrock_mime(kind: &str, format: &str) -> Option<&'static str> {
    Some(match (kind, format.to_ascii_lowercase().as_str()) {
        ("image", "png") => "image/png",
        ("image", "jpeg" | "jpg") => "image/jpeg",
        ("image", "gif") => "image/gif",
        ("image", "webp") => "image/webp",
        ("document", "pdf") => "application/pdf",
        ("document", "csv") => "text/csv",
        ("document", "doc") => "application/msword",
        ("document", "docx") => {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        }
        ("document", "xls") => "application/vnd.ms-excel",
        ("document", "xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ("document", "html") => "text/html",
        ("document", "txt") => "text/plain",
        ("document", "md") => "text/markdown",
        ("video", "mp4") => "video/mp4",
        ("video", "mov") => "video/quicktime",
        ("video", "mkv") => "video/x-matroska",
        ("video", "webm") => "video/webm",
        ("video", "flv") => "video/x-flv",
        ("video", "mpeg" | "mpg") => "video/mpeg",
        ("video", "wmv") => "video/x-ms-wmv",
        ("video", "three_gp") => "video/3gpp",
        ("audio", "mp4") => "audio/mp4",
        ("audio", "mp3" | "mpeg") => "audio/mpeg",
        ("audio", "wav") => "audio/wav",
        ("audio", "ogg") => "audio/ogg",
        ("audio", "flac") => "audio/flac",
        ("audio", "aac") => "audio/aac",
        ("audio", "webm") => "audio/webm",
        _ => return None,
    })
}

/// The file extension for a MIME type, for generated file names (`attachment.png`).
fn extension_for(mime: &str) -> &str {
    match mime {
        "image/jpeg" => "jpg",
        "image/svg+xml" => "svg",
        "audio/mpeg" => "mp3",
        "audio/x-wav" | "audio/wave" => "wav",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "video/quicktime" => "mov",
        "application/msword" => "doc",
        "application/octet-stream" => "bin",
        _ => mime
            .split_once('/')
            .map(|(_, sub)| sub.split(['+', ';']).next().unwrap_or(sub))
            .filter(|sub| !sub.is_empty() && sub.len() <= 8 && !sub.contains('.'))
            .unwrap_or("bin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    const PDF: &str = "JVBERi0xLjAKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyA+PgplbmRvYmoK";
    const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

    fn reference(v: &Value, mime: &str) {
        assert_eq!(v["type"], "braintrust_attachment", "{v}");
        assert_eq!(v["content_type"], mime, "{v}");
        assert!(!v["filename"].as_str().unwrap().is_empty());
        assert_eq!(
            uuid::Uuid::parse_str(v["key"].as_str().unwrap())
                .unwrap()
                .get_version_num(),
            4
        );
    }

    fn convert(v: &Value) -> ConvertedMedia {
        convert_inline_media_always(v).expect("converted")
    }

    #[test]
    fn openai_data_uris_become_references_keeping_siblings() {
        let request = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}"), "detail": "low"}},
            {"type": "file", "file": {"filename": "blank.pdf", "file_data": format!("data:application/pdf;base64,{PDF}")}},
            {"type": "input_audio", "input_audio": {"data": format!("data:audio/wav;base64,{WAV}"), "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]}]});
        let out = convert(&request);
        let content = &out.value["messages"][0]["content"];
        reference(&content[1]["image_url"]["url"], "image/png");
        assert_eq!(content[1]["image_url"]["detail"], "low");
        reference(&content[2]["file"]["file_data"], "application/pdf");
        assert_eq!(content[2]["file"]["filename"], "blank.pdf");
        assert_eq!(content[2]["file"]["file_data"]["filename"], "blank.pdf");
        reference(&content[3]["input_audio"]["data"], "audio/wav");
        assert_eq!(
            content[4], request["messages"][0]["content"][4],
            "URLs stay"
        );
        assert_eq!(out.attachments.len(), 3);
        assert_eq!(out.attachments[0].filename(), "attachment.png");
        assert!(out.attachments.iter().all(Attachment::is_converted));
        // The bytes are the decoded media.
        let png = base64::engine::general_purpose::STANDARD
            .decode(PNG)
            .unwrap();
        assert_eq!(&*out.attachments[0].data().unwrap(), png.as_slice());
    }

    #[test]
    fn anthropic_sources_are_replaced_whole() {
        let request = json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]}]});
        let out = convert(&request);
        let content = &out.value["messages"][0]["content"];
        reference(&content[0]["source"], "image/png");
        reference(&content[1]["source"], "application/pdf");
        assert_eq!(content[1]["source"]["filename"], "attachment.pdf");
        assert_eq!(content[2], request["messages"][0]["content"][2]);
    }

    #[test]
    fn gemini_parts_change_key_by_media_kind() {
        let request = json!({"contents": [{"role": "user", "parts": [
            {"text": "what is this"},
            {"inline_data": {"mime_type": "image/png", "data": PNG}},
            {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
            {"inline_data": {"mime_type": "audio/wav", "data": WAV}},
            {"inline_data": {"mime_type": "video/mp4", "data": PNG}},
        ]}]});
        let out = convert(&request);
        let parts = &out.value["contents"][0]["parts"];
        assert_eq!(parts[0], json!({"text": "what is this"}));
        reference(&parts[1]["image_url"]["url"], "image/png");
        assert!(parts[1].get("inline_data").is_none());
        reference(&parts[2]["file"]["file_data"], "application/pdf");
        reference(&parts[3]["file"]["file_data"], "audio/wav");
        reference(&parts[4]["file"]["file_data"], "video/mp4");
        assert_eq!(parts[4]["file"]["file_data"]["filename"], "attachment.mp4");
        assert_eq!(parts[3]["file"]["file_data"]["filename"], "attachment.wav");
    }

    #[test]
    fn bedrock_bytes_are_typed_by_block_kind() {
        let request = json!({"messages": [{"role": "user", "content": [
            {"text": "describe"},
            {"image": {"format": "png", "source": {"bytes": PNG}}},
            {"document": {"format": "pdf", "name": "blank", "source": {"bytes": PDF}}},
            {"video": {"format": "mp4", "source": {"bytes": PNG}}},
            {"audio": {"format": "mp4", "source": {"bytes": WAV}}},
        ]}]});
        let out = convert(&request);
        let content = &out.value["messages"][0]["content"];
        reference(&content[1]["image"]["source"]["bytes"], "image/png");
        reference(
            &content[2]["document"]["source"]["bytes"],
            "application/pdf",
        );
        assert_eq!(content[2]["document"]["name"], "blank");
        assert_eq!(content[2]["document"]["format"], "pdf");
        reference(&content[3]["video"]["source"]["bytes"], "video/mp4");
        reference(&content[4]["audio"]["source"]["bytes"], "audio/mp4");
    }

    #[test]
    fn nothing_to_convert_costs_no_copy() {
        for v in [
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            json!({"image_url": {"url": "https://example.com/a.png"}}),
            json!(null),
            json!([1, 2, "short"]),
        ] {
            assert!(convert_inline_media_always(&v).is_none(), "{v}");
        }
    }

    #[test]
    fn invalid_base64_leaves_everything_unchanged() {
        let request = json!([
            {"image_url": {"url": format!("data:image/png;base64,{PNG}")}},
            {"source": {"type": "base64", "media_type": "image/png", "data": "not base64 at all!!!!!!!!"}},
            {"image_url": {"url": "data:image/png;base64,%%%%"}},
        ]);
        assert!(convert_inline_media_always(&request).is_none());
        let bad_uri = json!({"image_url": {"url": "data:image/png;base64,@@@@@@@@@@@@@@@@@@@@@@"}});
        assert!(convert_inline_media_always(&bad_uri).is_none());
    }

    #[test]
    fn existing_references_are_kept() {
        let request = json!({"content": [
            {"type": "external_attachment", "filename": "f", "content_type": "image/png",
             "url": format!("data:image/png;base64,{PNG}")},
            {"type": "inline_attachment", "src": format!("data:image/png;base64,{PNG}")},
        ]});
        assert!(convert_inline_media_always(&request).is_none());
    }

    #[test]
    fn nesting_is_followed_to_the_cap_only() {
        let media = json!({"image_url": {"url": format!("data:image/png;base64,{PNG}")}});
        let mut shallow = media.clone();
        for _ in 0..50 {
            shallow = json!([shallow]);
        }
        assert!(convert_inline_media_always(&shallow).is_some());
        let mut deep = media;
        for _ in 0..200 {
            deep = json!([deep]);
        }
        assert!(convert_inline_media_always(&deep).is_none());
    }

    #[test]
    fn large_payloads_convert() {
        let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 3 * 1024 * 1024]);
        let request = json!({"image_url": {"url": format!("data:image/jpeg;base64,{big}")}});
        let out = convert(&request);
        assert_eq!(out.attachments[0].data().unwrap().len(), 3 * 1024 * 1024);
        assert_eq!(out.attachments[0].filename(), "attachment.jpg");
        assert!(out.value.to_string().len() < 300);
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let media_string = prop_oneof![
            Just(format!("data:image/png;base64,{PNG}")),
            Just("data:image/png;base64,".to_owned()),
            Just("data:;base64,AAAA".to_owned()),
            Just("data:image/png;base64,!!".to_owned()),
            "[A-Za-z0-9+/=]{0,40}",
            ".{0,30}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            media_string.prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            let keys = prop_oneof![
                Just("image_url".to_owned()),
                Just("url".to_owned()),
                Just("file".to_owned()),
                Just("file_data".to_owned()),
                Just("source".to_owned()),
                Just("type".to_owned()),
                Just("media_type".to_owned()),
                Just("data".to_owned()),
                Just("inline_data".to_owned()),
                Just("mime_type".to_owned()),
                Just("image".to_owned()),
                Just("format".to_owned()),
                Just("bytes".to_owned()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((keys, inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Any JSON: no panic, the input is never modified, and every reference made points at
        /// one of the returned attachments.
        #[test]
        fn arbitrary_values_never_panic(value in arbitrary_json()) {
            let before = value.clone();
            if let Some(out) = convert_inline_media_always(&value) {
                let refs = crate::attachment::references_in(&out.value);
                let made: Vec<_> = refs
                    .iter()
                    .filter(|r| out.attachments.iter().any(|a| a.reference() == **r))
                    .collect();
                proptest::prop_assert_eq!(made.len(), out.attachments.len());
            }
            proptest::prop_assert_eq!(value, before);
        }
    }

    #[test]
    fn data_uris_must_be_whole() {
        assert!(is_data_uri(" data:image/png;base64,AAAA "));
        assert!(!is_data_uri("see data:image/png;base64,AAAA"));
        assert!(!is_data_uri("data:image/png;base64,AA AA"));
        assert!(!is_data_uri("data:text/plain,hello"));
        assert_eq!(
            split_data_uri("data:image/png;name=x.png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
    }
}
