braintrust::eval! {
    fn with_input(n: i32) -> braintrust::Eval<i32, i32, i32> {
        braintrust::Eval::new("x").data(vec![n]).task(|i, _| *i).scorer("one", |_| 1.0)
    }
}

fn main() {}
