//! Runs one built-in (non-LLM) scorer on an output and an expected value, both JSON, and
//! prints the score as JSON on the last line of stdout.
//!
//! Run: `cargo run --example score -- Levenshtein '"word"' '"world"'`
//! (scorers: ExactMatch, Levenshtein, NumericDiff, JSONDiff, ValidJSON, ListContains)

use braintrust::scorers::{NON_LLM_SCORERS, by_name};
use serde_json::{Value, json};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, output, expected) = match &args[..] {
        [name, output] => (name, output, None),
        [name, output, expected] => (name, output, Some(expected.as_str())),
        _ => {
            eprintln!("usage: score <ScorerName> '<output-json>' ['<expected-json>']");
            eprintln!("scorers: {}", NON_LLM_SCORERS.join(", "));
            return std::process::ExitCode::from(2);
        }
    };
    match score(name, output, expected) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(ScoreError::Unknown) => {
            eprintln!(
                "unknown scorer {name:?}; expected one of {}",
                NON_LLM_SCORERS.join(", ")
            );
            std::process::ExitCode::from(2)
        }
        Err(ScoreError::Failed(e)) => {
            eprintln!("{name} failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Why [`score`] gave no score.
#[derive(Debug)]
enum ScoreError {
    /// No built-in scorer has that name.
    Unknown,
    /// The scorer failed, with its message.
    Failed(String),
}

/// Runs the scorer `name` on `output` and `expected` (JSON texts; others are taken as
/// strings): `{"name", "score", "metadata"}`.
fn score(name: &str, output: &str, expected: Option<&str>) -> Result<Value, ScoreError> {
    let scorer = by_name(name).ok_or(ScoreError::Unknown)?;
    let parse = |text: &str| -> Value {
        // Arguments that are not JSON are taken as strings.
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    };
    let output = parse(output);
    let expected = expected.map(parse);
    let score = scorer
        .evaluate(&output, expected.as_ref())
        .map_err(|e| ScoreError::Failed(e.to_string()))?;
    Ok(json!({"name": score.name, "score": score.score, "metadata": score.metadata}))
}

/// `cargo test` runs this (`test = true` in Cargo.toml): the usage line's example, and the
/// answers for a bare string and an unknown scorer.
#[cfg(test)]
#[test]
fn scores_as_the_usage_line_says() {
    let line = score("Levenshtein", r#""word""#, Some(r#""world""#)).expect("a score");
    assert_eq!(line["name"], "Levenshtein");
    assert_eq!(line["score"], json!(0.8));
    let exact = score("ExactMatch", "word", Some(r#""word""#)).expect("a score");
    assert_eq!(exact["score"], json!(1.0), "a bare argument is a string");
    assert!(matches!(score("Nope", "1", None), Err(ScoreError::Unknown)));
}
