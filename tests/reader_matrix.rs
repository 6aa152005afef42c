//! Round trips judged by the readers people use (issue #13, item 5): for every pair of formats
//! (NetCDF-4, HDF5, Zarr v3, Zarr v2, TileDB), a small CF-like dataset written by the source
//! format's own reference writer (netCDF4-python, h5py, xarray over zarr-python, tiledb-py) is
//! rechunked with no options but `--chunks` (and `--zarr-format 2` for v2 output), and the output,
//! read by the target format's readers (netCDF4-python and xarray, h5py, zarr-python 3 and
//! xarray.open_zarr, zarr-python 2, tiledb-py) opened without options, shows the source's
//! values, dimensions, coordinates and attributes (chunks aside). `tests/python/matrix_check.py`
//! writes the sources, reads both sides and says what differs; what a format cannot carry is
//! allowed for there, with one line on why.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The formats, as `matrix_check.py` names them, with the file name ending of their datasets
/// (each dataset has a folder of its own, so both Zarr versions end in `.zarr`).
const FORMATS: [(&str, &str); 5] = [
    ("nc", "nc"),
    ("h5", "h5"),
    ("zarr", "zarr"),
    ("zarr2", "zarr"),
    ("tdb", "tdb"),
];

/// One dataset of `matrix_check.py make` rechunked from every format to every format.
struct Case {
    /// `dataset` (the CF-like one) or `lone` (one variable without coordinates).
    kind: &'static str,
    /// `--chunks`.
    chunks: &'static str,
    /// What each variable must show for them (`VAR=c0,c1,..`).
    want: &'static [&'static str],
}

/// The CF-like dataset: coordinates are written whole whatever `--chunks` says, as xarray
/// writes them.
const DATASET: Case = Case {
    kind: "dataset",
    chunks: "time=3,lat=2,lon=4,station=2,strlen=-1",
    want: &[
        "tas=3,2,4",
        "count=3,2",
        "pr=3,2",
        "time_bnds=3,2",
        "station_name=2,8",
        "time=6",
        "lat=5",
        "lon=4",
    ],
};

/// One variable: a lone array in Zarr and TileDB, a file of one variable in NetCDF and HDF5
/// (whose h5py dataset has no dimension scales, so its dimensions are `phony_dim_N`).
const LONE: Case = Case {
    kind: "lone",
    chunks: "2,-1",
    want: &["tas=2,4"],
};

/// zarr-python 2's python: `RECHUNKER_PYTHON_ZARR2`, else `.venv-zarr2/bin/python` (zarr 2 and
/// 3 cannot share a venv; `cargo xtask setup` makes both).
fn python_zarr2() -> PathBuf {
    let path = std::env::var_os("RECHUNKER_PYTHON_ZARR2")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-zarr2/bin/python")
        });
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (or `cargo xtask test`) to install zarr-python 2",
        path.display()
    );
    path
}

/// Runs `matrix_check.py args...`; `Err` with its output unless it says ok.
fn matrix_check(args: &[&str]) -> Result<(), String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/matrix_check.py");
    let out = Command::new(python::python())
        .args(["-W", "ignore"])
        .arg(&script)
        .args(args)
        .env("RECHUNKER_PYTHON_ZARR2", python_zarr2())
        .output()
        .map_err(|e| format!("cannot run python: {e}"))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if out.status.success() && stdout.contains("ok") {
        Ok(())
    } else {
        Err(format!("matrix_check.py {args:?}:\n{stdout}{stderr}"))
    }
}

/// Writes `case`'s dataset in `format` with its reference writer, rechunks it to every format
/// and judges every output (in one python run: each start-up costs a second); returns one
/// message per failure, each naming its pair.
fn pairs_from(dir: &Path, case: &Case, format: &str, ending: &str) -> Vec<String> {
    // Every dataset is `tas.EXT` in a folder of its own: a lone array is named after its folder.
    let folder = dir.join(format!("{}-{format}", case.kind));
    std::fs::create_dir_all(&folder).unwrap();
    let src = folder.join(format!("tas.{ending}")).display().to_string();
    if let Err(e) = matrix_check(&["make", format, &src, case.kind]) {
        return vec![format!("{} {format} source: {e}", case.kind)];
    }
    let mut failures = Vec::new();
    let mut compare = vec!["compare".to_string(), format.into(), src.clone()];
    for (target, target_ending) in FORMATS {
        let pair = format!("{} {format} -> {target}", case.kind);
        let target_folder = folder.join(target);
        std::fs::create_dir_all(&target_folder).unwrap();
        let dst = target_folder
            .join(format!("tas.{target_ending}"))
            .display()
            .to_string();
        let mut args = vec![src.as_str(), dst.as_str(), "--chunks", case.chunks, "-q"];
        if target == "zarr2" {
            args.extend(["--zarr-format", "2"]);
        }
        let run = rechunk(&args);
        if !run.status.success() {
            failures.push(format!("{pair}: rechunk {args:?} failed: {}", stderr(&run)));
            continue;
        }
        if compare.len() > 3 {
            compare.push("+".into());
        }
        compare.extend([target.to_string(), dst]);
        compare.extend(case.want.iter().map(|c| c.to_string()));
    }
    if compare.len() > 3 {
        let args: Vec<&str> = compare.iter().map(String::as_str).collect();
        if let Err(e) = matrix_check(&args) {
            failures.push(format!("{} dataset: {e}", case.kind));
        }
    }
    failures
}

/// Runs every pair of `case`, one thread per source format, and fails listing every pair that
/// differs.
fn every_pair(case: &Case) {
    let tempdir = tempfile::tempdir().unwrap();
    let dir = tempdir.path();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = FORMATS
            .iter()
            .map(|&(format, ending)| scope.spawn(move || pairs_from(dir, case, format, ending)))
            .collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("a source's thread panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "the {} dataset: pairs of the {} differ (one report per source format):\n\n{}",
        case.kind,
        FORMATS.len() * FORMATS.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_pair_of_formats_reads_back_the_same_in_the_readers_people_use() {
    every_pair(&DATASET);
}

#[test]
fn a_lone_array_or_single_variable_reads_back_the_same_from_every_format() {
    every_pair(&LONE);
}
