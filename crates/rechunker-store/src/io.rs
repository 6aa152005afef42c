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

/// Requests to object stores of this process awaiting their answers, held under
/// [`io_concurrency`] by every store's HTTP client: the threads' windows together may ask for
/// more (more tasks run than there are cores), the store never sees more.
pub(crate) static IN_FLIGHT: Gate = Gate::new();

/// A bound on tasks in flight whose limit may change while some wait.
pub(crate) struct Gate {
    in_flight: AtomicUsize,
    freed: tokio::sync::Notify,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            in_flight: AtomicUsize::new(0),
            freed: tokio::sync::Notify::const_new(),
        }
    }

    /// Waits until fewer than `limit()` are in, then counts one more until the returned
    /// permit drops.
    pub(crate) async fn enter(&self, limit: impl Fn() -> usize) -> Permit<'_> {
        loop {
            // Registered before looking, so a permit freed in between still wakes this task.
            let mut freed = std::pin::pin!(self.freed.notified());
            freed.as_mut().enable();
            let n = self.in_flight.load(Ordering::SeqCst);
            if n < limit().max(1) {
                if self
                    .in_flight
                    .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    return Permit { gate: self };
                }
                continue;
            }
            freed.await;
        }
    }
}

/// One task in a [`Gate`]; leaves it when dropped.
pub(crate) struct Permit<'a> {
    gate: &'a Gate,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.gate.freed.notify_one();
    }
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

    /// 64 tasks that each hold their permit across many yields on two worker threads: never
    /// more than the limit are in at once, and every one gets in.
    #[test]
    fn the_gate_holds_tasks_in_flight_under_its_limit() {
        use std::sync::Arc;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let gate = Arc::new(Gate::new());
        let (inside, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        runtime.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (gate, inside, most, done) =
                        (gate.clone(), inside.clone(), most.clone(), done.clone());
                    tokio::spawn(async move {
                        let _permit = gate.enter(|| 4).await;
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        for _ in 0..50 {
                            tokio::task::yield_now().await;
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                        done.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        assert_eq!(done.load(Ordering::SeqCst), 64);
        let most = most.load(Ordering::SeqCst);
        assert!((1..=4).contains(&most), "{most} in at once, limit 4");
    }
}
