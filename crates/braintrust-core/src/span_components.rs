//! SpanComponents: the export slugs (`span.export()`, `logger.export()`) that name a span or an
//! object across processes and SDKs.
//!
//! A slug is standard base64 of: a version byte (3 or 4), an object-type byte, a count of
//! compressed id entries, the entries (a field-id byte and raw id bytes), and an optional compact
//! JSON object holding everything that was not compressed. V3 compresses every id that is a UUID;
//! V4 compresses only a 16-hex `span_id` (8 bytes) and a 32-hex `root_span_id` (16 bytes). Both
//! versions are parsed; V4 is written by default.
//!
//! ```
//! use braintrust_core::span_components::{SlugVersion, SpanComponents};
//!
//! let slug = "BAEAeyJvYmplY3RfaWQiOiI5OWFlMDBlNS0wMzkyLTU5ZWUtODU0MC1mNWFkMDZiNDFiMDEifQ==";
//! let parsed = SpanComponents::parse(slug)?;
//! assert!(parsed.row.is_none());
//! assert_eq!(parsed.encode(SlugVersion::V4), slug);
//! # Ok::<(), braintrust_core::span_components::SlugError>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use serde_json::{Map, Value};

use crate::id::{is_lower_hex, to_hex};
use crate::object::{ObjectIds, ObjectType};

/// Decoder that accepts standard base64 with or without `=` padding.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const FIELD_OBJECT_ID: u8 = 1;
const FIELD_ROW_ID: u8 = 2;
const FIELD_SPAN_ID: u8 = 3;
const FIELD_ROOT_SPAN_ID: u8 = 4;

/// Slug format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlugVersion {
    /// V3: every UUID id is compressed (legacy ids).
    V3,
    /// V4: only hex span and trace ids are compressed (the default).
    V4,
}

impl SlugVersion {
    fn byte(self) -> u8 {
        match self {
            SlugVersion::V3 => 3,
            SlugVersion::V4 => 4,
        }
    }
}

/// The kind of object a slug points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanObjectType {
    /// An experiment.
    Experiment,
    /// A project's logs.
    ProjectLogs,
    /// A playground's logs.
    PlaygroundLogs,
}

impl SpanObjectType {
    fn byte(self) -> u8 {
        match self {
            SpanObjectType::Experiment => 1,
            SpanObjectType::ProjectLogs => 2,
            SpanObjectType::PlaygroundLogs => 3,
        }
    }

    fn from_byte(b: u8) -> Option<SpanObjectType> {
        Some(match b {
            1 => SpanObjectType::Experiment,
            2 => SpanObjectType::ProjectLogs,
            3 => SpanObjectType::PlaygroundLogs,
            _ => return None,
        })
    }
}

impl From<SpanObjectType> for ObjectType {
    fn from(value: SpanObjectType) -> ObjectType {
        match value {
            SpanObjectType::Experiment => ObjectType::Experiment,
            SpanObjectType::ProjectLogs => ObjectType::ProjectLogs,
            SpanObjectType::PlaygroundLogs => ObjectType::PlaygroundLogs,
        }
    }
}

/// How a slug names its object: by id, or lazily by the arguments that resolve it.
#[derive(Debug, Clone, PartialEq)]
pub enum SlugObject {
    /// The object's id (`object_id`).
    Id(String),
    /// `compute_object_metadata_args`, e.g. `{"project_name": "my-proj", "project_id": null}`;
    /// the receiver resolves the project by registering it by name.
    Lazy(Map<String, Value>),
}

/// The ids of the span a slug points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRowIds {
    /// The span's row id.
    pub row_id: String,
    /// The span id.
    pub span_id: String,
    /// The trace id (`root_span_id`).
    pub root_span_id: String,
}

/// A decoded export slug.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanComponents {
    /// The kind of object.
    pub object_type: SpanObjectType,
    /// The object, by id or lazily.
    pub object: SlugObject,
    /// The span, absent for object-only slugs (`logger.export()`, `experiment.export()`).
    pub row: Option<SpanRowIds>,
    /// A partial event deep-merged into the first row of every descendant span.
    pub propagated_event: Option<Map<String, Value>>,
}

