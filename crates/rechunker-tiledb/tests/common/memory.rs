//! Resident memory of this process, for measuring what one call holds beyond its buffers.

/// A `/proc/self/status` field in bytes (`VmRSS:`, `VmHWM:`).
pub fn status(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with(field)).unwrap();
    l[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap()
        << 10
}

/// The allocator settings of the `rechunk` binary (src/memory.rs): big buffers go back to the
/// kernel when freed, so resident memory tracks what is live.
pub fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Restarts the peak (`VmHWM`) at the current resident size.
pub fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// Bytes by which the resident peak of `f` exceeds the resident size before it.
pub fn peak_beyond_start(f: impl FnOnce()) -> u64 {
    let base = status("VmRSS:");
    reset_peak();
    f();
    status("VmHWM:").saturating_sub(base)
}
