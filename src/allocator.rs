//! How the C allocator is set up before anything allocates.

/// Sets glibc's allocator up for a long-running process that holds one
/// large catalog and does little else:
///
/// - the mmap threshold fixed at its default of 128 KiB. Left alone,
///   glibc raises it to the size of each large block freed, up to 32 MiB:
///   after the first refresh, the next index's bytes (tens of MiB) and
///   its table of entries came from the heap, between small allocations
///   that outlive them, and the heap could not shrink back when they
///   were freed. Fixed, every block that large is mapped on its own and
///   returned whole: with a 20,000-module, 29.5 MB index, modman idled at
///   41 MiB instead of 69.
/// - one arena. glibc gives threads arenas of their own (up to 8 per
///   core), and each keeps the memory freed in it: modman's requests run
///   on whichever tokio thread is free, so each arena came to hold some.
///   modman allocates little in parallel, so the lock costs nothing
///   measurable. With a 20,000-module index, `list` peaked at 51 MiB
///   instead of 62 and a refresh at 101 instead of 113; updating 250
///   modules peaked at 25 MiB instead of 29.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes tuning parameters of the allocator;
    // it is called in main for `modman run`, before any other thread
    // starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// The heap's free bytes when free pages were last handed back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
static FREE_WHEN_TRIMMED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How much more of the heap must lie free before its pages are handed
/// back again: enough that a request's own garbage does not trigger it,
/// little against the catalog a refresh replaces.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_AFTER: usize = 256 * 1024;

/// Changes under way (see [`during_a_change`]).
static CHANGES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held while a change runs: no free pages are handed back meanwhile.
/// A change allocates and frees megabytes (archives, the stage, the
/// state) while its threads wait on the disk and on Prosody, and each
/// such wait parks a runtime thread: the pages handed back there
/// (`madvise`) were faulted in again moments later by the same change,
/// both on its path (an update of 250 modules, `perf`, 2026-12-07). The
/// first idle thread after the change hands them back.
#[must_use]
pub struct ChangeInProgress(());

/// See [`ChangeInProgress`].
pub fn during_a_change() -> ChangeInProgress {
    CHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ChangeInProgress(())
}

impl Drop for ChangeInProgress {
    fn drop(&mut self) {
        CHANGES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Run as a runtime thread goes idle: hands the heap's free pages back
/// to the system once at least [`TRIM_AFTER`] more bytes lie free than
/// the last time. free() returns only the top of the heap; what a
/// refresh freed between allocations that outlive it (the old catalog,
/// the index's parse) stayed resident until the next refresh reused it.
/// malloc_trim hands back every free page in the middle too; the pages
/// stay mapped, so the next allocation there costs a page fault, not a
/// system call.
pub fn on_idle() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::sync::atomic::Ordering;
        if CHANGES.load(Ordering::Relaxed) > 0 {
            return;
        }
        // SAFETY: mallinfo2 only reads the allocator's own counts, under
        // its lock.
        let free = unsafe { libc::mallinfo2() }.fordblks;
        let last = FREE_WHEN_TRIMMED.load(Ordering::Relaxed);
        if free >= last.saturating_add(TRIM_AFTER) {
            // SAFETY: malloc_trim only advises the kernel of pages the
            // allocator holds free, under its lock.
            unsafe { libc::malloc_trim(0) };
            FREE_WHEN_TRIMMED.store(free, Ordering::Relaxed);
        } else if free < last {
            // Reused since: count growth from here.
            FREE_WHEN_TRIMMED.store(free, Ordering::Relaxed);
        }
    }
}
