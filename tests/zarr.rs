//! Zarr end to end through the `rechunk` binary: fixtures written by zarr-python and xarray are
//! read correctly, zarr-python and xarray read our v2/v3 (sharded) output identically, a real S3
//! server (moto) holds source, scratch and target, and bad input gets one clear error.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::{check, S3Server};
use std::path::{Path, PathBuf};

fn fixture_zarr(name: &str) -> String {
    fixture(&format!("zarr/{name}"))
}

/// Reads a whole-array raw dataset written by `rechunk` back as bytes.
fn raw_values(dataset: &Path, name: &str) -> Vec<u8> {
    use rechunker_core::DatasetSource;
    let source = rechunker_raw::RawSource::open(dataset).unwrap();
    let array = source.open_array(name).unwrap();
    let region = rechunker_core::Region::full(&array.meta().shape());
    let mut out = vec![0u8; region.num_elements() as usize * array.meta().item_size()];
    array.read_region(&region, &mut out).unwrap();
    out
}

#[test]
fn zarr_python_fixtures_read_with_the_right_values() {
    let dir = tempfile::tempdir().unwrap();
    // v2, blosc lz4: (i * 3 - 100), with the last chunk [30:, 21:] all fill value (-1).
    let out = dir.path().join("v2.raw");
    ok(&[
        &fixture_zarr("v2_blosc.zarr"),
        out.to_str().unwrap(),
        "--chunks",
        "37,23",
        "-q",
    ]);
    let got: Vec<i32> = raw_values(&out, "v2_blosc")
        .chunks(4)
        .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
        .collect();
    for (i, v) in got.iter().enumerate() {
        let (y, x) = (i / 23, i % 23);
        let want = if y >= 30 && x >= 21 {
            -1
        } else {
            i as i32 * 3 - 100
        };
        assert_eq!(*v, want, "element ({y}, {x})");
    }
    // v3, sharded, zstd: t * 1000 + y * 10 + x * 0.5.
    let out = dir.path().join("v3.raw");
    ok(&[
        &fixture_zarr("v3_sharded_zstd.zarr"),
        out.to_str().unwrap(),
        "--chunks",
        "t=40,y=3,x=4",
        "-q",
    ]);
    let got: Vec<f64> = raw_values(&out, "v3_sharded_zstd")
        .chunks(8)
        .map(|b| f64::from_ne_bytes(b.try_into().unwrap()))
        .collect();
    for (i, v) in got.iter().enumerate() {
        let (t, y, x) = (i / 600, (i / 20) % 30, i % 20);
        assert_eq!(
            *v,
            t as f64 * 1000.0 + y as f64 * 10.0 + x as f64 * 0.5,
            "element ({t}, {y}, {x})"
        );
    }
    let inspect = ok(&["inspect", &fixture_zarr("v3_sharded_zstd.zarr")]);
    assert!(
        inspect.contains("(t, y, x)")
            && inspect.contains("chunks (20, 30, 10)")
            && inspect.contains("zstd"),
        "{inspect}"
    );
}

#[test]
fn xarray_reads_our_v2_v3_and_sharded_output_identically() {
    let dir = tempfile::tempdir().unwrap();
    for source in ["group_coords_v3.zarr", "group_coords_v2.zarr"] {
        let src = fixture_zarr(source);
        for (name, extra) in [
            // No options: each source keeps its version and codecs (tests/keep_encoding.rs).
            ("kept.zarr", vec![]),
            (
                "v2.zarr",
                vec!["--zarr-format", "2", "--codec", "blosc:lz4:5:shuffle"],
            ),
            ("gzip.zarr", vec!["--codec", "gzip:1"]),
            (
                "v3-sharded.zarr",
                vec!["--zarr-format", "3", "--shards", "time=24,lat=10,lon=12"],
            ),
        ] {
            let dst = dir
                .path()
                .join(format!("{source}-{name}"))
                .display()
                .to_string();
            let mut args = vec![
                src.as_str(),
                dst.as_str(),
                "--chunks",
                "time=-1,lat=5,lon=6",
            ];
            args.extend(extra.iter().copied());
            let out = rechunk(&args);
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            // Progress and the per-stage summary reach a log (stderr is not a terminal here).
            assert!(stderr(&out).contains("tas stage 1/1"), "{}", stderr(&out));
            check(
                "zarr_check.py",
                &["identical", &src, &dst, "tas=24,5,6", "lat=13", "time=24"],
            );
            ok(&["verify", &src, &dst]);
            if name.contains("sharded") {
                check(
                    "zarr_check.py",
                    &[
                        "array",
                        &format!("{dst}/tas"),
                        &format!("{dst}/tas"),
                        "24,5,6",
                        "24,10,12",
                    ],
                );
            }
            let v2 = name == "v2.zarr" || (source.contains("v2") && !name.contains("v3"));
            let meta = std::fs::read_to_string(Path::new(&dst).join(if v2 {
                ".zmetadata"
            } else {
                "zarr.json"
            }))
            .unwrap();
            assert!(!meta.contains("_zarrs"), "{meta}");
        }
    }
}

