//! The adapter conformance suite on Zarr: v3, v3 sharded and v2, on the local disk.

use rechunker_core::conformance::{Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DataType, DatasetSource, DatasetTarget};
use rechunker_zarr::{ShardSpec, ZarrFormat, ZarrSource, ZarrTarget, ZarrWriteOptions};
use std::path::Path;

fn factory_with(options: ZarrWriteOptions) -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        move |p: &Path| {
            let uri = p.display().to_string();
            Ok(Box::new(ZarrTarget::create(&uri, options.clone())?) as Box<dyn DatasetTarget>)
        },
        |p: &Path| {
            let uri = p.display().to_string();
            Ok(Box::new(ZarrSource::open(&uri)?) as Box<dyn DatasetSource>)
        },
    )
    .owning(dir)
}

fn options(format: ZarrFormat, shards: Option<&str>) -> ZarrWriteOptions {
    ZarrWriteOptions {
        zarr_format: Some(format),
        codec: Some("zstd:1".parse().unwrap()),
        shards: shards.map(|s| s.parse::<ShardSpec>().unwrap()),
    }
}

/// Zarr keeps any JSON attribute and every type.
fn capabilities() -> Capabilities {
    Capabilities::everything()
}

mod v3 {
    use super::*;

    fn factory() -> impl Factory {
        factory_with(options(ZarrFormat::V3, None))
    }

    conformance_tests!(factory, capabilities);
}

mod v3_sharded {
    use super::*;

    /// Shards of two chunks along one dimension of the suite's arrays (by dimension name).
    fn factory() -> impl Factory {
        let shards = "y=6,grid_d0=8,shared_d1=12,first_d0=10,f_float32_d1=6,big_d0=1024";
        factory_with(options(ZarrFormat::V3, Some(shards)))
    }

    conformance_tests!(factory, capabilities);
}

mod v2 {
    use super::*;

    /// v2 keeps a fill value as xarray reads it: the `_FillValue` marker (src/cf_fill.rs).
    fn capabilities() -> Capabilities {
        Capabilities {
            fill_needs_marker: true,
            // Gap: a char array's fill value is dropped in v2 (cf_fill::marker returns None for
            // Char, so src/meta.rs writes `fill_value: null`; the source then reads none).
            no_fill_for: vec![DataType::Char],
            ..super::capabilities()
        }
    }

    fn factory() -> impl Factory {
        factory_with(options(ZarrFormat::V2, None))
    }

    conformance_tests!(factory, capabilities);
}

/// The suite on S3 (moto from the workspace venv, started here, as tests/s3.rs does), all cases
/// in one test against one server.
mod s3 {
    use super::*;
    use rechunker_core::conformance::CASES;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

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
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"))
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
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        moto
    }

    /// A bare HTTP request (moto checks no signatures); returns the whole response.
    fn http(port: u16, method: &str, path: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    }

    struct S3Factory {
        port: u16,
        options: ZarrWriteOptions,
    }

    impl S3Factory {
        fn uri(name: &str) -> String {
            format!("s3://conformance/{name}/data.zarr")
        }
    }

    impl Factory for S3Factory {
        fn create(&self, name: &str) -> rechunker_core::Result<Box<dyn DatasetTarget>> {
            let target = ZarrTarget::create(&Self::uri(name), self.options.clone())?;
            Ok(Box::new(target))
        }

        fn open(&self, name: &str) -> rechunker_core::Result<Box<dyn DatasetSource>> {
            Ok(Box::new(ZarrSource::open(&Self::uri(name))?))
        }

        fn stored(&self, name: &str) -> Option<Vec<String>> {
            let listing = http(
                self.port,
                "GET",
                &format!("/conformance?list-type=2&prefix={name}/"),
            );
            assert!(listing.contains("ListBucketResult"), "{listing}");
            let mut keys: Vec<String> = listing
                .split("<Key>")
                .skip(1)
                .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
                .collect();
            keys.sort();
            Some(keys)
        }
    }

    #[test]
    fn every_case_on_s3() {
        let moto = start_moto();
        std::env::set_var(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", moto.port),
        );
        // Credentials are set so that nothing probes instance metadata.
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_REGION", "us-east-1");
        assert!(http(moto.port, "PUT", "/conformance").starts_with("HTTP/1.1 200"));
        let factory = S3Factory {
            port: moto.port,
            options: options(ZarrFormat::V3, None),
        };
        for (name, case) in CASES {
            eprintln!("conformance on S3: {name}");
            case(&factory, &capabilities());
        }
    }
}
