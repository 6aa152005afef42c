//! How many requests to object stores are in flight at once, independent of the CPU threads:
//! each thread that writes (or reads) many objects keeps a window of requests going on the
//! shared runtime while it encodes (or decodes) the next one, so latency is overlapped rather
//! than paid once per object.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests in flight for the whole process by default: enough to hide ~30-100 ms of latency
/// behind the codecs of a few cores without flooding one endpoint.
pub const DEFAULT_IO_CONCURRENCY: usize = 16;

/// Most requests in flight a latency-sized default reaches.
pub const MAX_AUTO_IO_CONCURRENCY: usize = 128;

/// Requests in flight per core per this much request latency, for the latency-sized default:
/// a core encodes or decodes a typical chunk in a few milliseconds, so this keeps a request
/// leaving about that often per core however long each one takes.
const LATENCY_PER_REQUEST_PER_CORE: f64 = 0.004;

static IO_CONCURRENCY: AtomicUsize = AtomicUsize::new(0);
static AUTO_IO_CONCURRENCY: AtomicUsize = AtomicUsize::new(0);

/// Sets the requests in flight for the whole process (the CLI's `--io-concurrency`); 1 makes
/// every request wait for the previous one. Applies to operations started afterwards, and
/// wins over the latency-sized default.
pub fn set_io_concurrency(n: usize) {
    IO_CONCURRENCY.store(n.max(1), Ordering::SeqCst);
}

/// Sizes the default from the measured `wait` of one request (seconds): by Little's law the
/// requests in flight must grow with latency to keep the same rate, so 30 ms keeps the
/// default of 16 on two cores and 100 ms gets about 50. Never below the default, at most
/// [`MAX_AUTO_IO_CONCURRENCY`]; ignored once the user set a number. Returns what now applies.
pub fn size_io_concurrency_for(wait: f64) -> usize {
    let cores = cores();
    let wanted = (wait.max(0.0) / LATENCY_PER_REQUEST_PER_CORE).ceil() as usize * cores;
    AUTO_IO_CONCURRENCY.store(
        wanted.clamp(DEFAULT_IO_CONCURRENCY, MAX_AUTO_IO_CONCURRENCY),
        Ordering::SeqCst,
    );
    io_concurrency()
}

/// The requests in flight for the whole process: the user's number, else the latency-sized
/// default, else [`DEFAULT_IO_CONCURRENCY`].
pub fn io_concurrency() -> usize {
    match (
        IO_CONCURRENCY.load(Ordering::SeqCst),
        AUTO_IO_CONCURRENCY.load(Ordering::SeqCst),
    ) {
        (0, 0) => DEFAULT_IO_CONCURRENCY,
        (0, auto) => auto,
        (n, _) => n,
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// The requests one thread keeps in flight: the process's share per core. Every buffer in
/// such a window is counted in the memory budget by the adapter that fills it.
pub fn io_window() -> usize {
    io_concurrency().div_ceil(cores()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grows_with_latency_and_yields_to_the_user() {
        let cores = cores();
        assert_eq!(size_io_concurrency_for(0.0), DEFAULT_IO_CONCURRENCY);
        let at_100ms = size_io_concurrency_for(0.1);
        assert_eq!(
            at_100ms,
            (25 * cores).clamp(DEFAULT_IO_CONCURRENCY, MAX_AUTO_IO_CONCURRENCY)
        );
        assert_eq!(size_io_concurrency_for(10.0), MAX_AUTO_IO_CONCURRENCY);
        set_io_concurrency(3);
        assert_eq!(size_io_concurrency_for(0.1), 3);
        assert_eq!(io_concurrency(), 3);
    }
}
