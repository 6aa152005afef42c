//! The proxy in front of a real S3 server (moto): latency, counting, and each fault.

#[path = "../../rechunker-store/test-support/moto.rs"]
mod moto;

use rechunker_proxy::{Fault, Proxy};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// moto answers anonymous reads 403; it checks no signature, only that there is one.
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";

/// One request on a fresh connection; the whole answer, or `None` when the connection closed
/// without one.
fn request(proxy: &Proxy, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(proxy.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {AUTH}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        proxy.addr(),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    match s.read_to_string(&mut answer) {
        Ok(_) if !answer.is_empty() => Some(answer),
        _ => None,
    }
}

#[test]
fn latency_counts_and_faults() {
    let moto = moto::Moto::start();
    moto.create_bucket("bkt");
    let proxy = Proxy::start(&moto.endpoint).unwrap();

    let answer = request(&proxy, "PUT", "/bkt/k", "hello").unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = request(&proxy, "GET", "/bkt/k", "").unwrap();
    assert!(answer.ends_with("hello"), "{answer}");
    let stats = proxy.stats();
    assert_eq!((stats.requests, stats.bytes_up), (2, 5));
    assert!(stats.bytes_down >= 5);

    proxy.set_latency(Duration::from_millis(100));
    let start = Instant::now();
    request(&proxy, "GET", "/bkt/k", "").unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    proxy.set_latency(Duration::ZERO);

    proxy.fail_at_rate(Fault::SlowDown, 1.0);
    let answer = request(&proxy, "GET", "/bkt/k", "").unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("SlowDown"),
        "{answer}"
    );
    // A reset happens after the store did the work.
    proxy.fail_at_rate(Fault::Reset, 1.0);
    assert_eq!(request(&proxy, "PUT", "/bkt/k2", "x"), None);
    proxy.clear_faults();
    assert!(request(&proxy, "GET", "/bkt/k2", "")
        .unwrap()
        .ends_with('x'));

    // About half of many requests at rate 0.5.
    proxy.fail_at_rate(Fault::SlowDown, 0.5);
    let slow = (0..100)
        .filter(|_| {
            request(&proxy, "GET", "/bkt/k", "")
                .unwrap()
                .contains(" 503 ")
        })
        .count();
    assert!((30..70).contains(&slow), "{slow} of 100");
    proxy.clear_faults();

    // A stall window opening at the second request: that one and the next wait for the end.
    proxy.fail_window(Fault::Stall, 1, Duration::from_secs(2));
    let start = Instant::now();
    assert!(request(&proxy, "GET", "/bkt/k", "").is_some());
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(request(&proxy, "GET", "/bkt/k", ""), None);
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(request(&proxy, "GET", "/bkt/k", "").is_some());

    // A bandwidth cap of 100 kB/s: a 50 kB body takes half a second.
    proxy.set_bandwidth(Some(100_000));
    let big = "y".repeat(50_000);
    let start = Instant::now();
    request(&proxy, "PUT", "/bkt/big", &big).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
}
