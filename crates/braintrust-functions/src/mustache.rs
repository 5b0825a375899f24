//! Mustache templates over `serde_json::Value`, as Braintrust prompts use them.
//!
//! The rules (the official SDKs disagree; these are the reference's choices for Rust):
//!
//! * `{{x}}`, `{{{x}}}` and `{{&x}}` all insert the value **unescaped** (prompts are not HTML);
//! * strings are inserted as they are, `null` as nothing, other values as compact JSON
//!   (`42`, `true`, `{"a":[1,2]}`);
//! * dotted names (`{{a.b}}`), `{{.}}` (the current item), sections `{{#x}}…{{/x}}` (a list
//!   repeats per item, an object becomes the context, another truthy value renders once),
//!   inverted sections `{{^x}}…{{/x}}` and comments `{{! … }}`; tags alone on a line take the
//!   line with them, as the mustache spec says;
//! * a missing variable renders as nothing, or with [`Strictness::Strict`] is an error naming
//!   it; partials and delimiter changes are not supported (ignored, or an error when strict);
//! * malformed templates (an unclosed tag or section, a stray closing tag) are errors, never
//!   panics.
//!
//! ```
//! use braintrust_functions::mustache::{render, Strictness};
//! use serde_json::json;
//!
//! let data = json!({"name": "Ada", "langs": ["fr", "de"], "meta": {"n": 2}});
//! let text = render("Hi {{name}}: {{#langs}}[{{.}}]{{/langs}} {{meta}}", &data, Strictness::Lenient)?;
//! assert_eq!(text, r#"Hi Ada: [fr][de] {"n":2}"#);
//! assert!(render("{{missing}}", &data, Strictness::Strict).is_err());
//! # Ok::<(), braintrust_functions::mustache::TemplateError>(())
//! ```

use serde_json::Value;

/// What to do with a variable that is not in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// Render it as nothing (the SDKs' default).
    #[default]
    Lenient,
    /// Fail with [`TemplateError::MissingVariable`].
    Strict,
}

/// Why a template could not be rendered. Positions are byte offsets into the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a matching `}}`.
    #[error("unclosed tag opened at byte {at}: missing `}}}}`")]
    UnclosedTag {
        /// Where the tag starts.
        at: usize,
    },
    /// A tag with no name, such as `{{}}` or `{{#}}`.
    #[error("empty tag at byte {at}")]
    EmptyTag {
        /// Where the tag starts.
        at: usize,
    },
    /// `{{#x}}` or `{{^x}}` without `{{/x}}`.
    #[error("section `{name}` opened at byte {at} is never closed")]
    UnclosedSection {
        /// The section's name.
        name: String,
        /// Where it opens.
        at: usize,
    },
    /// `{{/x}}` that closes nothing, or closes the wrong section.
    #[error("unexpected closing tag `{{{{/{name}}}}}` at byte {at}{}", expected.as_ref().map(|e| format!(" (expected `{{{{/{e}}}}}`)")).unwrap_or_default())]
    UnexpectedClose {
        /// The name in the closing tag.
        name: String,
        /// The section that is open, if any.
        expected: Option<String>,
        /// Where the tag starts.
        at: usize,
    },
    /// Strict rendering of a variable the data does not have.
    #[error("Template rendering failed: Could not find key '{name}'")]
    MissingVariable {
        /// The variable's name as written (`a.b` for dotted names).
        name: String,
    },
    /// Strict rendering of a feature this renderer does not support (partials, delimiters).
    #[error("unsupported mustache feature at byte {at}: {feature}")]
    Unsupported {
        /// What it is.
        feature: &'static str,
        /// Where the tag starts.
        at: usize,
    },
}

/// Renders `template` with `data`.
pub fn render(
    template: &str,
    data: &Value,
    strictness: Strictness,
) -> Result<String, TemplateError> {
    let tokens = standalone(tokenize(template)?);
    let nodes = build(tokens)?;
    let mut out = String::with_capacity(template.len());
    let mut stack = vec![data];
    render_nodes(&nodes, &mut stack, strictness, &mut out)?;
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Variable,
    Section,
    Inverted,
    Close,
    Comment,
    Partial,
    Delimiter,
}

