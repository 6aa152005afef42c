//! What the process itself holds, from the kernel's point of view.

/// A `VmXXX:` figure of `/proc/self/status`, in bytes (Linux only).
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Resident memory now.
pub fn current_rss() -> Option<u64> {
    proc_status("VmRSS:")
}

/// Peak resident memory so far (the high-water mark the budget is about).
pub fn peak_rss() -> Option<u64> {
    proc_status("VmHWM:")
}

/// Makes the allocator hand big buffers back to the kernel as soon as they are freed, so that
/// resident memory tracks the executor's accounting instead of glibc's caches.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any worker thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}
