//! A small HTTP/1.1 proxy on 127.0.0.1 that stands between an object-store client and a local
//! S3 server (moto) and makes the link behave like the cloud: a fixed latency per request, a
//! bandwidth cap shared by all requests, and on demand `503 SlowDown` answers, reset
//! connections or stalls, either at a rate (a fraction of requests) or for a window of time.
//! It also counts requests and bytes, which is what the benchmarks report.
//!
//! The tests and `cargo xtask bench cloud` start it in-process ([`Proxy::start`]); it runs on a
//! runtime of its own, so a client that blocks on its own runtime cannot starve it. It is a
//! test tool, never part of the product.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What goes wrong with a request the proxy picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `503 SlowDown` (S3's throttling answer) without forwarding.
    SlowDown,
    /// Forward the request, then close the connection without the answer: the store did the
    /// work and the client never hears of it (so retries must be idempotent).
    Reset,
    /// Answer nothing until the window ends (or forever, for a rate), then close the
    /// connection: a store that stops answering.
    Stall,
}

/// Counters since the proxy started (or since [`Proxy::reset_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received (faulted ones included).
    pub requests: u64,
    /// Request bodies, bytes.
    pub bytes_up: u64,
    /// Response bodies, bytes.
    pub bytes_down: u64,
    /// Requests that got a fault.
    pub faults: u64,
}

/// A window of faults: it opens at the `after`-th request counted from when it was set, and
/// stays open for `duration`.
#[derive(Clone, Copy, Debug)]
struct Window {
    fault: Fault,
    after: u64,
    duration: Duration,
    opened: Option<Instant>,
}

#[derive(Debug, Default)]
struct Config {
    latency: Duration,
    /// Bytes per second, for all requests together.
    bandwidth: Option<u64>,
    rate: Option<(Fault, f64)>,
    window: Option<Window>,
    /// When the shared link is free again (the bandwidth cap's clock).
    link_free: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    config: Mutex<Config>,
    requests: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    faults: AtomicU64,
    /// Requests seen since the window was set (the window's own count).
    window_count: AtomicU64,
}

/// The proxy; it stops when dropped.
pub struct Proxy {
    endpoint: String,
    addr: SocketAddr,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream` (an `http://host:port`
    /// URL or `host:port`, e.g. moto's endpoint). No latency and no faults until set.
    pub fn start(upstream: &str) -> std::io::Result<Proxy> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rechunker-proxy")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let shared = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(state.clone(), upstream.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Proxy {
            endpoint: format!("http://{addr}"),
            addr,
            state,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.state.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request waits `latency` before it is forwarded (the round trip of a distant store).
    pub fn set_latency(&self, latency: Duration) {
        self.config().latency = latency;
    }

    /// Caps the bytes per second of request and response bodies, all requests together (`None`:
    /// no cap).
    pub fn set_bandwidth(&self, bytes_per_second: Option<u64>) {
        let mut config = self.config();
        config.bandwidth = bytes_per_second.filter(|&b| b > 0);
        config.link_free = None;
    }

    /// `fault` for a fraction `rate` (0..=1) of requests, picked by a fixed pseudo-random
    /// sequence so that runs repeat.
    pub fn fail_at_rate(&self, fault: Fault, rate: f64) {
        self.config().rate = Some((fault, rate.clamp(0.0, 1.0)));
    }

    /// `fault` for every request during `duration`, starting at the `after`-th request from now
    /// (so that it falls in the middle of a run whose length in requests is known roughly).
    pub fn fail_window(&self, fault: Fault, after: u64, duration: Duration) {
        self.state.window_count.store(0, Ordering::SeqCst);
        self.config().window = Some(Window {
            fault,
            after,
            duration,
            opened: None,
        });
    }

    /// When the window set by [`fail_window`](Self::fail_window) opened, if it has.
    pub fn window_opened(&self) -> Option<Instant> {
        self.config().window.and_then(|w| w.opened)
    }

