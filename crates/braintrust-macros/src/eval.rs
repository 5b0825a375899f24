//! `eval!`: a function returning an `Eval` becomes a `#[test]` that runs it, prints the
//! report, and fails on task errors and on the declared gates.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Error, Expr, ItemFn, Lit, LitStr, Meta, Path, Token};

/// The options of `#[eval(…)]` inside `eval!`.
#[derive(Default)]
struct Options {
    min_scores: Vec<(LitStr, Expr)>,
    max_regressions: Option<Expr>,
    pass_rate: Option<(Expr, Expr)>,
    allow_task_errors: Option<Span>,
    krate: Option<Path>,
}

fn number(expr: &Expr, what: &str) -> syn::Result<()> {
    match expr {
        Expr::Lit(lit) if matches!(lit.lit, Lit::Float(_) | Lit::Int(_)) => Ok(()),
        other => Err(Error::new(
            other.span(),
            format!("{what} must be a number literal"),
        )),
    }
}

fn duplicate(span: Span, name: &str) -> Error {
    Error::new(span, format!("duplicate eval option `{name}`"))
}

impl Options {
    fn parse_from(attr: &Attribute, options: &mut Options) -> syn::Result<()> {
        let metas = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for meta in metas {
            let path = meta.path();
            let name = path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match (name.as_str(), &meta) {
                ("min_score", Meta::List(list)) => {
                    let args = list.parse_args_with(MinScore::parse)?;
                    number(&args.min, "the minimum")?;
                    if options
                        .min_scores
                        .iter()
                        .any(|(n, _)| n.value() == args.name.value())
                    {
                        return Err(duplicate(args.name.span(), "min_score for this score"));
                    }
                    options.min_scores.push((args.name, args.min));
                }
                ("max_regressions", Meta::NameValue(nv)) => {
                    if options.max_regressions.is_some() {
                        return Err(duplicate(path.span(), "max_regressions"));
                    }
                    match &nv.value {
                        Expr::Lit(lit) if matches!(lit.lit, Lit::Int(_)) => {}
                        other => {
                            return Err(Error::new(
                                other.span(),
                                "max_regressions must be an integer literal",
                            ));
                        }
                    }
                    options.max_regressions = Some(nv.value.clone());
                }
                ("pass_rate", Meta::List(list)) => {
                    if options.pass_rate.is_some() {
                        return Err(duplicate(path.span(), "pass_rate"));
                    }
                    let args =
                        list.parse_args_with(Punctuated::<Expr, Token![,]>::parse_terminated)?;
                    let args: Vec<Expr> = args.into_iter().collect();
                    let [threshold, rate] = &args[..] else {
                        return Err(Error::new(
                            list.span(),
                            "pass_rate takes two numbers: pass_rate(threshold, min_rate)",
                        ));
                    };
                    number(threshold, "the threshold")?;
                    number(rate, "the minimum rate")?;
                    options.pass_rate = Some((threshold.clone(), rate.clone()));
                }
                ("allow_task_errors", Meta::Path(_)) => {
                    if options.allow_task_errors.is_some() {
                        return Err(duplicate(path.span(), "allow_task_errors"));
                    }
                    options.allow_task_errors = Some(path.span());
                }
                ("crate", Meta::NameValue(nv)) => {
                    if options.krate.is_some() {
                        return Err(duplicate(path.span(), "crate"));
                    }
                    let krate = match &nv.value {
                        Expr::Path(p) => p.path.clone(),
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }) => s.parse()?,
                        other => {
                            return Err(Error::new(other.span(), "crate must be a path"));
                        }
                    };
                    options.krate = Some(krate);
                }
                ("min_score" | "pass_rate", _) => {
                    return Err(Error::new(
                        meta.span(),
                        format!("`{name}` takes arguments in parentheses, e.g. `{name}(…)`"),
                    ));
                }
                ("max_regressions" | "crate", _) => {
                    return Err(Error::new(meta.span(), format!("expected `{name} = …`")));
                }
                ("allow_task_errors", _) => {
                    return Err(Error::new(
                        meta.span(),
                        "`allow_task_errors` takes no value",
                    ));
                }
                _ => {
                    return Err(Error::new(
                        path.span(),
                        "unknown eval option; expected one of `min_score(\"score\", min)`, \
                         `max_regressions = n`, `pass_rate(threshold, min_rate)`, \
                         `allow_task_errors`, `crate = path`",
                    ));
                }
            }
        }
        Ok(())
    }
}

