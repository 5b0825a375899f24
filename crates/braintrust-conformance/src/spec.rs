//! Spec cases: `test/llm_span/<provider>/<case>.yaml` with the suite's custom tags, turned into
//! JSON requests and matcher trees.

use std::path::{Path, PathBuf};

use serde_json::{Map, Number, Value};
use serde_norway::Value as Yaml;

use crate::matcher::{Matcher, Predicate};

/// One case of the suite.
#[derive(Debug, Clone)]
pub struct Case {
    /// `<provider>/<case>`.
    pub id: String,
    /// `openai`, `anthropic`, `google`, `bedrock`.
    pub provider: String,
    /// The case name (the file stem).
    pub name: String,
    /// The dispatch key (`/v1/chat/completions`, …).
    pub endpoint: String,
    /// Request bodies, variables substituted.
    pub requests: Vec<Value>,
    /// Extra headers passed through unchanged.
    pub headers: Vec<(String, String)>,
    /// One matcher per expected span.
    pub expected: Vec<Matcher>,
}

/// Every case file under `<spec>/test/llm_span`, sorted by id.
pub fn find_cases(spec_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let root = spec_dir.join("test").join("llm_span");
    let providers =
        std::fs::read_dir(&root).map_err(|e| format!("cannot read {}: {e}", root.display()))?;
    let mut files = Vec::new();
    for provider in providers.flatten() {
        if !provider.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(provider.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = file.path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Loads one case file.
pub fn load_case(path: &Path) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let provider_dir = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let stem = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    parse_case(&text, &provider_dir, &stem)
}

/// Parses a case from its YAML text.
pub fn parse_case(text: &str, provider_dir: &str, stem: &str) -> Result<Case, String> {
    let doc: Yaml = serde_norway::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
    let map = doc.as_mapping().ok_or("a case must be a mapping")?;
    let get = |key: &str| map.get(Yaml::String(key.to_owned()));
    if let Some(kind) = get("type").and_then(Yaml::as_str)
        && kind != "llm_span_test"
    {
        return Err(format!("unsupported case type `{kind}`"));
    }
    let provider = get("provider")
        .and_then(Yaml::as_str)
        .unwrap_or(provider_dir)
        .to_owned();
    let name = stem.to_owned();
    let endpoint = get("endpoint")
        .and_then(Yaml::as_str)
        .ok_or("a case needs an `endpoint`")?
        .to_owned();
    let mut variables = Vec::new();
    if let Some(Yaml::Mapping(vars)) = get("variables") {
        for (k, v) in vars {
            let key = k.as_str().ok_or("variable names must be strings")?;
            variables.push((key.to_owned(), generate(v)?));
        }
    }
    let requests = match get("requests") {
        Some(Yaml::Sequence(items)) => items
            .iter()
            .map(|r| to_json(r).map(|v| substitute(v, &variables)))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("a case needs `requests`".into()),
    };
    let mut headers = Vec::new();
    if let Some(Yaml::Mapping(h)) = get("headers") {
        for (k, v) in h {
            let (Some(k), Some(v)) = (k.as_str(), scalar_text(v)) else {
                return Err("headers must be string pairs".into());
            };
            headers.push((k.to_owned(), substitute_text(&v, &variables)));
        }
    }
    let expected = match get("expected_brainstore_spans") {
        Some(Yaml::Sequence(items)) => items.iter().map(matcher).collect::<Result<Vec<_>, _>>()?,
        _ => return Err("a case needs `expected_brainstore_spans`".into()),
    };
    Ok(Case {
        id: format!("{provider_dir}/{name}"),
        provider,
        name,
        endpoint,
        requests,
        headers,
        expected,
    })
}

/// A `!gen NAME` value, with the replay values the recordings were made with.
fn generate(value: &Yaml) -> Result<String, String> {
    match value {
        Yaml::Tagged(tagged) if tag_name(&tagged.tag) == "gen" => {
            match tagged.value.as_str().unwrap_or_default() {
                "test_runner_client" => Ok("anthropic".into()),
                "vcr_nonce" => Ok("vcr-mode".into()),
                other => Err(format!("unknown generator `!gen {other}`")),
            }
        }
        other => scalar_text(other).ok_or_else(|| "variables must be scalars or !gen".into()),
    }
}

fn tag_name(tag: &serde_norway::value::Tag) -> String {
    tag.to_string().trim_start_matches('!').to_owned()
}

fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Plain YAML (no tags) as JSON.
fn to_json(value: &Yaml) -> Result<Value, String> {
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => yaml_number(n)?,
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = scalar_text(k).ok_or("mapping keys must be scalars")?;
                out.insert(key, to_json(v)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(t) => {
            return Err(format!(
                "unexpected tag `{}` in a request",
                tag_name(&t.tag)
            ));
        }
    })
}

fn yaml_number(n: &serde_norway::Number) -> Result<Value, String> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Value::from(u));
    }
    n.as_f64()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| format!("unsupported number {n}"))
}

