//! `context` of a span: the caller's location and `span_origin` (which SDK and which
//! instrumentation created the span, and in which environment).
//!
//! ```
//! use braintrust_core::origin::{CallerLocation, LOGGER_INSTRUMENTATION, span_context};
//!
//! let context = span_context(LOGGER_INSTRUMENTATION, Some(CallerLocation::here()));
//! assert_eq!(context["span_origin"]["name"], "braintrust.sdk.rust");
//! assert_eq!(context["caller_filename"], file!());
//! ```

use std::cell::RefCell;
use std::sync::OnceLock;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::env_file::EnvLookup;

/// `span_origin.name` of every span this SDK creates.
pub const SDK_NAME: &str = "braintrust.sdk.rust";

/// `span_origin.version`: the SDK version.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `span_origin.instrumentation.name` of manually created spans.
pub const LOGGER_INSTRUMENTATION: &str = "braintrust-rust-logger";

/// Where a span was created in the user's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerLocation {
    /// The function, when known (macros know it; `#[track_caller]` does not).
    pub function: Option<&'static str>,
    /// The source file.
    pub file: &'static str,
    /// The line.
    pub line: u32,
}

impl CallerLocation {
    /// The location of the caller (through `#[track_caller]` chains).
    #[track_caller]
    pub fn here() -> CallerLocation {
        let loc = std::panic::Location::caller();
        CallerLocation {
            function: None,
            file: loc.file(),
            line: loc.line(),
        }
    }
}

/// The environment a process runs in (`span_origin.environment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `ci`, `server`, `local` or an explicit value.
    pub kind: String,
    /// A lower_snake name (`github_actions`, `vercel`, …), when known.
    pub name: Option<String>,
}

impl Environment {
    fn new(kind: &str, name: &str) -> Environment {
        Environment {
            kind: kind.to_owned(),
            name: Some(name.to_owned()),
        }
    }
}

/// Written as `{"type": …, "name": …}` (no `name` when unknown).
impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", &self.kind)?;
        if let Some(name) = &self.name {
            map.serialize_entry("name", name)?;
        }
        map.end()
    }
}

const CI_SIGNALS: &[(&[&str], &str)] = &[
    (&["GITHUB_ACTIONS"], "github_actions"),
    (&["GITLAB_CI"], "gitlab_ci"),
    (&["CIRCLECI"], "circleci"),
    (&["BUILDKITE"], "buildkite"),
    (&["JENKINS_URL", "JENKINS_HOME"], "jenkins"),
    (&["TF_BUILD"], "azure_pipelines"),
    (&["TEAMCITY_VERSION"], "teamcity"),
    (&["TRAVIS"], "travis"),
    (&["BITBUCKET_BUILD_NUMBER"], "bitbucket_pipelines"),
];

const SERVER_SIGNALS: &[(&[&str], &str)] = &[
    (&["VERCEL"], "vercel"),
    (&["NETLIFY"], "netlify"),
    (
        &[
            "ECS_CONTAINER_METADATA_URI",
            "ECS_CONTAINER_METADATA_URI_V4",
        ],
        "ecs",
    ),
    (&["AWS_LAMBDA_FUNCTION_NAME"], "aws_lambda"),
    (&["K_SERVICE"], "cloud_run"),
    (&["FUNCTION_TARGET"], "cloud_functions"),
    (&["KUBERNETES_SERVICE_HOST"], "kubernetes"),
    (&["DYNO"], "heroku"),
    (&["FLY_APP_NAME"], "fly"),
    (&["RAILWAY_ENVIRONMENT"], "railway"),
    (&["RENDER_SERVICE_NAME"], "render"),
];

const MODE_VARIABLES: &[&str] = &[
    "NODE_ENV",
    "RAILS_ENV",
    "RACK_ENV",
    "ASPNETCORE_ENVIRONMENT",
    "DOTNET_ENVIRONMENT",
];

