//! Property tests of the merge rules.

use braintrust_core::merge::merge_row_batch;
use braintrust_core::row::Row;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// JSON values whose objects share a few keys, so merges overlap.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(Value::from),
        "[xyz]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[abc]", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn tags() -> impl Strategy<Value = Value> {
    // Distinct within a row, as event validation requires.
    proptest::collection::btree_set("[pqrs]", 0..4)
        .prop_map(|t| Value::Array(t.into_iter().map(Value::String).collect()))
}

/// Fields a row may carry (no `_merge_paths`, whose union is deliberately approximate).
fn fields() -> impl Strategy<Value = Map<String, Value>> {
    (
        proptest::option::of(value()),
        proptest::option::of(value()),
        proptest::option::of(proptest::collection::btree_map("[abc]", value(), 0..3)),
        proptest::option::of(tags()),
    )
        .prop_map(|(input, output, metadata, tags)| {
            let mut m = Map::new();
            if let Some(v) = input {
                m.insert("input".into(), v);
            }
            if let Some(v) = output {
                m.insert("output".into(), v);
            }
            if let Some(v) = metadata {
                m.insert("metadata".into(), Value::Object(v.into_iter().collect()));
            }
            if let Some(v) = tags {
                m.insert("tags".into(), v);
            }
            m
        })
}

fn row(id: &str, is_merge: bool, n: usize, fields: Map<String, Value>) -> Row {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("project_id".into(), json!("p"));
    m.insert("log_id".into(), json!("g"));
    m.insert("span_id".into(), json!(format!("span-{n}")));
    m.insert("created".into(), json!(format!("t{n}")));
    m.insert("_is_merge".into(), json!(is_merge));
    m.extend(fields);
    Row::from_map(m)
}

/// A full row followed by merge rows of the same key.
fn span_rows() -> impl Strategy<Value = Vec<Row>> {
    (fields(), proptest::collection::vec(fields(), 0..6)).prop_map(|(first, rest)| {
        let mut rows = vec![row("r", false, 0, first)];
        rows.extend(
            rest.into_iter()
                .enumerate()
                .map(|(i, f)| row("r", true, i + 1, f)),
        );
        rows
    })
}

proptest! {
    /// Flush boundaries do not change the result: merging a batch equals merging its two halves
    /// and then merging those results.
    #[test]
    fn merging_is_independent_of_flush_boundaries(rows in span_rows(), split in 0usize..8) {
        let split = split.min(rows.len());
        let whole = merge_row_batch(rows.clone());
        let mut halves = merge_row_batch(rows[..split].to_vec());
        halves.extend(merge_row_batch(rows[split..].to_vec()));
        prop_assert_eq!(merge_row_batch(halves), whole);
    }

    /// The result is one full row (no `_is_merge: true`) that keeps the first row's ids and
    /// `created`.
    #[test]
    fn merged_row_keeps_first_ids_and_is_full(rows in span_rows()) {
        let merged = merge_row_batch(rows);
        prop_assert_eq!(merged.len(), 1);
        let m = merged[0].as_map();
        prop_assert_eq!(&m["span_id"], "span-0");
        prop_assert_eq!(&m["created"], "t0");
        prop_assert!(m.get("_is_merge") != Some(&json!(true)));
        prop_assert!(!m.contains_key("_merge_paths"));
    }

    /// Tags end up as the order-preserving, de-duplicated union of every row's tags.
    #[test]
    fn tags_are_the_union(rows in span_rows()) {
        let all_arrays = rows.iter().all(|r| r.as_map().get("tags").is_none_or(Value::is_array));
        prop_assume!(all_arrays);
        let mut expected: Vec<Value> = Vec::new();
        for r in &rows {
            for t in r.as_map().get("tags").and_then(Value::as_array).into_iter().flatten() {
                if !expected.contains(t) {
                    expected.push(t.clone());
                }
            }
        }
        let merged = merge_row_batch(rows.clone());
        let any_tags = rows.iter().any(|r| r.as_map().contains_key("tags"));
        if any_tags {
            prop_assert_eq!(&merged[0].as_map()["tags"], &Value::Array(expected));
        }
    }

    /// The last row's non-object values win at their paths.
    #[test]
    fn last_leaf_wins(rows in span_rows()) {
        let last = rows.last().unwrap().as_map().clone();
        let merged = merge_row_batch(rows);
        let merged = merged[0].as_map();
        for field in ["input", "output"] {
            if let Some(v) = last.get(field) {
                assert_leaves_present(&merged[field], v);
            }
        }
    }

    /// A row that is not a merge row replaces whatever came before it.
    #[test]
    fn full_rows_replace(before in span_rows(), replacement in fields()) {
        let mut rows = before;
        rows.push(row("r", false, 99, replacement.clone()));
        let merged = merge_row_batch(rows);
        prop_assert_eq!(merged, vec![row("r", false, 99, replacement)]);
    }

    /// Different keys never merge, and keep their order of first appearance.
    #[test]
    fn keys_stay_apart(ids in proptest::collection::vec("[a-d]", 1..12)) {
        let rows: Vec<Row> = ids.iter().enumerate()
            .map(|(i, id)| row(id, i % 2 == 1, i, Map::new()))
            .collect();
        let mut first_seen: Vec<&String> = Vec::new();
        for id in &ids {
            if !first_seen.contains(&id) {
                first_seen.push(id);
            }
        }
        let merged = merge_row_batch(rows);
        let got: Vec<&str> = merged.iter().map(|r| r.as_map()["id"].as_str().unwrap()).collect();
        let want: Vec<&str> = first_seen.iter().map(|s| s.as_str()).collect();
        prop_assert_eq!(got, want);
    }
}

fn assert_leaves_present(merged: &Value, incoming: &Value) {
    match (merged, incoming) {
        (Value::Object(m), Value::Object(i)) => {
            for (k, v) in i {
                assert_leaves_present(&m[k], v);
            }
        }
        (m, i) => assert_eq!(m, i),
    }
}
