use braintrust::traced;

#[traced(nme = "typo")]
fn f() {}

fn main() {
    f();
}