/// Why a slug could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// Not standard base64.
    #[error("export slug is not valid base64: {0}")]
    Base64(String),
    /// Fewer than the three header bytes.
    #[error("export slug is too short ({0} bytes)")]
    TooShort(usize),
    /// A version other than 3 or 4.
    #[error("unsupported export slug version {0} (expected 3 or 4)")]
    UnsupportedVersion(u8),
    /// An object-type byte other than 1, 2 or 3.
    #[error("unknown object type {0} in export slug")]
    UnknownObjectType(u8),
    /// A compressed entry with a field id other than 1 to 4.
    #[error("unknown field id {0} in export slug")]
    UnknownField(u8),
    /// The compressed entries end before their announced count or size.
    #[error("export slug is truncated inside its compressed ids")]
    Truncated,
    /// A field given twice (twice compressed, or compressed and in the JSON).
    #[error("field `{0}` appears more than once in export slug")]
    DuplicateField(&'static str),
    /// The JSON tail is not valid UTF-8 JSON object text.
    #[error("export slug JSON is invalid: {0}")]
    InvalidJson(String),
    /// A JSON field of the wrong type.
    #[error("export slug field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// Neither or both of `object_id` and `compute_object_metadata_args`.
    #[error("export slug must have exactly one of object_id and compute_object_metadata_args")]
    ObjectInvariant,
    /// Some but not all of `row_id`, `span_id`, `root_span_id`.
    #[error("export slug must have all or none of row_id, span_id and root_span_id")]
    RowIdsInvariant,
}

impl SpanComponents {
    /// The row object ids implied by the slug, when it names its object by id.
    pub fn object_ids(&self) -> Option<ObjectIds> {
        match &self.object {
            SlugObject::Id(id) => Some(ObjectIds::new(self.object_type.into(), id.clone())),
            SlugObject::Lazy(_) => None,
        }
    }

    /// Encodes the slug in the given version.
    pub fn encode(&self, version: SlugVersion) -> String {
        let mut bytes = vec![version.byte(), self.object_type.byte(), 0];
        let mut json = Map::new();
        if let SlugObject::Lazy(args) = &self.object {
            json.insert(
                "compute_object_metadata_args".into(),
                Value::Object(args.clone()),
            );
        }
        if let Some(event) = self.propagated_event.as_ref().filter(|e| !e.is_empty()) {
            json.insert("propagated_event".into(), Value::Object(event.clone()));
        }
        let object_id = match &self.object {
            SlugObject::Id(id) => Some(id.as_str()),
            SlugObject::Lazy(_) => None,
        };
        let row = self.row.as_ref();
        let fields = [
            (FIELD_OBJECT_ID, "object_id", object_id),
            (FIELD_ROW_ID, "row_id", row.map(|r| r.row_id.as_str())),
            (FIELD_SPAN_ID, "span_id", row.map(|r| r.span_id.as_str())),
            (
                FIELD_ROOT_SPAN_ID,
                "root_span_id",
                row.map(|r| r.root_span_id.as_str()),
            ),
        ];
        let mut count = 0u8;
        for (field, name, value) in fields {
            let Some(value) = value else { continue };
            match compress(version, field, value) {
                Some(raw) => {
                    bytes.push(field);
                    bytes.extend_from_slice(&raw);
                    count += 1;
                }
                None => {
                    json.insert(name.into(), Value::String(value.to_owned()));
                }
            }
        }
        bytes[2] = count;
        if !json.is_empty() {
            // Serialising a map of JSON values cannot fail.
            bytes.extend(serde_json::to_vec(&json).unwrap_or_default());
        }
        STANDARD.encode(bytes)
    }

