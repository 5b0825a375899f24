//! Running at most `limit` trials at once, starting each as soon as a slot frees up.
//!
//! `futures_util`'s `buffer_unordered` queues a new future behind every future already woken:
//! when several trials finish at once (trials of equal length started together do), the
//! trials that replace them start only after all of them have been polled to completion, so
//! slots sit idle in between. [`EagerBuffered`] polls a new future once as it takes it, so a
//! trial's replacement is running (its timers set, its requests sent) before the next finished
//! trial is looked at. A future that completes on that first poll (a synchronous task) never
//! enters the set at all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{FusedStream, FuturesUnordered, Stream, StreamExt};

/// A stream of the outputs of the futures that `source` yields, at most `limit` running at a
/// time, in completion order.
pub(crate) struct EagerBuffered<S: Stream>
where
    S::Item: Future,
{
    source: Pin<Box<S>>,
    source_done: bool,
    running: FuturesUnordered<Pin<Box<S::Item>>>,
    limit: usize,
}

impl<S: Stream> EagerBuffered<S>
where
    S::Item: Future,
{
    /// Runs the futures of `source`, at most `limit` (at least one) at a time.
    pub(crate) fn new(source: S, limit: usize) -> Self {
        EagerBuffered {
            source: Box::pin(source),
            source_done: false,
            running: FuturesUnordered::new(),
            limit: limit.max(1),
        }
    }
}

impl<S: Stream> Stream for EagerBuffered<S>
where
    S::Item: Future,
{
    type Item = <S::Item as Future>::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // Fill the free slots first, starting each new future at once.
        while !this.source_done && this.running.len() < this.limit {
            match this.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(future)) => {
                    let mut future = Box::pin(future);
                    match future.as_mut().poll(cx) {
                        Poll::Ready(output) => return Poll::Ready(Some(output)),
                        // Pushing queues it for one more poll, which moves its wake-ups from
                        // this stream's waker to the set's own.
                        Poll::Pending => this.running.push(future),
                    }
                }
                Poll::Ready(None) => this.source_done = true,
                Poll::Pending => break,
            }
        }
        match this.running.poll_next_unpin(cx) {
            Poll::Ready(Some(output)) => Poll::Ready(Some(output)),
            Poll::Ready(None) if this.source_done => Poll::Ready(None),
            // Empty, and the source is pending: it has our waker.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: Stream> FusedStream for EagerBuffered<S>
where
    S::Item: Future,
{
    fn is_terminated(&self) -> bool {
        self.source_done && self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream;

    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    /// A future that counts how many run at once and, after its first poll, stays pending
    /// until three run or all twenty have started.
    struct Gate {
        id: usize,
        started: Arc<AtomicUsize>,
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
        polled: bool,
    }

    impl Future for Gate {
        type Output = usize;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            if !self.polled {
                // Never ready on the first poll, so that a fourth would start if it could.
                self.polled = true;
                self.started.fetch_add(1, Ordering::SeqCst);
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.peak.fetch_max(now, Ordering::SeqCst);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if self.running.load(Ordering::SeqCst) >= 3 || self.started.load(Ordering::SeqCst) == 20
            {
                self.running.fetch_sub(1, Ordering::SeqCst);
                Poll::Ready(self.id)
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[test]
    fn runs_at_most_limit_and_yields_every_output() {
        let started = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let gates = (0..20).map(|id| Gate {
            id,
            started: started.clone(),
            running: running.clone(),
            peak: peak.clone(),
            polled: false,
        });
        let mut buffered = EagerBuffered::new(stream::iter(gates), 3);
        let mut outputs = block_on(async {
            let mut outputs = Vec::new();
            while let Some(output) = buffered.next().await {
                outputs.push(output);
            }
            outputs
        });
        outputs.sort_unstable();
        assert_eq!(outputs, (0..20).collect::<Vec<_>>());
        assert_eq!(
            peak.load(Ordering::SeqCst),
            3,
            "three at a time, never more"
        );
        assert!(buffered.is_terminated());
    }

    /// When two futures finish together, the replacement of the first starts before the second
    /// finished one is yielded (`buffer_unordered` starts it only after).
    #[test]
    fn a_freed_slot_is_filled_before_the_next_finished_future_is_yielded() {
        let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let trial = |name: &'static str, waits: bool| {
            let log = log.clone();
            let open = open.clone();
            async move {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("start {name}"));
                if waits {
                    std::future::poll_fn(|cx| {
                        if open.load(Ordering::SeqCst) > 0 {
                            Poll::Ready(())
                        } else {
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    })
                    .await;
                }
                name
            }
        };
        let trials = vec![
            trial("a", true),
            trial("b", true),
            trial("c", false),
            trial("d", false),
        ];
        let mut buffered = EagerBuffered::new(stream::iter(trials), 2);
        block_on(async {
            // Both running trials wait; open the gate so that they finish together.
            let first = std::future::poll_fn(|cx| Poll::Ready(buffered.poll_next_unpin(cx))).await;
            assert!(first.is_pending(), "a and b are waiting");
            open.store(1, Ordering::SeqCst);
            while let Some(name) = buffered.next().await {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("done {name}"));
            }
        });
        let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let at = |entry: &str| log.iter().position(|e| e == entry).unwrap_or(usize::MAX);
        assert!(
            at("start c") < at("done b"),
            "c starts as soon as a's slot frees: {log:?}"
        );
        assert_eq!(log.len(), 8, "{log:?}");
    }
}
