//! Expected values and their validation semantics: `null` is "don't care", objects check the
//! expected keys only, lists compare a prefix, a one-item list may match an object, numbers
//! compare by value, and every error is collected with its path.

use serde_json::Value;

/// A named predicate of `!fn`.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// A number ≥ 0 (not a boolean).
    NonNegativeNumber,
    /// A number > 0.
    PositiveNumber,
    /// A string of length > 0.
    NonEmptyString,
    /// A list whose items are all `{type: "summary_text", text: <non-empty string>}`.
    ReasoningMessage,
    /// Absent or `null`.
    UndefinedOrNull,
    /// `lambda value: "<lit>" in value`: a substring test.
    Contains(String),
}

impl Predicate {
    /// Parses a predicate name or one of the supported lambdas; anything else is an error.
    pub fn parse(source: &str) -> Result<Predicate, String> {
        let source = source.trim();
        Ok(match source {
            "is_non_negative_number" => Predicate::NonNegativeNumber,
            "is_positive_number" => Predicate::PositiveNumber,
            "is_non_empty_string" => Predicate::NonEmptyString,
            "is_reasoning_message" => Predicate::ReasoningMessage,
            "undefined_or_null" => Predicate::UndefinedOrNull,
            _ => {
                if let Some(body) = source.strip_prefix("lambda value:") {
                    let body = body.trim();
                    if let Some(literal) = body
                        .strip_suffix("in value")
                        .map(str::trim)
                        .and_then(|l| l.strip_prefix('"'))
                        .and_then(|l| l.strip_suffix('"'))
                    {
                        return Ok(Predicate::Contains(literal.to_owned()));
                    }
                    return Err(format!(
                        "unsupported lambda `{source}` (only `lambda value: \"<text>\" in value`)"
                    ));
                }
                return Err(format!("unknown predicate `{source}`"));
            }
        })
    }

    /// Whether `actual` (None: the key is absent) passes.
    fn check(&self, actual: Option<&Value>) -> Result<(), String> {
        let ok = match (self, actual) {
            (Predicate::UndefinedOrNull, None | Some(Value::Null)) => true,
            (Predicate::UndefinedOrNull, Some(_)) => false,
            (_, None) => return Err("missing".into()),
            (Predicate::NonNegativeNumber, Some(v)) => v.as_f64().is_some_and(|n| n >= 0.0),
            (Predicate::PositiveNumber, Some(v)) => v.as_f64().is_some_and(|n| n > 0.0),
            (Predicate::NonEmptyString, Some(v)) => v.as_str().is_some_and(|s| !s.is_empty()),
            (Predicate::ReasoningMessage, Some(v)) => v.as_array().is_some_and(|items| {
                items.iter().all(|item| {
                    item.get("type").and_then(Value::as_str) == Some("summary_text")
                        && item
                            .get("text")
                            .and_then(Value::as_str)
                            .is_some_and(|t| !t.is_empty())
                })
            }),
            (Predicate::Contains(needle), Some(v)) => match v {
                Value::String(s) => s.contains(needle.as_str()),
                Value::Array(items) => items.iter().any(|i| i.as_str() == Some(needle)),
                _ => false,
            },
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{self:?} failed for {}",
                actual.map_or("<absent>".to_owned(), short)
            ))
        }
    }
}

/// An expected value.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// `null`: anything (but a missing key still fails).
    Any,
    /// A scalar compared by value.
    Equals(Value),
    /// `!fn`.
    Predicate(Predicate),
    /// `!starts_with`.
    StartsWith(String),
    /// `!or`: any alternative.
    Or(Vec<Matcher>),
    /// Expected keys, checked recursively.
    Object(Vec<(String, Matcher)>),
    /// A prefix of the actual list.
    List(Vec<Matcher>),
}

/// One mismatch: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// A path like `span[0].metrics.tokens`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

