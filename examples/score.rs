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
        [name, output, expected] => (name, output, Some(expected)),
        _ => {
            eprintln!("usage: score <ScorerName> '<output-json>' ['<expected-json>']");
            eprintln!("scorers: {}", NON_LLM_SCORERS.join(", "));
            return std::process::ExitCode::from(2);
        }
    };
    let Some(scorer) = by_name(name) else {
        eprintln!(
            "unknown scorer {name:?}; expected one of {}",
            NON_LLM_SCORERS.join(", ")
        );
        return std::process::ExitCode::from(2);
    };
    let parse = |text: &str| -> Value {
        // Arguments that are not JSON are taken as strings.
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    };
    let output = parse(output);
    let expected = expected.map(|e| parse(e));
    match scorer.evaluate(&output, expected.as_ref()) {
        Ok(score) => {
            println!(
                "{}",
                json!({"name": score.name, "score": score.score, "metadata": score.metadata})
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name} failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
