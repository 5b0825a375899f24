//! The reference's ten export-slug vectors, malformed slugs, and round-trip properties.

use braintrust_core::object::ObjectIds;
use braintrust_core::span_components::{
    SlugError, SlugObject, SlugVersion, SpanComponents, SpanObjectType, SpanRowIds,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

struct Vector {
    slug: &'static str,
    version: SlugVersion,
    object_type: SpanObjectType,
    object: SlugObject,
    row: Option<(&'static str, &'static str, &'static str)>,
    propagated_event: Option<Value>,
}

fn lazy(args: Value) -> SlugObject {
    SlugObject::Lazy(args.as_object().unwrap().clone())
}

fn id(s: &str) -> SlugObject {
    SlugObject::Id(s.to_owned())
}

fn vectors() -> Vec<Vector> {
    use SlugVersion::{V3, V4};
    use SpanObjectType::{Experiment, ProjectLogs};
    let py_lazy = json!({"project_name": "capture-proj", "project_id": null});
    vec![
        Vector {
            slug: "BAICA2BRVY+63VVjBK+gqwCTWBwMv/QZfzA0ZeF7ImNvbXB1dGVfb2JqZWN0X21ldGFkYXRhX2FyZ3MiOnsicHJvamVjdF9uYW1lIjoiY2FwdHVyZS1wcm9qIiwicHJvamVjdF9pZCI6bnVsbH0sInJvd19pZCI6IjEwNTMxMzhiLTI1ZGYtNDcyNy1hYjVmLTQ1NzM0Njc3OWVlOSJ9",
            version: V4,
            object_type: ProjectLogs,
            object: lazy(py_lazy.clone()),
            row: Some((
                "1053138b-25df-4727-ab5f-457346779ee9",
                "6051558fbadd5563",
                "afa0ab0093581c0cbff4197f303465e1",
            )),
            propagated_event: None,
        },
        Vector {
            slug: "BAICA/HpTKsIm2B7BKsMPfBirzYRiuc3Lxt2lVp7Im9iamVjdF9pZCI6Ijc0N2ViYzdiLTZhOWItNTk3ZS05NGYyLTUxMmNjZTQ4MTAwMCIsInJvd19pZCI6IjIzZjAzYThkLWY2MGMtNGYxNC1hOTAxLTVkZDU3MmQyMTlkYyJ9",
            version: V4,
            object_type: ProjectLogs,
            object: id("747ebc7b-6a9b-597e-94f2-512cce481000"),
            row: Some((
                "23f03a8d-f60c-4f14-a901-5dd572d219dc",
                "f1e94cab089b607b",
                "ab0c3df062af36118ae7372f1b76955a",
            )),
            propagated_event: None,
        },
        Vector {
            slug: "BAICA7XxgoRwE5wXBKsMPfBirzYRiuc3Lxt2lVp7InByb3BhZ2F0ZWRfZXZlbnQiOnsibWV0YWRhdGEiOnsicHJvcCI6InllcyJ9fSwib2JqZWN0X2lkIjoiNzQ3ZWJjN2ItNmE5Yi01OTdlLTk0ZjItNTEyY2NlNDgxMDAwIiwicm93X2lkIjoiMzExNDZkMTgtODRiYy00YTY3LTgxNGEtNTg3NWMzZTVmYzNlIn0=",
            version: V4,
            object_type: ProjectLogs,
            object: id("747ebc7b-6a9b-597e-94f2-512cce481000"),
            row: Some((
                "31146d18-84bc-4a67-814a-5875c3e5fc3e",
                "b5f1828470139c17",
                "ab0c3df062af36118ae7372f1b76955a",
            )),
            propagated_event: Some(json!({"metadata": {"prop": "yes"}})),
        },
        Vector {
            slug: "BAECA1IEGASKStldBOuGdt8XCeTdmneYD12Nj2t7Im9iamVjdF9pZCI6Ijk5YWUwMGU1LTAzOTItNTllZS04NTQwLWY1YWQwNmI0MWIwMSIsInJvd19pZCI6ImRlMmVhYjcwLWI3MDctNGI5OS1hMWFiLTM0OTBjMmNjODhiNyJ9",
            version: V4,
            object_type: Experiment,
            object: id("99ae00e5-0392-59ee-8540-f5ad06b41b01"),
            row: Some((
                "de2eab70-b707-4b99-a1ab-3490c2cc88b7",
                "520418048a4ad95d",
                "eb8676df1709e4dd9a77980f5d8d8f6b",
            )),
            propagated_event: None,
        },
        Vector {
            slug: "BAEAeyJvYmplY3RfaWQiOiI5OWFlMDBlNS0wMzkyLTU5ZWUtODU0MC1mNWFkMDZiNDFiMDEifQ==",
            version: V4,
            object_type: Experiment,
            object: id("99ae00e5-0392-59ee-8540-f5ad06b41b01"),
            row: None,
            propagated_event: None,
        },
        Vector {
            slug: "BAIAeyJjb21wdXRlX29iamVjdF9tZXRhZGF0YV9hcmdzIjp7InByb2plY3RfbmFtZSI6ImNhcHR1cmUtcHJvaiIsInByb2plY3RfaWQiOm51bGx9fQ==",
            version: V4,
            object_type: ProjectLogs,
            object: lazy(py_lazy.clone()),
            row: None,
            propagated_event: None,
        },
        Vector {
            slug: "AwIDAq8+ERDgZkrDr7xyzF6VIeID8mH5dP6DQDCF9tNqJaEWLQTyYfl0/oNAMIX202oloRYteyJjb21wdXRlX29iamVjdF9tZXRhZGF0YV9hcmdzIjp7InByb2plY3RfbmFtZSI6ImNhcHR1cmUtcHJvaiIsInByb2plY3RfaWQiOm51bGx9fQ==",
            version: V3,
            object_type: ProjectLogs,
            object: lazy(py_lazy),
            row: Some((
                "af3e1110-e066-4ac3-afbc-72cc5e9521e2",
                "f261f974-fe83-4030-85f6-d36a25a1162d",
                "f261f974-fe83-4030-85f6-d36a25a1162d",
            )),
            propagated_event: None,
        },
        Vector {
            slug: "AwIEAXR+vHtqm1l+lPJRLM5IEAACrz4REOBmSsOvvHLMXpUh4gPyYfl0/oNAMIX202oloRYtBPJh+XT+g0AwhfbTaiWhFi0=",
            version: V3,
            object_type: ProjectLogs,
            object: id("747ebc7b-6a9b-597e-94f2-512cce481000"),
            row: Some((
                "af3e1110-e066-4ac3-afbc-72cc5e9521e2",
                "f261f974-fe83-4030-85f6-d36a25a1162d",
                "f261f974-fe83-4030-85f6-d36a25a1162d",
            )),
            propagated_event: None,
        },
        Vector {
            slug: "AwEEAdbghl+YyFoWgpCZCXqPRp4CqUk9IEOtTsu0F55O8SemKQPQDB2RDZRLmYjCbq48F/jpBNAMHZENlEuZiMJurjwX+Ok=",
            version: V3,
            object_type: Experiment,
            object: id("d6e0865f-98c8-5a16-8290-99097a8f469e"),
            row: Some((
                "a9493d20-43ad-4ecb-b417-9e4ef127a629",
                "d00c1d91-0d94-4b99-88c2-6eae3c17f8e9",
                "d00c1d91-0d94-4b99-88c2-6eae3c17f8e9",
            )),
            propagated_event: None,
        },
        Vector {
            slug: "BAICA1DTPsbEbDtTBIbxl5pBv8XkfAAVWnrrl5R7ImNvbXB1dGVfb2JqZWN0X21ldGFkYXRhX2FyZ3MiOnsicHJvamVjdF9uYW1lIjoiY2FwdHVyZS1wcm9qIn0sInJvd19pZCI6IjA3YjcwY2I3ZDY2MjdhMGQifQ==",
            version: V4,
            object_type: ProjectLogs,
            object: lazy(json!({"project_name": "capture-proj"})),
            row: Some((
                "07b70cb7d6627a0d",
                "50d33ec6c46c3b53",
                "86f1979a41bfc5e47c00155a7aeb9794",
            )),
            propagated_event: None,
        },
    ]
}

fn expected(v: &Vector) -> SpanComponents {
    SpanComponents {
        object_type: v.object_type,
        object: v.object.clone(),
        row: v.row.map(|(row_id, span_id, root_span_id)| SpanRowIds {
            row_id: row_id.into(),
            span_id: span_id.into(),
            root_span_id: root_span_id.into(),
        }),
        propagated_event: v
            .propagated_event
            .as_ref()
            .map(|e| e.as_object().unwrap().clone()),
    }
}

#[test]
fn all_reference_vectors_decode_to_their_listed_values() {
    for (i, v) in vectors().iter().enumerate() {
        let parsed =
            SpanComponents::parse(v.slug).unwrap_or_else(|e| panic!("vector {}: {e}", i + 1));
        assert_eq!(parsed, expected(v), "vector {}", i + 1);
    }
}

#[test]
fn all_reference_vectors_re_encode_byte_for_byte_from_their_values() {
    for (i, v) in vectors().iter().enumerate() {
        assert_eq!(expected(v).encode(v.version), v.slug, "vector {}", i + 1);
    }
}

#[test]
fn object_ids_follow_the_object_type() {
    let v = &vectors()[3];
    assert_eq!(
        expected(v).object_ids(),
        Some(ObjectIds::experiment(
            "99ae00e5-0392-59ee-8540-f5ad06b41b01"
        ))
    );
    let v = &vectors()[1];
    assert_eq!(
        expected(v).object_ids(),
        Some(ObjectIds::project_logs(
            "747ebc7b-6a9b-597e-94f2-512cce481000"
        ))
    );
    assert_eq!(expected(&vectors()[0]).object_ids(), None, "lazy slug");
}

#[test]
fn v4_never_compresses_object_or_row_ids() {
    let slug = expected(&vectors()[7]).encode(SlugVersion::V4);
    let raw = base64_decode(&slug);
    assert_eq!(
        &raw[..3],
        &[4, 2, 0],
        "legacy UUID span ids are not hex, so nothing compresses"
    );
    let json: Value = serde_json::from_slice(&raw[3..]).unwrap();
    assert_eq!(
        json,
        json!({"object_id": "747ebc7b-6a9b-597e-94f2-512cce481000",
               "row_id": "af3e1110-e066-4ac3-afbc-72cc5e9521e2",
               "span_id": "f261f974-fe83-4030-85f6-d36a25a1162d",
               "root_span_id": "f261f974-fe83-4030-85f6-d36a25a1162d"})
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn with_json(header: &[u8], json: &str) -> String {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(json.as_bytes());
    base64_encode(&bytes)
}

#[test]
fn malformed_slugs_give_typed_errors() {
    type Check = fn(&SlugError) -> bool;
    let cases: Vec<(String, Check)> = vec![
        ("not base64 !!".into(), |e| {
            matches!(e, SlugError::Base64(_))
        }),
        (base64_encode(&[4, 2]), |e| {
            matches!(e, SlugError::TooShort(2))
        }),
        (base64_encode(&[2, 2, 0]), |e| {
            matches!(e, SlugError::UnsupportedVersion(2))
        }),
        (base64_encode(&[5, 2, 0]), |e| {
            matches!(e, SlugError::UnsupportedVersion(5))
        }),
        (base64_encode(&[4, 9, 0]), |e| {
            matches!(e, SlugError::UnknownObjectType(9))
        }),
        (base64_encode(&[4, 2, 1, 7, 0, 0]), |e| {
            matches!(e, SlugError::UnknownField(7))
        }),
        (base64_encode(&[4, 2, 1, 3, 1, 2, 3]), |e| {
            matches!(e, SlugError::Truncated)
        }),
        (base64_encode(&[4, 2, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8]), |e| {
            matches!(e, SlugError::Truncated)
        }),
        (with_json(&[4, 1, 0], "{\"object_id\": "), |e| {
            matches!(e, SlugError::InvalidJson(_))
        }),
        (with_json(&[4, 1, 0], "[1,2]"), |e| {
            matches!(e, SlugError::InvalidJson(_))
        }),
        (base64_encode(&[4, 1, 0, 0xff, 0xfe]), |e| {
            matches!(e, SlugError::InvalidJson(_))
        }),
        (base64_encode(&[4, 1, 0]), |e| {
            matches!(e, SlugError::ObjectInvariant)
        }),
        (
            with_json(
                &[4, 2, 0],
                r#"{"compute_object_metadata_args":{"project_name":"p"},"object_id":"x"}"#,
            ),
            |e| matches!(e, SlugError::ObjectInvariant),
        ),
        (
            with_json(&[4, 1, 0], r#"{"object_id":"x","row_id":"r"}"#),
            |e| matches!(e, SlugError::RowIdsInvariant),
        ),
        (with_json(&[4, 1, 0], r#"{"object_id":5}"#), |e| {
            matches!(
                e,
                SlugError::WrongType {
                    field: "object_id",
                    ..
                }
            )
        }),
        (
            with_json(&[4, 1, 0], r#"{"object_id":"x","propagated_event":"no"}"#),
            |e| {
                matches!(
                    e,
                    SlugError::WrongType {
                        field: "propagated_event",
                        ..
                    }
                )
            },
        ),
        (
            {
                let mut b = vec![4, 1, 2, 3];
                b.extend([1; 8]);
                b.push(3);
                b.extend([2; 8]);
                base64_encode(&b)
            },
            |e| matches!(e, SlugError::DuplicateField("span_id")),
        ),
        (
            {
                let mut b = vec![4, 1, 1, 3];
                b.extend([1; 8]);
                b.extend(br#"{"span_id":"0101010101010101","object_id":"x"}"#);
                base64_encode(&b)
            },
            |e| matches!(e, SlugError::DuplicateField("span_id")),
        ),
    ];
    for (slug, check) in cases {
        let err = SpanComponents::parse(&slug).expect_err(&slug);
        assert!(check(&err), "{slug}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn unknown_json_keys_are_ignored_and_padding_is_optional() {
    let slug = with_json(&[4, 1, 0], r#"{"object_id":"x","future_field":[1]}"#);
    let parsed = SpanComponents::parse(slug.trim_end_matches('=')).unwrap();
    assert_eq!(parsed.object, SlugObject::Id("x".into()));
}

fn arb_components() -> impl Strategy<Value = SpanComponents> {
    let object_type = prop_oneof![
        Just(SpanObjectType::Experiment),
        Just(SpanObjectType::ProjectLogs),
        Just(SpanObjectType::PlaygroundLogs),
    ];
    let uuid = any::<[u8; 16]>().prop_map(|b| uuid::Uuid::from_bytes(b).hyphenated().to_string());
    let hex16 = any::<u64>().prop_map(|v| format!("{v:016x}"));
    let hex32 = any::<u128>().prop_map(|v| format!("{v:032x}"));
    let any_id = prop_oneof![uuid, hex16, hex32, "[a-zA-Z0-9-]{0,20}"];
    let object = prop_oneof![
        any_id.clone().prop_map(SlugObject::Id),
        "[a-z -]{1,12}".prop_map(|name| {
            let mut m = Map::new();
            m.insert("project_name".into(), Value::String(name));
            SlugObject::Lazy(m)
        }),
    ];
    let row = proptest::option::of((any_id.clone(), any_id.clone(), any_id).prop_map(
        |(row_id, span_id, root_span_id)| SpanRowIds {
            row_id,
            span_id,
            root_span_id,
        },
    ));
    let event = proptest::option::of("[a-zé]{1,8}".prop_map(|v| {
        let mut m = Map::new();
        m.insert("metadata".into(), json!({ "k": v }));
        m
    }));
    (object_type, object, row, event).prop_map(|(object_type, object, row, propagated_event)| {
        SpanComponents {
            object_type,
            object,
            row,
            propagated_event,
        }
    })
}

proptest! {
    #[test]
    fn encode_then_parse_is_identity(components in arb_components()) {
        for version in [SlugVersion::V3, SlugVersion::V4] {
            let slug = components.encode(version);
            prop_assert_eq!(SpanComponents::parse(&slug).unwrap(), components.clone());
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let _ = SpanComponents::parse(&base64_encode(&bytes));
    }

    #[test]
    fn parsing_valid_headers_with_garbage_never_panics(
        version in 3u8..=4, kind in 0u8..=4, count in 0u8..=6,
        rest in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut bytes = vec![version, kind, count];
        bytes.extend(rest);
        let _ = SpanComponents::parse(&base64_encode(&bytes));
    }

    #[test]
    fn parsing_arbitrary_strings_never_panics(s in "\\PC{0,64}") {
        let _ = SpanComponents::parse(&s);
    }
}
