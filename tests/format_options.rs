//! Format-specific flags go to the target format's driver, which takes its own and refuses
//! the others with one error naming the format, the flag and what the format takes (issue
//! #12, item 2), before anything is written.

mod common;

use common::*;
use rechunker_core::DataType;

fn refused(args: &[&str], fragments: &[&str]) {
    let out = rechunk(args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{args:?}: {err}"
    );
    for f in fragments {
        assert!(
            err.contains(f),
            "{args:?}: error should mention `{f}`: {err}"
        );
    }
}

#[test]
fn a_flag_of_another_format_is_refused_by_the_target_driver() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    write_raw(
        &src,
        &[meta("v", &["x", "y"], DataType::Float32, &[8, 6], &[4, 3])],
    );
    let src = src.display().to_string();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let zarr = out("o.zarr");
    refused(
        &[
            &src,
            &zarr,
            "--chunks",
            "x=-1,y=3",
            "--netcdf-format",
            "classic",
        ],
        &[
            "--netcdf-format",
            "Zarr",
            "--codec, --zarr-format, --shards",
        ],
    );
    let nc = out("o.nc");
    refused(
        &[&src, &nc, "--chunks", "x=-1,y=3", "--shards", "x=8,y=6"],
        &["--shards", "NetCDF", "--codec, --netcdf-format"],
    );
    let h5 = out("o.h5");
    refused(
        &[&src, &h5, "--chunks", "x=-1,y=3", "--zarr-format", "2"],
        &["--zarr-format", "HDF5", "takes --codec"],
    );
    let tdb = out("o.tdb");
    refused(
        &[&src, &tdb, "--chunks", "x=-1,y=3", "--shards", "x=8,y=6"],
        &["--shards", "TileDB", "takes --codec"],
    );
    let raw = out("o.raw");
    refused(
        &[
            &src,
            &raw,
            "--chunks",
            "x=-1,y=3",
            "--netcdf-format",
            "classic",
        ],
        &["--netcdf-format", "raw takes no options"],
    );
    // A value the format cannot take names the format too.
    refused(
        &[
            &src,
            &h5,
            "--chunks",
            "x=-1,y=3",
            "--codec",
            "blosc:lz4:5:shuffle",
        ],
        &["HDF5", "blosc:lz4:5:shuffle", "zlib:LEVEL"],
    );
    for name in ["o.zarr", "o.nc", "o.h5", "o.tdb", "o.raw"] {
        assert!(!dir.path().join(name).exists(), "{name} was created");
    }
    // The same flags are fine where they belong.
    ok(&[
        &src,
        &nc,
        "--chunks",
        "x=-1,y=3",
        "--netcdf-format",
        "classic",
        "-q",
    ]);
    ok(&["verify", &src, &nc]);
}

/// The capability is the driver's: a format with one writer per target (NetCDF, HDF5) refuses
/// a stage split over shards, a format with many (raw here) takes it.
#[test]
fn only_formats_with_concurrent_writers_take_shards_of_a_stage() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    write_raw(
        &src,
        &[meta("v", &["x", "y"], DataType::Float32, &[8, 6], &[4, 3])],
    );
    let src = src.display().to_string();
    for (name, one_writer) in [
        ("o.nc", Some("NetCDF")),
        ("o.h5", Some("HDF5")),
        ("o.raw", None),
    ] {
        let dst = dir.path().join(name).display().to_string();
        let plan = dir
            .path()
            .join(format!("{name}.plan.json"))
            .display()
            .to_string();
        ok(&["plan", &src, &dst, "--chunks", "x=-1,y=3", "-o", &plan]);
        let out = rechunk(&[
            "run", "--plan", &plan, "--stage", "0", "--shard", "0/2", "-q",
        ]);
        match one_writer {
            Some(format) => {
                let err = stderr(&out);
                assert!(!out.status.success(), "{name}: shard 0/2 should be refused");
                assert!(
                    err.contains(&format!(
                        "is one {format} file, which one process must write"
                    )),
                    "{name}: {err}"
                );
            }
            None => assert!(out.status.success(), "{name}: {}", stderr(&out)),
        }
    }
}
