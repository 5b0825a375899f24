//! Merge rules for rows with equal keys: the client merges before sending, the server merges
//! into what it stored.
//!
//! * Rows are processed in order. A row with `_is_merge: true` whose key is already present is
//!   deep-merged into the existing row; any other row replaces it.
//! * When merging, the existing row's `created`, `span_id`, `root_span_id`, `span_parents` and
//!   `_parent_id` are kept.
//! * Deep merge: object into object recurses; anything else (arrays and `null` included)
//!   overwrites. Paths listed in the incoming row's `_merge_paths` are replaced, not merged.
//! * Top-level `tags` are a set union (order-preserving, de-duplicated) unless `["tags"]` is in
//!   `_merge_paths`.
//! * When the existing row is a full row (not a merge row), the result is a full row with no
//!   `_is_merge` key.
//!
//! ```
//! use braintrust_core::merge::merge_row_batch;
//! use braintrust_core::row::Row;
//! use serde_json::json;
//!
//! let rows = [
//!     json!({"id": "r", "_is_merge": false, "metadata": {"m": {"x": 1}}, "tags": ["a"]}),
//!     json!({"id": "r", "_is_merge": true, "metadata": {"m": {"y": 2}}, "tags": ["b", "a"]}),
//! ]
//! .map(|v| Row::from_map(v.as_object().unwrap().clone()));
//! let merged = merge_row_batch(rows);
//! assert_eq!(
//!     serde_json::Value::from(merged[0].clone()),
//!     json!({"id": "r", "metadata": {"m": {"x": 1, "y": 2}}, "tags": ["a", "b"]})
//! );
//! ```

use std::collections::HashMap;

use serde_json::map::Entry;
use serde_json::{Map, Value};

use crate::row::Row;

/// Fields of the existing row that a merge never overwrites.
pub const PRESERVED_ON_MERGE: [&str; 5] = [
    "created",
    "span_id",
    "root_span_id",
    "span_parents",
    "_parent_id",
];

/// Deep-merges `source` into `target` (object into object recurses, anything else overwrites).
pub fn merge_fields(target: &mut Map<String, Value>, source: Map<String, Value>) {
    if target.is_empty() {
        // Nothing to merge into: take the map as it is (no re-hashing, no re-allocation).
        *target = source;
        return;
    }
    // One lookup per key: a value replaced keeps its place, as `insert` keeps it.
    for (key, value) in source {
        match target.entry(key) {
            Entry::Occupied(mut slot) => match (slot.get_mut(), value) {
                (Value::Object(existing), Value::Object(incoming)) => {
                    merge_fields(existing, incoming);
                }
                (_, value) => {
                    slot.insert(value);
                }
            },
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }
}

/// Deep merge that replaces at `replace_paths`. When `replaced` is given, it collects the paths
/// where an object arrived over a non-object: a later deep merge of the combined row must replace
/// there, as applying the rows one by one would.
fn merge_with_paths(
    target: &mut Map<String, Value>,
    source: Map<String, Value>,
    replace_paths: &[Vec<String>],
    path: &mut Vec<String>,
    mut replaced: Option<&mut Vec<Vec<String>>>,
) {
    for (key, value) in source {
        path.push(key.clone());
        let replace = replace_paths.iter().any(|p| p == path);
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) if !replace => {
                merge_with_paths(
                    existing,
                    incoming,
                    replace_paths,
                    path,
                    replaced.as_deref_mut(),
                );
            }
            (existing, value) => {
                if let (Some(old), Some(list)) = (existing, replaced.as_deref_mut())
                    && !old.is_object()
                    && value.is_object()
                    && !replace
                {
                    list.push(path.clone());
                }
                target.insert(key, value);
            }
        }
        path.pop();
    }
}

