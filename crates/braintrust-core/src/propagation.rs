//! Distributed tracing with W3C headers: `traceparent` carries the trace and parent span,
//! `baggage: braintrust.parent=…` the object the trace belongs to.
//!
//! ```
//! use std::collections::HashMap;
//! use braintrust_core::propagation::extract_trace_context;
//!
//! let mut headers = HashMap::new();
//! headers.insert(
//!     "TraceParent".to_owned(),
//!     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
//! );
//! headers.insert("baggage".to_owned(), "braintrust.parent=project_name:my%20app".to_owned());
//! let parent = extract_trace_context(&headers).expect("valid traceparent");
//! assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(parent.span_id(), "00f067aa0ba902b7");
//! # use braintrust_core::propagation::ParentObject;
//! assert_eq!(parent.object(), Some(&ParentObject::ProjectName("my app".into())));
//! ```

use std::collections::{BTreeMap, HashMap};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

use crate::id::is_lower_hex;
use crate::object::{ObjectIds, ObjectType};
use crate::span::{ObjectRef, Span};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C baggage header.
pub const BAGGAGE: &str = "baggage";
/// The baggage key naming the Braintrust object of the trace.
pub const BAGGAGE_PARENT_KEY: &str = "braintrust.parent";
/// Most members a baggage header may carry.
pub const MAX_BAGGAGE_MEMBERS: usize = 64;
/// Most bytes a baggage header may carry.
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// Characters outside the W3C baggage-octet set, plus `%` (always encoded).
const NOT_BAGGAGE_OCTET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');

/// Header maps spans can be injected into and extracted from. Names compare case-insensitively.
pub trait HeaderCarrier {
    /// The value of a header, whatever the case of its name.
    fn header(&self, name: &str) -> Option<String>;
    /// Sets a header under its lowercase name, replacing any case variant.
    fn set_header(&mut self, name: &str, value: String);
}

/// Maps keyed by header name: look up and replace case-insensitively.
macro_rules! map_carrier {
    ($($map:ident),*) => {$(
        impl HeaderCarrier for $map<String, String> {
            fn header(&self, name: &str) -> Option<String> {
                self.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            }

            fn set_header(&mut self, name: &str, value: String) {
                self.retain(|k, _| !k.eq_ignore_ascii_case(name));
                self.insert(name.to_ascii_lowercase(), value);
            }
        }
    )*};
}

map_carrier!(HashMap, BTreeMap);

impl HeaderCarrier for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn set_header(&mut self, name: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.push((name.to_ascii_lowercase(), value));
    }
}

/// The Braintrust object named by `braintrust.parent` baggage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentObject {
    /// `project_id:<id>`.
    ProjectId(String),
    /// `project_name:<name>`.
    ProjectName(String),
    /// `experiment_id:<id>`.
    ExperimentId(String),
}

impl ParentObject {
    /// Parses `project_id:…`, `project_name:…` or `experiment_id:…`.
    pub fn parse(text: &str) -> Option<ParentObject> {
        let (kind, value) = text.split_once(':')?;
        if value.is_empty() {
            return None;
        }
        let value = value.to_owned();
        Some(match kind {
            "project_id" => ParentObject::ProjectId(value),
            "project_name" => ParentObject::ProjectName(value),
            "experiment_id" => ParentObject::ExperimentId(value),
            _ => return None,
        })
    }

    /// The `kind:value` text.
    pub fn to_text(&self) -> String {
        match self {
            ParentObject::ProjectId(v) => format!("project_id:{v}"),
            ParentObject::ProjectName(v) => format!("project_name:{v}"),
            ParentObject::ExperimentId(v) => format!("experiment_id:{v}"),
        }
    }

    fn of(object: &ObjectRef) -> Option<ParentObject> {
        match (object.object_type(), object.ids()) {
            (ObjectType::ProjectLogs, Some(ids)) => Some(ParentObject::ProjectId(ids.id().into())),
            (ObjectType::Experiment, Some(ids)) => {
                Some(ParentObject::ExperimentId(ids.id().into()))
            }
            (ObjectType::ProjectLogs, None) => object
                .project_name()
                .map(|n| ParentObject::ProjectName(n.to_owned())),
            _ => None,
        }
    }

    fn object_ref(&self) -> ObjectRef {
        match self {
            ParentObject::ProjectId(id) => ObjectRef::resolved(ObjectIds::project_logs(id)),
            ParentObject::ExperimentId(id) => ObjectRef::resolved(ObjectIds::experiment(id)),
            ParentObject::ProjectName(name) => ObjectRef::project_named(name.clone()),
        }
    }
}

/// A parent received from another service: pass it to `start_span` as the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteParent {
    trace_id: String,
    span_id: String,
    object: Option<ParentObject>,
}

impl RemoteParent {
    /// The trace id (32 hex), which becomes `root_span_id`.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The sender's span id (16 hex), which becomes the parent span.
    pub fn span_id(&self) -> &str {
        &self.span_id
    }

