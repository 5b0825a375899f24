//! The current span: which span new spans nest under by default.
//!
//! The current span is per thread. [`Span::enter`] and [`Span::in_scope`] make a span current for
//! a scope of synchronous code; [`SpanFutureExt::in_span`] makes it current during every poll of
//! a future, so it survives `.await` on any executor (no task-locals are involved) and can be
//! carried into spawned tasks. For threads, move a clone of the span and call
//! [`Span::in_scope`] there.
//!
//! ```
//! use braintrust_core::context::{current_span, SpanFutureExt};
//! use braintrust_core::span::Span;
//!
//! // Nothing is traced: the current span is the no-op span.
//! assert!(current_span().is_noop());
//! let span = Span::noop();
//! let answer = span.in_scope(|| 6 * 7);
//! assert_eq!(answer, 42);
//! let fut = async { current_span().export() }.in_span(span);
//! # let _ = fut;
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use crate::span::{Parent, Span, StartSpan};

thread_local! {
    static CURRENT: RefCell<Option<Span>> = const { RefCell::new(None) };
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether any logger or experiment was initialised in this process. One relaxed atomic load:
/// instrumentation checks it first and does nothing more when it is false.
#[inline]
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Marks tracing as enabled (called when a logger or experiment is initialised).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// A logger or experiment as the default destination of spans without a parent span.
pub trait SpanRoot: Send + Sync {
    /// Starts a root span (or a span under `options`' explicit parent) in this object.
    fn start_span(&self, options: StartSpan) -> Span;
    /// The object's export slug, for parents of server-side spans (`invoke`).
    fn export(&self) -> String;
}

/// A shared [`SpanRoot`].
pub type RootStarter = Arc<dyn SpanRoot>;

/// Which default destination a [`RootStarter`] is: spans with no parent span go to the current
/// experiment if there is one, else to the current logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// The current experiment (`init_experiment` with `set_current`).
    Experiment,
    /// The current logger (`init_logger` with `set_current`).
    Logger,
}

static ROOTS: RwLock<[Option<RootStarter>; 2]> = RwLock::new([None, None]);

/// Installs (or with `None` removes) the current experiment's or logger's root starter and
/// returns the previous one. Loggers and experiments call this; instrumentation reads it
/// through [`start_span`].
pub fn set_root(kind: RootKind, starter: Option<RootStarter>) -> Option<RootStarter> {
    let mut roots = ROOTS.write().unwrap_or_else(|e| e.into_inner());
    std::mem::replace(&mut roots[kind as usize], starter)
}

/// Starts a span: under `options`' parent if given (a span, a slug, a W3C context), else under
/// the current span, else as a root of the current experiment, else of the current logger.
/// With none of them it is the no-op span.
pub fn start_span(options: StartSpan) -> Span {
    match options.parent_ref() {
        Some(Parent::Span(parent)) if !parent.is_noop() => {
            return parent.clone().start_span(options);
        }
        None => {
            let current = current_span();
            if !current.is_noop() {
                return current.start_span(options);
            }
        }
        _ => {}
    }
    if !is_enabled() {
        return Span::noop();
    }
    let starter = {
        let roots = ROOTS.read().unwrap_or_else(|e| e.into_inner());
        roots.iter().flatten().next().cloned()
    };
    match starter {
        Some(root) => root.start_span(options),
        None => Span::noop(),
    }
}

/// The export slug of the current experiment, else of the current logger, if either is set.
pub fn current_root_export() -> Option<String> {
    if !is_enabled() {
        return None;
    }
    let root = {
        let roots = ROOTS.read().unwrap_or_else(|e| e.into_inner());
        roots.iter().flatten().next().cloned()
    };
    root.map(|r| r.export())
}

/// The current span of this thread or task, or the no-op span.
pub fn current_span() -> Span {
    if !is_enabled() {
        return Span::noop();
    }
    CURRENT
        .try_with(|c| c.borrow().clone())
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Restores the previously current span when dropped. Not `Send`: it belongs to the thread
/// whose current span it changed.
#[must_use = "the span stops being current when the guard is dropped"]
#[derive(Debug)]
pub struct CurrentSpanGuard {
    previous: Option<Option<Span>>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for CurrentSpanGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            let _ = CURRENT.try_with(|c| *c.borrow_mut() = previous);
        }
    }
}

impl Span {
    /// Makes this span current until the guard drops. Does nothing for the no-op span or a
    /// span started with `set_current(false)`.
    pub fn enter(&self) -> CurrentSpanGuard {
        let previous = if self.sets_current() {
            CURRENT.try_with(|c| c.replace(Some(self.clone()))).ok()
        } else {
            None
        };
        CurrentSpanGuard {
            previous,
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this span current.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.enter();
        f()
    }
}

/// Runs futures with a span current (see [`SpanFutureExt::in_span`]).
pub trait SpanFutureExt: Future + Sized {
    /// Makes `span` current during every poll of this future.
    fn in_span(self, span: Span) -> InSpan<Self> {
        InSpan { inner: self, span }
    }

    /// Makes the span current at the time of this call current during every poll of this
    /// future: use it on futures handed to `tokio::spawn` and friends.
    fn in_current_span(self) -> InSpan<Self> {
        self.in_span(current_span())
    }
}

impl<F: Future> SpanFutureExt for F {}

pin_project_lite::pin_project! {
    /// A future with a span current during each poll.
    #[derive(Debug)]
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        span: Span,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = this.span.enter();
        this.inner.poll(cx)
    }
}
