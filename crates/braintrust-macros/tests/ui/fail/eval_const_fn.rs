braintrust::eval! {
    const fn constant() -> braintrust::Eval<i32, i32, i32> {
        todo!()
    }
}

fn main() {}
