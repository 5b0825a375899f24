//! Runnable examples for braintrust-rs; see the `[[example]]` targets of this package.
