//! How requests to object stores ride out the cloud's bad moments: exponential backoff with
//! jitter on 5xx, 429/SlowDown, timeouts and dropped connections, bounded by total time (not
//! by a count, which says nothing about how long an outage lasts); connect and read timeouts
//! so that a store that stops answering is noticed; and a log line when retries happen.
//!
//! object_store's retry loop does the backing off; this module sets its bounds and wraps its
//! HTTP client to (a) say when requests fail and are retried and (b) let every request that is
//! safe to repeat be repeated after any transport error: object_store retries timeouts and
//! broken connections only for requests it marks idempotent, and it does not mark DELETE.
//! One exception the other way: an endpoint that has never answered this process and refuses
//! connections is a wrong address, not an outage, so that fails at once.

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a request keeps being retried by default: long enough for the throttling bursts
/// and short outages object stores have, short enough that a dead store is reported while the
/// user still waits for it.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(120);

/// The retry bound in milliseconds, process-wide (0: not set, the default applies).
static RETRY_TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);

/// Sets how long any request to an object store is retried before the run fails (the CLI's
/// `--retry-timeout`). Applies to stores opened afterwards.
pub fn set_retry_timeout(timeout: Duration) {
    RETRY_TIMEOUT_MS.store(timeout.as_millis().max(1) as u64, Ordering::SeqCst);
}

/// The retry bound in force.
pub fn retry_timeout() -> Duration {
    match RETRY_TIMEOUT_MS.load(Ordering::SeqCst) {
        0 => DEFAULT_RETRY_TIMEOUT,
        ms => Duration::from_millis(ms),
    }
}

/// Backoff from 100 ms doubling up to 5 s, each wait drawn at random between the first and
/// the doubled last (object_store's decorrelated jitter), so that many clients throttled at
/// once do not come back at once; retried until [`retry_timeout`] has passed.
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        // The time bound is the one that matters.
        max_retries: 10_000,
        retry_timeout: retry_timeout(),
    }
}

/// Connect within 5 s; no read may wait more than 20 s (a store that stopped answering), nor
/// longer than the whole retry budget when that is shorter (but at least 5 s); no request may
/// take more than 10 minutes whole (a large object on a slow link).
pub(crate) fn client_options(allow_http: bool) -> ClientOptions {
    let read = retry_timeout().clamp(Duration::from_secs(5), Duration::from_secs(20));
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_read_timeout(read)
        .with_timeout(Duration::from_secs(600))
        .with_allow_http(allow_http)
}

/// The HTTP client of every store: reqwest's, wrapped by [`Watched`].
#[derive(Debug, Default)]
pub(crate) struct Connector;

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Watched { inner }))
    }
}

#[derive(Debug)]
struct Watched {
    inner: HttpClient,
}

/// True for a request that does the same thing however often it is sent: reads, deletes,
/// unconditional PUTs (an object written whole, with the same bytes each time), and S3's
/// batch delete. A conditional PUT (`If-None-Match`, `If-Match`) is not: a lost answer to a
/// first attempt that succeeded makes the second one fail.
fn repeatable(request: &HttpRequest) -> bool {
    match request.method().as_str() {
        "GET" | "HEAD" | "DELETE" => true,
        "PUT" => !["if-none-match", "if-match"]
            .iter()
            .any(|h| request.headers().contains_key(*h)),
        "POST" => request.uri().query().is_some_and(|q| q == "delete"),
        _ => false,
    }
}

/// The endpoints (`host:port`) that have answered a request of this process.
fn answered() -> std::sync::MutexGuard<'static, HashSet<String>> {
    static ANSWERED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    ANSWERED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl HttpService for Watched {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let repeat = repeatable(&request);
        let what = format!("{} {}", request.method(), request.uri().path());
        let endpoint = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        // Held until the answer's head arrives: --io-concurrency bounds the whole process.
        let permit = crate::io::IN_FLIGHT.enter(crate::io::io_concurrency).await;
        let answer = self.inner.execute(request).await;
        drop(permit);
        match answer {
            Ok(response) => {
                answered().insert(endpoint);
                let status = response.status();
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    note_failure(&what, &format!("status {status}"));
                }
                Ok(response)
            }
            Err(e) if e.kind() == HttpErrorKind::Connect && !answered().contains(&endpoint) => {
                // Never reached: a wrong endpoint (or none running); say so now.
                Err(HttpError::new(HttpErrorKind::Unknown, e))
            }
            Err(e) => {
                note_failure(&what, &e.to_string());
                let kind = e.kind();
                let retry_anyway = repeat
                    && matches!(
                        kind,
                        HttpErrorKind::Timeout
                            | HttpErrorKind::Interrupted
                            | HttpErrorKind::Unknown
                    );
                if retry_anyway {
                    // `Request` is the kind object_store always retries.
                    Err(HttpError::new(HttpErrorKind::Request, e))
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Failures seen and not yet reported, and when the last report was made (ms since START).
static UNREPORTED: AtomicU64 = AtomicU64::new(0);
static LAST_REPORT_MS: AtomicU64 = AtomicU64::new(0);

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Says that a request failed and will be retried: the first failure at once, then at most
/// one line every 5 s with the count, so that an outage is visible but does not flood the log.
fn note_failure(what: &str, why: &str) {
    let now = start().elapsed().as_millis() as u64 + 1;
    let count = UNREPORTED.fetch_add(1, Ordering::SeqCst) + 1;
    let last = LAST_REPORT_MS.load(Ordering::SeqCst);
    if (last == 0 || now.saturating_sub(last) >= 5_000)
        && LAST_REPORT_MS
            .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        let count = UNREPORTED.swap(0, Ordering::SeqCst).max(count.min(1));
        tracing::warn!(
            "object store request failed ({what}: {why}); retrying with backoff for up to {:?} ({count} failed request(s) since the last report)",
            retry_timeout()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_bound_is_settable() {
        assert_eq!(retry_config().retry_timeout, retry_timeout());
        set_retry_timeout(Duration::from_secs(7));
        assert_eq!(retry_config().retry_timeout, Duration::from_secs(7));
    }
}
