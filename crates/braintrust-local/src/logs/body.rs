//! A `/logs3` request body read in one pass: each row's members are found once and kept as
//! unparsed JSON text borrowed from the body, with their keys borrowed too where they need no
//! unescaping.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::store::RawFields;

/// A row's members as JSON text, in the order they came; a repeated key keeps its first place
/// and its last value, as parsing into a map does.
pub(crate) type RawRow<'a> = RawFields<'a>;

/// What a body's `rows` member holds.
#[derive(Debug)]
pub(crate) enum RowsField<'a> {
    /// An array: its items, objects or not.
    Rows(Vec<RowItem<'a>>),
    /// An object, such as a `logs3_overflow` reference.
    Object(Map<String, Value>),
    /// Anything else.
    Other,
}

/// One item of a `rows` array.
#[derive(Debug)]
pub(crate) enum RowItem<'a> {
    /// A JSON object.
    Row(RawRow<'a>),
    /// Any other JSON value.
    NotAnObject,
}

/// Why a body's `rows` could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("missing `rows`")]
    MissingRows,
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(serde_json::Error),
}

/// The `rows` member of a JSON object body (the last one, should it repeat).
pub(crate) fn rows_field(body: &[u8]) -> Result<RowsField<'_>, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Say why, as for other bodies: nothing, not JSON, or not an object.
        return match first {
            None => Err(BodyError::MissingRows),
            Some(_) => match serde_json::from_slice::<IgnoredAny>(body) {
                Ok(_) => Err(BodyError::NotAnObject),
                Err(e) => Err(BodyError::InvalidJson(e)),
            },
        };
    }
    // One check of the whole body, with SIMD; parsing text already known to be UTF-8 then
    // checks neither keys nor each row's members again. A body that fails is checked again by
    // the standard library, whose error says where.
    let body = simdutf8::basic::from_utf8(body)
        .or_else(|_| std::str::from_utf8(body))
        .map_err(|e| {
            BodyError::InvalidJson(de::Error::custom(format_args!("invalid UTF-8: {e}")))
        })?;
    let Body(rows) = serde_json::from_str(body).map_err(BodyError::InvalidJson)?;
    rows.ok_or(BodyError::MissingRows)
}

/// Visitor methods for JSON scalars, all giving `$value`.
macro_rules! scalars_are {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A body object, of which only `rows` is kept.
struct Body<'a>(Option<RowsField<'a>>);

impl<'de> Deserialize<'de> for Body<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor;
        impl<'de> Visitor<'de> for BodyVisitor {
            type Value = Body<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<'de>, A::Error> {
                let mut rows = None;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    if key.0 == "rows" {
                        rows = Some(map.next_value::<RowsField<'de>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Body(rows))
            }
        }
        deserializer.deserialize_map(BodyVisitor)
    }
}

impl<'de> Deserialize<'de> for RowsField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowsVisitor;
        impl<'de> Visitor<'de> for RowsVisitor {
            type Value = RowsField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of rows or an object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(row) = seq.next_element::<RowItem<'de>>()? {
                    rows.push(row);
                }
                Ok(RowsField::Rows(rows))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let object = Map::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RowsField::Object(object))
            }
            scalars_are!(RowsField::Other);
        }
        deserializer.deserialize_any(RowsVisitor)
    }
}

impl<'de> Deserialize<'de> for RowItem<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor;
        impl<'de> Visitor<'de> for ItemVisitor {
            type Value = RowItem<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut row = RawRow::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    let value = map.next_value::<&'de RawValue>()?;
                    row.insert(key, Cow::Borrowed(value));
                }
                Ok(RowItem::Row(row))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RowItem::NotAnObject)
            }
            scalars_are!(RowItem::NotAnObject);
        }
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// A JSON string (an object key, say), borrowed from the body unless it had escapes.
pub(crate) struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The string a JSON text holds, when it holds one.
pub(crate) fn text(json: &str) -> Option<Cow<'_, str>> {
    json.starts_with('"')
        .then(|| serde_json::from_str::<Text<'_>>(json).ok())
        .flatten()
        .map(|t| t.0)
}

/// Whether a JSON text has the shape `T` reads.
pub(crate) fn conforms<T: de::DeserializeOwned>(json: &str) -> bool {
    serde_json::from_str::<T>(json).is_ok()
}

/// Reads a JSON array of strings, keeping nothing.
pub(crate) struct StringArray;

impl<'de> Deserialize<'de> for StringArray {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArrayVisitor;
        impl<'de> Visitor<'de> for ArrayVisitor {
            type Value = StringArray;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Text<'de>>()?.is_some() {}
                Ok(StringArray)
            }
        }
        deserializer.deserialize_seq(ArrayVisitor)
    }
}

/// Reads a JSON object whose values are numbers or nulls, keeping nothing.
pub(crate) struct NumberObject;