impl TagKind {
    /// Tags that vanish with their line when they stand alone on it.
    fn can_stand_alone(self) -> bool {
        !matches!(self, TagKind::Variable)
    }
}

#[derive(Debug)]
enum Token<'t> {
    Text(&'t str),
    Tag {
        kind: TagKind,
        name: &'t str,
        at: usize,
    },
}

/// Splits a template into text (cut after each newline) and tags.
fn tokenize(template: &str) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = 0;
    while let Some(offset) = template[rest..].find("{{") {
        let at = rest + offset;
        push_text(&mut tokens, &template[rest..at]);
        let after = at + 2;
        let (kind, body_start, closer) = match template[after..].chars().next() {
            Some('{') => (TagKind::Variable, after + 1, "}}}"),
            Some('&') => (TagKind::Variable, after + 1, "}}"),
            Some('#') => (TagKind::Section, after + 1, "}}"),
            Some('^') => (TagKind::Inverted, after + 1, "}}"),
            Some('/') => (TagKind::Close, after + 1, "}}"),
            Some('!') => (TagKind::Comment, after + 1, "}}"),
            Some('>') => (TagKind::Partial, after + 1, "}}"),
            Some('=') => (TagKind::Delimiter, after + 1, "=}}"),
            _ => (TagKind::Variable, after, "}}"),
        };
        let Some(end) = template[body_start..].find(closer) else {
            return Err(TemplateError::UnclosedTag { at });
        };
        let name = template[body_start..body_start + end].trim();
        if name.is_empty() && !matches!(kind, TagKind::Comment) {
            return Err(TemplateError::EmptyTag { at });
        }
        tokens.push(Token::Tag { kind, name, at });
        rest = body_start + end + closer.len();
    }
    push_text(&mut tokens, &template[rest..]);
    Ok(tokens)
}

/// Adds text, cut after each newline so that lines can be told apart.
fn push_text<'t>(tokens: &mut Vec<Token<'t>>, mut text: &'t str) {
    while let Some(i) = text.find('\n') {
        tokens.push(Token::Text(&text[..=i]));
        text = &text[i + 1..];
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
}

/// Drops the surrounding whitespace and newline of section, comment, partial and delimiter
/// tags that are alone on their line.
fn standalone(tokens: Vec<Token<'_>>) -> Vec<Token<'_>> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut line = Vec::new();
    fn flush<'t>(line: &mut Vec<Token<'t>>, out: &mut Vec<Token<'t>>) {
        let mut tags = line.iter().filter(|t| matches!(t, Token::Tag { .. }));
        let lone = match (tags.next(), tags.next()) {
            (Some(Token::Tag { kind, .. }), None) => kind.can_stand_alone(),
            _ => false,
        };
        let blank = line.iter().all(|t| match t {
            Token::Text(text) => text.trim().is_empty(),
            Token::Tag { .. } => true,
        });
        if lone && blank {
            out.extend(line.drain(..).filter(|t| matches!(t, Token::Tag { .. })));
        } else {
            out.append(line);
        }
    }
    for token in tokens {
        let ends_line = matches!(token, Token::Text(t) if t.ends_with('\n'));
        line.push(token);
        if ends_line {
            flush(&mut line, &mut out);
        }
    }
    flush(&mut line, &mut out);
    out
}

#[derive(Debug)]
enum Node<'t> {
    Text(&'t str),
    Variable {
        name: &'t str,
    },
    Section {
        name: &'t str,
        inverted: bool,
        children: Vec<Node<'t>>,
    },
    Unsupported {
        feature: &'static str,
        at: usize,
    },
}

