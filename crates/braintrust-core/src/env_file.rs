//! Settings lookup: process environment first, then the nearest `.env.braintrust` file.
//!
//! Precedence (highest first): an explicit option (handled by the caller), a non-blank process
//! environment variable, the nearest `.env.braintrust` file (allow-listed keys only), the default
//! (handled by the caller). Blank values count as unset.
//!
//! The file is looked for in the current directory and up to 64 parents. The nearest existing file
//! is a hard boundary: when the key is missing, blank or malformed there, the answer is "not
//! found" and no further parent is consulted. Values are never copied into the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File name looked up by [`EnvLookup`].
pub const ENV_FILE_NAME: &str = ".env.braintrust";

/// How many parent directories are searched above the start directory.
pub const MAX_PARENT_DIRS: usize = 64;

/// Keys that may be read from `.env.braintrust` (`env_braintrust: true` in the platform's
/// environment-variable spec). Other keys in the file are ignored.
pub const ENV_FILE_KEYS: &[&str] = &[
    "BRAINTRUST_API_KEY",
    "BRAINTRUST_APP_URL",
    "BRAINTRUST_API_URL",
    "BRAINTRUST_PROJECT",
    "BRAINTRUST_PROJECT_ID",
    "BRAINTRUST_ORG_NAME",
    "BRAINTRUST_ENVIRONMENT_TYPE",
    "BRAINTRUST_ENVIRONMENT_NAME",
];

/// Parses a boolean setting: `true/1/yes/y/on` and `false/0/no/n/off`, case-insensitively.
/// Anything else is `None`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" => Some(true),
        "false" | "0" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// A source of settings: the process environment plus `.env.braintrust`, or fixed pairs (tests).
///
/// The file is read lazily, at most once per lookup; keep one lookup per configuration rather
/// than one per span.
#[derive(Debug, Clone)]
pub struct EnvLookup {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Process {
        start_dir: Option<PathBuf>,
        file: OnceLock<Option<EnvFile>>,
    },
    Pairs(HashMap<String, String>),
}

impl EnvLookup {
    /// The process environment, falling back to the `.env.braintrust` nearest to the current
    /// directory.
    pub fn process() -> EnvLookup {
        EnvLookup {
            source: Source::Process {
                start_dir: std::env::current_dir().ok(),
                file: OnceLock::new(),
            },
        }
    }

    /// The process environment, falling back to the `.env.braintrust` nearest to `dir`.
    pub fn process_from_dir(dir: impl Into<PathBuf>) -> EnvLookup {
        EnvLookup {
            source: Source::Process {
                start_dir: Some(dir.into()),
                file: OnceLock::new(),
            },
        }
    }

    /// The process environment only: no file lookup.
    pub fn process_only() -> EnvLookup {
        EnvLookup {
            source: Source::Process {
                start_dir: None,
                file: OnceLock::new(),
            },
        }
    }

    /// Fixed key/value pairs, ignoring the process environment (for tests).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> EnvLookup {
        EnvLookup {
            source: Source::Pairs(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// The non-blank value of `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        match &self.source {
            Source::Pairs(map) => map.get(key).filter(|v| !is_blank(v)).cloned(),
            Source::Process { start_dir, file } => {
                if let Some(value) = std::env::var(key).ok().filter(|v| !is_blank(v)) {
                    return Some(value);
                }
                if !ENV_FILE_KEYS.contains(&key) {
                    return None;
                }
                let dir = start_dir.as_deref()?;
                file.get_or_init(|| EnvFile::find(dir))
                    .as_ref()
                    .and_then(|f| f.get(key))
                    .map(str::to_owned)
            }
        }
    }
}

fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

/// A parsed `.env.braintrust` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    path: PathBuf,
    values: HashMap<String, String>,
}

impl EnvFile {
    /// The nearest `.env.braintrust` at or above `start` (at most [`MAX_PARENT_DIRS`] parents).
    /// An unreadable nearest file yields an empty file: it still ends the search.
    pub fn find(start: &Path) -> Option<EnvFile> {
        for dir in start.ancestors().take(MAX_PARENT_DIRS + 1) {
            let path = dir.join(ENV_FILE_NAME);
            if path.is_file() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                return Some(EnvFile::parse(path, &text));
            }
        }
        None
    }

    /// Parses file contents. Malformed lines are skipped; only allow-listed keys are kept.
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> EnvFile {
        let values = text
            .lines()
            .filter_map(parse_line)
            .filter(|(k, v)| ENV_FILE_KEYS.contains(&k.as_str()) && !is_blank(v))
            .collect();
        EnvFile {
            path: path.into(),
            values,
        }
    }

    /// The value of `key` in this file, if present and non-blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses one `KEY=value` line; `None` for blanks, comments and malformed lines.
