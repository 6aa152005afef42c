//! NetCDF -> NetCDF and HDF5 -> HDF5 keep what the user had (issue #13): with no `--codec` (and
//! no `--netcdf-format`), each variable keeps its own filters (deflate level, shuffle, zstd,
//! fletcher32; none for contiguous variables) and a NetCDF file its flavour and unlimited
//! dimensions. Sources are written by netCDF4-python and h5py; the copies are judged by
//! `ncdump -hs`, h5py and `rechunk inspect`.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::python;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs a python snippet with `sys.argv[1:] == args`, returning its stdout.
fn run_python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ncdump -hs` lines about the file's kind, unlimited dimensions and variables' filters.
fn ncdump_filters(path: &str) -> Vec<String> {
    let out = Command::new("ncdump")
        .args(["-hs", path])
        .output()
        .expect("ncdump (netcdf-bin)");
    assert!(out.status.success(), "ncdump -hs {path} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| {
            [
                "_Format",
                "_DeflateLevel",
                "_Shuffle",
                "_Fletcher32",
                "_Filter",
                "UNLIMITED",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .map(str::to_string)
        .collect()
}

/// Each variable of `rechunk inspect` with its codecs line (chunks left out).
fn inspect_codecs(path: &str) -> Vec<(String, String)> {
    let text = ok(&["inspect", path]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(codecs) = line.strip_prefix("    codecs: ") {
            if let Some(last) = out.last_mut() {
                last.1 = codecs.to_string();
            }
        } else if line.starts_with("  ") && !line.starts_with("   ") && line.contains(": shape") {
            let name = line
                .trim()
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string();
            out.push((name, String::new()));
        }
    }
    out
}

fn path_in(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

const WRITE_NETCDF: &str = r#"
import sys, numpy as np, netCDF4
path, kind = sys.argv[1], sys.argv[2]
with netCDF4.Dataset(path, "w", format=kind) as ds:
    ds.createDimension("time", None)
    ds.createDimension("y", 6)
    ds.createDimension("x", 5)
    t = ds.createVariable("time", "f8", ("time",))
    t[:] = np.arange(8)
    nc4 = kind.startswith("NETCDF4")
    kw = lambda **k: k if nc4 else {}
    a = ds.createVariable("a", "f4", ("time", "y", "x"), **kw(zlib=True, complevel=5, shuffle=True, chunksizes=(2, 3, 5)))
    b = ds.createVariable("b", "i4", ("time", "y", "x"), **kw(zlib=True, complevel=2, shuffle=False, chunksizes=(4, 6, 5)))
    c = ds.createVariable("c", "f8", ("y", "x"), **kw(contiguous=True))
    rng = np.random.default_rng(1)
    a[:] = rng.random((8, 6, 5)).astype("f4")
    b[:] = rng.integers(0, 1000, (8, 6, 5))
    c[:] = rng.random((6, 5))
    if nc4:
        d = ds.createVariable("d", "i2", ("time", "x"), zlib=True, complevel=1, fletcher32=True, chunksizes=(8, 5))
        d[:] = rng.integers(0, 100, (8, 5))
"#;

#[test]
fn netcdf_to_netcdf_keeps_each_variables_filters_and_the_flavour() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [
        "NETCDF4",
        "NETCDF4_CLASSIC",
        "NETCDF3_CLASSIC",
        "NETCDF3_64BIT_OFFSET",
    ] {
        let src = path_in(dir.path(), &format!("{kind}.nc"));
        let dst = path_in(dir.path(), &format!("{kind}-out.nc"));
        run_python(WRITE_NETCDF, &[&src, kind]);
        ok(&[&src, &dst, "--chunks", "time=4,y=3,x=5", "-q"]);
        let (want, got) = (ncdump_filters(&src), ncdump_filters(&dst));
        assert_eq!(want, got, "{kind}: ncdump -hs differs");
        assert!(
            want.iter().any(|l| l.contains("_Format"))
                && want.iter().any(|l| l.contains("UNLIMITED")),
            "{want:?}"
        );
        if kind.starts_with("NETCDF4") {
            for line in [
                "a:_DeflateLevel = 5 ;",
                "a:_Shuffle = \"true\" ;",
                "b:_DeflateLevel = 2 ;",
            ] {
                assert!(
                    got.iter().any(|l| l == line),
                    "{kind}: no {line} in {got:?}"
                );
            }
            assert!(!got
                .iter()
                .any(|l| l.starts_with("b:_Shuffle") || l.starts_with("c:")));
            if kind == "NETCDF4" {
                assert!(
                    got.iter().any(|l| l == "d:_Fletcher32 = \"true\" ;"),
                    "{got:?}"
                );
            }
        }
        assert_eq!(inspect_codecs(&src), inspect_codecs(&dst), "{kind}");
        ok(&["verify", &src, &dst]);
        // A codec or format given is the user's choice: zlib:1 + shuffle for every variable.
        if kind == "NETCDF4" {
            let chosen = path_in(dir.path(), "chosen.nc");
            ok(&[
                &src,
                &chosen,
                "--chunks",
                "time=4,y=3,x=5",
                "--codec",
                "zlib:1",
                "-q",
            ]);
            let got = ncdump_filters(&chosen);
            assert!(got.iter().any(|l| l == "c:_DeflateLevel = 1 ;"), "{got:?}");
            assert!(
                got.iter().any(|l| l == "b:_Shuffle = \"true\" ;"),
                "{got:?}"
            );
            assert!(!got.iter().any(|l| l.contains("_Fletcher32")), "{got:?}");
        }
    }
}

/// The real file nc10 (shuffle + deflate 5) keeps both.
#[test]
fn a_real_netcdf_file_keeps_shuffle_and_deflate_5() {
    let real = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/real/netcdf/nc10-netcdf4python-issue672-ascat-l1b.nc");
    assert!(
        real.is_file(),
        "{} is missing: the real files live in ../shared/data/real beside the project",
        real.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let src = real.display().to_string();
    let dst = path_in(dir.path(), "nc10.nc");
    ok(&[&src, &dst, "--chunks", "auto", "-q"]);
    let (want, got) = (ncdump_filters(&src), ncdump_filters(&dst));
    assert_eq!(want, got);
    assert!(
        got.iter().any(|l| l.ends_with(":_DeflateLevel = 5 ;"))
            && got.iter().any(|l| l.ends_with(":_Shuffle = \"true\" ;")),
        "{got:?}"
    );
    assert_eq!(inspect_codecs(&src), inspect_codecs(&dst));
}

const WRITE_HDF5: &str = r#"
import sys, numpy as np, h5py, hdf5plugin
rng = np.random.default_rng(2)
with h5py.File(sys.argv[1], "w") as f:
    f.create_dataset("gz6", data=rng.random((20, 8)).astype("f4"), chunks=(5, 8), compression="gzip", compression_opts=6, shuffle=True)
    f.create_dataset("gz2", data=rng.integers(0, 99, (20, 8)).astype("i4"), chunks=(10, 4), compression="gzip", compression_opts=2)
    f.create_dataset("zs", data=rng.random((20, 8)), chunks=(4, 4), shuffle=True, **hdf5plugin.Zstd(clevel=4))
    f.create_dataset("fl", data=rng.integers(0, 99, (20, 8)).astype("i2"), chunks=(20, 2), compression="gzip", compression_opts=1, fletcher32=True)
    f.create_dataset("plain", data=rng.random((20, 8)))
"#;

const DESCRIBE_HDF5: &str = r#"
import sys, h5py, hdf5plugin
with h5py.File(sys.argv[1], "r") as f:
    for name in sorted(f):
        d = f[name]
        if d.is_scale:
            continue  # the target adds netCDF-style dimension scales
        filters = d.id.get_create_plist()
        stages = [filters.get_filter(i)[0] for i in range(filters.get_nfilters())]
        print(name, d.compression, d.compression_opts, d.shuffle, d.fletcher32, stages)
"#;

#[test]
fn hdf5_to_hdf5_keeps_each_datasets_filters() {
    let dir = tempfile::tempdir().unwrap();
    let src = path_in(dir.path(), "src.h5");
    let dst = path_in(dir.path(), "dst.h5");
    run_python(WRITE_HDF5, &[&src]);
    ok(&[&src, &dst, "--chunks", "auto", "-q"]);
    let (want, got) = (
        run_python(DESCRIBE_HDF5, &[&src]),
        run_python(DESCRIBE_HDF5, &[&dst]),
    );
    assert_eq!(want, got);
    for line in [
        "gz6 gzip 6 True False [2, 1]",
        "gz2 gzip 2 False False [1]",
        "fl gzip 1 False True [1, 3]",
        "plain None None False False []",
    ] {
        assert!(got.lines().any(|l| l == line), "no {line} in\n{got}");
    }
    assert!(
        got.contains("zs unknown None True False [2, 32015]"),
        "{got}"
    );
    assert_eq!(inspect_codecs(&src), inspect_codecs(&dst));
    ok(&["verify", &src, &dst]);
    // A codec given applies to every dataset.
    let chosen = path_in(dir.path(), "chosen.h5");
    ok(&[&src, &chosen, "--chunks", "auto", "--codec", "gzip:3", "-q"]);
    let got = run_python(DESCRIBE_HDF5, &[&chosen]);
    assert!(got.lines().all(|l| l.contains(" gzip 3 ")), "{got}");
}
