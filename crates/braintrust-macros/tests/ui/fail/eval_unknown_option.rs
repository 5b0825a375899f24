braintrust::eval! {
    #[eval(min_scor("x", 1.0))]
    fn unknown() -> braintrust::Eval<i32, i32, i32> {
        braintrust::Eval::new("x").data(vec![1]).task(|i, _| *i).scorer("one", |_| 1.0)
    }
}

fn main() {}