struct MinScore {
    name: LitStr,
    min: Expr,
}

impl Parse for MinScore {
    fn parse(input: ParseStream<'_>) -> syn::Result<MinScore> {
        let name: LitStr = input.parse()?;
        input.parse::<Token![,]>()?;
        let min: Expr = input.parse()?;
        let _ = input.parse::<Option<Token![,]>>()?;
        Ok(MinScore { name, min })
    }
}

fn is_test_attribute(attr: &Attribute) -> bool {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    matches!(segments.last().map(String::as_str), Some("test"))
}

/// Expands `eval! { [#[eval(…)]] [attrs] [async] fn name() -> Eval<…> { … } }`.
pub(crate) fn eval(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(tokens) => tokens,
        Err(error) => error.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let function: ItemFn = syn::parse2(input)?;
    let mut options = Options::default();
    let mut attrs = Vec::new();
    for attr in &function.attrs {
        if attr.path().is_ident("eval") {
            Options::parse_from(attr, &mut options)?;
        } else if is_test_attribute(attr) {
            return Err(Error::new(
                attr.span(),
                "eval! generates the test attribute itself; remove this one",
            ));
        } else {
            attrs.push(attr.clone());
        }
    }
    let sig = &function.sig;
    if let Some(constness) = &sig.constness {
        return Err(Error::new(
            constness.span(),
            "eval! functions cannot be `const`",
        ));
    }
    if let Some(param) = sig.inputs.first() {
        return Err(Error::new(
            param.span(),
            "eval! functions take no parameters",
        ));
    }
    if let Some(param) = sig.generics.params.first() {
        return Err(Error::new(
            param.span(),
            "eval! functions cannot be generic",
        ));
    }
    let output = match &sig.output {
        syn::ReturnType::Type(_, ty) => ty,
        syn::ReturnType::Default => {
            return Err(Error::new(
                sig.ident.span(),
                "eval! functions return the eval to run: add `-> Eval<Input, Output, Expected>`",
            ));
        }
    };
    let krate = options
        .krate
        .clone()
        .map_or_else(|| quote!(::braintrust), |p| quote!(#p));
    let name = &sig.ident;
    let vis = &function.vis;
    let inner = format_ident!("__bt_eval_{}", name);
    let runner = format_ident!("__bt_run_{}", name);
    let block = &function.block;
    let asyncness = &sig.asyncness;
    let mut gates = quote!(#krate::__private::eval::Gates::new());
    for (score, min) in &options.min_scores {
        gates = quote!(#gates.min_score(#score, (#min) as f64));
    }
    if let Some(n) = &options.max_regressions {
        gates = quote!(#gates.max_regressions(#n));
    }
    if let Some((threshold, rate)) = &options.pass_rate {
        gates = quote!(#gates.pass_rate((#threshold) as f64, (#rate) as f64));
    }
    if options.allow_task_errors.is_some() {
        gates = quote!(#gates.allow_task_errors(true));
    }
    // Type errors about the returned value point at the declared return type.
    let run = if asyncness.is_some() {
        quote_spanned!(output.span()=> #krate::__private::eval::run_test_async(stringify!(#name), __bt_gates, #inner))
    } else {
        quote_spanned!(output.span()=> #krate::__private::eval::run_test(stringify!(#name), __bt_gates, #inner()))
    };
    // The runner lives outside the test so that it is type-checked in every build (tests
    // are compiled only under `cfg(test)`).
    Ok(quote! {
        #(#attrs)*
        #[test]
        #vis fn #name() {
            #runner()
        }

        #[doc(hidden)]
        #[allow(dead_code, non_snake_case)]
        fn #runner() {
            #asyncness fn #inner() -> #output #block
            let __bt_gates = #gates;
            #run
        }
    })
}
