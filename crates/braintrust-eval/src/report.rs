//! Reporting runs: the [`Reporter`] trait, the default [`ConsoleReporter`] (an aligned table
//! of scores with counts and the comparison against the baseline, metrics, the experiment
//! link, then the failed cases), and one-JSON-line-per-eval output (`--jsonl` style).

use std::fmt::Write as _;
use std::io::IsTerminal;

use serde::Serialize;

use crate::summary::{EvalResultWithSummary, EvalSummary, RunOutcome};

/// One failed row, for reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedRow {
    /// The case's input, as compact JSON (truncated).
    pub input: String,
    /// The trial.
    pub trial_index: usize,
    /// What went wrong.
    pub message: String,
}

/// A run, reduced to what reporters need (no type parameters).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// The summary.
    pub summary: EvalSummary,
    /// Rows whose task failed, timed out or was cancelled.
    pub failed_rows: Vec<FailedRow>,
    /// Scorer and classifier errors: (scorer, row, message).
    pub scorer_errors: Vec<(String, FailedRow)>,
}

const MAX_INPUT_CHARS: usize = 80;

fn short_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(MAX_INPUT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

impl EvalReport {
    /// The report of a run.
    pub fn from_result<I: Serialize, O, E>(result: &EvalResultWithSummary<I, O, E>) -> EvalReport {
        let mut failed_rows = Vec::new();
        let mut scorer_errors = Vec::new();
        for r in &result.results {
            let row = |message: String| FailedRow {
                input: short_json(&crate::score::to_value(r.input())),
                trial_index: r.trial_index,
                message,
            };
            if let Some(error) = &r.error {
                failed_rows.push(row(error.to_string()));
            }
            for (name, message) in r.scorer_errors.iter().chain(&r.classifier_errors) {
                scorer_errors.push((name.clone(), row(message.clone())));
            }
        }
        EvalReport {
            summary: result.summary.clone(),
            failed_rows,
            scorer_errors,
        }
    }

    /// Whether the run passed by the default rule: no failed rows and a complete run.
    pub fn passed(&self) -> bool {
        self.failed_rows.is_empty() && self.summary.outcome == RunOutcome::Completed
    }
}

/// Reports runs. The default reporter is [`ConsoleReporter`].
pub trait Reporter: Send + Sync {
    /// The reporter's name.
    fn name(&self) -> &str {
        "default"
    }

    /// Reports one eval; returns whether it passed (default rule: [`EvalReport::passed`]).
    fn report_eval(&self, report: &EvalReport) -> bool;

    /// Reports a whole run of several evals; returns whether it passed.
    fn report_run(&self, passed: &[bool]) -> bool {
        passed.iter().all(|p| *p)
    }
}

/// Prints an aligned table on stdout and the failures on stderr; or, in JSON-lines mode
/// (`BT_EVAL_JSONL=1` by default), one summary object per eval on stdout.
#[derive(Debug, Clone)]
pub struct ConsoleReporter {
    /// Print one JSON line instead of the table.
    pub jsonl: bool,
    /// Print every failed row, not only the first ten.
    pub verbose: bool,
    /// Use ANSI colours (default: stdout is a terminal and `NO_COLOR` is unset).
    pub color: bool,
}

impl Default for ConsoleReporter {
    fn default() -> ConsoleReporter {
        let flag = |name: &str| {
            std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
        };
        ConsoleReporter {
            jsonl: flag("BT_EVAL_JSONL"),
            verbose: flag("BT_EVAL_VERBOSE"),
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

impl Reporter for ConsoleReporter {
    fn report_eval(&self, report: &EvalReport) -> bool {
        if self.jsonl {
            println!("{}", render_jsonl(report));
        } else {
            print!("{}", render_table(report, self.color));
            let errors = render_errors(report, self.verbose);
            if !errors.is_empty() {
                eprint!("{errors}");
            }
        }
        report.passed()
    }
}

/// The JSON line of a report: the summary and, when rows failed, their errors.
pub fn render_jsonl(report: &EvalReport) -> String {
    let mut value = serde_json::to_value(&report.summary).unwrap_or_default();
    if !report.failed_rows.is_empty() {
        value["errors"] = serde_json::to_value(&report.failed_rows).unwrap_or_default();
    }
    value.to_string()
}

fn percent(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

fn signed_percent(v: Option<f64>) -> String {
    match v {
        Some(d) => format!(
            "{}{:.2}%",
            if d >= 0.0 { "+" } else { "-" },
            d.abs() * 100.0
        ),
        None => "-".into(),
    }
}

fn metric_value(value: f64, unit: &str) -> String {
    match unit {
        "$" => format!("${value:.4}"),
        "tok" if value.fract() == 0.0 => format!("{value:.0}tok"),
        "tok" => format!("{value:.2}tok"),
        "s" if value.abs() < 1.0 => format!("{:.1}ms", value * 1000.0),
        _ => format!("{value:.2}{unit}"),
    }
}

fn paint(text: String, code: &str, color: bool) -> String {
    if color && !code.is_empty() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text
    }
}

/// A table of rows whose first column is left-aligned and the others right-aligned.
fn table(rows: &[Vec<String>], colors: &[Vec<&str>], color: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            let code = colors
                .get(r)
                .and_then(|cs| cs.get(c))
                .copied()
                .unwrap_or("");
            let painted = paint(cell.clone(), code, color);
            if c == 0 {
                line.push_str(&painted);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(&painted);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The summary table.
pub fn render_table(report: &EvalReport, color: bool) -> String {
    let s = &report.summary;
    let mut out = String::from("\n");
    let _ = write!(out, "{}", paint(s.eval_name.clone(), "1", color));
    if let Some(name) = &s.experiment_name {
        let _ = write!(out, " (experiment {name}");
        if let Some(base) = &s.comparison_experiment_name {
            let _ = write!(out, ", compared with {base}");
        }
        out.push(')');
    }
    let _ = writeln!(
        out,
        ": {} row(s){}",
        s.rows,
        match s.outcome {
            RunOutcome::Completed => String::new(),
            RunOutcome::TimedOut => ", timed out (partial results)".into(),
            RunOutcome::Cancelled => ", cancelled (partial results)".into(),
        }
    );
    let compared = s.comparison_experiment_name.is_some();
    let mut header = vec!["Score", "Mean", "n", "Errors", "Skipped"];
    if compared {
        header.extend(["Change", "Improved", "Regressed"]);
    }
    let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    let mut colors: Vec<Vec<&str>> = vec![vec!["2"; header.len()]];
    for score in &s.scores {
        let mut row = vec![
            score.name.clone(),
            percent(score.mean),
            score.n.to_string(),
            score.errors.to_string(),
            score.skipped.to_string(),
        ];
        let mut row_colors = vec!["", "", "", if score.errors > 0 { "31" } else { "" }, ""];
        if compared {
            row.push(signed_percent(score.diff));
            row.push(score.improvements.to_string());
            row.push(score.regressions.to_string());
            row_colors.push(match score.diff {
                Some(d) if d > 0.0 => "32",
                Some(d) if d < 0.0 => "31",
                _ => "",
            });
            row_colors.push(if score.improvements > 0 { "32" } else { "" });
            row_colors.push(if score.regressions > 0 { "31" } else { "" });
        }
        rows.push(row);
        colors.push(row_colors);
    }
    if s.scores.is_empty() {
        out.push_str("  (no scores)\n");
    } else {
        out.push_str(&table(&rows, &colors, color));
    }
    if !s.metrics.is_empty() {
        let mut header = vec!["Metric", "Mean"];
        if compared {
            header.extend(["Change", "Improved", "Regressed"]);
        }
        let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
        let mut colors: Vec<Vec<&str>> = vec![vec!["2"; header.len()]];
        for m in &s.metrics {
            let mut row = vec![m.name.clone(), metric_value(m.metric, &m.unit)];
            if compared {
                row.push(m.diff.map_or("-".into(), |d| {
                    let sign = if d >= 0.0 { "+" } else { "-" };
                    format!("{sign}{}", metric_value(d.abs(), &m.unit))
                }));
                row.push(m.improvements.to_string());
                row.push(m.regressions.to_string());
            }
            rows.push(row);
            colors.push(Vec::new());
        }
        out.push('\n');
        out.push_str(&table(&rows, &colors, color));
    }
    if let Some(reason) = &s.summary_skipped {
        let _ = writeln!(out, "  Summary skipped: {reason}");
    }
    if let (Some(name), Some(url)) = (&s.experiment_name, &s.experiment_url) {
        let _ = writeln!(out, "See results for {name} at {url}");
    }
    out
}

/// The failed rows and scorer errors (empty when there are none).
pub fn render_errors(report: &EvalReport, verbose: bool) -> String {
    let mut out = String::new();
    let limit = if verbose { usize::MAX } else { 10 };
    if !report.failed_rows.is_empty() {
        let _ = writeln!(
            out,
            "Eval {} failed: {} of {} row(s) have errors",
            report.summary.eval_name,
            report.failed_rows.len(),
            report.summary.rows
        );
        for row in report.failed_rows.iter().take(limit) {
            let _ = writeln!(
                out,
                "  input {} (trial {}): {}",
                row.input, row.trial_index, row.message
            );
        }
        if report.failed_rows.len() > limit {
            let _ = writeln!(
                out,
                "  … and {} more (set BT_EVAL_VERBOSE=1 to see all)",
                report.failed_rows.len() - limit
            );
        }
    }
    if !report.scorer_errors.is_empty() {
        let _ = writeln!(
            out,
            "Scorer errors (the rows are kept; their scores are missing):"
        );
        for (scorer, row) in report.scorer_errors.iter().take(limit) {
            let _ = writeln!(
                out,
                "  {scorer}, input {} (trial {}): {}",
                row.input, row.trial_index, row.message
            );
        }
        if report.scorer_errors.len() > limit {
            let _ = writeln!(out, "  … and {} more", report.scorer_errors.len() - limit);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::ScoreStats;
    use braintrust_transport::experiment::MetricSummary;

    fn report(compared: bool) -> EvalReport {
        EvalReport {
            summary: EvalSummary {
                eval_name: "demo".into(),
                project_name: Some("demo".into()),
                project_id: None,
                experiment_id: None,
                experiment_name: Some("demo-2".into()),
                project_url: None,
                experiment_url: Some("http://x/demo-2".into()),
                comparison_experiment_name: compared.then(|| "demo-1".into()),
                scores: vec![
                    ScoreStats {
                        name: "ExactMatch".into(),
                        mean: 0.75,
                        n: 4,
                        errors: 0,
                        skipped: 0,
                        diff: Some(0.25),
                        improvements: 1,
                        regressions: 0,
                    },
                    ScoreStats {
                        name: "x".into(),
                        mean: 1.0,
                        n: 3,
                        errors: 1,
                        skipped: 0,
                        diff: Some(-0.5),
                        improvements: 0,
                        regressions: 2,
                    },
                ],
                metrics: vec![MetricSummary {
                    name: "duration".into(),
                    metric: 0.0123,
                    unit: "s".into(),
                    diff: Some(-0.002),
                    improvements: 3,
                    regressions: 1,
                }],
                summary_skipped: None,
                outcome: RunOutcome::Completed,
                rows: 4,
                failed_rows: 1,
                rows_with_scorer_errors: 0,
                cases_seconds: 0.5,
            },
            failed_rows: vec![FailedRow {
                input: "\"b\"".into(),
                trial_index: 0,
                message: "boom".into(),
            }],
            scorer_errors: Vec::new(),
        }
    }

    #[test]
    fn the_table_is_aligned_and_shows_the_comparison() {
        let text = render_table(&report(true), false);
        let expected = "
demo (experiment demo-2, compared with demo-1): 4 row(s)
  Score          Mean  n  Errors  Skipped   Change  Improved  Regressed
  ExactMatch   75.00%  4       0        0  +25.00%         1          0
  x           100.00%  3       1        0  -50.00%         0          2

  Metric      Mean  Change  Improved  Regressed
  duration  12.3ms  -2.0ms         3          1
See results for demo-2 at http://x/demo-2
";
        assert_eq!(text, expected);
        let plain = render_table(&report(false), false);
        assert!(plain.contains("  Score          Mean  n  Errors  Skipped\n"));
        assert!(!plain.contains("Change"));
        assert!(render_table(&report(true), true).contains("\x1b[31m-50.00%\x1b[0m"));
    }

    #[test]
    fn failures_and_json_lines() {
        let r = report(false);
        assert!(!r.passed());
        let errors = render_errors(&r, false);
        assert!(errors.starts_with("Eval demo failed: 1 of 4 row(s) have errors\n"));
        assert!(errors.contains("input \"b\" (trial 0): boom"));
        let line: serde_json::Value = serde_json::from_str(&render_jsonl(&r)).unwrap();
        assert_eq!(line["scores"][0]["name"], "ExactMatch");
        assert_eq!(line["errors"][0]["message"], "boom");
        assert!(line.get("_longest_score_name").is_none());
    }
}
