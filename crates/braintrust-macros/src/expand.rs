//! Code generation for `#[traced]`.

use proc_macro2::{Group, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, Pat, PathArguments, ReturnType, Signature, Stmt, Type,
    TypeParamBound, Visibility,
};

use crate::attr::TracedArgs;

/// A function whose body is kept as raw tokens, so that a body that does not parse (while the
/// user is typing) still gets its signature re-emitted and IDEs keep working.
pub(crate) struct MaybeItemFn {
    attrs: Vec<Attribute>,
    vis: Visibility,
    sig: Signature,
    body: Group,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<MaybeItemFn> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        if input.peek(syn::Token![;]) {
            return Err(input.error(
                "`#[traced]` needs a function body (it cannot trace a trait method declaration)",
            ));
        }
        let body: Group = input.parse()?;
        if body.delimiter() != proc_macro2::Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected a function body"));
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function body"));
        }
        Ok(MaybeItemFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

impl MaybeItemFn {
    /// The function unchanged (what is emitted beside an argument error).
    pub(crate) fn into_tokens(self) -> TokenStream {
        let MaybeItemFn {
            attrs,
            vis,
            sig,
            body,
        } = self;
        quote!(#(#attrs)* #vis #sig #body)
    }
}

/// Checks the arguments against the function (skip names, `const fn`, …).
fn validate(args: &TracedArgs, item: &MaybeItemFn) -> syn::Result<()> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |error: syn::Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };
    if let Some(constness) = &item.sig.constness {
        push(syn::Error::new(
            constness.span,
            "`#[traced]` cannot be used on a `const fn`",
        ));
    }
    let names: Vec<String> = parameter_names(&item.sig)
        .map(|(ident, _)| ident.to_string())
        .collect();
    for skipped in &args.skip {
        if !names.contains(&skipped.to_string()) {
            push(syn::Error::new(
                skipped.span(),
                format!("attempting to skip non-existent parameter `{skipped}`"),
            ));
        }
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(()),
    }
}

/// The named parameters (`name: Type`, `mut name: Type`); receivers and patterns are left out.
fn parameter_names(sig: &Signature) -> impl Iterator<Item = (&syn::Ident, &Type)> {
    sig.inputs.iter().filter_map(|input| match input {
        FnArg::Typed(typed) => match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => Some((&pat.ident, &*typed.ty)),
            _ => None,
        },
        FnArg::Receiver(_) => None,
    })
}