fn parse_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (key, rest) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let rest = rest.trim_start();
    let value = match rest.chars().next() {
        Some(quote @ ('"' | '\'')) => parse_quoted(&rest[1..], quote)?,
        _ => strip_comment(rest).trim_end().to_owned(),
    };
    Some((key.to_owned(), value))
}

fn parse_quoted(body: &str, quote: char) -> Option<String> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            let after = body[i + 1..].trim_start();
            // Only a comment may follow the closing quote.
            return (after.is_empty() || after.starts_with('#')).then_some(out);
        }
        if c == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => out.push(other),
                None => return None,
            }
        } else {
            out.push(c);
        }
    }
    None // unclosed quote
}

fn strip_comment(value: &str) -> &str {
    if value.starts_with('#') {
        return "";
    }
    match value.find(" #").or_else(|| value.find("\t#")) {
        Some(i) => &value[..i],
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> EnvFile {
        EnvFile::parse("test", text)
    }

    #[test]
    fn parses_the_documented_forms() {
        let file = parse(
            "# comment\n\
             BRAINTRUST_API_KEY=sk-plain # trailing comment\n\
             export BRAINTRUST_ORG_NAME=\"my org\" # c\n\
             BRAINTRUST_PROJECT='single # not a comment'\n\
             BRAINTRUST_APP_URL=\"esc \\\"q\\\"\"\n\
             BRAINTRUST_API_URL=\"unclosed\n\
             BRAINTRUST_PROJECT_ID=   \n\
             NOT_ALLOWED=1\n",
        );
        assert_eq!(file.get("BRAINTRUST_API_KEY"), Some("sk-plain"));
        assert_eq!(file.get("BRAINTRUST_ORG_NAME"), Some("my org"));
        assert_eq!(
            file.get("BRAINTRUST_PROJECT"),
            Some("single # not a comment")
        );
        assert_eq!(file.get("BRAINTRUST_APP_URL"), Some("esc \"q\""));
        assert_eq!(file.get("BRAINTRUST_API_URL"), None, "malformed line");
        assert_eq!(file.get("BRAINTRUST_PROJECT_ID"), None, "blank value");
        assert_eq!(file.get("NOT_ALLOWED"), None, "not allow-listed");
    }

    #[test]
    fn no_interpolation() {
        let file = parse("BRAINTRUST_API_KEY=$HOME/${USER}\n");
        assert_eq!(file.get("BRAINTRUST_API_KEY"), Some("$HOME/${USER}"));
    }

    #[test]
    fn nearest_file_is_a_hard_boundary() {
        let root = std::env::temp_dir().join(format!("bt-envfile-{}", crate::id::new_uuid_v4()));
        let inner = root.join("a").join("b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(
            root.join(ENV_FILE_NAME),
            "BRAINTRUST_API_KEY=outer\nBRAINTRUST_ORG_NAME=outer-org\n",
        )
        .unwrap();
        std::fs::write(
            root.join("a").join(ENV_FILE_NAME),
            "BRAINTRUST_API_KEY=inner\n",
        )
        .unwrap();

        let lookup = EnvLookup::process_from_dir(&inner);
        // A key the process environment of the test runner does not set.
        assert_eq!(lookup.get("BRAINTRUST_ENVIRONMENT_NAME"), None);
        let found = EnvFile::find(&inner).unwrap();
        assert_eq!(found.get("BRAINTRUST_API_KEY"), Some("inner"));
        // ORG_NAME exists only in the outer file, which the nearer file hides.
        assert_eq!(found.get("BRAINTRUST_ORG_NAME"), None);
        assert_eq!(found.path(), root.join("a").join(ENV_FILE_NAME));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn booleans() {
        for t in ["true", "1", "YES", "y", "On"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "0", "no", "N", "off"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn pairs_treat_blank_as_unset() {
        let lookup = EnvLookup::from_pairs([("A", "  "), ("B", "x")]);
        assert_eq!(lookup.get("A"), None);
        assert_eq!(lookup.get("B").as_deref(), Some("x"));
    }
}