    /// The object from the baggage; without it spans go to the receiver's logger.
    pub fn object(&self) -> Option<&ParentObject> {
        self.object.as_ref()
    }

    pub(crate) fn object_ref(&self) -> Option<ObjectRef> {
        self.object.as_ref().map(ParentObject::object_ref)
    }

    /// The parent as an export slug (V4), for APIs that take one (`invoke`); `None` when the
    /// context names no Braintrust object. The sender's row id is unknown, so the span id
    /// stands in for it (only the span and trace ids matter to a child).
    pub fn export(&self) -> Option<String> {
        use crate::span_components::{
            SlugObject, SlugVersion, SpanComponents, SpanObjectType, SpanRowIds,
        };
        let (object_type, object) = match self.object.as_ref()? {
            ParentObject::ProjectId(id) => {
                (SpanObjectType::ProjectLogs, SlugObject::Id(id.clone()))
            }
            ParentObject::ExperimentId(id) => {
                (SpanObjectType::Experiment, SlugObject::Id(id.clone()))
            }
            ParentObject::ProjectName(name) => {
                let mut args = serde_json::Map::new();
                args.insert(
                    "project_name".into(),
                    serde_json::Value::String(name.clone()),
                );
                args.insert("project_id".into(), serde_json::Value::Null);
                (SpanObjectType::ProjectLogs, SlugObject::Lazy(args))
            }
        };
        let components = SpanComponents {
            object_type,
            object,
            row: Some(SpanRowIds {
                row_id: self.span_id.clone(),
                span_id: self.span_id.clone(),
                root_span_id: self.trace_id.clone(),
            }),
            propagated_event: None,
        };
        Some(components.encode(SlugVersion::V4))
    }
}

/// Reads `traceparent` and `baggage`. Returns `None` (start a fresh root) when `traceparent` is
/// absent or invalid. Never fails.
pub fn extract_trace_context(carrier: &impl HeaderCarrier) -> Option<RemoteParent> {
    let traceparent = carrier.header(TRACEPARENT)?;
    let (trace_id, span_id) = parse_traceparent(&traceparent)?;
    let object = carrier
        .header(BAGGAGE)
        .and_then(|b| baggage_parent(&b))
        .and_then(|text| ParentObject::parse(&text));
    Some(RemoteParent {
        trace_id,
        span_id,
        object,
    })
}

/// Parses a `traceparent` value into (trace id, parent span id).
pub fn parse_traceparent(value: &str) -> Option<(String, String)> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let hex2 = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex2(version) || version == "ff" || !version.bytes().all(|b| !b.is_ascii_uppercase()) {
        return None;
    }
    // Version 00 has exactly four fields; later versions may append more.
    if version == "00" && !rest.is_empty() {
        return None;
    }
    if !hex2(flags) || !is_lower_hex(trace_id, 32) || !is_lower_hex(span_id, 16) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some((trace_id.to_owned(), span_id.to_owned()))
}

/// The decoded `braintrust.parent` value of a baggage header.
fn baggage_parent(baggage: &str) -> Option<String> {
    baggage.split(',').find_map(|member| {
        let (key, rest) = member.split_once('=')?;
        if key.trim() != BAGGAGE_PARENT_KEY {
            return None;
        }
        let value = rest.split(';').next().unwrap_or("").trim();
        percent_decode_str(value)
            .decode_utf8()
            .ok()
            .map(|v| v.into_owned())
    })
}

/// Percent-encodes a baggage value to the W3C baggage-octet set.
pub fn encode_baggage_value(value: &str) -> String {
    utf8_percent_encode(value, NOT_BAGGAGE_OCTET).to_string()
}

/// `existing` baggage with `braintrust.parent` set first; other members are kept byte for byte
/// while they fit the member and byte limits (whole members are dropped, never truncated).
pub fn merge_baggage(existing: Option<&str>, parent: &ParentObject) -> String {
    let own = format!(
        "{BAGGAGE_PARENT_KEY}={}",
        encode_baggage_value(&parent.to_text())
    );
    let mut out = own;
    let mut members = 1;
    for member in existing.unwrap_or("").split(',') {
        let trimmed = member.trim();
        if trimmed.is_empty() {
            continue;
        }
        let key = trimmed.split('=').next().unwrap_or("").trim();
        if key == BAGGAGE_PARENT_KEY {
            continue;
        }
        if members + 1 > MAX_BAGGAGE_MEMBERS || out.len() + 1 + trimmed.len() > MAX_BAGGAGE_BYTES {
            continue;
        }
        out.push(',');
        out.push_str(trimmed);
        members += 1;
    }
    out
}