/// Expands `#[traced(args)]` on `item`.
pub(crate) fn traced(args: TracedArgs, item: MaybeItemFn) -> TokenStream {
    if let Err(error) = validate(&args, &item) {
        let original = item.into_tokens();
        let error = error.to_compile_error();
        return quote!(#original #error);
    }
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::braintrust),
    };
    let private = quote!(#krate::__private);
    let MaybeItemFn {
        attrs,
        vis,
        sig,
        body,
    } = item;

    let name = match &args.name {
        Some(name) => name.to_token_stream(),
        None => {
            let name = sig.ident.to_string();
            let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
            quote!(#name)
        }
    };
    let mut options = quote!(#private::StartSpan::named_static(#name));
    if let Some((variant, literal)) = &args.span_type {
        options = quote_spanned!(literal.span()=> #options.span_type(#private::SpanType::#variant));
    }
    if let Some(parent) = &args.parent {
        options = quote_spanned!(parent.span()=> #options.parent(#parent));
    }
    let mut event = quote!(#private::Event::new());
    if let Some(metadata) = &args.metadata {
        event = quote!(#event.metadata(#private::json!(#metadata)));
    }
    if let Some(tags) = &args.tags {
        event = quote!(#event.tags([#(#tags),*]));
    }

    let captures_input = args.captures_input();
    let captures: Vec<TokenStream> = if captures_input {
        parameter_names(&sig)
            .filter(|(ident, _)| !args.skip.iter().any(|s| s == *ident))
            .map(|(ident, _)| {
                let key = ident.to_string();
                let key = key.strip_prefix("r#").unwrap_or(&key).to_owned();
                quote!(__bt_input.arg(#key, (&&&#private::capture::Capture(&#ident)).bt_capture());)
            })
            .collect()
    } else {
        Vec::new()
    };
    let start = quote! {
        let __bt_call = if #private::is_enabled() {
            #[allow(unused_imports)]
            use #private::capture::{ViaDebug as _, ViaNothing as _, ViaSerialize as _};
            #private::Call::start(
                #options,
                #captures_input,
                |__bt_input: &mut #private::Input| { #(#captures)* },
                #event,
            )
        } else {
            ::core::option::Option::None
        };
    };

    let capture_output = args.captures_output();
    let record = quote! {
        |__bt_ret, __bt_recorder: &mut #private::Recorder| {
            #[allow(unused_imports)]
            use #private::capture::{
                ViaDebug as _, ViaDebugText as _, ViaDisplay as _, ViaNothing as _, ViaOpaque as _,
                ViaResult as _, ViaSerialize as _, ViaStdError as _, ViaValue as _,
            };
            match (&&#private::capture::Returned(__bt_ret)).bt_outcome() {
                #private::capture::Outcome::Value(__bt_value) => {
                    if #capture_output {
                        __bt_recorder.output((&&&#private::capture::Capture(__bt_value)).bt_capture());
                    }
                }
                #private::capture::Outcome::Error(__bt_error) => {
                    __bt_recorder.error((&&&&#private::capture::Capture(__bt_error)).bt_describe());
                }
            }
        }
    };

    let block = if sig.asyncness.is_some() {
        let guard = fake_return_guard(&sig.output);
        quote! {{
            #start
            let __bt_body = async move { #guard #body };
            match __bt_call {
                ::core::option::Option::None => __bt_body.await,
                ::core::option::Option::Some(__bt_call) => {
                    __bt_call.run_async(__bt_body, #record).await
                }
            }
        }}
    } else if let Some(inner) = async_trait_body(&sig, &body) {
        // `#[async_trait]` already turned `async fn` into `fn … -> Pin<Box<dyn Future>>` with
        // a `Box::pin(async move { … })` body: instrument the inner future.
        quote! {{
            #start
            ::std::boxed::Box::pin(async move {
                let __bt_body = async move #inner;
                match __bt_call {
                    ::core::option::Option::None => __bt_body.await,
                    ::core::option::Option::Some(__bt_call) => {
                        __bt_call.run_async(__bt_body, #record).await
                    }
                }
            })
        }}
    } else {
        let annotation = match &sig.output {
            ReturnType::Default => quote!(-> ()),
            ReturnType::Type(arrow, ty) if !contains_impl_trait(ty) => quote!(#arrow #ty),
            ReturnType::Type(..) => quote!(),
        };
        quote! {{
            #start
            #[allow(unused_mut)]
            let mut __bt_body = move || #annotation #body;
            match __bt_call {
                ::core::option::Option::None => __bt_body(),
                ::core::option::Option::Some(__bt_call) => __bt_call.run(__bt_body, #record),
            }
        }}
    };
    quote!(#(#attrs)* #vis #sig #block)
}

/// `if false { let x: R = loop {}; return x; }`, spanned at the return type, so that `?` and
/// `return` in an async body infer the declared type (`impl Trait` parts erased to `_`).
fn fake_return_guard(output: &ReturnType) -> TokenStream {
    let ty = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut ty);
            ty.into_token_stream()
        }
    };
    quote_spanned! {output.span()=>
        #[allow(
            unknown_lints, unreachable_code, clippy::diverging_sub_expression,
            clippy::let_unit_value, clippy::unreachable, clippy::let_with_type_underscore,
            clippy::empty_loop
        )]
        if false {
            let __bt_fake_return: #ty = loop {};
            return __bt_fake_return;
        }
    }
}

struct EraseImplTrait;

impl VisitMut for EraseImplTrait {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(impl_trait) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](impl_trait.span()),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    finder.0
}

/// The `{ … }` of `Box::pin(async move { … })` when the function has the shape
/// `#[async_trait]` generates (a boxed `dyn Future` return and that single expression).
fn async_trait_body(sig: &Signature, body: &Group) -> Option<Group> {
    if !returns_boxed_future(&sig.output) {
        return None;
    }
    let block: syn::Block = syn::parse2(body.to_token_stream()).ok()?;
    let [Stmt::Expr(Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = callee
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    let Expr::Async(async_block) = &call.args[0] else {
        return None;
    };
    async_block.capture?;
    let inner = async_block.block.to_token_stream();
    syn::parse2::<Group>(inner).ok()
}

/// `Pin<Box<dyn Future<Output = …> + …>>`.
fn returns_boxed_future(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else {
        return false;
    };
    let Some(boxed) = single_generic(ty, "Pin") else {
        return false;
    };
    let Some(Type::TraitObject(object)) = single_generic(boxed, "Box") else {
        return false;
    };
    object.bounds.iter().any(|bound| {
        matches!(bound, TypeParamBound::Trait(t)
            if t.path.segments.last().is_some_and(|s| s.ident == "Future"))
    })
}

/// `T` of `Name<T>` (by the last path segment).
fn single_generic<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}
