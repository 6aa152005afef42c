//! moto, the S3 server of the object-store tests: started from the venv `cargo xtask setup`
//! makes (beside `RECHUNKER_PYTHON`), on a free port of 127.0.0.1, killed on drop. Included by
//! the tests of rechunker-store and rechunker-zarr with `#[path = ...] mod moto;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto; fails the test if it is not installed or does not answer within 30 s.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = std::env::var_os("RECHUNKER_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
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
        let moto = Moto {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
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

    /// Points object_store's S3 client at this server, with dummy credentials so that nothing
    /// probes instance metadata. Process-wide: call it from one test per test binary.
    pub fn use_for_s3(&self) {
        std::env::set_var("AWS_ENDPOINT_URL", &self.endpoint);
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", "us-east-1");
    }

    /// A bare HTTP request (moto checks no signatures); returns the whole response.
    pub fn http(&self, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    }

    /// Creates `bucket` (object_store has no call for it).
    pub fn create_bucket(&self, bucket: &str) {
        let response = self.http("PUT", &format!("/{bucket}"));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
}
