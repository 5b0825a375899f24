use braintrust::traced;

#[traced(metadata = ["not", "an", "object"])]
fn f() {}

fn main() {
    f();
}
