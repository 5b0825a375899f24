//! Numeric and JSON scorers: NumericDiff, JSONDiff (recursive), ValidJSON.

use serde_json::{Map, Value};

use super::string::levenshtein_similarity;
use super::{JsonScorer, ScorerError, stringify};
use crate::score::Score;

/// `1 - |e - o| / (|e| + |o|)` (1 when both are 0). Numbers, or strings holding numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumericDiff;

impl NumericDiff {
    /// The scorer.
    pub fn new() -> NumericDiff {
        NumericDiff
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

pub(crate) fn numeric_similarity(o: f64, e: f64) -> f64 {
    if o == 0.0 && e == 0.0 {
        return 1.0;
    }
    1.0 - (e - o).abs() / (e.abs() + o.abs())
}

impl JsonScorer for NumericDiff {
    fn scorer_name(&self) -> &str {
        "NumericDiff"
    }

    fn evaluate(&self, output: &Value, expected: Option<&Value>) -> Result<Score, ScorerError> {
        let expected = expected
            .filter(|e| !e.is_null())
            .ok_or(ScorerError::MissingExpected("NumericDiff"))?;
        let number = |v: &Value| {
            as_number(v).ok_or_else(|| ScorerError::InvalidValue {
                scorer: "NumericDiff",
                message: format!("{v} is not a number"),
            })
        };
        let score = numeric_similarity(number(output)?, number(expected)?);
        Ok(Score::new("NumericDiff", score))
    }
}

/// Recursive JSON similarity: objects average over their key union, arrays sum over zipped
/// pairs divided by the longer length, strings by Levenshtein, numbers by NumericDiff;
/// strings holding JSON objects or arrays are parsed first (unless `preserve_strings`).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonDiff {
    preserve_strings: bool,
}

impl JsonDiff {
    /// The scorer (strings holding JSON are parsed).
    pub fn new() -> JsonDiff {
        JsonDiff::default()
    }

    /// Compares strings as strings even when they hold JSON.
    pub fn preserve_strings(mut self, preserve: bool) -> JsonDiff {
        self.preserve_strings = preserve;
        self
    }

    fn parse<'a>(&self, v: &'a Value) -> std::borrow::Cow<'a, Value> {
        if let (false, Value::String(s)) = (self.preserve_strings, v)
            && let Ok(parsed @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(s)
        {
            return std::borrow::Cow::Owned(parsed);
        }
        std::borrow::Cow::Borrowed(v)
    }

