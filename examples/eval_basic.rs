//! A basic eval, offline and deterministic: a tiny "capital city" task scored by built-in and
//! custom scorers, run twice against an in-process `braintrust-local` so that the second run
//! (a better task) is compared with the first: the table shows the change per score and the
//! improved and regressed cases.
//!
//! Run: `cargo run --example eval_basic`

use braintrust::env_file::EnvLookup;
use braintrust::scorers::{ExactMatch, Levenshtein};
use braintrust::{Eval, EvalCase, EvalResultWithSummary, LoggerOptions, Score};
use braintrust_local::LocalServer;

type Error = Box<dyn std::error::Error + Send + Sync>;

const CAPITALS: [(&str, &str); 5] = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Canada", "Ottawa"),
];

/// A lookup table standing in for a model; `version` 2 knows more capitals.
fn capital_of(country: &str, version: u32) -> String {
    let known: &[(&str, &str)] = if version == 1 {
        &[("France", "Paris"), ("Japan", "Kyoto"), ("Peru", "Lima")]
    } else {
        &[
            ("France", "Paris"),
            ("Japan", "Tokyo"),
            ("Kenya", "Nairobi"),
            ("Canada", "Toronto"),
        ]
    };
    known
        .iter()
        .find(|(c, _)| *c == country)
        .map_or_else(|| "I don't know".to_owned(), |(_, city)| (*city).to_owned())
}

async fn run(
    server: &LocalServer,
    version: u32,
) -> Result<EvalResultWithSummary<String, String, String>, Error> {
    let connection = LoggerOptions::new()
        .api_key(server.api_key())
        .app_url(server.url())
        .env(EnvLookup::from_pairs::<&str, &str>([]));
    Ok(Eval::<String, String, String>::new("capitals")
        .data(CAPITALS.map(|(country, city)| {
            EvalCase::new(country.to_owned())
                .expected(city.to_owned())
                .metadata(serde_json::json!({"continent_known": version > 1}))
        }))
        .task(move |country, _| capital_of(country, version))
        .add_scorer(ExactMatch::new())
        .add_scorer(Levenshtein::new())
        .scorer("answered", |args| {
            // A named score with metadata; "I don't know" scores 0.
            let answered = args.output != "I don't know";
            Score::new("answered", if answered { 1.0 } else { 0.0 })
                .metadata(serde_json::json!({"output": args.output}))
        })
        .experiment_name(format!("capitals-v{version}"))
        .connection(connection)
        .max_concurrency(4)
        .run()
        .await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let server = LocalServer::builder().in_memory().start()?;
    println!("braintrust-local listening on {}", server.url());
    let first = run(&server, 1).await?;
    let second = run(&server, 2).await?;
    let exact = |r: &EvalResultWithSummary<String, String, String>| {
        r.summary.score("ExactMatch").map_or(0.0, |s| s.mean)
    };
    println!(
        "\nExactMatch went from {:.0}% to {:.0}%",
        100.0 * exact(&first),
        100.0 * exact(&second)
    );
    Ok(())
}

/// `cargo test` runs this example too (`test = true` in Cargo.toml): every step above returns
/// its error.
#[cfg(test)]
#[test]
fn runs_offline() {
    if let Err(e) = main() {
        panic!("the example failed: {e}");
    }
}
