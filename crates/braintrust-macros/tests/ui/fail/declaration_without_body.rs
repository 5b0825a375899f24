use braintrust::traced;

trait Tool {
    #[traced]
    fn run(&self) -> u8;
}

fn main() {}
