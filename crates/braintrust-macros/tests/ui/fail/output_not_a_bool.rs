use braintrust::traced;

#[traced(output = "no")]
fn f() {}

fn main() {
    f();
}
