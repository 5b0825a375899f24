//! An eval suite as a `harness = false` test target (feature `eval-suite`): each eval is one
//! test, so `cargo test --test eval_suite -- greetings` or `-- --list` work as usual.

use braintrust::evals::suite::EvalSuite;
use braintrust::scorers::{ExactMatch, Levenshtein};
use braintrust::{Eval, EvalCase, Gates};

fn cases() -> Vec<EvalCase<String, String>> {
    ["Ada", "Bob", "Cy"]
        .into_iter()
        .map(|n| EvalCase::new(n.to_string()).expected(format!("Hi {n}")))
        .collect()
}

fn main() -> std::process::ExitCode {
    EvalSuite::new()
        .eval(
            "greetings::exact",
            Gates::new().min_score("ExactMatch", 1.0),
            || {
                Eval::<String, String, String>::new("suite-greetings")
                    .data(cases())
                    .task(|name, _| format!("Hi {name}"))
                    .add_scorer(ExactMatch::new())
                    .no_send_logs(true)
            },
        )
        .eval_async(
            "greetings::close_enough",
            Gates::new().min_score("Levenshtein", 0.5),
            || async {
                Eval::<String, String, String>::new("suite-close-greetings")
                    .data(cases())
                    .task_async(|name, _| async move { format!("Hello {name}") })
                    .add_scorer(Levenshtein::new())
                    .no_send_logs(true)
            },
        )
        .run()
}
