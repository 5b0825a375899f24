//! Braintrust functions as eval tasks and scorers.

use std::borrow::Cow;

use braintrust_functions::Function;
use braintrust_functions::function::ScorerInput;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::score::{BoxError, BoxFuture, Score, ScoreOutput, Scorer, ScorerArgs, to_value};
use crate::task::{EvalHooks, Task};

/// A function as a task: the case's input goes in, the output is decoded into `O`.
impl<I, O> Task<I, O> for Function
where
    I: Serialize + Sync,
    O: DeserializeOwned + Send,
{
    fn run<'a>(
        &'a self,
        input: &'a I,
        _hooks: &'a EvalHooks,
    ) -> BoxFuture<'a, Result<O, BoxError>> {
        let input = to_value(input);
        Box::pin(async move {
            let output = self.invoke(input).await?;
            Ok(serde_json::from_value(output)?)
        })
    }
}

/// A function as a scorer: it gets `{input, output, expected, metadata}` and returns a
/// number, a score object `{name?, score, metadata?}`, or a list of those.
impl<I, O, E> Scorer<I, O, E> for Function
where
    I: Serialize + Sync,
    O: Serialize + Sync,
    E: Serialize + Sync,
{
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.slug())
    }

    fn score<'a>(
        &'a self,
        args: ScorerArgs<'a, I, O, E>,
    ) -> BoxFuture<'a, Result<ScoreOutput, BoxError>> {
        let input = ScorerInput {
            input: to_value(args.input),
            output: to_value(args.output),
            expected: args.expected.map(to_value).unwrap_or(Value::Null),
            metadata: Value::Object(args.metadata.clone()),
        };
        Box::pin(async move {
            let value = Function::score(self, &input).await?;
            score_from_value(self.slug(), value)
        })
    }
}

/// Reads a scorer's JSON answer.
pub(crate) fn score_from_value(name: &str, value: Value) -> Result<ScoreOutput, BoxError> {
    let one = |v: &Value| -> Result<Score, BoxError> {
        match v {
            Value::Number(n) => Ok(Score::new(name, n.as_f64())),
            Value::Bool(b) => Ok(Score::new(name, if *b { 1.0 } else { 0.0 })),
            Value::Null => Ok(Score::new(name, None)),
            Value::Object(map) => {
                let score = match map.get("score") {
                    Some(Value::Number(n)) => n.as_f64(),
                    Some(Value::Bool(b)) => Some(if *b { 1.0 } else { 0.0 }),
                    Some(Value::Null) | None if map.contains_key("score") => None,
                    _ => {
                        return Err(format!(
                            "When returning a dict, it must be a valid Score object. Got: {v}"
                        )
                        .into());
                    }
                };
                let mut s = Score::new(
                    map.get("name").and_then(Value::as_str).unwrap_or(name),
                    score,
                );
                if let Some(Value::Object(m)) = map.get("metadata") {
                    s.metadata = m.clone();
                }
                Ok(s)
            }
            other => Err(format!("a scorer returned {other}, not a score").into()),
        }
    };
    match &value {
        Value::Array(items) => Ok(ScoreOutput::Scores(
            items.iter().map(one).collect::<Result<_, _>>()?,
        )),
        Value::Object(_) => Ok(ScoreOutput::Scores(vec![one(&value)?])),
        _ => Ok(ScoreOutput::Value(one(&value)?.score)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scorer_answers_become_scores() {
        assert_eq!(
            score_from_value("f", json!(0.5)).unwrap(),
            ScoreOutput::Value(Some(0.5))
        );
        assert_eq!(
            score_from_value("f", json!(true)).unwrap(),
            ScoreOutput::Value(Some(1.0))
        );
        assert_eq!(
            score_from_value("f", json!({"score": 0.25, "metadata": {"why": "x"}})).unwrap(),
            ScoreOutput::Scores(vec![Score::new("f", 0.25).metadata(json!({"why": "x"}))])
        );
        assert_eq!(
            score_from_value(
                "f",
                json!([{"name": "a", "score": 1}, {"name": "b", "score": 0}])
            )
            .unwrap(),
            ScoreOutput::Scores(vec![Score::new("a", 1.0), Score::new("b", 0.0)])
        );
        let err = score_from_value("f", json!({"nope": 1})).unwrap_err();
        assert!(err.to_string().starts_with("When returning a dict"));
        assert!(score_from_value("f", json!("text")).is_err());
    }
}
