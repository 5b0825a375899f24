braintrust::eval! {
    #[eval(max_regressions = 1, max_regressions = 2)]
    fn duplicate() -> braintrust::Eval<i32, i32, i32> {
        braintrust::Eval::new("x").data(vec![1]).task(|i, _| *i).scorer("one", |_| 1.0)
    }
}

fn main() {}