/// Parses one path (`["input", "a"]`); `None` unless it is an array of strings.
fn parse_path(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// Parses `_merge_paths` (`[["input", "a"], ["output"]]`); malformed entries are skipped.
pub fn parse_merge_paths(value: Option<&Value>) -> Vec<Vec<String>> {
    let Some(Value::Array(paths)) = value else {
        return Vec::new();
    };
    paths.iter().filter_map(parse_path).collect()
}

/// Order-preserving, de-duplicated union of two tag lists.
pub fn union_tags(existing: &mut Vec<Value>, incoming: Vec<Value>) {
    for tag in incoming {
        // `Value` equality ignores object key order, as the reference's sorted-key comparison.
        if !existing.contains(&tag) {
            existing.push(tag);
        }
    }
}

/// Merges a merge row into an existing row with the same key (the rules of this module).
///
/// When both rows are merge rows the result is still a merge row; its `_merge_paths` gain the
/// incoming row's paths and every path where an object replaced a non-object, so that applying
/// the combined row equals applying the two rows one after the other.
pub fn merge_row_into(existing: &mut Map<String, Value>, mut incoming: Map<String, Value>) {
    let existing_is_full = existing.get("_is_merge").and_then(Value::as_bool) != Some(true);
    let paths = parse_merge_paths(incoming.get("_merge_paths"));
    incoming.shift_remove("_merge_paths");
    incoming.shift_remove("_is_merge");
    for field in PRESERVED_ON_MERGE {
        if existing.contains_key(field) {
            incoming.shift_remove(field);
        }
    }
    let tags_replaced = paths.iter().any(|p| p.len() == 1 && p[0] == "tags");
    let both_arrays = matches!(existing.get("tags"), Some(Value::Array(_)))
        && matches!(incoming.get("tags"), Some(Value::Array(_)));
    if !tags_replaced
        && both_arrays
        && let (Some(Value::Array(old)), Some(Value::Array(new))) =
            (existing.get_mut("tags"), incoming.shift_remove("tags"))
    {
        union_tags(old, new);
    }
    if !existing_is_full {
        prune_merge_paths(existing);
    }
    // A path only matters where its row sets a value; elsewhere it must not reach other rows.
    let set_paths: Vec<Vec<String>> = paths
        .iter()
        .filter(|p| has_path(&incoming, p))
        .cloned()
        .collect();
    let mut replaced = Vec::new();
    if paths.is_empty() && existing_is_full {
        // Nothing to replace and nothing to track: a plain deep merge.
        merge_fields(existing, incoming);
    } else {
        let track = (!existing_is_full).then_some(&mut replaced);
        merge_with_paths(existing, incoming, &paths, &mut Vec::new(), track);
    }
    if existing_is_full {
        existing.shift_remove("_is_merge");
        existing.shift_remove("_merge_paths");
        return;
    }
    let new_paths: Vec<Value> = set_paths
        .into_iter()
        .chain(replaced)
        .map(|p| Value::Array(p.into_iter().map(Value::String).collect()))
        .collect();
    if !new_paths.is_empty() {
        let slot = existing
            .entry("_merge_paths")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(all) = slot {
            union_tags(all, new_paths);
        }
    }
}

fn has_path(row: &Map<String, Value>, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cursor = row;
    for key in parents {
        match cursor.get(key) {
            Some(Value::Object(next)) => cursor = next,
            _ => return false,
        }
    }
    cursor.contains_key(last)
}

/// Drops `_merge_paths` entries at which the row sets no value.
fn prune_merge_paths(row: &mut Map<String, Value>) {
    let Some(Value::Array(paths)) = row.get("_merge_paths") else {
        return;
    };
    let keep: Vec<Value> = paths
        .iter()
        .filter(|p| parse_path(p).is_some_and(|path| has_path(row, &path)))
        .cloned()
        .collect();
    if keep.is_empty() {
        row.shift_remove("_merge_paths");
    } else {
        row.insert("_merge_paths".into(), Value::Array(keep));
    }
}

/// Merges a batch of rows by key (client side, before sending). The result has one row per
/// distinct key, in order of first appearance.
pub fn merge_row_batch(rows: impl IntoIterator<Item = Row>) -> Vec<Row> {
    let mut index: HashMap<crate::row::RowKey, usize> = HashMap::new();
    let mut out: Vec<Row> = Vec::new();
    for row in rows {
        let key = row.key();
        match index.get(&key) {
            Some(&i) if row.is_merge() => merge_row_into(out[i].as_map_mut(), row.into_map()),
            Some(&i) => out[i] = row,
            None => {
                index.insert(key, out.len());
                out.push(row);
            }
        }
    }
    out
}

fn value_at_mut<'a>(
    target: &'a mut Map<String, Value>,
    parents: &[String],
    last: &str,
) -> Option<&'a mut Value> {
    let mut cursor = target;
    for key in parents {
        cursor = cursor.get_mut(key)?.as_object_mut()?;
    }
    cursor.get_mut(last)
}