    /// No more faults (latency and bandwidth stay).
    pub fn clear_faults(&self) {
        let mut config = self.config();
        config.rate = None;
        config.window = None;
    }

    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.state.requests.load(Ordering::SeqCst),
            bytes_up: self.state.bytes_up.load(Ordering::SeqCst),
            bytes_down: self.state.bytes_down.load(Ordering::SeqCst),
            faults: self.state.faults.load(Ordering::SeqCst),
        }
    }

    pub fn reset_stats(&self) {
        for counter in [
            &self.state.requests,
            &self.state.bytes_up,
            &self.state.bytes_down,
            &self.state.faults,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
    }
}

/// A well-mixed 64-bit value of `n` (splitmix64), for picking requests at a rate.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What happens to request number `n`: its latency and its fault, if any.
fn decide(state: &State, n: u64) -> (Duration, Option<(Fault, Option<Instant>)>) {
    let in_window = state.window_count.fetch_add(1, Ordering::SeqCst);
    let mut config = state.config.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let latency = config.latency;
    if let Some(window) = config.window.as_mut() {
        if window.opened.is_none() && in_window >= window.after {
            window.opened = Some(now);
        }
        if let Some(opened) = window.opened {
            let end = opened + window.duration;
            if now < end {
                return (latency, Some((window.fault, Some(end))));
            }
        }
    }
    if let Some((fault, rate)) = config.rate {
        if (mix(n) as f64 / u64::MAX as f64) < rate {
            return (config.latency, Some((fault, None)));
        }
    }
    (config.latency, None)
}

/// Waits for `bytes` to pass the shared link, when a bandwidth cap is set.
async fn transfer(state: &State, bytes: usize) {
    let done = {
        let mut config = state.config.lock().unwrap_or_else(|e| e.into_inner());
        let Some(bandwidth) = config.bandwidth else {
            return;
        };
        let now = Instant::now();
        let start = config.link_free.filter(|&t| t > now).unwrap_or(now);
        let done = start + Duration::from_secs_f64(bytes as f64 / bandwidth as f64);
        config.link_free = Some(done);
        done
    };
    tokio::time::sleep_until(done.into()).await;
}

/// The error that makes hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the proxy")
    }
}

impl std::error::Error for Dropped {}

type Answer = Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>>;

async fn handle(state: Arc<State>, upstream: String, request: Request<Incoming>) -> Answer {
    let n = state.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    state
        .bytes_up
        .fetch_add(body.len() as u64, Ordering::SeqCst);
    let (latency, fault) = decide(&state, n);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some((Fault::SlowDown, _)) => {
            state.faults.fetch_add(1, Ordering::SeqCst);
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            let response = Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header("content-type", "application/xml")
                .body(Full::new(Bytes::from_static(xml.as_bytes())))?;
            return Ok(response);
        }
        Some((Fault::Stall, until)) => {
            state.faults.fetch_add(1, Ordering::SeqCst);
            match until {
                Some(end) => tokio::time::sleep_until(end.into()).await,
                None => std::future::pending::<()>().await,
            }
            return Err(Box::new(Dropped));
        }
        _ => {}
    }
    transfer(&state, body.len()).await;
    let response = forward(&upstream, parts, body).await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    transfer(&state, body.len()).await;
    if let Some((Fault::Reset, _)) = fault {
        state.faults.fetch_add(1, Ordering::SeqCst);
        return Err(Box::new(Dropped));
    }
    state
        .bytes_down
        .fetch_add(body.len() as u64, Ordering::SeqCst);
    // The body is whole now: hyper frames it by its length.
    for hop in ["transfer-encoding", "connection", "keep-alive"] {
        parts.headers.remove(hop);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Sends the request to `upstream` on a connection of its own and returns the answer.
async fn forward(
    upstream: &str,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Incoming>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut request = Request::from_parts(parts, Full::new(body));
    // Origin form: the path and query only.
    if let Some(path) = request.uri().path_and_query().cloned() {
        *request.uri_mut() = path.as_str().parse()?;
    }
    Ok(sender.send_request(request).await?)
}
