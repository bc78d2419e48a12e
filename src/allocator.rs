//! How the C allocator is set up before anything allocates.

/// Fixes glibc's mmap threshold at its default of 128 KiB. Left alone,
/// glibc raises it to the size of each large block freed, up to 32 MiB:
/// after the first refresh, the next index's bytes (tens of MiB) and its
/// table of entries came from the heap, between small allocations that
/// outlive them, and the heap could not shrink back when they were
/// freed. Fixed, every block that large is mapped on its own and returned
/// whole when freed: with a 20,000-module, 29.5 MB index, modman idled at
/// 41 MiB instead of 69.
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tuning parameter of the allocator;
    // it is called first thing in main, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
