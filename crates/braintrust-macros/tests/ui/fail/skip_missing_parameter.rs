use braintrust::traced;

#[traced(skip(api_key, tokn))]
fn f(api_key: &str, token: &str) -> usize {
    api_key.len() + token.len()
}

fn main() {
    f("a", "b");
}
