//! How often `#[traced]` allocates on the calling thread: never with tracing disabled, once per
//! call with it enabled (the span's handle, which the caller frees). Memory the caller allocates
//! and the sender thread frees is slow with some allocators (glibc's), so the ids, a literal
//! name and a few captured arguments are held inline. Counted, not timed.
//!
//! A counting global allocator is installed for this test binary only.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use braintrust::{StartSpan, init_logger, traced};
use common::{options, rows, server};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // During thread teardown the counter may be gone; those allocations are not ours to count.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local without a destructor, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as for `dealloc`, with the caller's guarantees on `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations made on this thread while `f` runs.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[braintrust::traced]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[braintrust::traced]
fn add_three(a: u64, b: u64, c: u64) -> u64 {
    a + b + c
}

// One test: the disabled path must be measured before any logger exists in the process.
#[test]
fn traced_calls_allocate_nothing_disabled_and_once_enabled() {
    assert!(
        !braintrust::context::is_enabled(),
        "another test enabled tracing first"
    );
    let disabled = allocations_during(|| {
        for i in 0..100 {
            assert_eq!(add(i, 1), i + 1);
            assert_eq!(traced("helper", |_| i), i);
        }
    });
    assert_eq!(disabled, 0, "disabled #[traced] calls allocated");

    let server = server();
    let logger = init_logger(options(&server, "caller-allocations")).unwrap();
    let root = logger.start_span(StartSpan::named("root"));
    root.in_scope(|| {
        // Warm up thread-locals and the queue.
        add(0, 0);
        let calls = 100;
        let two = allocations_during(|| {
            for i in 0..calls {
                assert_eq!(add(i, 1), i + 1);
            }
        });
        assert_eq!(
            two, calls,
            "allocations per enabled call with two arguments"
        );
        let three = allocations_during(|| {
            for i in 0..calls {
                assert_eq!(add_three(i, 1, 2), i + 3);
            }
        });
        assert_eq!(
            three, calls,
            "allocations per enabled call with three arguments"
        );
    });
    root.end();
    logger.flush().unwrap();

    // The calls were recorded in full: inputs by name and outputs.
    let rows = rows(&server, &logger);
    let adds: Vec<_> = rows
        .iter()
        .filter(|r| r["span_attributes"]["name"] == "add")
        .collect();
    assert_eq!(adds.len(), 101);
    assert!(
        adds.iter()
            .any(|r| r["input"] == serde_json::json!({"a": 7, "b": 1}) && r["output"] == 8)
    );
    let threes = rows
        .iter()
        .filter(|r| r["span_attributes"]["name"] == "add_three")
        .filter(|r| r["input"]["c"] == 2 && r["span_parents"][0] == root.span_id())
        .count();
    assert_eq!(threes, 100);
}
