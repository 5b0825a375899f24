use braintrust::scorers::ExactMatch;
use braintrust::{Eval, EvalCase};

braintrust::eval! {
    /// Docs and other attributes are kept.
    #[eval(min_score("ExactMatch", 0.9), min_score("other", 1), max_regressions = 0)]
    #[eval(pass_rate(0.5, 0.8), allow_task_errors)]
    fn sync_eval() -> Eval<String, String, String> {
        Eval::<String, String, String>::new("ui")
            .data(vec![EvalCase::new("a".to_string()).expected("a".to_string())])
            .task(|i, _| i.clone())
            .add_scorer(ExactMatch::new())
    }
}

braintrust::eval! {
    async fn async_eval() -> braintrust::Eval<i32, i32, i32> {
        Eval::new("ui-async").data(vec![1]).task(|i, _| *i).scorer("one", |_| 1.0)
    }
}

mod renamed {
    extern crate braintrust as bt;

    bt::eval! {
        #[eval(crate = bt)]
        pub fn with_crate_path() -> bt::Eval<i32, i32, i32> {
            bt::Eval::new("ui-crate").data(vec![1]).task(|i, _| *i).scorer("one", |_| 1.0)
        }
    }
}

fn main() {}