impl Matcher {
    /// Collects the mismatches of `actual` (None: absent) under `path`.
    pub fn check(&self, path: &str, actual: Option<&Value>, out: &mut Vec<Mismatch>) {
        let fail = |out: &mut Vec<Mismatch>, message: String| {
            out.push(Mismatch {
                path: path.to_owned(),
                message,
            });
        };
        if let Matcher::Predicate(p) = self {
            if let Err(message) = p.check(actual) {
                fail(out, message);
            }
            return;
        }
        let Some(actual) = actual else {
            fail(out, "missing".into());
            return;
        };
        match self {
            Matcher::Any | Matcher::Predicate(_) => {}
            Matcher::Equals(expected) => {
                if !numbers_equal(expected, actual) {
                    fail(
                        out,
                        format!("expected {}, got {}", short(expected), short(actual)),
                    );
                }
            }
            Matcher::StartsWith(prefix) => {
                if !actual
                    .as_str()
                    .is_some_and(|s| s.starts_with(prefix.as_str()))
                {
                    fail(
                        out,
                        format!(
                            "expected a string starting with {prefix:?}, got {}",
                            short(actual)
                        ),
                    );
                }
            }
            Matcher::Or(alternatives) => {
                let mut all = Vec::new();
                for (i, alternative) in alternatives.iter().enumerate() {
                    let mut errors = Vec::new();
                    alternative.check(path, Some(actual), &mut errors);
                    if errors.is_empty() {
                        return;
                    }
                    all.extend(errors.into_iter().map(|e| format!("alternative {i}: {e}")));
                }
                fail(out, format!("no alternative matched ({})", all.join("; ")));
            }
            Matcher::Object(fields) => {
                let Some(map) = actual.as_object() else {
                    fail(out, format!("expected an object, got {}", short(actual)));
                    return;
                };
                for (key, expected) in fields {
                    expected.check(&format!("{path}.{key}"), map.get(key), out);
                }
            }
            Matcher::List(items) => match actual {
                Value::Array(values) => {
                    if values.len() < items.len() {
                        fail(
                            out,
                            format!(
                                "expected at least {} items, got {}",
                                items.len(),
                                values.len()
                            ),
                        );
                        return;
                    }
                    for (i, (expected, value)) in items.iter().zip(values).enumerate() {
                        expected.check(&format!("{path}[{i}]"), Some(value), out);
                    }
                }
                // A one-item list holding an object matches an object (Anthropic's output).
                Value::Object(_) if items.len() == 1 && matches!(items[0], Matcher::Object(_)) => {
                    items[0].check(path, Some(actual), out);
                }
                _ => fail(out, format!("expected a list, got {}", short(actual))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(m: &Matcher, actual: Option<&Value>) -> Vec<String> {
        let mut out = Vec::new();
        m.check("span[0]", actual, &mut out);
        out.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn semantics_of_the_suite() {
        let m = Matcher::Object(vec![
            ("a".into(), Matcher::Equals(json!(0))),
            ("b".into(), Matcher::Any),
            (
                "gone".into(),
                Matcher::Predicate(Predicate::UndefinedOrNull),
            ),
            (
                "list".into(),
                Matcher::List(vec![Matcher::Equals(json!("x"))]),
            ),
            (
                "obj".into(),
                Matcher::List(vec![Matcher::Object(vec![(
                    "role".into(),
                    Matcher::Equals(json!("assistant")),
                )])]),
            ),
            ("model".into(), Matcher::StartsWith("gpt-4o".into())),
            (
                "text".into(),
                Matcher::Predicate(Predicate::parse("lambda value: \"440\" in value").unwrap()),
            ),
        ]);
        let good = json!({"a": 0.0, "b": [1], "list": ["x", "extra"], "extra": 1,
            "obj": {"role": "assistant", "content": []}, "model": "gpt-4o-mini", "text": "is 440."});
        assert!(
            errors(&m, Some(&good)).is_empty(),
            "{:?}",
            errors(&m, Some(&good))
        );
        let bad = json!({"a": 1, "gone": 3, "list": [], "obj": [], "model": "o4", "text": "44"});
        let e = errors(&m, Some(&bad));
        assert_eq!(e.len(), 7, "{e:?}");
        assert!(e[0].starts_with("span[0].a: expected 0, got 1"), "{e:?}");
        assert!(e[1].starts_with("span[0].b: missing"), "{e:?}");
        assert!(
            e.iter()
                .any(|x| x.starts_with("span[0].list: expected at least 1 items"))
        );
    }

    #[test]
    fn predicates() {
        let check = |p: &str, v: Value| Predicate::parse(p).unwrap().check(Some(&v)).is_ok();
        assert!(check("is_non_negative_number", json!(0)));
        assert!(!check("is_non_negative_number", json!(true)));
        assert!(!check("is_positive_number", json!(0)));
        assert!(check("is_non_empty_string", json!("x")));
        assert!(check("is_reasoning_message", json!([])));
        assert!(!check(
            "is_reasoning_message",
            json!([{"type": "summary_text", "text": ""}])
        ));
        assert!(Predicate::UndefinedOrNull.check(None).is_ok());
        assert!(Predicate::NonEmptyString.check(None).is_err());
    }

    #[test]
    fn or_reports_every_alternative() {
        let m = Matcher::Or(vec![Matcher::Equals(json!(1)), Matcher::Equals(json!(2))]);
        assert!(errors(&m, Some(&json!(2))).is_empty());
        let e = errors(&m, Some(&json!(3)));
        assert!(
            e[0].contains("alternative 0") && e[0].contains("alternative 1"),
            "{e:?}"
        );
    }
}