fn substitute_text(text: &str, variables: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in variables {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// `{{name}}` replaced in every string of `value`.
fn substitute(value: Value, variables: &[(String, String)]) -> Value {
    if variables.is_empty() {
        return value;
    }
    match value {
        Value::String(s) => Value::String(substitute_text(&s, variables)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| substitute(v, variables))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, substitute(v, variables)))
                .collect(),
        ),
        other => other,
    }
}

/// The matcher of an expected value.
fn matcher(value: &Yaml) -> Result<Matcher, String> {
    Ok(match value {
        Yaml::Null => Matcher::Any,
        Yaml::Bool(_) | Yaml::Number(_) | Yaml::String(_) => Matcher::Equals(to_json(value)?),
        Yaml::Sequence(items) => {
            Matcher::List(items.iter().map(matcher).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(map) => {
            let mut fields = Vec::new();
            for (k, v) in map {
                let key = scalar_text(k).ok_or("mapping keys must be scalars")?;
                fields.push((key, matcher(v)?));
            }
            Matcher::Object(fields)
        }
        Yaml::Tagged(tagged) => {
            let tag = tag_name(&tagged.tag);
            match tag.as_str() {
                "fn" => {
                    let source = tagged
                        .value
                        .as_str()
                        .ok_or("`!fn` takes a predicate name")?;
                    Matcher::Predicate(Predicate::parse(source)?)
                }
                "starts_with" => {
                    let prefix =
                        scalar_text(&tagged.value).ok_or("`!starts_with` takes a scalar")?;
                    Matcher::StartsWith(strip_quotes(&prefix).to_owned())
                }
                "or" => match &tagged.value {
                    Yaml::Sequence(items) => {
                        Matcher::Or(items.iter().map(matcher).collect::<Result<_, _>>()?)
                    }
                    _ => return Err("`!or` takes a sequence".into()),
                },
                other => return Err(format!("unknown tag `!{other}`")),
            }
        }
    })
}

fn strip_quotes(text: &str) -> &str {
    let t = text.trim();
    for q in ['"', '\''] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = r#"
name: demo
type: llm_span_test
provider: anthropic
endpoint: /v1/messages
variables:
  client: !gen test_runner_client
  vcr-nonce: !gen vcr_nonce
headers:
  anthropic-beta: extended-cache-ttl-2025-04-11
requests:
  - model: m
    temperature: 0.0
    system: "[cache buster: {{client}} {{vcr-nonce}}]"
    messages:
      - role: user
        content: hi
expected_brainstore_spans:
  - metrics:
      tokens: !fn is_non_negative_number
      prompt_cache_creation_tokens: !fn undefined_or_null
    metadata:
      model: !starts_with "claude"
    output: !or
      - [{role: assistant}]
      - {role: assistant}
    input:
      - content: !fn 'lambda value: "Paris" in value'
    extra: ~
"#;

    #[test]
    fn cases_parse_with_tags_variables_and_headers() {
        let case = parse_case(CASE, "anthropic", "demo").unwrap();
        assert_eq!(case.id, "anthropic/demo");
        assert_eq!(
            case.requests[0]["system"],
            "[cache buster: anthropic vcr-mode]"
        );
        assert_eq!(case.requests[0]["temperature"], 0.0);
        assert_eq!(
            case.headers,
            [(
                "anthropic-beta".to_owned(),
                "extended-cache-ttl-2025-04-11".to_owned()
            )]
        );
        let Matcher::Object(fields) = &case.expected[0] else {
            panic!("object");
        };
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["metrics", "metadata", "output", "input", "extra"]);
        assert!(matches!(fields[2].1, Matcher::Or(_)));
        assert!(matches!(fields[4].1, Matcher::Any));
    }

    #[test]
    fn unknown_tags_generators_and_lambdas_fail_loudly() {
        for (bad, why) in [
            ("x: !gen other", "unknown generator"),
            ("x: !regex a.*", "unknown tag"),
            ("x: !fn 'lambda value: value > 3'", "lambda"),
            ("x: !fn is_purple", "unknown predicate"),
        ] {
            let text = if bad.contains("!gen") {
                format!(
                    "endpoint: /x\nvariables:\n  {bad}\nrequests: []\nexpected_brainstore_spans: []\n"
                )
            } else {
                format!("endpoint: /x\nrequests: []\nexpected_brainstore_spans:\n  - {bad}\n")
            };
            let err = parse_case(&text, "p", "c").unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
