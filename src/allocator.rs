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
    // it is called first thing in main, before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
