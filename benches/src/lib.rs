//! Benchmarks for braintrust-rs: criterion benches (`cargo bench -p braintrust-benches`) and,
//! as the pipeline grows, bench binaries.