/// Detects the environment from settings, with the reference's precedence: explicit
/// `BRAINTRUST_ENVIRONMENT_TYPE`/`_NAME` (type `none` disables detection) > CI variables >
/// server/platform variables > framework mode variables > nothing. Never guesses `local` from
/// the absence of signals.
pub fn detect_environment(lookup: &EnvLookup) -> Option<Environment> {
    if let Some(kind) = lookup.get("BRAINTRUST_ENVIRONMENT_TYPE") {
        let kind = kind.trim().to_owned();
        if kind.eq_ignore_ascii_case("none") {
            return None;
        }
        return Some(Environment {
            kind,
            name: lookup
                .get("BRAINTRUST_ENVIRONMENT_NAME")
                .map(|n| n.trim().to_owned()),
        });
    }
    let set = |var: &str| lookup.get(var).is_some();
    for (vars, name) in CI_SIGNALS {
        if vars.iter().any(|v| set(v)) {
            return Some(Environment::new("ci", name));
        }
    }
    if lookup
        .get("CI")
        .is_some_and(|v| crate::env_file::parse_bool(&v) != Some(false))
    {
        return Some(Environment::new("ci", "ci"));
    }
    let execution_env = lookup.get("AWS_EXECUTION_ENV").unwrap_or_default();
    if execution_env.starts_with("AWS_ECS_") {
        return Some(Environment::new("server", "ecs"));
    }
    for (vars, name) in SERVER_SIGNALS {
        if vars.iter().any(|v| set(v)) {
            return Some(Environment::new("server", name));
        }
    }
    if execution_env.starts_with("AWS_Lambda_") {
        return Some(Environment::new("server", "aws_lambda"));
    }
    for var in MODE_VARIABLES {
        let Some(mode) = lookup.get(var) else {
            continue;
        };
        let mode = mode.trim().to_ascii_lowercase();
        match mode.as_str() {
            "production" | "prod" | "staging" | "stage" => {
                return Some(Environment::new("server", &mode));
            }
            "development" | "dev" | "local" => return Some(Environment::new("local", &mode)),
            _ => {}
        }
    }
    None
}

/// The environment of this process, detected once.
pub fn process_environment() -> Option<&'static Environment> {
    static ENV: OnceLock<Option<Environment>> = OnceLock::new();
    ENV.get_or_init(|| detect_environment(&EnvLookup::process()))
        .as_ref()
}

/// `span_origin` for spans created by `instrumentation`, in this process's environment.
pub fn span_origin(instrumentation: &str) -> Map<String, Value> {
    span_origin_in(instrumentation, process_environment())
}

/// `span_origin` with an explicit environment.
pub fn span_origin_in(
    instrumentation: &str,
    environment: Option<&Environment>,
) -> Map<String, Value> {
    object(&OriginObject {
        instrumentation,
        environment,
    })
}

/// The `context` object of a new span: caller location (when given) and `span_origin`.
pub fn span_context(instrumentation: &str, caller: Option<CallerLocation>) -> Map<String, Value> {
    object(&ContextObject {
        instrumentation,
        caller,
    })
}

/// A JSON object written by `value`'s `Serialize`.
fn object(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        // Both objects serialise as maps of strings and integers, which cannot fail.
        _ => Map::new(),
    }
}

/// `span_origin`, written without being built as a map.
struct OriginObject<'a> {
    instrumentation: &'a str,
    environment: Option<&'a Environment>,
}

impl Serialize for OriginObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Named<'a>(&'a str);
        impl Serialize for Named<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("name", self.0)?;
                map.end()
            }
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", SDK_NAME)?;
        map.serialize_entry("version", SDK_VERSION)?;
        map.serialize_entry("instrumentation", &Named(self.instrumentation))?;
        if let Some(environment) = self.environment {
            map.serialize_entry("environment", environment)?;
        }
        map.end()
    }
}

/// The `context` object of a new span, written without being built as a map: what
/// [`span_context`] builds.
pub(crate) struct ContextObject<'a> {
    /// `span_origin.instrumentation.name`.
    pub(crate) instrumentation: &'a str,
    /// Where the span started, when known.
    pub(crate) caller: Option<CallerLocation>,
}

/// How many instrumentations' `span_origin` texts a thread keeps ([`ContextObject::write_json`]).
const ORIGIN_TEXTS_KEPT: usize = 8;

thread_local! {
    /// The `span_origin` JSON text of the instrumentations seen last on this thread, newest last.
    static ORIGIN_TEXTS: RefCell<Vec<(Box<str>, Box<str>)>> = const { RefCell::new(Vec::new()) };
}

impl ContextObject<'_> {
    /// Appends the object's JSON as its `Serialize` writes it (the batcher's path): the caller's
    /// location, then `span_origin`, whose text is the same for every span of an
    /// instrumentation and so is written once per thread.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        if let Some(caller) = self.caller {
            if let Some(function) = caller.function {
                out.extend_from_slice(b"\"caller_functionname\":");
                write_json(out, function);
                out.push(b',');
            }
            out.extend_from_slice(b"\"caller_filename\":");
            write_json(out, caller.file);
            out.extend_from_slice(b",\"caller_lineno\":");
            write_json(out, &caller.line);
            out.push(b',');
        }
        out.extend_from_slice(b"\"span_origin\":");
        let origin = OriginObject {
            instrumentation: self.instrumentation,
            environment: process_environment(),
        };
        let cached = ORIGIN_TEXTS.try_with(|texts| {
            let mut texts = texts.try_borrow_mut().ok()?;
            let at = texts
                .iter()
                .position(|(name, _)| **name == *self.instrumentation);
            let entry = match at {
                Some(at) => texts.remove(at),
                None => {
                    let text = serde_json::to_string(&origin).ok()?;
                    if texts.len() >= ORIGIN_TEXTS_KEPT {
                        texts.remove(0);
                    }
                    (self.instrumentation.into(), text.into_boxed_str())
                }
            };
            out.extend_from_slice(entry.1.as_bytes());
            texts.push(entry);
            Some(())
        });
        if !matches!(cached, Ok(Some(()))) {
            write_json(out, &origin);
        }
        out.push(b'}');
    }
}

