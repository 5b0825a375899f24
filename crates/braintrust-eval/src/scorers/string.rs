//! String scorers: exact match and normalized Levenshtein similarity.

use serde_json::{Map, Value};

use super::{JsonScorer, ScorerError, python_json, stringify};
use crate::score::Score;

/// 1 when the output equals the expected value, else 0. Objects and arrays compare as JSON
/// (strings holding JSON are parsed first, so `"[1, 2, 3]"` equals `[1, 2, 3]`); key order
/// matters. Other values compare by their string form.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactMatch;

impl ExactMatch {
    /// The scorer.
    pub fn new() -> ExactMatch {
        ExactMatch
    }
}

fn is_structured(v: &Value) -> bool {
    v.is_object() || v.is_array()
}

/// The JSON form of a value for structured comparison: strings are parsed when they hold JSON.
fn json_form(v: &Value) -> String {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(parsed) => python_json(&parsed),
            Err(_) => python_json(v),
        },
        other => python_json(other),
    }
}

impl JsonScorer for ExactMatch {
    fn scorer_name(&self) -> &str {
        "ExactMatch"
    }

    fn evaluate(&self, output: &Value, expected: Option<&Value>) -> Result<Score, ScorerError> {
        let null = Value::Null;
        let expected = expected.unwrap_or(&null);
        let equal = if is_structured(output) || is_structured(expected) {
            json_form(output) == json_form(expected)
        } else {
            let text = |v: &Value| match v {
                Value::Null => "None".to_owned(),
                Value::Bool(true) => "True".to_owned(),
                Value::Bool(false) => "False".to_owned(),
                other => stringify(other),
            };
            text(output) == text(expected)
        };
        Ok(Score::new("ExactMatch", if equal { 1.0 } else { 0.0 }))
    }
}

/// `1 - distance / max(len)` over Unicode code points (1 when both are empty). Non-string
/// values are compared by their JSON form.
#[derive(Debug, Clone, Copy, Default)]
pub struct Levenshtein;

impl Levenshtein {
    /// The scorer.
    pub fn new() -> Levenshtein {
        Levenshtein
    }
}

/// The normalized similarity of two strings, by code points.
pub(crate) fn levenshtein_similarity(a: &str, b: &str) -> f64 {
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - strsim::levenshtein(a, b) as f64 / longest as f64
}

impl JsonScorer for Levenshtein {
    fn scorer_name(&self) -> &str {
        "Levenshtein"
    }

    fn evaluate(&self, output: &Value, expected: Option<&Value>) -> Result<Score, ScorerError> {
        let expected = expected
            .filter(|e| !e.is_null())
            .ok_or(ScorerError::MissingExpected("LevenshteinScorer"))?;
        let score = levenshtein_similarity(&stringify(output), &stringify(expected));
        Ok(Score {
            name: "Levenshtein".into(),
            score: Some(score),
            metadata: Map::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exact(o: Value, e: Value) -> f64 {
        ExactMatch.evaluate(&o, Some(&e)).unwrap().score.unwrap()
    }

    fn lev(o: Value, e: Value) -> f64 {
        Levenshtein.evaluate(&o, Some(&e)).unwrap().score.unwrap()
    }

    #[test]
    fn exact_match_golden_values() {
        assert_eq!(exact(json!("a"), json!("a")), 1.0);
        assert_eq!(exact(json!("a"), json!("b")), 0.0);
        assert_eq!(exact(json!("[1, 2, 3]"), json!([1, 2, 3])), 1.0);
        assert_eq!(exact(json!({"a": 1, "b": 2}), json!({"a": 1, "b": 2})), 1.0);
        assert_eq!(exact(json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})), 0.0);
        assert_eq!(exact(json!(1), json!("1")), 1.0);
        assert_eq!(exact(json!(1.0), json!(1)), 0.0);
        assert_eq!(exact(json!(null), json!(null)), 1.0);
    }

    #[test]
    fn levenshtein_golden_values() {
        assert_eq!(lev(json!("world"), json!("word")), 0.8);
        assert_eq!(lev(json!("a😀"), json!("a")), 0.5);
        assert_eq!(lev(json!(""), json!("")), 1.0);
        assert_eq!(lev(json!("abc"), json!("xyz")), 0.0);
        assert!((lev(json!("kitten"), json!("sitting")) - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        assert!(matches!(
            Levenshtein.evaluate(&json!("a"), None),
            Err(ScorerError::MissingExpected(_))
        ));
        assert_eq!(
            Levenshtein
                .evaluate(&json!("a"), None)
                .unwrap_err()
                .to_string(),
            "LevenshteinScorer requires an expected value"
        );
    }
}