/// A lone array comes back as a lone array at DST (not a group holding it), also with codec
/// options.
#[test]
fn zarr_python_reads_single_arrays_we_rechunked() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture_zarr("v3_sharded_zstd.zarr");
    let dst = dir.path().join("a.zarr").display().to_string();
    ok(&[
        &src,
        &dst,
        "--chunks",
        "t=40,y=5,x=5",
        "--codec",
        "blosc:zstd:3:bitshuffle",
        "-q",
    ]);
    check("zarr_check.py", &["array", &src, &dst, "40,5,5"]);
    let src = fixture_zarr("v2_blosc.zarr");
    let dst = dir.path().join("b.zarr").display().to_string();
    ok(&[
        &src,
        &dst,
        "--chunks",
        "y=-1,x=5",
        "--zarr-format",
        "2",
        "-q",
    ]);
    check("zarr_check.py", &["array", &src, &dst, "37,5"]);
}

#[test]
fn s3_holds_source_scratch_and_target() {
    let s3 = S3Server::start(&["data", "work"]);
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    // 64 MB of float32 in time slices: more than a 128 MiB process has for data (it holds
    // 85-100 MiB itself): two stages.
    let raw = write_tas(
        &dir.path().join("tas.raw"),
        &[1600, 100, 100],
        &[1, 100, 100],
    );
    let run = |args: &[&str]| {
        let out = rechunk_env(args, &env);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    run(&[&raw, "s3://data/in/tas.zarr", "--chunks", "time=1", "-q"]);
    let text = run(&[
        "s3://data/in/tas.zarr",
        "s3://data/out/tas.zarr",
        "--scratch",
        "s3://work/scratch",
        "--chunks",
        "time=-1,lat=10,lon=10",
        "--max-mem",
        "128MiB",
        "--threads",
        "1",
    ]);
    assert!(
        text.contains("stage 2/2"),
        "the test wants a two-stage plan through S3 scratch: {text}"
    );
    run(&["verify", &raw, "s3://data/out/tas.zarr"]);
    // The scratch prefix is empty afterwards.
    let listing = s3.get("/work?list-type=2&prefix=scratch");
    assert!(
        listing.contains("<ListBucketResult") && !listing.contains("<Key>"),
        "scratch left behind: {listing}"
    );
    // And zarr-python reads the target via a local copy.
    let local = dir.path().join("copy.zarr").display().to_string();
    run(&[
        "s3://data/out/tas.zarr",
        &local,
        "--chunks",
        "time=-1,lat=10,lon=10",
        "-q",
    ]);
    check(
        "zarr_check.py",
        &[
            "array",
            &format!("{local}/tas"),
            &format!("{local}/tas"),
            "1600,10,10",
        ],
    );
}

#[test]
fn unreachable_s3_fails_quickly_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("o.zarr").display().to_string();
    let started = std::time::Instant::now();
    let out = rechunk_env(
        &["s3://nowhere/tas.zarr", &dst, "--chunks", "1"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("s3://nowhere/tas.zarr"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{err}"
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn bad_zarr_input_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = |name: &str, damage: &dyn Fn(&Path), fragments: &[&str]| {
        let src = dir.path().join(name);
        copy_dir(Path::new(&fixture_zarr("group_coords_v3.zarr")), &src);
        damage(&src);
        let before = snapshot(&src);
        let dst = dir
            .path()
            .join(format!("{name}-out.zarr"))
            .display()
            .to_string();
        let out = rechunk(&[
            src.to_str().unwrap(),
            &dst,
            "--chunks",
            "time=-1,lat=5,lon=6",
        ]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{name}: should fail");
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{name}: {err}"
        );
        for f in fragments {
            assert!(err.contains(f), "{name}: error should mention `{f}`: {err}");
        }
        assert_eq!(before, snapshot(&src), "{name}: source modified");
        assert!(
            !Path::new(&dst).join("zarr.json").exists(),
            "{name}: target looks complete"
        );
    };
    bad(
        "truncated.zarr",
        &|p| {
            let chunk = p.join("tas/c/3/0/0");
            let bytes = std::fs::read(&chunk).unwrap();
            std::fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
        },
        &["tas/c/3/0/0", "`tas`"],
    );
    bad(
        "unsupported-codec.zarr",
        &|p| {
            for file in [p.join("tas/zarr.json"), p.join("zarr.json")] {
                let text = std::fs::read_to_string(&file)
                    .unwrap()
                    .replace("\"blosc\"", "\"mystery_codec\"");
                std::fs::write(&file, text).unwrap();
            }
        },
        &["mystery_codec", "tas"],
    );
    bad(
        "no-metadata.zarr",
        &|p| {
            std::fs::remove_file(p.join("zarr.json")).unwrap();
            std::fs::remove_file(p.join("tas/zarr.json")).unwrap();
        },
        &["no-metadata.zarr"],
    );
    let src = fixture_zarr("v2_blosc.zarr");
    let dst = dir.path().join("x.zarr").display().to_string();
    let out = rechunk(&[&src, &dst, "--chunks", "5,5,5"]);
    assert!(
        !out.status.success() && stderr(&out).contains("2 dimensions"),
        "{}",
        stderr(&out)
    );
    let out = rechunk(&[&src, &dst, "--chunks", "5,5", "--codec", "lzma:9"]);
    assert!(
        !out.status.success() && stderr(&out).contains("lzma"),
        "{}",
        stderr(&out)
    );
    let out = rechunk(&[
        &src,
        &dst,
        "--chunks",
        "5,5",
        "--zarr-format",
        "2",
        "--shards",
        "10,10",
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("shard"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn http_sources_are_read_through_consolidated_metadata() {
    use std::net::{TcpListener, TcpStream};
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/zarr");
    let mut server = std::process::Command::new(python::python())
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed().as_secs() < 30,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("from-http.zarr").display().to_string();
    let url = format!("http://127.0.0.1:{port}/group_coords_v3.zarr");
    let out = rechunk(&[&url, &dst, "--chunks", "time=-1,lat=5,lon=6", "-q"]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    check(
        "zarr_check.py",
        &[
            "identical",
            &fixture_zarr("group_coords_v3.zarr"),
            &dst,
            "tas=24,5,6",
        ],
    );
    // Writing to HTTP is refused clearly.
    let out = rechunk(&[
        &fixture_zarr("group_coords_v3.zarr"),
        "http://127.0.0.1:9/x.zarr",
        "--chunks",
        "time=-1",
    ]);
    assert!(
        !out.status.success() && stderr(&out).contains("read-only"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn runs_with_nan_fill_values_resume() {
    // A NaN fill value is not equal to itself: the resumed run must still see its own plan.
    let dir = tempfile::tempdir().unwrap();
    let src = fixture_zarr("group_coords_v3.zarr");
    let dst = dir.path().join("o.zarr").display().to_string();
    let args = [
        src.as_str(),
        dst.as_str(),
        "--chunks",
        "time=-1,lat=5,lon=6",
        "-q",
    ];
    let failed = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(
        !failed.status.success(),
        "the injected failure did not happen"
    );
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    ok(&resumed);
    check("zarr_check.py", &["identical", &src, &dst, "tas=24,5,6"]);
}