    fn diff(&self, o: &Value, e: &Value) -> Option<f64> {
        let (o, e) = (self.parse(o), self.parse(e));
        match (o.as_ref(), e.as_ref()) {
            (Value::Null, Value::Null) => Some(1.0),
            (Value::Null, _) | (_, Value::Null) => Some(0.0),
            (Value::Object(a), Value::Object(b)) => {
                if a.is_empty() && b.is_empty() {
                    return Some(1.0);
                }
                let mut keys: Vec<&String> = a.keys().collect();
                keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
                let null = Value::Null;
                let values: Vec<f64> = keys
                    .iter()
                    .filter_map(|k| {
                        self.diff(a.get(*k).unwrap_or(&null), b.get(*k).unwrap_or(&null))
                    })
                    .collect();
                if values.is_empty() {
                    None
                } else {
                    Some(values.iter().sum::<f64>() / values.len() as f64)
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                if a.is_empty() && b.is_empty() {
                    return Some(1.0);
                }
                let total: f64 = a.iter().zip(b).filter_map(|(x, y)| self.diff(x, y)).sum();
                Some(total / a.len().max(b.len()) as f64)
            }
            (Value::String(a), Value::String(b)) => Some(levenshtein_similarity(a, b)),
            (a @ (Value::Number(_) | Value::Bool(_)), b @ (Value::Number(_) | Value::Bool(_))) => {
                Some(numeric_similarity(as_number(a)?, as_number(b)?))
            }
            (a, b) => Some(levenshtein_similarity(&canonical(a), &canonical(b))),
        }
    }
}

/// Compact JSON with sorted keys.
fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sort(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

impl JsonScorer for JsonDiff {
    fn scorer_name(&self) -> &str {
        "JSONDiff"
    }

    fn evaluate(&self, output: &Value, expected: Option<&Value>) -> Result<Score, ScorerError> {
        let null = Value::Null;
        let score = self.diff(output, expected.unwrap_or(&null));
        Ok(Score::new("JSONDiff", score.map(|s| s.clamp(0.0, 1.0))))
    }
}

/// 1 when the output is valid JSON (a string is parsed first): with a schema, when it
/// validates; without one, when it is an object or array.
#[derive(Debug, Clone, Default)]
pub struct ValidJson {
    schema: Option<Value>,
}

impl ValidJson {
    /// The scorer, without a schema.
    pub fn new() -> ValidJson {
        ValidJson::default()
    }

    /// Validates against this JSON schema (the schema comes from the scorer, never from the
    /// case).
    pub fn schema(mut self, schema: Value) -> ValidJson {
        self.schema = Some(schema);
        self
    }
}

impl JsonScorer for ValidJson {
    fn scorer_name(&self) -> &str {
        "ValidJSON"
    }

    fn evaluate(&self, output: &Value, _expected: Option<&Value>) -> Result<Score, ScorerError> {
        let parsed = match output {
            Value::String(s) => serde_json::from_str::<Value>(s).ok(),
            other => Some(other.clone()),
        };
        let valid = match (&parsed, &self.schema) {
            (None, _) => false,
            (Some(value), Some(schema)) => jsonschema::validator_for(schema)
                .map_err(|e| ScorerError::InvalidSchema(e.to_string()))?
                .is_valid(value),
            (Some(value), None) => value.is_object() || value.is_array(),
        };
        let mut metadata = Map::new();
        metadata.insert("schema".into(), self.schema.clone().unwrap_or(Value::Null));
        Ok(Score {
            name: "ValidJSON".into(),
            score: Some(if valid { 1.0 } else { 0.0 }),
            metadata,
        })
    }
}

/// The string form used by list scorers.
pub(crate) fn text(v: &Value) -> String {
    stringify(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn numeric_diff_golden_values() {
        let s = |o: Value, e: Value| NumericDiff.evaluate(&o, Some(&e)).unwrap().score.unwrap();
        assert!(close(s(json!(105), json!(100)), 0.97561));
        assert_eq!(s(json!(0), json!(0)), 1.0);
        assert_eq!(s(json!(-1), json!(1)), 0.0);
        assert_eq!(s(json!("3"), json!(3)), 1.0);
        assert!(NumericDiff.evaluate(&json!("x"), Some(&json!(1))).is_err());
        assert!(NumericDiff.evaluate(&json!(1), None).is_err());
    }

    #[test]
    fn json_diff_golden_values() {
        let s = |o: Value, e: Value| {
            JsonDiff::new()
                .evaluate(&o, Some(&e))
                .unwrap()
                .score
                .unwrap()
        };
        assert!(close(
            s(
                json!({"a": "hello", "b": [1, 2, 3]}),
                json!({"a": "hallo", "b": [1, 2]})
            ),
            0.7333
        ));
        assert_eq!(s(json!({}), json!({})), 1.0);
        assert_eq!(s(json!([]), json!([])), 1.0);
        assert_eq!(s(json!(null), json!(null)), 1.0);
        assert_eq!(s(json!(null), json!(1)), 0.0);
        assert_eq!(s(json!("{\"a\": 1}"), json!({"a": 1})), 1.0);
        let preserved = JsonDiff::new()
            .preserve_strings(true)
            .evaluate(&json!("{\"a\": 1}"), Some(&json!({"a": 1})))
            .unwrap();
        assert!(preserved.score.unwrap() < 1.0);
        assert_eq!(s(json!(true), json!(1)), 1.0);
        // Type mismatch: Levenshtein on canonical JSON.
        assert!(close(
            s(json!(1), json!("1")),
            levenshtein_similarity("1", "\"1\"")
        ));
    }

    #[test]
    fn valid_json_with_and_without_schema() {
        let v = |o: Value| ValidJson::new().evaluate(&o, None).unwrap().score.unwrap();
        assert_eq!(v(json!("{\"a\": 1}")), 1.0);
        assert_eq!(v(json!("[1]")), 1.0);
        assert_eq!(v(json!("1")), 0.0);
        assert_eq!(v(json!("not json")), 0.0);
        assert_eq!(v(json!({"a": 1})), 1.0);
        let schema =
            json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}});
        let with = ValidJson::new().schema(schema.clone());
        assert_eq!(
            with.evaluate(&json!({"a": 1}), None).unwrap().score,
            Some(1.0)
        );
        assert_eq!(
            with.evaluate(&json!({"a": "x"}), None).unwrap().score,
            Some(0.0)
        );
        assert_eq!(
            with.evaluate(&json!("{\"b\": 1}"), None).unwrap().score,
            Some(0.0)
        );
        assert_eq!(
            with.evaluate(&json!({"a": 1}), None).unwrap().metadata["schema"],
            schema
        );
        let broken = ValidJson::new().schema(json!({"type": 12}));
        assert!(matches!(
            broken.evaluate(&json!({}), None),
            Err(ScorerError::InvalidSchema(_))
        ));
    }
}
