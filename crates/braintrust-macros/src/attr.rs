//! The arguments of `#[traced(...)]`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitBool, LitStr, Path, Token, bracketed, parenthesized};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(notrace_io);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(skip_all);
    syn::custom_keyword!(output);
    syn::custom_keyword!(metadata);
    syn::custom_keyword!(tags);
    syn::custom_keyword!(parent);
}

/// The span types `type = "…"` accepts, with their `SpanType` variants.
pub(crate) const SPAN_TYPES: [(&str, &str); 11] = [
    ("llm", "Llm"),
    ("score", "Score"),
    ("function", "Function"),
    ("eval", "Eval"),
    ("task", "Task"),
    ("tool", "Tool"),
    ("automation", "Automation"),
    ("facet", "Facet"),
    ("preprocessor", "Preprocessor"),
    ("classifier", "Classifier"),
    ("review", "Review"),
];

const ARGUMENTS: &str = "`name`, `type`, `notrace_io`, `skip(…)`, `skip_all`, `output`, \
                         `metadata`, `tags`, `parent` or `crate`";

/// Parsed `#[traced]` arguments.
#[derive(Default)]
pub(crate) struct TracedArgs {
    pub(crate) name: Option<LitStr>,
    /// The `SpanType` variant and the literal it came from.
    pub(crate) span_type: Option<(Ident, LitStr)>,
    pub(crate) notrace_io: bool,
    pub(crate) skip: Vec<Ident>,
    pub(crate) skip_all: bool,
    pub(crate) output: Option<LitBool>,
    /// The tokens of the `{ … }` object, for `json!`.
    pub(crate) metadata: Option<TokenStream>,
    pub(crate) tags: Option<Vec<LitStr>>,
    pub(crate) parent: Option<Expr>,
    pub(crate) krate: Option<Path>,
    /// Which arguments were given, to reject duplicates.
    seen: Vec<&'static str>,
}

impl TracedArgs {
    /// Whether arguments are logged as `input`.
    pub(crate) fn captures_input(&self) -> bool {
        !self.notrace_io && !self.skip_all
    }

    /// Whether the return value is logged as `output`.
    pub(crate) fn captures_output(&self) -> bool {
        !self.notrace_io && self.output.as_ref().is_none_or(LitBool::value)
    }

    fn once(&mut self, name: &'static str, span: Span) -> syn::Result<()> {
        if self.seen.contains(&name) {
            return Err(syn::Error::new(
                span,
                format!("expected only a single `{name}` argument"),
            ));
        }
        self.seen.push(name);
        Ok(())
    }
}

impl Parse for TracedArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<TracedArgs> {
        let mut args = TracedArgs::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::name) {
                let keyword: kw::name = input.parse()?;
                args.once("name", keyword.span)?;
                input.parse::<Token![=]>()?;
                let name: LitStr = input.parse()?;
                if name.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "the span name must not be empty",
                    ));
                }
                args.name = Some(name);
            } else if lookahead.peek(Token![type]) {
                let keyword: Token![type] = input.parse()?;
                args.once("type", keyword.span)?;
                input.parse::<Token![=]>()?;
                let literal: LitStr = input.parse()?;
                let value = literal.value();
                let Some((_, variant)) = SPAN_TYPES.iter().find(|(name, _)| *name == value) else {
                    let expected: Vec<String> = SPAN_TYPES
                        .iter()
                        .map(|(name, _)| format!("`{name}`"))
                        .collect();
                    return Err(syn::Error::new(
                        literal.span(),
                        format!(
                            "invalid span type `{value}`; expected one of {}",
                            expected.join(", ")
                        ),
                    ));
                };
                args.span_type = Some((Ident::new(variant, literal.span()), literal));
            } else if lookahead.peek(kw::notrace_io) {
                let keyword: kw::notrace_io = input.parse()?;
                args.once("notrace_io", keyword.span)?;
                args.notrace_io = true;
            } else if lookahead.peek(kw::skip_all) {
                let keyword: kw::skip_all = input.parse()?;
                args.once("skip_all", keyword.span)?;
                args.skip_all = true;
            } else if lookahead.peek(kw::skip) {
                let keyword: kw::skip = input.parse()?;
                args.once("skip", keyword.span)?;
                let content;
                parenthesized!(content in input);
                let names: Punctuated<Ident, Token![,]> =
                    content.parse_terminated(Ident::parse, Token![,])?;
                args.skip = names.into_iter().collect();
            } else if lookahead.peek(kw::output) {
                let keyword: kw::output = input.parse()?;
                args.once("output", keyword.span)?;
                input.parse::<Token![=]>()?;
                args.output = Some(input.parse()?);
            } else if lookahead.peek(kw::metadata) {
                let keyword: kw::metadata = input.parse()?;
                args.once("metadata", keyword.span)?;
                input.parse::<Token![=]>()?;
                if !input.peek(syn::token::Brace) {
                    return Err(
                        input.error("expected a JSON object: `metadata = { \"key\": value }`")
                    );
                }
                let group: proc_macro2::Group = input.parse()?;
                args.metadata = Some(group.into_token_stream());
            } else if lookahead.peek(kw::tags) {
                let keyword: kw::tags = input.parse()?;
                args.once("tags", keyword.span)?;
                input.parse::<Token![=]>()?;
                let content;
                bracketed!(content in input);
                let tags: Punctuated<LitStr, Token![,]> =
                    content.parse_terminated(|p| p.parse::<LitStr>(), Token![,])?;
                args.tags = Some(tags.into_iter().collect());
            } else if lookahead.peek(kw::parent) {
                let keyword: kw::parent = input.parse()?;
                args.once("parent", keyword.span)?;
                input.parse::<Token![=]>()?;
                args.parent = Some(input.parse()?);
            } else if lookahead.peek(Token![crate]) {
                let keyword: Token![crate] = input.parse()?;
                args.once("crate", keyword.span)?;
                input.parse::<Token![=]>()?;
                args.krate = Some(if input.peek(LitStr) {
                    input.parse::<LitStr>()?.parse()?
                } else {
                    input.parse()?
                });
            } else if input.peek(Ident) {
                let unknown: Ident = input.parse()?;
                return Err(syn::Error::new(
                    unknown.span(),
                    format!("unknown argument `{unknown}`; expected {ARGUMENTS}"),
                ));
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        if args.skip_all && !args.skip.is_empty() {
            return Err(syn::Error::new(
                args.skip[0].span(),
                "`skip(…)` is redundant with `skip_all`",
            ));
        }
        Ok(args)
    }
}