/// Applies `_array_delete` (`[{"path": ["tags"], "delete": ["foo"]}]`): removes the listed values
/// from the arrays at those paths. Entries that do not match the row are ignored.
pub fn apply_array_deletes(target: &mut Map<String, Value>, deletes: &Value) {
    let Some(entries) = deletes.as_array() else {
        return;
    };
    for entry in entries {
        let (Some(path), Some(Value::Array(remove))) =
            (entry.get("path").and_then(parse_path), entry.get("delete"))
        else {
            continue;
        };
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        if let Some(Value::Array(values)) = value_at_mut(target, parents, last) {
            values.retain(|v| !remove.contains(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        Row::from_map(v.as_object().unwrap().clone())
    }

    fn values(rows: Vec<Row>) -> Vec<Value> {
        rows.into_iter().map(Value::from).collect()
    }

    #[test]
    fn observed_metadata_merges() {
        let out = merge_row_batch([
            row(
                json!({"id": "a", "_is_merge": false, "metadata": {"stage": "begin", "m1": {"x": 1}}}),
            ),
            row(
                json!({"id": "a", "_is_merge": true, "metadata": {"stage": "end", "m1": {"y": 2}}}),
            ),
        ]);
        assert_eq!(
            values(out),
            vec![json!({"id": "a", "metadata": {"stage": "end", "m1": {"x": 1, "y": 2}}})]
        );
    }

    #[test]
    fn merged_fields_keep_their_places_and_new_ones_follow() {
        let mut target = json!({"a": 1, "m": {"x": 1, "y": 2}, "b": [1]})
            .as_object()
            .cloned()
            .unwrap();
        let source = json!({"c": 3, "b": "replaced", "m": {"z": 3, "x": 9}, "a": null})
            .as_object()
            .cloned()
            .unwrap();
        merge_fields(&mut target, source);
        let keys = |map: &Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&target), ["a", "m", "b", "c"]);
        let Some(Value::Object(m)) = target.get("m") else {
            panic!("m stays an object: {target:?}");
        };
        assert_eq!(keys(m), ["x", "y", "z"]);
        assert_eq!(
            Value::Object(target),
            json!({"a": null, "m": {"x": 9, "y": 2, "z": 3}, "b": "replaced", "c": 3})
        );
    }

    #[test]
    fn arrays_and_null_overwrite() {
        let out = merge_row_batch([
            row(json!({"id": "a", "_is_merge": true, "output": [1, 2], "input": {"k": 1}})),
            row(json!({"id": "a", "_is_merge": true, "output": [3], "input": null})),
        ]);
        assert_eq!(
            values(out),
            vec![json!({"id": "a", "_is_merge": true, "output": [3], "input": null})]
        );
    }

    #[test]
    fn existing_ids_are_kept() {
        let out = merge_row_batch([
            row(
                json!({"id": "a", "created": "c1", "span_id": "s1", "root_span_id": "r1", "span_parents": ["p1"]}),
            ),
            row(
                json!({"id": "a", "_is_merge": true, "created": "c2", "span_id": "s2", "root_span_id": "r2", "span_parents": ["p2"], "output": 1}),
            ),
        ]);
        assert_eq!(
            values(out),
            vec![
                json!({"id": "a", "created": "c1", "span_id": "s1", "root_span_id": "r1", "span_parents": ["p1"], "output": 1})
            ]
        );
    }

    #[test]
    fn non_merge_rows_replace_and_other_keys_stay_apart() {
        let out = merge_row_batch([
            row(json!({"id": "a", "input": 1})),
            row(json!({"id": "b", "project_id": "p", "log_id": "g", "input": 2})),
            row(json!({"id": "a", "output": 3})),
            row(json!({"id": "a", "experiment_id": "e", "_is_merge": true, "output": 4})),
        ]);
        assert_eq!(
            values(out),
            vec![
                json!({"id": "a", "output": 3}),
                json!({"id": "b", "project_id": "p", "log_id": "g", "input": 2}),
                json!({"id": "a", "experiment_id": "e", "_is_merge": true, "output": 4}),
            ]
        );
    }

    #[test]
    fn tags_union_unless_replaced_by_merge_paths() {
        let out = merge_row_batch([
            row(json!({"id": "a", "tags": ["x", {"k": 1, "j": 2}]})),
            row(json!({"id": "a", "_is_merge": true, "tags": [{"j": 2, "k": 1}, "y", "x"]})),
        ]);
        assert_eq!(
            values(out),
            vec![json!({"id": "a", "tags": ["x", {"k": 1, "j": 2}, "y"]})]
        );

        let out = merge_row_batch([
            row(json!({"id": "a", "tags": ["x"], "input": {"a": {"b": 1}, "c": 2}})),
            row(
                json!({"id": "a", "_is_merge": true, "tags": ["y"], "input": {"a": {"z": 9}},
                        "_merge_paths": [["tags"], ["input", "a"]]}),
            ),
        ]);
        assert_eq!(
            values(out),
            vec![json!({"id": "a", "tags": ["y"], "input": {"a": {"z": 9}, "c": 2}})]
        );
    }

    #[test]
    fn merge_rows_accumulate_merge_paths() {
        let out = merge_row_batch([
            row(json!({"id": "a", "_is_merge": true, "_merge_paths": [["input"]], "input": 1})),
            row(
                json!({"id": "a", "_is_merge": true, "_merge_paths": [["output"], ["input"]], "output": 2}),
            ),
        ]);
        assert_eq!(
            values(out)[0]["_merge_paths"],
            json!([["input"], ["output"]])
        );
    }

    #[test]
    fn combined_merge_rows_replace_where_an_object_followed_a_non_object() {
        let out = merge_row_batch([
            row(json!({"id": "a", "_is_merge": true, "output": null, "input": {"k": 5}})),
            row(json!({"id": "a", "_is_merge": true, "output": {}, "input": {"k": {"x": 1}}})),
        ]);
        assert_eq!(
            values(out),
            vec![
                json!({"id": "a", "_is_merge": true, "output": {}, "input": {"k": {"x": 1}},
                        "_merge_paths": [["output"], ["input", "k"]]})
            ]
        );
    }

    #[test]
    fn array_deletes_remove_values_at_paths() {
        let mut target = json!({"tags": ["a", "b", "c"], "metadata": {"list": [1, 2]}})
            .as_object()
            .unwrap()
            .clone();
        apply_array_deletes(
            &mut target,
            &json!([{"path": ["tags"], "delete": ["b"]},
                    {"path": ["metadata", "list"], "delete": [2]},
                    {"path": ["missing"], "delete": [1]},
                    "junk"]),
        );
        assert_eq!(
            Value::Object(target),
            json!({"tags": ["a", "c"], "metadata": {"list": [1]}})
        );
    }
}
