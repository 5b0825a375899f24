//! Tracing a piece of code without the `#[traced]` macro, and the support code the macro
//! expands to.
//!
//! [`traced`] runs a closure in a new span, [`traced_async`] does the same for a future, and
//! [`wrap_traced`] turns a one-argument function into one that logs its input and output. Each
//! span nests under the current span (else it is a root of the current experiment or logger),
//! is current while the code runs, and ends when it returns — or panics: the panic message is
//! logged as the span's `error` and the panic continues.
//!
//! ```
//! use braintrust_core::traced::traced;
//!
//! // With no logger initialised the span is the no-op span and nothing is recorded.
//! let answer = traced("compute", |span| {
//!     let _ = span.log(braintrust_core::event::Event::new().metadata_entry("step", 1.into()));
//!     6 * 7
//! });
//! assert_eq!(answer, 42);
//! ```

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use serde_json::Value;

use crate::context::{is_enabled, start_span};
use crate::event::{Event, SpanType};
use crate::span::{CapturedArgs, CapturedInput, Span, StartSpan};

impl From<&str> for StartSpan {
    fn from(name: &str) -> StartSpan {
        StartSpan::named(name)
    }
}

impl From<String> for StartSpan {
    fn from(name: String) -> StartSpan {
        StartSpan::named(name)
    }
}

/// Runs `f` in a new span (`options` or just a name; type `function` unless set), current
/// while `f` runs and ended when it returns or panics.
pub fn traced<R>(options: impl Into<StartSpan>, f: impl FnOnce(&Span) -> R) -> R {
    // Disabled: not even the options are built.
    if !is_enabled() {
        return f(&Span::noop());
    }
    let span = start_traced_span(options.into());
    run_in_span(span, f, |_, _| {})
}

/// Runs the future `f` returns in a new span, current during every poll and ended when the
/// future completes or panics (or, if it is dropped unfinished, when the span's last handle
/// drops).
pub async fn traced_async<F, Fut>(options: impl Into<StartSpan>, f: F) -> Fut::Output
where
    F: FnOnce(Span) -> Fut,
    Fut: Future,
{
    if !is_enabled() {
        return f(Span::noop()).await;
    }
    let span = start_traced_span(options.into());
    let future = f(span.clone());
    TracedFuture::new(span, future, |_: &Fut::Output, _: &mut Recorder| {}).await
}

/// Wraps a one-argument function so that each call is a span logging the argument as `input`
/// and the return value as `output`.
///
/// ```
/// use braintrust_core::traced::wrap_traced;
///
/// let double = wrap_traced("double", |x: i64| x * 2);
/// assert_eq!(double(21), 42);
/// ```
pub fn wrap_traced<I, O>(options: impl Into<StartSpan>, f: impl Fn(I) -> O) -> impl Fn(I) -> O
where
    I: Serialize,
    O: Serialize,
{
    let options = options.into();
    move |input: I| {
        if !is_enabled() {
            return f(input);
        }
        let captured = serde_json::to_value(&input).unwrap_or(Value::Null);
        let span = start_traced_span(
            options
                .clone()
                .captured_input(CapturedInput::Value(captured)),
        );
        run_in_span(
            span,
            |_| f(input),
            |output: &O, recorder: &mut Recorder| {
                recorder.output(serde_json::to_value(output).ok());
            },
        )
    }
}

fn start_traced_span(options: StartSpan) -> Span {
    if !is_enabled() {
        return Span::noop();
    }
    let options = if options.attributes.span_type.is_some() {
        options
    } else {
        options.span_type(SpanType::Function)
    };
    start_span(options)
}

/// Runs `f` with `span` current, records its result through `record` (or the panic as
/// `error`), ends the span, and returns the result (or resumes the panic).
fn run_in_span<R>(
    span: Span,
    f: impl FnOnce(&Span) -> R,
    record: impl FnOnce(&R, &mut Recorder),
) -> R {
    let result = {
        let _current = span.enter();
        catch_unwind(AssertUnwindSafe(|| f(&span)))
    };
    match result {
        Ok(value) => {
            if !span.is_noop() {
                let mut recorder = Recorder::default();
                record(&value, &mut recorder);
                recorder.end(&span);
            }
            value
        }
        Err(panic) => {
            log_panic(&span, panic.as_ref());
            span.end();
            resume_unwind(panic)
        }
    }
}

fn log_panic(span: &Span, panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    let _ = span.log(Event::new().error(Value::String(format!("panicked: {message}"))));
}

