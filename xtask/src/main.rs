//! Project automation, run as `cargo xtask <command>`.
//!
//! * `ci`: everything `.ci/run` checks, in order: formatting, clippy with warnings denied, the
//!   whole test suite (unit, integration, doc tests), and the docs with warnings denied.

use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => run_steps(&ci_steps()),
        _ => {
            eprintln!("usage: cargo xtask ci");
            ExitCode::from(2)
        }
    }
}

struct Step {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

fn ci_steps() -> Vec<Step> {
    vec![
        Step {
            name: "format",
            args: &["fmt", "--all", "--check"],
            env: &[],
        },
        Step {
            name: "clippy",
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
        Step {
            name: "tests",
            args: &["test", "--workspace", "--all-features", "--all-targets"],
            env: &[],
        },
        Step {
            name: "doc tests",
            args: &["test", "--workspace", "--all-features", "--doc"],
            env: &[],
        },
        Step {
            name: "docs",
            args: &["doc", "--workspace", "--no-deps", "--all-features"],
            env: &[("RUSTDOCFLAGS", "--cfg docsrs -D warnings")],
        },
    ]
}

fn run_steps(steps: &[Step]) -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for step in steps {
        let started = Instant::now();
        eprintln!("==> {}: cargo {}", step.name, step.args.join(" "));
        let status = Command::new(&cargo)
            .args(step.args)
            .envs(step.env.iter().copied())
            .status();
        match status {
            Ok(s) if s.success() => {
                eprintln!("==> {} ok ({:.0?})", step.name, started.elapsed());
            }
            Ok(s) => {
                eprintln!("==> {} FAILED ({s})", step.name);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("==> {} could not run: {e}", step.name);
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("==> all CI steps passed");
    ExitCode::SUCCESS
}
