//! Masking: a global function that rewrites sensitive values before rows leave the process.
//!
//! The function is applied after rows are merged, to each of `input`, `output`, `expected`,
//! `metadata`, `context`, `scores` and `metrics` that a row has (never to `tags`, `error` or
//! ids). When it fails on a field (returns an error or panics) the field gets a placeholder
//! `ERROR: Failed to mask field '<field>' - <ErrorType>`: as a string for `input`, `output`,
//! `expected` and `context`; as `{"error": …}` for `metadata`; for `scores` and `metrics` the
//! field is dropped and the text is appended to `error`.
//!
//! ```
//! use braintrust_core::mask::MaskingFunction;
//! use serde_json::{json, Value};
//!
//! let mask = MaskingFunction::infallible(|v: &Value| match v {
//!     Value::String(s) => Value::String(s.replace("secret", "***")),
//!     other => other.clone(),
//! });
//! let mut row = json!({"input": "my secret", "tags": ["secret"]}).as_object().unwrap().clone();
//! mask.apply(&mut row);
//! assert_eq!(row["input"], "my ***");
//! assert_eq!(row["tags"], json!(["secret"]));
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

/// Fields the masking function is applied to.
pub const MASKED_FIELDS: [&str; 7] = [
    "input", "output", "expected", "metadata", "context", "scores", "metrics",
];

type MaskFn = dyn Fn(&Value) -> Result<Value, String> + Send + Sync;

/// A masking function. Cheap to clone.
#[derive(Clone)]
pub struct MaskingFunction {
    f: Arc<MaskFn>,
}

impl std::fmt::Debug for MaskingFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingFunction").finish_non_exhaustive()
    }
}

impl MaskingFunction {
    /// A fallible masking function. On error the placeholder names the error's type.
    pub fn new<F, E>(f: F) -> MaskingFunction
    where
        F: Fn(&Value) -> Result<Value, E> + Send + Sync + 'static,
        E: 'static,
    {
        let type_name = short_type_name(std::any::type_name::<E>());
        MaskingFunction {
            f: Arc::new(move |v| f(v).map_err(|_| type_name.clone())),
        }
    }

    /// A masking function that cannot fail (it may still panic; that is reported as `Panic`).
    pub fn infallible<F>(f: F) -> MaskingFunction
    where
        F: Fn(&Value) -> Value + Send + Sync + 'static,
    {
        MaskingFunction {
            f: Arc::new(move |v| Ok(f(v))),
        }
    }

    /// Masks one row in place (see the module docs for the rules).
    pub fn apply(&self, row: &mut Map<String, Value>) {
        for field in MASKED_FIELDS {
            let Some(value) = row.get(field) else {
                continue;
            };
            let result = catch_unwind(AssertUnwindSafe(|| (self.f)(value)))
                .unwrap_or_else(|_| Err("Panic".to_owned()));
            match result {
                Ok(masked) => {
                    row.insert(field.to_owned(), masked);
                }
                Err(type_name) => {
                    let text = format!("ERROR: Failed to mask field '{field}' - {type_name}");
                    match field {
                        "metadata" => {
                            let mut m = Map::new();
                            m.insert("error".into(), Value::String(text));
                            row.insert(field.to_owned(), Value::Object(m));
                        }
                        "scores" | "metrics" => {
                            row.remove(field);
                            let error = match row.remove("error") {
                                None | Some(Value::Null) => text,
                                Some(Value::String(e)) => format!("{e}; {text}"),
                                Some(other) => format!("{other}; {text}"),
                            };
                            row.insert("error".into(), Value::String(error));
                        }
                        _ => {
                            row.insert(field.to_owned(), Value::String(text));
                        }
                    }
                }
            }
        }
    }
}

fn short_type_name(full: &str) -> String {
    let base = full.split('<').next().unwrap_or(full);
    let short = base.rsplit("::").next().unwrap_or(base);
    if short.is_empty() { "Error" } else { short }.to_owned()
}

static GLOBAL_MASK: RwLock<Option<MaskingFunction>> = RwLock::new(None);

/// Whether `GLOBAL_MASK` holds a function, readable without its lock.
static MASKING: AtomicBool = AtomicBool::new(false);

/// Installs (or with `None` removes) the process-wide masking function.
pub fn set_masking_function(mask: Option<MaskingFunction>) {
    let mut slot = GLOBAL_MASK.write().unwrap_or_else(|e| e.into_inner());
    MASKING.store(mask.is_some(), Ordering::Release);
    *slot = mask;
}

/// Whether a masking function is installed (one atomic load).
pub(crate) fn is_masking() -> bool {
    MASKING.load(Ordering::Acquire)
}

/// The process-wide masking function, if one is installed.
pub fn masking_function() -> Option<MaskingFunction> {
    GLOBAL_MASK
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug)]
    struct KeyError;

    #[test]
    fn failures_get_the_observed_placeholders() {
        // The row of python-masking.jsonl: masking succeeds on input, fails elsewhere.
        let mask = MaskingFunction::new(|v: &Value| match v {
            Value::String(s) if s.contains("secret") => {
                Ok(Value::String(s.replace("secret", "***")))
            }
            _ => Err(KeyError),
        });
        let mut row = json!({
            "id": "mask-row", "input": "my secret", "output": {"o": 1},
            "metadata": {"m": 1}, "scores": {"s": 1}, "tags": ["t"]
        })
        .as_object()
        .unwrap()
        .clone();
        mask.apply(&mut row);
        assert_eq!(
            Value::Object(row),
            json!({
                "id": "mask-row", "input": "my ***",
                "output": "ERROR: Failed to mask field 'output' - KeyError",
                "metadata": {"error": "ERROR: Failed to mask field 'metadata' - KeyError"},
                "tags": ["t"],
                "error": "ERROR: Failed to mask field 'scores' - KeyError"
            })
        );
    }

    #[test]
    fn existing_errors_are_appended_to_and_panics_are_contained() {
        let mask = MaskingFunction::infallible(|_| panic!("boom"));
        let mut row = json!({"error": "original", "metrics": {"start": 1.0}, "context": {}})
            .as_object()
            .unwrap()
            .clone();
        mask.apply(&mut row);
        assert_eq!(
            Value::Object(row),
            json!({
                "error": "original; ERROR: Failed to mask field 'metrics' - Panic",
                "context": "ERROR: Failed to mask field 'context' - Panic"
            })
        );
    }

    #[test]
    fn error_type_names_are_short() {
        assert_eq!(short_type_name("std::io::Error"), "Error");
        assert_eq!(short_type_name("my::Thing<u8>"), "Thing");
        assert_eq!(short_type_name("String"), "String");
    }

    #[test]
    fn global_slot_round_trips() {
        set_masking_function(Some(MaskingFunction::infallible(|_| json!("x"))));
        let mut row = json!({"input": 1}).as_object().unwrap().clone();
        masking_function().unwrap().apply(&mut row);
        assert_eq!(row["input"], "x");
        set_masking_function(None);
        assert!(masking_function().is_none());
    }
}
