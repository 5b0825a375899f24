//! Every function shape `#[traced]` accepts.
use std::fmt::Display;

use braintrust::traced;

#[traced]
fn free(a: i32, b: i32) -> i32 {
    a + b
}

#[traced]
fn unit(_x: u8) {}

#[traced(name = "renamed", type = "tool", skip(secret), metadata = {"k": 1, "nested": {"a": [1, 2]}}, tags = ["a", "b"])]
fn with_arguments(secret: &str, value: u8) -> u8 {
    let _ = secret;
    value
}

#[traced(skip_all, output = false)]
fn skip_everything(password: String) -> usize {
    password.len()
}

#[traced(notrace_io)]
fn manual_io(x: u8) -> u8 {
    x
}

#[traced(crate = braintrust)]
fn explicit_crate_path() {}

#[traced(crate = "braintrust")]
fn explicit_crate_string() {}

#[traced]
fn generic<T: Clone + Display, U>(t: T, _u: U) -> String
where
    U: Send,
{
    t.to_string()
}

#[traced]
fn returns_impl_trait(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[traced]
fn takes_impl_trait(items: impl IntoIterator<Item = u8>) -> usize {
    items.into_iter().count()
}

#[traced]
fn with_question_mark(text: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = text.parse()?;
    Ok(n)
}

#[traced]
fn early_return(x: i32) -> i32 {
    if x < 0 {
        return 0;
    }
    x
}

#[traced]
fn borrowed_return<'a>(text: &'a str) -> &'a str {
    text.trim()
}

#[traced]
fn destructured((a, b): (u8, u8), mut counter: u8) -> u8 {
    counter += a + b;
    counter
}

#[traced]
unsafe fn unsafe_function(x: u8) -> u8 {
    x
}

struct Service {
    name: String,
    calls: u32,
}

impl Service {
    #[traced]
    fn new(name: &str) -> Self {
        Service { name: name.to_owned(), calls: 0 }
    }

    #[traced]
    fn name(&self) -> &str {
        &self.name
    }

    #[traced]
    fn call(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    #[traced]
    fn into_name(self) -> String {
        self.name
    }

    #[traced]
    async fn fetch(&self, id: u32) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let parsed: u32 = "1".parse()?;
        Ok(format!("{}-{}", self.name, id + parsed))
    }

    #[traced]
    async fn fetch_mut(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }
}

#[traced]
async fn async_free(x: u32) -> u32 {
    x
}

#[traced]
async fn async_impl_trait(x: u32) -> impl Display {
    x
}

trait Native {
    async fn run(&self, x: u32) -> u32;

    #[traced]
    fn provided(&self, x: u32) -> u32 {
        x
    }
}

impl Native for Service {
    #[traced]
    async fn run(&self, x: u32) -> u32 {
        x + self.calls
    }
}

#[async_trait::async_trait]
trait Boxed {
    async fn go(&self, x: u32) -> Result<u32, String>;
}

#[async_trait::async_trait]
impl Boxed for Service {
    #[traced(type = "task")]
    async fn go(&self, x: u32) -> Result<u32, String> {
        if x == 0 {
            return Err("zero".to_owned());
        }
        Ok(x)
    }
}

fn main() {
    let mut service = Service::new("s");
    let _ = (free(1, 2), unit(1), with_arguments("k", 1), skip_everything(String::new()));
    let _ = (manual_io(1), explicit_crate_path(), explicit_crate_string());
    let _ = (generic(1, ()), returns_impl_trait(2).count(), takes_impl_trait(vec![1]));
    let _ = (with_question_mark("1"), early_return(1), borrowed_return(" x "));
    let _ = (destructured((1, 2), 0), unsafe { unsafe_function(1) });
    let _ = (service.name().len(), service.call(), service.provided(1));
    let _ = (service.fetch(1), async_free(1), async_impl_trait(1), service.run(1), service.go(1));
    let _ = service.fetch_mut();
    let _ = service.into_name();
}
