//! Procedural macros for braintrust-rs. Use them through the `braintrust` facade
//! (`braintrust::traced`), whose documentation has the guide; this crate holds only the
//! entry points.

use proc_macro::TokenStream;

mod attr;
mod eval;
mod expand;

/// Turns a function into a span: each call starts a span under the current span (else a root
/// of the current experiment or logger), current while the body runs, ended when it returns
/// or panics. Arguments are logged as `input` (by parameter name; `Serialize` values as JSON,
/// else their `Debug` text, else left out), the return value as `output` (`Err` of a
/// `Result` as `error`). With tracing disabled the cost is one relaxed atomic load.
///
/// Arguments: `name = "…"`, `type = "task" | "llm" | "tool" | "function" | …`,
/// `notrace_io`, `skip(a, b)`, `skip_all`, `output = false`, `metadata = { "k": v }`,
/// `tags = ["a"]`, `parent = expr` and `crate = path`.
///
/// See the `braintrust` crate's `traced_guide` module for examples.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens: proc_macro2::TokenStream = item.into();
    let function: expand::MaybeItemFn = match syn::parse2(item_tokens.clone()) {
        Ok(function) => function,
        Err(error) => {
            let error = error.to_compile_error();
            return quote::quote!(#item_tokens #error).into();
        }
    };
    match syn::parse::<attr::TracedArgs>(args) {
        Ok(args) => expand::traced(args, function).into(),
        Err(error) => {
            let original = function.into_tokens();
            let error = error.to_compile_error();
            quote::quote!(#original #error).into()
        }
    }
}

/// Turns a function returning an `Eval` into a `#[test]` that runs it (on a fresh runtime for
/// `async fn`), flushes, prints the report, and fails on task errors, an incomplete run, or a
/// failed gate. Gates go in an `#[eval(…)]` attribute: `min_score("name", min)`,
/// `max_regressions = n`, `pass_rate(threshold, min_rate)`, `allow_task_errors`, and
/// `crate = path` for a renamed dependency.
///
/// ```
/// braintrust::eval! {
///     #[eval(min_score("ExactMatch", 0.9))]
///     fn greeting() -> braintrust::Eval<String, String, String> {
///         braintrust::Eval::new("greeting")
///             .data(vec![braintrust::EvalCase::new("Ada".to_string()).expected("Hi Ada".to_string())])
///             .task(|name, _| format!("Hi {name}"))
///             .add_scorer(braintrust::scorers::ExactMatch::new())
///     }
/// }
/// ```
#[proc_macro]
pub fn eval(input: TokenStream) -> TokenStream {
    eval::eval(input.into()).into()
}