/// What a traced call produced: its output, or its error.
#[derive(Debug, Default)]
pub struct Recorder {
    output: Option<Value>,
    error: Option<String>,
}

impl Recorder {
    /// Records the output (nothing when `None`).
    pub fn output(&mut self, value: Option<Value>) {
        self.output = value;
    }

    /// Records an error instead of an output.
    pub fn error(&mut self, message: String) {
        self.error = Some(message);
    }

    /// Logs what was recorded and ends the span, in one row.
    fn end(self, span: &Span) {
        if self.error.is_none() {
            span.end_with_output(self.output);
            return;
        }
        let mut event = Event::new();
        if let Some(output) = self.output {
            event = event.output(output);
        }
        if let Some(error) = self.error {
            event = event.error(Value::String(error));
        }
        if span.log_and_end(event).is_err() {
            span.end();
        }
    }
}

pin_project_lite::pin_project! {
    /// A future run in a span: current during each poll, its result recorded and the span
    /// ended when it completes; a panic is logged as `error` and resumed.
    struct TracedFuture<F, Rec> {
        span: Span,
        record: Option<Rec>,
        #[pin]
        inner: F,
    }
}

impl<F, Rec> TracedFuture<F, Rec> {
    fn new(span: Span, inner: F, record: Rec) -> TracedFuture<F, Rec> {
        TracedFuture {
            span,
            record: Some(record),
            inner,
        }
    }
}

impl<F, Rec> Future for TracedFuture<F, Rec>
where
    F: Future,
    Rec: FnOnce(&F::Output, &mut Recorder),
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = {
            let _current = this.span.enter();
            let inner = this.inner;
            catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                if let Some(record) = this.record.take() {
                    let mut recorder = Recorder::default();
                    if !this.span.is_noop() {
                        record(&value, &mut recorder);
                    }
                    recorder.end(this.span);
                }
                Poll::Ready(value)
            }
            Err(panic) => {
                this.record.take();
                log_panic(this.span, panic.as_ref());
                this.span.end();
                resume_unwind(panic)
            }
        }
    }
}

