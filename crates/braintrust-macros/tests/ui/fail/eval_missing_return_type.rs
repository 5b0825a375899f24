braintrust::eval! {
    fn no_return_type() {
        braintrust::Eval::<i32, i32, i32>::new("x");
    }
}

fn main() {}
