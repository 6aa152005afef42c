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

/// Freed heap kept per arena before it is trimmed.
const TRIM_THRESHOLD: u64 = 8 << 20;
/// Most malloc arenas: threads share them beyond this (two keep the worker threads from
/// contending much while bounding what freed memory the allocator keeps).
const ARENAS: u64 = 2;
/// What the allocator may hold of freed memory at worst: the trim threshold in every arena.
pub const ALLOCATOR_RETENTION: u64 = TRIM_THRESHOLD * ARENAS;

/// Sets glibc's allocator so that resident memory follows the executor's accounting without
/// paying a page fault per 4 KiB on every codec buffer. Buffers up to 32 MiB (chunks, encoded
/// chunks: what adapters allocate per chunk) come from the heap and are reused; larger ones (task
/// blocks, big pieces) are mapped and returned to the kernel when freed; freed heap is trimmed
/// beyond 8 MiB. A fixed threshold also turns off glibc's sliding one, which would otherwise
/// keep growing with the largest buffer ever freed. `RECHUNK_MMAP_THRESHOLD` and
/// `RECHUNK_TRIM_THRESHOLD` (bytes; 0 leaves glibc's defaults) override for experiments.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any worker thread starts.
    unsafe {
        let setting = |name: &str, default: i32| -> i32 {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let mmap_threshold = setting("RECHUNK_MMAP_THRESHOLD", 32 << 20);
        let trim_threshold = setting("RECHUNK_TRIM_THRESHOLD", TRIM_THRESHOLD as i32);
        if mmap_threshold > 0 {
            libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold);
        }
        if trim_threshold > 0 {
            libc::mallopt(libc::M_TRIM_THRESHOLD, trim_threshold);
        }
        libc::mallopt(libc::M_ARENA_MAX, ARENAS as i32);
    }
}

/// Memory the process needs besides task buffers: what it holds now (binary, libraries, the
/// opened source; freed heap handed back first), what the allocator may keep of freed memory (see [`tune_allocator`]),
/// headroom for thread stacks, small per-chunk buffers of codecs and metadata, and each
/// thread's direct-I/O transfer buffer for the scratch.
pub fn reserve(threads: usize) -> u64 {
    let per_thread = (2 << 20) + rechunker_core::scratch::DIRECT_IO_BUFFER_BYTES as u64;
    // Freed but resident heap is not needed: without this the figure drifts with whatever was
    // freed last (a Python caller's heap, the rate probes of an earlier plan).
    rechunker_core::pages::release_freed_heap();
    current_rss().unwrap_or(32 << 20)
        + ALLOCATOR_RETENTION
        + (16 << 20)
        + threads as u64 * per_thread
}

/// Tasks run at once unless the caller says: twice the cores, so that while one task waits
/// for storage (a piece read straight from disk, a chunk fetched under the HDF5 lock) another
/// keeps the core busy; but no more than leave each task 64 MiB of `max_mem`, since more tasks
/// mean smaller blocks and pieces.
pub fn default_threads(max_mem: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let affordable = usize::try_from(max_mem / (64 << 20)).unwrap_or(usize::MAX);
    affordable.clamp(cores, 2 * cores)
}
