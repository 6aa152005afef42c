//! The scratch-store conformance suite on object stores: object_store's in-memory store, and S3
//! (moto from the workspace venv, started here).

use object_store::memory::InMemory;
use rechunker_core::conformance::scratch_store;
use rechunker_store::ObjectScratch;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn in_memory() {
    let store = ObjectScratch::new("memory://", Arc::new(InMemory::new())).unwrap();
    scratch_store(&store);
}

/// A moto server on a free port, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = std::env::var_os("RECHUNKER_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        })
        .with_file_name("moto_server");
    assert!(
        server.exists(),
        "{} is missing: run `cargo xtask setup` to install the S3 test server",
        server.display()
    );
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
    let moto = Moto { child, port };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// moto takes an unsigned bucket creation; object_store has no call for it.
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[test]
fn on_s3() {
    let moto = start_moto();
    // Only this test sets AWS_* in this binary.
    std::env::set_var(
        "AWS_ENDPOINT_URL",
        format!("http://127.0.0.1:{}", moto.port),
    );
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    create_bucket(moto.port, "bucket");
    let store = ObjectScratch::open("s3://bucket/work/x.rechunk-scratch").unwrap();
    scratch_store(&store);
}
