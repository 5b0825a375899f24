//! Background threads run below the threads that start them (Linux, where each thread has a
//! priority of its own): a logger's batcher and sender, and an in-process braintrust-local
//! when asked.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;

use braintrust_core::env_file::EnvLookup;
use braintrust_local::LocalServer;
use braintrust_transport::background::lower_current_thread_priority;
use braintrust_transport::logger::{LoggerOptions, init_logger};

/// The lowest priority (highest nice value) a thread can have.
const LOWEST: i32 = 19;

/// Field `n` (1-based, as in proc(5)) of a thread's `stat` file, after the command name (which
/// may hold spaces, inside parentheses).
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(n - 3)
}

/// The nice value of the calling thread.
fn own_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    stat_field(&stat, 19).unwrap().parse().unwrap()
}

/// This process's threads: id, name and nice value.
fn threads() -> Vec<(u32, String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let tid = task.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let nice = stat_field(&stat, 19).unwrap().parse().unwrap();
        found.push((tid, comm.trim().to_owned(), nice));
    }
    found
}

/// The names and nice values of the threads `start` leaves running that were not there
/// before (names are cut to 15 bytes by the kernel).
fn started_threads<T>(start: impl FnOnce() -> T) -> (T, Vec<(String, i32)>) {
    let before: BTreeSet<u32> = threads().into_iter().map(|(tid, ..)| tid).collect();
    let started = start();
    let new = threads()
        .into_iter()
        .filter(|(tid, ..)| !before.contains(tid))
        .map(|(_, name, nice)| (name, nice))
        .filter(|(name, _)| name.starts_with("braintrust-"))
        .collect();
    (started, new)
}

#[test]
fn lowering_applies_to_the_calling_thread_and_the_threads_it_starts() {
    let before = own_nice();
    let (lowered, child, sibling) = std::thread::scope(|scope| {
        let (lowered, child) = scope
            .spawn(|| {
                lower_current_thread_priority(3);
                let child = std::thread::spawn(own_nice).join().unwrap();
                (own_nice(), child)
            })
            .join()
            .unwrap();
        let sibling = scope.spawn(own_nice).join().unwrap();
        (lowered, child, sibling)
    });
    let expected = (before + 3).min(LOWEST);
    assert_eq!((lowered, child), (expected, expected));
    assert_eq!(sibling, before, "other threads keep their priority");
    assert_eq!(own_nice(), before);

    let lowest = std::thread::spawn(|| {
        lower_current_thread_priority(u8::MAX);
        own_nice()
    })
    .join()
    .unwrap();
    assert_eq!(lowest, LOWEST, "never past the lowest priority");
}

// One test: the threads of every server and logger it starts are told apart by appearing.
#[test]
fn loggers_run_their_threads_lower_and_servers_when_asked() {
    let base = own_nice();
    let lowered = (base + 10).min(LOWEST);
    let names = |threads: &[(String, i32)]| {
        threads
            .iter()
            .map(|(name, _)| name.clone())
            .collect::<BTreeSet<_>>()
    };

    let (server, threads) = started_threads(|| LocalServer::builder().in_memory().start().unwrap());
    assert_eq!(
        names(&threads),
        BTreeSet::from(["braintrust-loca".to_owned()])
    );
    assert!(threads.iter().all(|(_, nice)| *nice == base), "{threads:?}");

    let (_lowered_server, threads) = started_threads(|| {
        LocalServer::builder()
            .in_memory()
            .background_nice(10)
            .start()
            .unwrap()
    });
    assert!(!threads.is_empty());
    assert!(
        threads.iter().all(|(_, nice)| *nice == lowered),
        "{threads:?}"
    );

    let options = || {
        LoggerOptions::new()
            .project("priority")
            .api_key(server.api_key())
            .app_url(server.url())
            .env(EnvLookup::from_pairs::<&str, &str>([]))
            .set_current(false)
    };
    // The batcher and its runtime's sender thread (which may not have its own name yet: a new
    // thread shows its creator's until it sets one).
    let (_logger, threads) = started_threads(|| init_logger(options()).unwrap());
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert!(
        threads.iter().all(|(_, nice)| *nice == lowered),
        "{threads:?}"
    );

    let (_level_logger, threads) =
        started_threads(|| init_logger(options().background_nice(0)).unwrap());
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert!(threads.iter().all(|(_, nice)| *nice == base), "{threads:?}");

    let (_env_logger, threads) = started_threads(|| {
        init_logger(options().env(EnvLookup::from_pairs([("BRAINTRUST_BACKGROUND_NICE", "2")])))
            .unwrap()
    });
    assert_eq!(threads.len(), 2, "{threads:?}");
    let two_lower = (base + 2).min(LOWEST);
    assert!(
        threads.iter().all(|(_, nice)| *nice == two_lower),
        "{threads:?}"
    );
}
