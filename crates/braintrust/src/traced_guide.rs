//! Guide: `#[traced]`, the attribute that turns a function into a span.
//!
//! Put [`macro@crate::traced`] on a function and every call becomes a span: a child of the
//! current span, or a root of the current experiment or logger when there is none. The span is
//! current while the body runs (across `.await`s, too), so traced functions called inside nest
//! under it, and it ends when the call returns — also on early `return`, `?` and panic.
//!
//! With no logger or experiment initialised, a traced call costs one relaxed atomic load and a
//! branch: nothing is serialised or allocated.
//!
//! # Synchronous functions
//!
//! Arguments are logged as `input`, an object keyed by parameter name; the return value as
//! `output`. Values that implement `serde::Serialize` are logged as JSON, others by their
//! `Debug` text, and values with neither are left out — any argument type compiles.
//!
//! ```
//! use braintrust::{LoggerOptions, traced};
//!
//! #[traced]
//! fn retrieve(question: &str, top_k: usize) -> Vec<String> {
//!     (0..top_k).map(|i| format!("doc-{i} about {question}")).collect()
//! }
//!
//! #[traced(name = "answer", type = "task", metadata = {"model": "gpt-4o-mini"}, tags = ["rag"])]
//! fn answer(question: &str) -> String {
//!     let docs = retrieve(question, 2); // a child span of "answer"
//!     format!("{} documents", docs.len())
//! }
//!
//! # let server = braintrust_local::LocalServer::start()?;
//! let logger = braintrust::init_logger(
//!     LoggerOptions::new()
//!         .project("traced-guide")
//! #       .api_key(server.api_key()).app_url(server.url())
//! )?;
//! assert_eq!(answer("what is a span?"), "2 documents");
//! logger.flush()?;
//! # let ids = braintrust::object::ObjectIds::project_logs(logger.project_id().unwrap());
//! # assert_eq!(server.row_count(&ids)?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Methods, generics and `impl Trait`
//!
//! `&self`, `&mut self` and `self` methods, associated functions, generic functions and
//! functions returning `impl Trait` work unchanged; the receiver is not logged.
//!
//! ```
//! use braintrust::traced;
//!
//! struct Retriever { index: Vec<String> }
//!
//! impl Retriever {
//!     #[traced(type = "tool")]
//!     fn search(&self, query: &str) -> impl Iterator<Item = &String> + '_ {
//!         let query = query.to_owned();
//!         self.index.iter().filter(move |doc| doc.contains(&query))
//!     }
//!
//!     #[traced]
//!     fn add<D: Into<String> + std::fmt::Debug>(&mut self, doc: D) -> usize {
//!         self.index.push(doc.into());
//!         self.index.len()
//!     }
//! }
//! # let mut r = Retriever { index: vec![] };
//! # assert_eq!(r.add("a b"), 1);
//! # assert_eq!(r.search("a").count(), 1);
//! ```
//!
//! # `Result`: errors are logged as `error`
//!
//! For a `Result` return, `Ok(value)` is the output and `Err(error)` is logged as the span's
//! `error` — for a `std::error::Error`, its message and source chain (`"outer: cause"`).
//! A panic is logged as `error` too (`"panicked: …"`) and then continues unwinding.
//!
//! ```
//! use braintrust::traced;
//!
//! #[traced]
//! fn parse_limit(text: &str) -> Result<u32, std::num::ParseIntError> {
//!     let limit: u32 = text.trim().parse()?; // an Err here ends the span with `error`
//!     Ok(limit.min(100))
//! }
//! # assert!(parse_limit("x").is_err());
//! ```
//!
//! # Keeping secrets out
//!
//! `skip(a, b)` leaves parameters out of `input`, `skip_all` logs no arguments, `output = false`
//! no return value. `notrace_io` captures neither: log what you want from the body through
//! [`crate::current_span`].
//!
//! ```
//! use braintrust::{Event, current_span, traced};
//! use serde_json::json;
//!
//! #[traced(skip(api_key))]
//! fn call_api(api_key: &str, prompt: &str) -> usize {
//!     api_key.len() + prompt.len()
//! }
//!
//! #[traced(notrace_io)]
//! fn redact(document: &str) -> String {
//!     let _ = current_span().log(Event::new().input(json!({"chars": document.len()})));
//!     "[redacted]".to_owned()
//! }
//! # assert_eq!(call_api("k", "p"), 2);
//! # assert_eq!(redact("x"), "[redacted]");
//! ```
//!
//! # Async functions and spawned tasks
//!
//! `async fn` (free, methods, in traits natively or with `#[async_trait]`) is traced on any
//! executor: the span is current during every poll of the body. A task spawned with
//! `tokio::spawn` starts with no current span; spawn it with [`crate::spawn`] (or wrap the
//! future with [`crate::SpanFutureExt::in_current_span`]) to keep the nesting.
//!
//! ```
//! use braintrust::{LoggerOptions, traced};
//!
//! #[traced]
//! async fn summarise(text: String) -> String {
//!     tokio::task::yield_now().await;
//!     text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
//! }
//!
//! #[traced(type = "task")]
//! async fn handle_request(texts: Vec<String>) -> Vec<String> {
//!     let tasks: Vec<_> = texts
//!         .into_iter()
//!         .map(|text| braintrust::spawn(summarise(text))) // children of handle_request
//!         .collect();
//!     let mut summaries = Vec::new();
//!     for task in tasks {
//!         summaries.push(task.await.expect("task"));
//!     }
//!     summaries
//! }
//!
//! # let server = braintrust_local::LocalServer::start()?;
//! let logger = braintrust::init_logger(
//!     LoggerOptions::new()
//!         .project("traced-guide-async")
//! #       .api_key(server.api_key()).app_url(server.url())
//! )?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let summaries = runtime.block_on(handle_request(vec!["a b c d".into(), "e f".into()]));
//! assert_eq!(summaries, ["a b c", "e f"]);
//! logger.flush()?;
//! # let ids = braintrust::object::ObjectIds::project_logs(logger.project_id().unwrap());
//! # assert_eq!(server.row_count(&ids)?, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Without the macro
//!
//! [`crate::traced()`] runs a closure in a span, [`crate::traced_async`] a future, and
//! [`crate::wrap_traced`] wraps a one-argument function so that each call logs its input and
//! output.
//!
//! ```
//! use braintrust::{Event, StartSpan, SpanType, traced, wrap_traced};
//! use serde_json::json;
//!
//! let total = traced("sum", |span| {
//!     let _ = span.log(Event::new().metadata_entry("items", json!(3)));
//!     1 + 2 + 3
//! });
//! let double = wrap_traced(StartSpan::named("double").span_type(SpanType::Tool), |x: i64| x * 2);
//! assert_eq!(double(total), 12);
//! ```
//!
//! # Arguments
//!
//! | argument | effect |
//! |---|---|
//! | `name = "…"` | span name (default: the function's name) |
//! | `type = "…"` | span type: `llm`, `score`, `function` (default), `eval`, `task`, `tool`, `automation`, `facet`, `preprocessor`, `classifier`, `review` |
//! | `skip(a, b)` / `skip_all` | leave those / all arguments out of `input` |
//! | `output = false` | do not log the return value |
//! | `notrace_io` | log neither; the body logs what it wants |
//! | `metadata = { "k": v }` / `tags = ["t"]` | static metadata and tags of every call |
//! | `parent = expr` | an explicit parent: a `Span`, an export slug, or a W3C `RemoteParent` |
//! | `crate = path` | where the `braintrust` crate is, if renamed |
