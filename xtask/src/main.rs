//! Project automation, run as `cargo xtask <command>`.
//!
//! * `ci`: everything `.ci/run` checks, in order: formatting, clippy with warnings denied, the
//!   whole test suite (unit, integration, doc tests), and the docs with warnings denied. The
//!   last line totals the test results: `tests: N passed, M failed, K skipped`. When the
//!   conformance data is present it then runs the llm-span conformance suite. With
//!   `XTASK_LOW_DISK=1` (set by `.ci/run`) the clippy steps build into `target/ci-check`, which
//!   is removed before the tests build, so the two builds never take disk space at once.
//! * `conformance [--spec DIR] [--cassettes DIR]`: the llm-span conformance suite (defaults
//!   `../shared/conformance/spec` and `../shared/conformance/cassettes`, or under
//!   `BRAINTRUST_CONFORMANCE_DIR`): one line per case, then `N passed, M failed`.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => {
            let code = run_steps(&ci_steps());
            if code != ExitCode::SUCCESS {
                return code;
            }
            let defaults = conformance_defaults();
            if defaults.spec_dir.is_dir() {
                eprintln!("==> conformance: {}", defaults.spec_dir.display());
                conformance(&defaults)
            } else {
                eprintln!(
                    "==> conformance skipped: {} not found (set BRAINTRUST_CONFORMANCE_DIR)",
                    defaults.spec_dir.display()
                );
                ExitCode::SUCCESS
            }
        }
        Some("conformance") => match conformance_options(&args[1..]) {
            Ok(options) => conformance(&options),
            Err(e) => {
                eprintln!("{e}\nusage: cargo xtask conformance [--spec DIR] [--cassettes DIR]");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask ci | cargo xtask conformance [--spec DIR] [--cassettes DIR]"
            );
            ExitCode::from(2)
        }
    }
}

/// `$BRAINTRUST_CONFORMANCE_DIR` or `../shared/conformance`, from the workspace root.
fn conformance_defaults() -> braintrust_conformance::RunOptions {
    let root = std::env::var_os("BRAINTRUST_CONFORMANCE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
        });
    braintrust_conformance::RunOptions {
        spec_dir: root.join("spec"),
        cassettes_dir: root.join("cassettes"),
        replay: Default::default(),
    }
}

fn conformance_options(args: &[String]) -> Result<braintrust_conformance::RunOptions, String> {
    let mut options = conformance_defaults();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = || {
            it.clone()
                .next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a directory"))
        };
        match arg.as_str() {
            "--spec" => options.spec_dir = value()?.into(),
            "--cassettes" => options.cassettes_dir = value()?.into(),
            other => return Err(format!("unknown argument {other}")),
        }
        it.next();
    }
    Ok(options)
}

fn conformance(options: &braintrust_conformance::RunOptions) -> ExitCode {
    match braintrust_conformance::run_all(options) {
        Ok(results) if braintrust_conformance::report(&results) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Step {
    name: &'static str,
    /// Whether the step runs tests whose `test result:` lines are totalled.
    counts_tests: bool,
    /// Whether the step only checks (clippy): its build is not reused by later steps.
    check_only: bool,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

fn ci_steps() -> Vec<Step> {
    vec![
        Step {
            name: "format",
            counts_tests: false,
            check_only: false,
            args: &["fmt", "--all", "--check"],
            env: &[],
        },
        Step {
            name: "clippy",
            counts_tests: false,
            check_only: true,
            args: &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
            env: &[],
        },
        // The provider clients are features: every crate must also build with each one alone.
        Step {
            name: "providers without features",
            counts_tests: false,
            check_only: true,
            args: &[
                "clippy",
                "-p",
                "braintrust-providers",
                "--no-default-features",
                "--",
                "-D",
                "warnings",
            ],
            env: &[],
        },
        Step {
            name: "providers with bedrock only",
            counts_tests: false,
            check_only: true,
            args: &[
                "clippy",
                "-p",
                "braintrust-providers",
                "--no-default-features",
                "--features",
                "bedrock",
                "--",
                "-D",
                "warnings",
            ],
            env: &[],
        },
        Step {
            name: "providers with the client wrappers only",
            counts_tests: false,
            check_only: true,
            args: &[
                "clippy",
                "-p",
                "braintrust-providers",
                "--no-default-features",
                "--features",
                "async-openai,aws-sdk-bedrock",
                "--",
                "-D",
                "warnings",
            ],
            env: &[],
        },
        Step {
            name: "tests",
            counts_tests: true,
            check_only: false,
            args: &["test", "--workspace", "--all-features", "--all-targets"],
            env: &[],
        },
        Step {
            name: "doc tests",
            counts_tests: true,
            check_only: false,
            args: &["test", "--workspace", "--all-features", "--doc"],
            env: &[],
        },
        Step {
            name: "docs",
            counts_tests: false,
            check_only: false,
            args: &["doc", "--workspace", "--no-deps", "--all-features"],
            env: &[("RUSTDOCFLAGS", "--cfg docsrs -D warnings")],
        },
    ]
}

/// Totals of libtest's `test result:` lines.
#[derive(Debug, Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    /// Adds a line like `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; …`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(kind), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match kind {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

/// Where check-only steps build when disk space is short (`XTASK_LOW_DISK=1`).
const CHECK_TARGET_DIR: &str = "target/ci-check";

fn run_steps(steps: &[Step]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let low_disk = std::env::var_os("XTASK_LOW_DISK").is_some_and(|v| v == "1");
    let check_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CHECK_TARGET_DIR);
    let mut totals = Totals::default();
    for step in steps {
        if low_disk
            && !step.check_only
            && check_dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&check_dir)
        {
            eprintln!("==> could not remove {}: {e}", check_dir.display());
        }
        let started = Instant::now();
        eprintln!("==> {}: cargo {}", step.name, step.args.join(" "));
        let target_dir = (low_disk && step.check_only).then_some(check_dir.as_path());
        let status = run(&cargo, step, target_dir, &mut totals);
        match status {
            Ok(s) if s.success() => {
                eprintln!("==> {} ok ({:.0?})", step.name, started.elapsed());
            }
            Ok(s) => {
                eprintln!("==> {} FAILED ({s})", step.name);
                print_totals(&totals);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("==> {} could not run: {e}", step.name);
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("==> all CI steps passed");
    print_totals(&totals);
    ExitCode::SUCCESS
}

fn run(
    cargo: &str,
    step: &Step,
    target_dir: Option<&std::path::Path>,
    totals: &mut Totals,
) -> std::io::Result<std::process::ExitStatus> {
    let mut command = Command::new(cargo);
    command.args(step.args).envs(step.env.iter().copied());
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    if !step.counts_tests {
        return command.status();
    }
    let mut child = command.stdout(Stdio::piped()).spawn()?;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            totals.add_line(&line);
            println!("{line}");
        }
    }
    child.wait()
}

fn print_totals(totals: &Totals) {
    println!(
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_add_up_libtest_summaries() {
        let mut t = Totals::default();
        t.add_line("test result: ok. 37 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.13s");
        t.add_line(
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 3 tests");
        assert_eq!((t.passed, t.failed, t.ignored), (40, 1, 2));
    }
}
