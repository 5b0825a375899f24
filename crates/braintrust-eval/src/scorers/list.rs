//! ListContains: how well a list of outputs covers a list of expected items, by the best
//! one-to-one assignment of pairwise similarities (Hungarian algorithm).

use pathfinding::kuhn_munkres::kuhn_munkres;
use pathfinding::matrix::Matrix;
use serde_json::{Map, Value, json};

use super::json::text;
use super::string::levenshtein_similarity;
use super::{JsonScorer, ScorerError};
use crate::score::Score;

/// Similarities are matched as integers with this many steps per unit.
const SCALE: f64 = 1e9;

/// The score: the sum of matched pairwise (Levenshtein) similarities divided by the longer
/// list's length (the expected list's length with `allow_extra_entities`), clamped to [0, 1].
#[derive(Debug, Clone, Copy, Default)]
pub struct ListContains {
    allow_extra_entities: bool,
}

impl ListContains {
    /// The scorer.
    pub fn new() -> ListContains {
        ListContains::default()
    }

    /// Extra output items are not penalised.
    pub fn allow_extra_entities(mut self, allow: bool) -> ListContains {
        self.allow_extra_entities = allow;
        self
    }
}

fn items(scorer_value: &Value) -> Result<Vec<Value>, ScorerError> {
    match scorer_value {
        Value::Array(items) => Ok(items.clone()),
        Value::String(s) => match serde_json::from_str(s) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(ScorerError::InvalidValue {
                scorer: "ListContains",
                message: format!("{scorer_value} is not a list"),
            }),
        },
        other => Err(ScorerError::InvalidValue {
            scorer: "ListContains",
            message: format!("{other} is not a list"),
        }),
    }
}

/// The best assignment: pairs (output index, expected index, similarity).
fn assignment(outputs: &[String], expected: &[String]) -> Vec<(usize, usize, f64)> {
    let similarity: Vec<Vec<f64>> = outputs
        .iter()
        .map(|o| {
            expected
                .iter()
                .map(|e| levenshtein_similarity(o, e))
                .collect()
        })
        .collect();
    // kuhn_munkres needs rows <= columns.
    let transpose = outputs.len() > expected.len();
    let (rows, cols) = if transpose {
        (expected.len(), outputs.len())
    } else {
        (outputs.len(), expected.len())
    };
    let weight = |r: usize, c: usize| {
        let s = if transpose {
            similarity[c][r]
        } else {
            similarity[r][c]
        };
        (s * SCALE).round() as i64
    };
    let matrix = Matrix::from_fn(rows, cols, |(r, c)| weight(r, c));
    let (_, columns) = kuhn_munkres(&matrix);
    columns
        .into_iter()
        .enumerate()
        .map(|(r, c)| {
            let (o, e) = if transpose { (c, r) } else { (r, c) };
            (o, e, similarity[o][e])
        })
        .collect()
}

impl JsonScorer for ListContains {
    fn scorer_name(&self) -> &str {
        "ListContains"
    }

    fn evaluate(&self, output: &Value, expected: Option<&Value>) -> Result<Score, ScorerError> {
        let expected = expected
            .filter(|e| !e.is_null())
            .ok_or(ScorerError::MissingExpected("ListContains"))?;
        let outputs = items(output)?;
        let expected = items(expected)?;
        let mut metadata = Map::new();
        if outputs.is_empty() || expected.is_empty() {
            metadata.insert("pairs".into(), json!([]));
            let both = outputs.is_empty() && expected.is_empty();
            return Ok(Score {
                name: "ListContains".into(),
                score: Some(if both { 1.0 } else { 0.0 }),
                metadata,
            });
        }
        let out_text: Vec<String> = outputs.iter().map(text).collect();
        let exp_text: Vec<String> = expected.iter().map(text).collect();
        let pairs = assignment(&out_text, &exp_text);
        let total: f64 = pairs.iter().map(|(_, _, s)| s).sum();
        let denominator = if self.allow_extra_entities {
            expected.len()
        } else {
            outputs.len().max(expected.len())
        };
        metadata.insert(
            "pairs".into(),
            Value::Array(
                pairs
                    .iter()
                    .map(|(o, e, s)| json!({"output": outputs[*o], "expected": expected[*e], "score": s}))
                    .collect(),
            ),
        );
        Ok(Score {
            name: "ListContains".into(),
            score: Some((total / denominator as f64).clamp(0.0, 1.0)),
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(o: Value, e: Value, extra: bool) -> f64 {
        ListContains::new()
            .allow_extra_entities(extra)
            .evaluate(&o, Some(&e))
            .unwrap()
            .score
            .unwrap()
    }

    #[test]
    fn list_contains_golden_values() {
        assert_eq!(score(json!([]), json!([]), false), 1.0);
        assert_eq!(score(json!(["a"]), json!([]), false), 0.0);
        assert_eq!(score(json!(["a", "b"]), json!(["b", "a"]), false), 1.0);
        // One extra output item halves the score unless extras are allowed.
        assert_eq!(score(json!(["a", "b"]), json!(["a"]), false), 0.5);
        assert_eq!(score(json!(["a", "b"]), json!(["a"]), true), 1.0);
        // The optimal assignment beats the greedy one: greedy would pair "ab" with "ab" and
        // leave "abc"-"xb"; the optimum pairs differently only when it scores higher.
        let s = score(json!(["abc", "ab"]), json!(["ab", "abd"]), false);
        assert!((s - (1.0 + (1.0 - 1.0 / 3.0)) / 2.0).abs() < 1e-9, "{s}");
        let m = ListContains::new()
            .evaluate(&json!(["x"]), Some(&json!(["x"])))
            .unwrap()
            .metadata;
        assert_eq!(
            m["pairs"],
            json!([{"output": "x", "expected": "x", "score": 1.0}])
        );
        assert!(
            ListContains::new()
                .evaluate(&json!(3), Some(&json!([1])))
                .is_err()
        );
    }
}