impl Span {
    /// Writes `traceparent` (and `baggage` with `braintrust.parent` when the object is known)
    /// into outgoing headers. Does nothing for the no-op span or spans with legacy UUID ids.
    pub fn inject(&self, carrier: &mut impl HeaderCarrier) {
        let (trace_id, span_id) = (self.root_span_id(), self.span_id());
        if !is_lower_hex(trace_id, 32) || !is_lower_hex(span_id, 16) {
            return;
        }
        carrier.set_header(TRACEPARENT, format!("00-{trace_id}-{span_id}-01"));
        if let Some(parent) = self.object().and_then(ParentObject::of) {
            let existing = carrier.header(BAGGAGE);
            carrier.set_header(BAGGAGE, merge_baggage(existing.as_deref(), &parent));
        }
    }
}

/// Builds a `braintrust.parent` object from JSON `compute_object_metadata_args`; used by callers
/// that only have a slug's lazy arguments.
pub fn parent_object_from_args(args: &serde_json::Map<String, Value>) -> Option<ParentObject> {
    match args.get("project_id").and_then(Value::as_str) {
        Some(id) => Some(ParentObject::ProjectId(id.to_owned())),
        None => args
            .get("project_name")
            .and_then(Value::as_str)
            .map(|n| ParentObject::ProjectName(n.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(parse_traceparent(good).is_some());
        assert!(parse_traceparent(&format!(" {good} ")).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
        // A future version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
    }

    #[test]
    fn baggage_encoding_round_trips() {
        for text in [
            "project_name:my app",
            "project_name:100%+ good,fast;ok\"\\",
            "project_name:café ☕",
        ] {
            let encoded = encode_baggage_value(text);
            assert!(!encoded.contains([' ', ',', ';', '"', '\\']), "{encoded}");
            let decoded = baggage_parent(&format!("{BAGGAGE_PARENT_KEY}={encoded}")).unwrap();
            assert_eq!(decoded, text);
        }
        assert_eq!(encode_baggage_value("a b+c%"), "a%20b+c%25");
    }

    #[test]
    fn merge_keeps_other_members_and_limits() {
        let parent = ParentObject::ProjectId("p1".into());
        let merged = merge_baggage(Some("k1=v1;prop=1, braintrust.parent=old ,k2=v2"), &parent);
        assert_eq!(merged, "braintrust.parent=project_id:p1,k1=v1;prop=1,k2=v2");
        let many: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
        let merged = merge_baggage(Some(&many.join(",")), &parent);
        assert_eq!(merged.split(',').count(), MAX_BAGGAGE_MEMBERS);
        assert!(merged.starts_with("braintrust.parent="));
        let big = format!("big={},small=1", "x".repeat(MAX_BAGGAGE_BYTES));
        let merged = merge_baggage(Some(&big), &parent);
        assert_eq!(merged, "braintrust.parent=project_id:p1,small=1");
        assert!(merged.len() <= MAX_BAGGAGE_BYTES);
    }

    #[test]
    fn extract_ignores_unrelated_baggage_and_bad_parent() {
        let mut h: Vec<(String, String)> = vec![(
            "traceparent".into(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        )];
        h.push(("Baggage".into(), "a=b,braintrust.parent=nonsense".into()));
        let p = extract_trace_context(&h).unwrap();
        assert_eq!(p.object(), None);
        h.set_header("baggage", "braintrust.parent=experiment_id:e1".into());
        assert_eq!(
            h.iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("baggage"))
                .count(),
            1
        );
        let p = extract_trace_context(&h).unwrap();
        assert_eq!(p.object(), Some(&ParentObject::ExperimentId("e1".into())));
    }

    #[test]
    fn remote_parents_export_as_slugs_only_with_an_object() {
        use crate::span_components::{SlugObject, SpanComponents, SpanObjectType};
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut h: Vec<(String, String)> = vec![("traceparent".into(), traceparent.into())];
        assert_eq!(extract_trace_context(&h).unwrap().export(), None);
        for (baggage, object_type, object) in [
            (
                "braintrust.parent=experiment_id:e1",
                SpanObjectType::Experiment,
                SlugObject::Id("e1".into()),
            ),
            (
                "braintrust.parent=project_id:p1",
                SpanObjectType::ProjectLogs,
                SlugObject::Id("p1".into()),
            ),
            (
                "braintrust.parent=project_name:my%20app",
                SpanObjectType::ProjectLogs,
                SlugObject::Lazy(
                    serde_json::json!({"project_name": "my app", "project_id": null})
                        .as_object()
                        .unwrap()
                        .clone(),
                ),
            ),
        ] {
            h.set_header("baggage", baggage.into());
            let slug = extract_trace_context(&h).unwrap().export().unwrap();
            let parsed = SpanComponents::parse(&slug).unwrap();
            assert_eq!(parsed.object_type, object_type);
            assert_eq!(parsed.object, object);
            let row = parsed.row.unwrap();
            assert_eq!(row.span_id, "00f067aa0ba902b7");
            assert_eq!(row.root_span_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
    }
}