/// Nests sections into a tree.
fn build(tokens: Vec<Token<'_>>) -> Result<Vec<Node<'_>>, TemplateError> {
    // Each open section: its name, kind, position and the nodes collected before it.
    let mut open: Vec<(&str, bool, usize, Vec<Node<'_>>)> = Vec::new();
    let mut current: Vec<Node<'_>> = Vec::new();
    for token in tokens {
        match token {
            Token::Text(text) => current.push(Node::Text(text)),
            Token::Tag { kind, name, at } => match kind {
                TagKind::Variable => current.push(Node::Variable { name }),
                TagKind::Section | TagKind::Inverted => {
                    let outer = std::mem::take(&mut current);
                    open.push((name, kind == TagKind::Inverted, at, outer));
                }
                TagKind::Close => match open.pop() {
                    Some((open_name, inverted, _, outer)) if open_name == name => {
                        let children = std::mem::replace(&mut current, outer);
                        current.push(Node::Section {
                            name,
                            inverted,
                            children,
                        });
                    }
                    other => {
                        return Err(TemplateError::UnexpectedClose {
                            name: name.to_owned(),
                            expected: other.map(|(n, ..)| n.to_owned()),
                            at,
                        });
                    }
                },
                TagKind::Comment => {}
                TagKind::Partial => current.push(Node::Unsupported {
                    feature: "partials",
                    at,
                }),
                TagKind::Delimiter => current.push(Node::Unsupported {
                    feature: "delimiter changes",
                    at,
                }),
            },
        }
    }
    if let Some((name, _, at, _)) = open.pop() {
        return Err(TemplateError::UnclosedSection {
            name: name.to_owned(),
            at,
        });
    }
    Ok(current)
}

/// Looks `name` up through the context stack, innermost first. A dotted name resolves its
/// first part through the stack and the rest inside that value only.
fn lookup<'v>(stack: &[&'v Value], name: &str) -> Option<&'v Value> {
    if name == "." {
        return stack.last().copied();
    }
    let mut parts = name.split('.');
    let first = parts.next()?;
    let mut value = stack
        .iter()
        .rev()
        .find_map(|context| context.as_object().and_then(|o| o.get(first)))?;
    for part in parts {
        value = match value {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Object(_) => true,
    }
}