/// Appends a value's JSON (writing into memory cannot fail).
fn write_json(out: &mut Vec<u8>, value: &(impl Serialize + ?Sized)) {
    let _ = serde_json::to_writer(out, value);
}

impl Serialize for ContextObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(caller) = self.caller {
            if let Some(function) = caller.function {
                map.serialize_entry("caller_functionname", function)?;
            }
            map.serialize_entry("caller_filename", caller.file)?;
            map.serialize_entry("caller_lineno", &caller.line)?;
        }
        let origin = OriginObject {
            instrumentation: self.instrumentation,
            environment: process_environment(),
        };
        map.serialize_entry("span_origin", &origin)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detect(pairs: &[(&str, &str)]) -> Option<Environment> {
        detect_environment(&EnvLookup::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn precedence_explicit_then_ci_then_server_then_mode() {
        let all = [
            ("BRAINTRUST_ENVIRONMENT_TYPE", "staging"),
            ("BRAINTRUST_ENVIRONMENT_NAME", "eu"),
            ("GITHUB_ACTIONS", "true"),
            ("VERCEL", "1"),
            ("NODE_ENV", "production"),
        ];
        assert_eq!(
            detect(&all),
            Some(Environment {
                kind: "staging".into(),
                name: Some("eu".into())
            })
        );
        assert_eq!(
            detect(&all[2..]),
            Some(Environment::new("ci", "github_actions"))
        );
        assert_eq!(
            detect(&all[3..]),
            Some(Environment::new("server", "vercel"))
        );
        assert_eq!(
            detect(&all[4..]),
            Some(Environment::new("server", "production"))
        );
        assert_eq!(detect(&[]), None, "never guess local");
        assert_eq!(
            detect(&[("BRAINTRUST_ENVIRONMENT_TYPE", "none"), ("CI", "1")]),
            None
        );
    }

    #[test]
    fn special_cases() {
        assert_eq!(
            detect(&[("CI", "true")]),
            Some(Environment::new("ci", "ci"))
        );
        assert_eq!(detect(&[("CI", "false")]), None);
        assert_eq!(
            detect(&[
                ("AWS_EXECUTION_ENV", "AWS_ECS_FARGATE"),
                ("AWS_LAMBDA_FUNCTION_NAME", "f")
            ]),
            Some(Environment::new("server", "ecs"))
        );
        assert_eq!(
            detect(&[("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")]),
            Some(Environment::new("server", "aws_lambda"))
        );
        assert_eq!(
            detect(&[("RAILS_ENV", "development")]),
            Some(Environment::new("local", "development"))
        );
        assert_eq!(detect(&[("NODE_ENV", "test")]), None);
    }

    #[test]
    fn span_origin_shape() {
        let origin = span_origin_in("x", Some(&Environment::new("ci", "ci")));
        assert_eq!(
            Value::Object(origin),
            json!({"name": "braintrust.sdk.rust", "version": SDK_VERSION,
                   "instrumentation": {"name": "x"}, "environment": {"type": "ci", "name": "ci"}})
        );
        let ctx = span_context(
            "x",
            Some(CallerLocation {
                function: Some("f"),
                file: "a.rs",
                line: 3,
            }),
        );
        assert_eq!(ctx["caller_functionname"], "f");
        assert_eq!(ctx["caller_lineno"], 3);
    }

    #[test]
    fn context_written_for_the_batcher_is_what_serde_writes() {
        let callers = [
            None,
            Some(CallerLocation {
                function: None,
                file: "src/main.rs",
                line: 7,
            }),
            Some(CallerLocation {
                function: Some("handler::<\"q\">"),
                file: "C:\\src\\lib.rs",
                line: 0,
            }),
        ];
        // More instrumentations than a thread keeps, twice over, so that texts are dropped
        // and written again; names that need escaping too.
        let names: Vec<String> = (0..2 * ORIGIN_TEXTS_KEPT + 1)
            .map(|i| format!("instr-{i}\"\\\n"))
            .collect();
        for _ in 0..2 {
            for (i, name) in names.iter().enumerate() {
                let context = ContextObject {
                    instrumentation: name,
                    caller: callers[i % callers.len()],
                };
                let mut written = Vec::new();
                context.write_json(&mut written);
                let expected = serde_json::to_string(&context).unwrap();
                assert_eq!(String::from_utf8(written).unwrap(), expected);
            }
        }
    }
}
