//! Work on many items from several threads at once, where each item's
//! work is apart from every other's: packing a repository's modules,
//! writing the stage of a large change, syncing paths outside a runtime;
//! and two pieces of work side by side.

use std::sync::atomic::{AtomicUsize, Ordering};

/// [`each`] of items it takes: each is handed to `work` by value, so
/// what it holds is freed on the worker that was done with it, while the
/// others go on, rather than all at once on the caller's thread after.
pub fn each_owned<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    use std::sync::{Mutex, PoisonError};
    let slots: Vec<Mutex<Option<T>>> = items
        .into_iter()
        .map(|item| Mutex::new(Some(item)))
        .collect();
    each(&slots, workers, |slot| {
        let item = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        work(item.expect("each slot is taken by one worker"))
    })
}

/// `work` done on every item of `items` from at most `workers` threads,
/// the results in the items' order. Each thread takes the next item as
/// it finishes one, so a large item does not hold the rest back. Every
/// thread has ended when this returns (a panic in one is raised again
/// here); one item or one worker is done on this thread.
pub fn each<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let take = || {
        let mut mine = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(at) else {
                return mine;
            };
            mine.push((at, work(item)));
        }
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(take)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(at, _)| *at);
    done.into_iter().map(|(_, result)| result).collect()
}

/// `here` on this thread while `there` runs on another: both results,
/// once both have ended (a panic in `there` is raised again here).
pub fn beside<A, B: Send>(here: impl FnOnce() -> A, there: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let there = scope.spawn(there);
        let here = here();
        let there = there
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (here, there)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_worked_once_and_the_results_keep_the_items_order() {
        let items: Vec<usize> = (0..1000).collect();
        let calls = AtomicUsize::new(0);
        for workers in [0, 1, 3, 8, 5000] {
            calls.store(0, Ordering::Relaxed);
            let squares = each(&items, workers, |i| {
                calls.fetch_add(1, Ordering::Relaxed);
                i * i
            });
            assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
            assert_eq!(calls.load(Ordering::Relaxed), items.len(), "{workers}");
        }
        assert!(each(&[] as &[u8], 4, |_| ()).is_empty());
    }

    /// Each item is handed over once, by value, and freed by the worker
    /// that took it: none is left for the caller to free afterwards.
    #[test]
    fn items_taken_are_worked_once_and_freed_by_their_workers() {
        struct Counted<'a>(usize, &'a AtomicUsize);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.1.fetch_add(1, Ordering::Relaxed);
            }
        }
        let dropped = AtomicUsize::new(0);
        for workers in [1, 4] {
            dropped.store(0, Ordering::Relaxed);
            let items: Vec<Counted<'_>> = (0..100).map(|i| Counted(i, &dropped)).collect();
            let doubled = each_owned(items, workers, |item| {
                let before = dropped.load(Ordering::Relaxed);
                (item.0 * 2, before)
            });
            assert_eq!(dropped.load(Ordering::Relaxed), 100, "{workers}");
            let values: Vec<usize> = doubled.iter().map(|(value, _)| *value).collect();
            assert_eq!(values, (0..100).map(|i| i * 2).collect::<Vec<_>>());
            // One worker frees each item before it takes the next.
            if workers == 1 {
                let seen: Vec<usize> = doubled.iter().map(|(_, before)| *before).collect();
                assert_eq!(seen, (0..100).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn beside_gives_both_results_and_raises_the_other_thread_s_panic() {
        let text = "shared";
        assert_eq!(
            beside(|| text.len(), || text.to_uppercase()),
            (6, "SHARED".to_owned())
        );
        let panicked = std::panic::catch_unwind(|| beside(|| 1, || panic!("over there")));
        let message = panicked.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"over there"));
    }

    #[test]
    #[should_panic(expected = "item 7")]
    fn a_panic_in_a_worker_is_raised_to_the_caller() {
        let items: Vec<usize> = (0..20).collect();
        each(&items, 4, |&i| assert_ne!(i, 7, "item 7"));
    }
}
