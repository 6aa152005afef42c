//! Object stores: an unreachable endpoint fails fast, and a round trip through a real S3 server
//! (moto from the workspace venv, started here).

use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, DataType, DatasetMeta, DatasetSource, DatasetTarget, Region,
    Scalar,
};
use rechunker_zarr::{ZarrFormat, ZarrSource, ZarrTarget, ZarrWriteOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The AWS_* variables are process-wide: one test at a time sets them.
static ENV: Mutex<()> = Mutex::new(());

fn set_aws_env(endpoint: &str) {
    std::env::set_var("AWS_ENDPOINT_URL", endpoint);
    // Credentials are set so that nothing probes instance metadata.
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
}

fn meta(name: &str) -> ArrayMeta {
    ArrayMeta {
        fill_value: Some(Scalar::Float(-1.0)),
        // v2 keeps the fill value as the missing-value marker (xarray's reading).
        attrs: Attributes(vec![(
            "_FillValue".into(),
            AttrValue {
                value: (-1.0).into(),
                dtype: Some(DataType::Float32),
            },
        )]),
        ..ArrayMeta::regular(name, &["t", "x"], DataType::Float32, &[9, 6], &[2, 3])
    }
}

#[test]
fn unreachable_endpoint_fails_fast_and_names_the_uri() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    set_aws_env(&format!("http://127.0.0.1:{port}"));
    let start = Instant::now();
    let e = ZarrSource::open("s3://bucket/data.zarr")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("s3://bucket/data.zarr") && e.contains("zarr.json"),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    // Planning against an S3 target touches nothing.
    let target = ZarrTarget::create("s3://bucket/out.zarr", ZarrWriteOptions::default()).unwrap();
    assert!(target.write_overhead(&meta("v")) > 0);
    let e = ZarrSource::open("http://127.0.0.1:1/x.zarr")
        .unwrap_err()
        .to_string();
    assert!(e.contains("http://127.0.0.1:1/x.zarr"), "{e}");
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

fn start_moto() -> Option<Moto> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    // The workspace venv that `cargo xtask setup` makes (or the one RECHUNKER_PYTHON names).
    let moto = std::env::var_os("RECHUNKER_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        })
        .with_file_name("moto_server");
    assert!(
        moto.exists(),
        "{} is missing: run `cargo xtask setup` to install the S3 test server",
        moto.display()
    );
    let child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(moto);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// A bare HTTP request (moto does not check signatures); returns the status code.
fn http(port: u16, method: &str, path: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn round_trip_through_s3() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let moto = start_moto().expect("moto_server did not start within 30 s");
    set_aws_env(&format!("http://127.0.0.1:{}", moto.port));
    assert_eq!(http(moto.port, "PUT", "/bucket", ""), 200);
    let data: Vec<u8> = (0..54)
        .flat_map(|i| (i as f32 * 1.5).to_ne_bytes())
        .collect();
    for (uri, format, shards) in [
        ("s3://bucket/a/b/v3.zarr", ZarrFormat::V3, None),
        ("s3://bucket/sharded.zarr", ZarrFormat::V3, Some("t=4")),
        ("s3://bucket/v2.zarr", ZarrFormat::V2, None),
    ] {
        let options = ZarrWriteOptions {
            zarr_format: Some(format),
            codec: Some("zstd:3".parse().unwrap()),
            shards: shards.map(|s| s.parse().unwrap()),
        };
        let target = ZarrTarget::create(uri, options).unwrap();
        let m = meta("grp/v");
        let array = target.create_array(&m).unwrap();
        // Leave the last row of chunks (or shards) unwritten.
        let grid = target.write_grid(&m).unwrap();
        let rows = grid.grid_shape()[0];
        let written = grid.dims[0].chunk_range(rows - 1).start;
        let region = Region::new(vec![0, 0], vec![written, 6]);
        array
            .write_region(&region, &data[..written as usize * 6 * 4])
            .unwrap();
        assert!(
            ZarrSource::open(uri).is_err(),
            "{uri}: complete before finalize"
        );
        target
            .finalize(&DatasetMeta {
                arrays: vec![m.clone()],
                attrs: Default::default(),
            })
            .unwrap();
        let source = ZarrSource::open(uri).unwrap();
        assert_eq!(source.meta().arrays[0].dims, m.dims);
        let array = source.open_array("grp/v").unwrap();
        let mut out = vec![0u8; data.len()];
        array.read_region(&Region::full(&[9, 6]), &mut out).unwrap();
        for (i, (got, want)) in out.chunks(4).zip(data.chunks(4)).enumerate() {
            let got = f32::from_ne_bytes(got.try_into().unwrap());
            let want = if (i / 6) as u64 >= written {
                -1.0
            } else {
                f32::from_ne_bytes(want.try_into().unwrap())
            };
            assert_eq!(got, want, "{uri} element {i}");
        }
    }
    // A second run over a finished target hides it until it finalizes again.
    let uri = "s3://bucket/v2.zarr";
    let options = ZarrWriteOptions {
        zarr_format: Some(ZarrFormat::V2),
        codec: Some("zstd:3".parse().unwrap()),
        shards: None,
    };
    ZarrTarget::create(uri, options)
        .unwrap()
        .create_array(&meta("grp/v"))
        .unwrap();
    assert!(ZarrSource::open(uri).is_err());
    // Without consolidated metadata, the group is found by listing.
    let zgroup = r#"{"zarr_format": 2}"#;
    assert_eq!(
        http(moto.port, "PUT", "/bucket/v2.zarr/.zgroup", zgroup),
        200
    );
    let source = ZarrSource::open(uri).unwrap();
    assert_eq!(source.meta().arrays[0].name, "grp/v");
}
