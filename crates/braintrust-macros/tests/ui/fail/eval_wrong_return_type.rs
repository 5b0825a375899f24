braintrust::eval! {
    fn not_an_eval() -> i32 {
        42
    }
}

fn main() {}
