#![allow(dead_code)]

//! The reference readers and the S3 server, from the venv that `cargo xtask setup` makes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's python: `RECHUNKER_PYTHON`, else `.venv/bin/python` in the workspace.
pub fn python() -> PathBuf {
    let path = std::env::var_os("RECHUNKER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`) to install the reference readers",
        path.display()
    );
    path
}

/// Runs `tests/python/SCRIPT args...` and fails the test with its output unless it says ok.
pub fn check(script: &str, args: &[&str]) {
    let script_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = Command::new(python())
        .arg(&script_path)
        .args(args)
        .output()
        .expect("run python");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("ok"),
        "{script} {args:?} failed:\n{stdout}\n{stderr}"
    );
}

/// Waits until a server (`what`) listens on `port` of 127.0.0.1; fails after 30 s.
pub fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free port of 127.0.0.1 (the OS picks it; a server started right after gets it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto S3 server on 127.0.0.1, stopped on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

impl S3Server {
    /// Starts moto on a free port and creates `buckets`.
    pub fn start(buckets: &[&str]) -> S3Server {
        S3Server::start_on(free_port(), buckets)
    }

    /// Starts moto on `port` (e.g. again after a stop: moto keeps nothing) with `buckets`.
    pub fn start_on(port: u16, buckets: &[&str]) -> S3Server {
        let moto = python().with_file_name("moto_server");
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for_port(port, "moto");
        for b in buckets {
            server.request("PUT", &format!("/{b}"));
        }
        server
    }

    /// Sends one plain HTTP request (moto accepts unsigned ones) and returns the status line.
    pub fn request(&self, method: &str, path: &str) -> String {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let status = response.lines().next().unwrap_or_default().to_string();
        assert!(
            status.contains(" 200") || status.contains(" 204"),
            "{method} {path}: {status}"
        );
        status
    }

    /// Sends one plain GET request and returns the response body (e.g. a bucket listing).
    pub fn get(&self, path: &str) -> String {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.lines().next().is_some_and(|l| l.contains(" 200")),
            "GET {path}: {head}"
        );
        body.to_string()
    }

    /// Environment for a client of this server, as the AWS tools read it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl S3Server {
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
