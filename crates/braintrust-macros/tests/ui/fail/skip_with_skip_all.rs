use braintrust::traced;

#[traced(skip_all, skip(a))]
fn f(a: u8) -> u8 {
    a
}

fn main() {
    f(1);
}
