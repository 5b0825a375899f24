use braintrust::traced;

#[traced(type = "banana")]
fn f() {}

fn main() {
    f();
}