    /// Parses a V3 or V4 slug.
    pub fn parse(slug: &str) -> Result<SpanComponents, SlugError> {
        let bytes = LENIENT_STANDARD
            .decode(slug.trim())
            .map_err(|e| SlugError::Base64(e.to_string()))?;
        if bytes.len() < 3 {
            return Err(SlugError::TooShort(bytes.len()));
        }
        let version = match bytes[0] {
            3 => SlugVersion::V3,
            4 => SlugVersion::V4,
            v => return Err(SlugError::UnsupportedVersion(v)),
        };
        let object_type =
            SpanObjectType::from_byte(bytes[1]).ok_or(SlugError::UnknownObjectType(bytes[1]))?;
        let count = bytes[2];
        let mut ids: [Option<String>; 4] = Default::default();
        let mut pos = 3;
        for _ in 0..count {
            let field = *bytes.get(pos).ok_or(SlugError::Truncated)?;
            if !(FIELD_OBJECT_ID..=FIELD_ROOT_SPAN_ID).contains(&field) {
                return Err(SlugError::UnknownField(field));
            }
            let len = compressed_len(version, field);
            let raw = bytes
                .get(pos + 1..pos + 1 + len)
                .ok_or(SlugError::Truncated)?;
            let slot = &mut ids[usize::from(field - 1)];
            if slot.is_some() {
                return Err(SlugError::DuplicateField(field_name(field)));
            }
            *slot = Some(decompress(version, field, raw));
            pos += 1 + len;
        }

        let mut compute_args = None;
        let mut propagated_event = None;
        let tail = &bytes[pos..];
        if !tail.is_empty() {
            let json: Map<String, Value> =
                serde_json::from_slice(tail).map_err(|e| SlugError::InvalidJson(e.to_string()))?;
            for (key, value) in json {
                match key.as_str() {
                    "compute_object_metadata_args" => {
                        compute_args = optional_object(value, "compute_object_metadata_args")?;
                    }
                    "propagated_event" => {
                        propagated_event = optional_object(value, "propagated_event")?;
                    }
                    "object_id" | "row_id" | "span_id" | "root_span_id" => {
                        let field = match key.as_str() {
                            "object_id" => FIELD_OBJECT_ID,
                            "row_id" => FIELD_ROW_ID,
                            "span_id" => FIELD_SPAN_ID,
                            _ => FIELD_ROOT_SPAN_ID,
                        };
                        let name = field_name(field);
                        let value = match value {
                            Value::Null => continue,
                            Value::String(s) => s,
                            _ => {
                                return Err(SlugError::WrongType {
                                    field: name,
                                    expected: "a string",
                                });
                            }
                        };
                        let slot = &mut ids[usize::from(field - 1)];
                        if slot.is_some() {
                            return Err(SlugError::DuplicateField(name));
                        }
                        *slot = Some(value);
                    }
                    _ => {} // unknown keys are ignored
                }
            }
        }

        let [object_id, row_id, span_id, root_span_id] = ids;
        let object = match (object_id, compute_args) {
            (Some(id), None) => SlugObject::Id(id),
            (None, Some(args)) => SlugObject::Lazy(args),
            _ => return Err(SlugError::ObjectInvariant),
        };
        let row = match (row_id, span_id, root_span_id) {
            (Some(row_id), Some(span_id), Some(root_span_id)) => Some(SpanRowIds {
                row_id,
                span_id,
                root_span_id,
            }),
            (None, None, None) => None,
            _ => return Err(SlugError::RowIdsInvariant),
        };
        Ok(SpanComponents {
            object_type,
            object,
            row,
            propagated_event,
        })
    }
}

fn optional_object(
    value: Value,
    field: &'static str,
) -> Result<Option<Map<String, Value>>, SlugError> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) if map.is_empty() => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(SlugError::WrongType {
            field,
            expected: "an object or null",
        }),
    }
}

fn field_name(field: u8) -> &'static str {
    match field {
        FIELD_OBJECT_ID => "object_id",
        FIELD_ROW_ID => "row_id",
        FIELD_SPAN_ID => "span_id",
        _ => "root_span_id",
    }
}

fn compressed_len(version: SlugVersion, field: u8) -> usize {
    match (version, field) {
        (SlugVersion::V4, FIELD_SPAN_ID) => 8,
        _ => 16,
    }
}

fn compress(version: SlugVersion, field: u8, value: &str) -> Option<Vec<u8>> {
    match (version, field) {
        (SlugVersion::V4, FIELD_SPAN_ID) if is_lower_hex(value, 16) => hex_bytes(value),
        (SlugVersion::V4, FIELD_ROOT_SPAN_ID) if is_lower_hex(value, 32) => hex_bytes(value),
        (SlugVersion::V4, _) => None,
        (SlugVersion::V3, _) => {
            // Only canonical UUIDs are compressed, so decoding restores the exact string.
            let uuid = uuid::Uuid::try_parse(value).ok()?;
            (uuid.hyphenated().to_string() == value).then(|| uuid.as_bytes().to_vec())
        }
    }
}

fn decompress(version: SlugVersion, field: u8, raw: &[u8]) -> String {
    match (version, field) {
        (SlugVersion::V4, FIELD_SPAN_ID | FIELD_ROOT_SPAN_ID) => to_hex(raw),
        _ => {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(raw);
            uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
        }
    }
}

fn hex_bytes(value: &str) -> Option<Vec<u8>> {
    (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(value.get(i..i + 2)?, 16).ok())
        .collect()
}