/// Support code for `#[traced]`. Not a stable API: only generated code may use it.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub use crate::context::is_enabled;
    pub use crate::event::{Event, SpanType};
    pub use crate::span::StartSpan;
    pub use serde_json::{Value, json};

    /// The arguments of a traced call, by parameter name.
    #[derive(Debug, Default)]
    pub struct Input(CapturedArgs);

    impl Input {
        /// Records one argument (nothing when it could not be captured). The JSON object is
        /// built later, on the sender's thread.
        pub fn arg(&mut self, name: &'static str, value: Option<Value>) {
            if let Some(value) = value {
                self.0.push(name, value);
            }
        }
    }

    /// A started traced call (only made when tracing is enabled).
    #[derive(Debug)]
    pub struct Call {
        span: Span,
    }

    impl Call {
        /// Starts the span. `input` fills in the arguments when `capture_input` is set;
        /// `event` adds static metadata and tags. `None` when no span will be recorded.
        #[cold]
        pub fn start(
            options: StartSpan,
            capture_input: bool,
            input: impl FnOnce(&mut Input),
            event: Event,
        ) -> Option<Call> {
            let mut options = if event.is_empty() {
                options
            } else {
                options.event(event)
            };
            if capture_input {
                let mut args = Input::default();
                input(&mut args);
                options = options.captured_input(CapturedInput::Args(args.0));
            }
            let span = start_traced_span(options);
            if span.is_noop() {
                return None;
            }
            Some(Call { span })
        }

        /// Runs a synchronous body in the span.
        pub fn run<R>(self, body: impl FnOnce() -> R, record: impl FnOnce(&R, &mut Recorder)) -> R {
            run_in_span(self.span, |_| body(), record)
        }

        /// Runs an async body in the span.
        pub fn run_async<F: Future>(
            self,
            body: F,
            record: impl FnOnce(&F::Output, &mut Recorder),
        ) -> impl Future<Output = F::Output> {
            TracedFuture::new(self.span, body, record)
        }
    }

    pub use super::Recorder;

    /// Autoref specialisation: capture a value as JSON (`Serialize`), else as its `Debug`
    /// text, else not at all. Call as `(&&&Capture(&value)).bt_capture()`. (No `Debug`
    /// impls here: the wrapped types need not have one; that is the point.)
    #[allow(missing_debug_implementations)]
    pub mod capture {
        use std::fmt::{Debug, Display};

        use serde::Serialize;
        use serde_json::Value;

        /// A borrowed value to capture.
        pub struct Capture<'a, T: ?Sized>(pub &'a T);

        /// Captures through `Serialize`.
        pub trait ViaSerialize {
            /// The JSON form.
            fn bt_capture(&self) -> Option<Value>;
        }

        impl<T: Serialize + ?Sized> ViaSerialize for &&Capture<'_, T> {
            fn bt_capture(&self) -> Option<Value> {
                Some(
                    serde_json::to_value(self.0)
                        .unwrap_or_else(|e| Value::String(format!("<not serializable: {e}>"))),
                )
            }
        }

        /// Captures through `Debug`.
        pub trait ViaDebug {
            /// The `Debug` text.
            fn bt_capture(&self) -> Option<Value>;
        }

        impl<T: Debug + ?Sized> ViaDebug for &Capture<'_, T> {
            fn bt_capture(&self) -> Option<Value> {
                Some(Value::String(format!("{:?}", self.0)))
            }
        }

        /// Captures nothing.
        pub trait ViaNothing {
            /// Nothing.
            fn bt_capture(&self) -> Option<Value>;
        }

        impl<T: ?Sized> ViaNothing for Capture<'_, T> {
            fn bt_capture(&self) -> Option<Value> {
                None
            }
        }

        /// A returned value: a `Result` splits into its `Ok` value and its error.
        pub struct Returned<'a, R: ?Sized>(pub &'a R);

        /// What a call returned.
        pub enum Outcome<'a, T: ?Sized, E: ?Sized> {
            /// A value (a non-`Result` return, or `Ok`).
            Value(&'a T),
            /// An `Err`.
            Error(&'a E),
        }

        /// The error type of non-`Result` returns (never constructed).
        #[derive(Debug)]
        pub enum NoError {}

        impl Display for NoError {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match *self {}
            }
        }

        impl std::error::Error for NoError {}

        /// `Result` returns.
        pub trait ViaResult<'a, T, E> {
            /// `Ok` as a value, `Err` as an error.
            fn bt_outcome(&self) -> Outcome<'a, T, E>;
        }

        impl<'a, T, E> ViaResult<'a, T, E> for &Returned<'a, Result<T, E>> {
            fn bt_outcome(&self) -> Outcome<'a, T, E> {
                match self.0 {
                    Ok(value) => Outcome::Value(value),
                    Err(error) => Outcome::Error(error),
                }
            }
        }

        /// Any other return.
        pub trait ViaValue<'a, R: ?Sized> {
            /// The value.
            fn bt_outcome(&self) -> Outcome<'a, R, NoError>;
        }

        impl<'a, R: ?Sized> ViaValue<'a, R> for Returned<'a, R> {
            fn bt_outcome(&self) -> Outcome<'a, R, NoError> {
                Outcome::Value(self.0)
            }
        }

        /// Describes errors: `std::error::Error` with its source chain, else `Display`
        /// (alternate form, which error libraries use for the chain), else `Debug`, else a
        /// fixed text. Call as `(&&&&Capture(&error)).bt_describe()`.
        pub trait ViaStdError {
            /// The description.
            fn bt_describe(&self) -> String;
        }

        impl<T: std::error::Error + ?Sized> ViaStdError for &&&Capture<'_, T> {
            fn bt_describe(&self) -> String {
                let mut text = self.0.to_string();
                let mut source = self.0.source();
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        }

        /// Errors described by `Display`.
        pub trait ViaDisplay {
            /// The description.
            fn bt_describe(&self) -> String;
        }

        impl<T: Display + ?Sized> ViaDisplay for &&Capture<'_, T> {
            fn bt_describe(&self) -> String {
                format!("{:#}", self.0)
            }
        }

        /// Errors described by `Debug`.
        pub trait ViaDebugText {
            /// The description.
            fn bt_describe(&self) -> String;
        }

        impl<T: Debug + ?Sized> ViaDebugText for &Capture<'_, T> {
            fn bt_describe(&self) -> String {
                format!("{:?}", self.0)
            }
        }

        /// Errors that cannot be shown.
        pub trait ViaOpaque {
            /// A fixed text.
            fn bt_describe(&self) -> String;
        }

        impl<T: ?Sized> ViaOpaque for Capture<'_, T> {
            fn bt_describe(&self) -> String {
                "error (its type implements neither Display nor Debug)".to_owned()
            }
        }
    }
}