impl<'de> Deserialize<'de> for NumberObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = NumberObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of numbers or nulls")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value::<Option<f64>>()?;
                }
                Ok(NumberObject)
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(body: &str) -> Vec<RowItem<'_>> {
        match rows_field(body.as_bytes()).unwrap() {
            RowsField::Rows(rows) => rows,
            other => panic!("not rows: {other:?}"),
        }
    }

    #[test]
    fn rows_keep_member_order_and_text_and_borrow_plain_keys() {
        let body = r#"{"api_version":2,"rows":[{"id":"a","input":{"x":[1, 2.50]},"k\"q":"v"}, 7, [1,[2]], "s", null]}"#;
        let items = rows(body);
        assert_eq!(items.len(), 5);
        let RowItem::Row(row) = &items[0] else {
            panic!("first item is a row")
        };
        let members: Vec<(&str, &str)> = row.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(
            members,
            [
                ("id", "\"a\""),
                ("input", r#"{"x":[1, 2.50]}"#),
                ("k\"q", "\"v\"")
            ]
        );
        assert!(matches!(row.iter().next(), Some((Cow::Borrowed("id"), _))));
        assert!(matches!(row.iter().nth(2), Some((Cow::Owned(_), _))));
        assert!(
            items[1..]
                .iter()
                .all(|item| matches!(item, RowItem::NotAnObject))
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        let items = rows(r#"{"rows":[{"a":1,"b":2,"a":3}]}"#);
        let RowItem::Row(row) = &items[0] else {
            panic!("a row")
        };
        let members: Vec<(&str, &str)> = row.iter().map(|(k, v)| (k.as_ref(), v.get())).collect();
        assert_eq!(members, [("a", "3"), ("b", "2")]);
    }

    #[test]
    fn the_last_rows_member_counts_and_other_shapes_are_told_apart() {
        let items = rows(r#"{"rows":5,"rows":[{"a":1}]}"#);
        assert_eq!(items.len(), 1);
        assert!(matches!(
            rows_field(br#"{"rows":{"type":"logs3_overflow","key":"k"}}"#),
            Ok(RowsField::Object(o)) if o["key"] == "k"
        ));
        assert!(matches!(
            rows_field(br#"{"rows":"x"}"#),
            Ok(RowsField::Other)
        ));
        assert!(matches!(
            rows_field(br#" {"api_version":2}"#),
            Err(BodyError::MissingRows)
        ));
        assert!(matches!(rows_field(b"  "), Err(BodyError::MissingRows)));
        let not_utf8 = rows_field(b"{\"rows\":[{\"id\":\"\xff\"}]}").unwrap_err();
        assert!(not_utf8.to_string().contains("invalid UTF-8"), "{not_utf8}");
        assert!(
            not_utf8.to_string().contains("from index 16"),
            "says where: {not_utf8}"
        );
        let wide = rows("{\"rows\":[{\"id\":\"é🙂\",\"k\":\"\u{7ff}\u{ffff}\"}]}");
        let RowItem::Row(row) = &wide[0] else {
            panic!("a row")
        };
        assert_eq!(row.get("id").map(|v| v.get()), Some("\"é🙂\""));
        assert!(matches!(rows_field(b"[1]"), Err(BodyError::NotAnObject)));
        assert!(matches!(
            rows_field(b"{not json"),
            Err(BodyError::InvalidJson(_))
        ));
        assert!(matches!(
            rows_field(br#"{"rows":[{"a":1}"#),
            Err(BodyError::InvalidJson(_))
        ));
    }

    #[test]
    fn shape_checks_read_without_keeping() {
        assert_eq!(text(r#""a\"b""#).as_deref(), Some("a\"b"));
        assert!(matches!(text(r#""plain""#), Some(Cow::Borrowed("plain"))));
        assert_eq!(text("1"), None);
        assert_eq!(text("null"), None);
        assert!(conforms::<Option<StringArray>>(r#"["a","b"]"#));
        assert!(conforms::<Option<StringArray>>("null"));
        assert!(conforms::<Option<StringArray>>("[]"));
        assert!(!conforms::<Option<StringArray>>(r#"["a",1]"#));
        assert!(!conforms::<Option<StringArray>>(r#""a""#));
        assert!(conforms::<Option<NumberObject>>(
            r#"{"a":1,"b":-2.5e3,"c":null}"#
        ));
        assert!(conforms::<Option<NumberObject>>("null"));
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":"1"}"#));
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":{"b":1}}"#));
        assert!(!conforms::<Option<NumberObject>>("[1]"));
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":true}"#));
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":[1]}"#));
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":01}"#));
        assert!(conforms::<Option<NumberObject>>(
            r#"{"a":1e308,"b":-0,"c":18446744073709551616,"d":1765105200.123456}"#
        ));
        // Out of f64's range, as parsing the row into values later would find.
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":1e400}"#));
        assert!(!conforms::<Option<NumberObject>>(r#"{"a":-2E309}"#));
        let digits = format!(r#"{{"a":{}}}"#, "9".repeat(400));
        assert!(!conforms::<Option<NumberObject>>(&digits));
        assert!(conforms::<Option<Vec<StringArray>>>(r#"[["a","b"],[]]"#));
        assert!(!conforms::<Option<Vec<StringArray>>>(r#"[["a"],null]"#));
    }
}