fn render_nodes(
    nodes: &[Node<'_>],
    stack: &mut Vec<&Value>,
    strictness: Strictness,
    out: &mut String,
) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Variable { name } => match lookup(stack, name) {
                Some(Value::String(s)) => out.push_str(s),
                Some(Value::Null) => {}
                Some(other) => out.push_str(&other.to_string()),
                None if strictness == Strictness::Strict => {
                    return Err(TemplateError::MissingVariable {
                        name: (*name).to_owned(),
                    });
                }
                None => {}
            },
            Node::Section {
                name,
                inverted,
                children,
            } => {
                let value = lookup(stack, name);
                let truthy = value.is_some_and(is_truthy);
                if *inverted {
                    if !truthy {
                        render_nodes(children, stack, strictness, out)?;
                    }
                    continue;
                }
                let Some(value) = value.filter(|_| truthy) else {
                    continue;
                };
                let items: &[Value] = match value {
                    Value::Array(items) => items,
                    other => std::slice::from_ref(other),
                };
                for item in items {
                    stack.push(item);
                    let result = render_nodes(children, stack, strictness, out);
                    stack.pop();
                    result?;
                }
            }
            Node::Unsupported { feature, at } => {
                if strictness == Strictness::Strict {
                    return Err(TemplateError::Unsupported { feature, at: *at });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lenient(template: &str, data: Value) -> String {
        render(template, &data, Strictness::Lenient).unwrap()
    }

    #[test]
    fn values_are_unescaped_and_non_strings_are_json() {
        let data =
            json!({"x": "<b>&\"q\"", "n": 1.5, "i": 3, "t": true, "o": {"a": [1, 2]}, "z": null});
        assert_eq!(
            lenient("{{x}}|{{{x}}}|{{&x}}", data.clone()),
            "<b>&\"q\"|<b>&\"q\"|<b>&\"q\""
        );
        assert_eq!(
            lenient("{{n}} {{i}} {{t}} {{o}} [{{z}}]", data),
            r#"1.5 3 true {"a":[1,2]} []"#
        );
    }

    #[test]
    fn missing_variables_are_empty_or_an_error_naming_them() {
        assert_eq!(lenient("a{{nope}}b{{x.y}}c", json!({"x": {}})), "abc");
        let err = render("Say {{lang}}", &json!({}), Strictness::Strict).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Template rendering failed: Could not find key 'lang'"
        );
        let err = render("{{a.b}}", &json!({"a": {}}), Strictness::Strict).unwrap_err();
        assert_eq!(err, TemplateError::MissingVariable { name: "a.b".into() });
        // Present but null is not missing.
        assert_eq!(
            render("[{{z}}]", &json!({"z": null}), Strictness::Strict).unwrap(),
            "[]"
        );
    }

    #[test]
    fn dotted_names_resolve_the_first_part_through_the_stack_only() {
        let data = json!({"a": {"b": {"c": 1}}, "x": {"y": 2}, "list": [{"x": {}}]});
        assert_eq!(lenient("{{a.b.c}}", data.clone()), "1");
        // Inside the item, `x` is the item's (empty) object: `x.y` does not fall back outward.
        assert_eq!(lenient("{{#list}}[{{x.y}}]{{/list}}", data.clone()), "[]");
        assert_eq!(lenient("{{#a}}{{b.c}}{{x.y}}{{/a}}", data), "12");
    }

    #[test]
    fn sections_lists_objects_scalars_and_inverted() {
        let data = json!({
            "list": [{"n": 1}, {"n": 2}], "obj": {"n": 9}, "yes": true, "no": false,
            "empty": [], "word": "w", "zero": 0, "scalars": ["a", 1, null],
        });
        assert_eq!(lenient("{{#list}}<{{n}}>{{/list}}", data.clone()), "<1><2>");
        assert_eq!(lenient("{{#obj}}{{n}}{{/obj}}", data.clone()), "9");
        assert_eq!(
            lenient("{{#yes}}Y{{/yes}}{{#no}}N{{/no}}", data.clone()),
            "Y"
        );
        assert_eq!(
            lenient(
                "{{#empty}}E{{/empty}}{{^empty}}none{{/empty}}",
                data.clone()
            ),
            "none"
        );
        assert_eq!(lenient("{{#word}}{{.}}!{{/word}}", data.clone()), "w!");
        assert_eq!(
            lenient("{{^zero}}z{{/zero}}{{^missing}}m{{/missing}}", data.clone()),
            "zm"
        );
        assert_eq!(
            lenient("{{#scalars}}({{.}}){{/scalars}}", data.clone()),
            "(a)(1)()"
        );
        // Outer names stay visible inside sections.
        assert_eq!(lenient("{{#list}}{{word}}{{n}}{{/list}}", data), "w1w2");
    }

    #[test]
    fn comments_and_standalone_lines() {
        let data = json!({"items": ["a", "b"]});
        assert_eq!(lenient("1{{! note }}2", data.clone()), "12");
        assert_eq!(
            lenient("begin\n  {{! gone }}\nend", data.clone()),
            "begin\nend"
        );
        assert_eq!(
            lenient("list:\n{{#items}}\n- {{.}}\n{{/items}}\ndone", data.clone()),
            "list:\n- a\n- b\ndone"
        );
        // A tag that shares its line with text is not standalone.
        assert_eq!(
            lenient("x {{#items}}{{.}}{{/items}} y\n", data.clone()),
            "x ab y\n"
        );
        // Variables never swallow their line.
        assert_eq!(lenient("  {{missing}}\n", data), "  \n");
        // Windows line endings count as line ends too.
        assert_eq!(lenient("a\r\n{{! c }}\r\nb", json!({})), "a\r\nb");
    }

    #[test]
    fn malformed_templates_are_errors_not_panics() {
        let check = |template: &str| render(template, &json!({"a": 1}), Strictness::Lenient);
        assert_eq!(check("hi {{a"), Err(TemplateError::UnclosedTag { at: 3 }));
        assert_eq!(check("{{{a}}"), Err(TemplateError::UnclosedTag { at: 0 }));
        assert_eq!(check("x{{}}"), Err(TemplateError::EmptyTag { at: 1 }));
        assert_eq!(
            check("{{#a}}b"),
            Err(TemplateError::UnclosedSection {
                name: "a".into(),
                at: 0
            })
        );
        assert_eq!(
            check("{{#a}}{{/b}}"),
            Err(TemplateError::UnexpectedClose {
                name: "b".into(),
                expected: Some("a".into()),
                at: 6
            })
        );
        assert!(check("{{/a}}").unwrap_err().to_string().contains("{{/a}}"));
        // Multi-byte text around tags is cut on character boundaries.
        assert_eq!(check("é{{a}}ü{{! ☃ }}ß").unwrap(), "é1üß");
    }

    #[test]
    fn partials_and_delimiters_are_ignored_or_strict_errors() {
        assert_eq!(lenient("a{{> part}}b", json!({})), "ab");
        assert_eq!(lenient("a{{=<% %>=}}b", json!({})), "ab");
        assert_eq!(
            render("a{{> part}}", &json!({}), Strictness::Strict),
            Err(TemplateError::Unsupported {
                feature: "partials",
                at: 1
            })
        );
    }

    /// Cases from the mustache spec (interpolation, sections, inverted, comments) whose
    /// expectations hold under our rules.
    #[test]
    fn mustache_spec_cases() {
        let cases: &[(&str, Value, &str)] = &[
            ("|{{ string }}|", json!({"string": "---"}), "|---|"),
            ("  {{string}}\n", json!({"string": "---"}), "  ---\n"),
            ("Hello, {{.}}!", json!("world"), "Hello, world!"),
            (
                "{{a.b.c.name}}",
                json!({"a": {"b": {}}, "c": {"name": "Jim"}}),
                "",
            ),
            (
                "{{#a}}{{b.c}}{{/a}}",
                json!({"a": {"b": {}}, "b": {"c": "ERROR"}}),
                "",
            ),
            (
                "\"{{#list}}({{#.}}{{.}}{{/.}}){{/list}}\"",
                json!({"list": [[1, 2, 3], ["a", "b", "c"]]}),
                "\"(123)(abc)\"",
            ),
            (
                "| This Is\n{{#boolean}}\n|\n{{/boolean}}\n| A Line",
                json!({"boolean": true}),
                "| This Is\n|\n| A Line",
            ),
            (
                "| This Is\n  {{#boolean}}\n|\n  {{/boolean}}\n| A Line",
                json!({"boolean": true}),
                "| This Is\n|\n| A Line",
            ),
            (
                "  {{#boolean}}\n#{{/boolean}}\n/",
                json!({"boolean": true}),
                "#\n/",
            ),
            (
                "#{{#boolean}}\n/\n  {{/boolean}}",
                json!({"boolean": true}),
                "#\n/\n",
            ),
            (
                "| This Is\n{{^boolean}}\n|\n{{/boolean}}\n| A Line",
                json!({"boolean": false}),
                "| This Is\n|\n| A Line",
            ),
            (
                "12345{{!\n  This is a\n  multi-line comment...\n}}67890\n",
                json!({}),
                "1234567890\n",
            ),
            ("!\n  {{! I'm Still Standalone }}", json!({}), "!\n"),
            (
                "{{#a}}{{one}}{{#b}}{{one}}{{two}}{{/b}}{{/a}}",
                json!({"a": {"one": 1}, "b": {"two": 2}}),
                "112",
            ),
            (
                "\"{{#list}}{{item}}{{/list}}\"",
                json!({"list": [{"item": 1}, {"item": 2}, {"item": 3}]}),
                "\"123\"",
            ),
            (
                "\"{{^list}}Yay lists!{{/list}}\"",
                json!({"list": []}),
                "\"Yay lists!\"",
            ),
        ];
        for (template, data, expected) in cases {
            assert_eq!(
                &lenient(template, data.clone()),
                expected,
                "template {template:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_templates_never_panic(template in "[a-z{}#^/!&>=. \n]{0,40}") {
            let _ = render(&template, &json!({"a": [1, {"b": 2}], "b": "x"}), Strictness::Strict);
            let _ = render(&template, &json!({"a": [1, {"b": 2}], "b": "x"}), Strictness::Lenient);
        }
    }
}
