//! How many requests to object stores are in flight at once, independent of the CPU threads:
//! each thread that writes (or reads) many objects keeps a window of requests going on the
//! shared runtime while it encodes (or decodes) the next one, so latency is overlapped rather
//! than paid once per object.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests in flight for the whole process by default: enough to hide ~30-100 ms of latency
/// behind the codecs of a few cores without flooding one endpoint.
pub const DEFAULT_IO_CONCURRENCY: usize = 16;

static IO_CONCURRENCY: AtomicUsize = AtomicUsize::new(0);

/// Sets the requests in flight for the whole process (the CLI's `--io-concurrency`); 1 makes
/// every request wait for the previous one. Applies to operations started afterwards.
pub fn set_io_concurrency(n: usize) {
    IO_CONCURRENCY.store(n.max(1), Ordering::SeqCst);
}

/// The requests in flight for the whole process.
pub fn io_concurrency() -> usize {
    match IO_CONCURRENCY.load(Ordering::SeqCst) {
        0 => DEFAULT_IO_CONCURRENCY,
        n => n,
    }
}

/// The requests one thread keeps in flight: the process's share per core. Every buffer in
/// such a window is counted in the memory budget by the adapter that fills it.
pub fn io_window() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    io_concurrency().div_ceil(cores).max(1)
}
