use braintrust::traced;

#[traced]
fn f(x: u32) -> u32 {
    if x > 1 {
        return "too big";
    }
    x
}

#[traced]
async fn g() -> String {
    42
}

fn main() {
    let _ = (f(1), g());
}
