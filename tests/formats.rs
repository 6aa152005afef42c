//! NetCDF, HDF5 and TileDB end to end through `rechunk`: NetCDF archives to Zarr judged by
//! xarray, NetCDF and HDF5 output judged by netCDF4-python, ncdump and h5py, every pair of
//! formats round-tripping random arrays, and one clear error for each kind of bad input.

mod common;

#[path = "common/python.rs"]
mod python;

use common::*;
use python::check;
use rechunker_core::DataType;
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn a_netcdf_archive_becomes_zarr_that_xarray_reads_identically() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = fixture("netcdf/archive/*.nc");
    for (name, extra) in [
        ("v3.zarr", vec![]),
        ("sharded.zarr", vec!["--shards", "time=-1,lat=-1,lon=-1"]),
        ("v2.zarr", vec!["--zarr-format", "2"]),
    ] {
        let dst = dir.path().join(name).display().to_string();
        let mut args = vec![
            pattern.as_str(),
            dst.as_str(),
            "--concat-dim",
            "time",
            "--chunks",
            "time=-1,lat=2,lon=2",
            "-q",
        ];
        args.extend(extra);
        ok(&args);
        check("nc_check.py", &["mf-vs-zarr", &pattern, "time", &dst]);
        check(
            "zarr_check.py",
            &["identical", &dst, &dst, "tas=12,2,2", "time=12"],
        );
        ok(&["verify", &pattern, &dst, "--concat-dim", "time"]);
    }
}

#[test]
fn netcdf_output_has_the_requested_chunks_deflate_and_shuffle() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("netcdf/nc4_types.nc");
    // Level 1 is written by ISA-L's igzip, other levels by libdeflate: readers see zlib either way.
    for level in [1, 4] {
        let dst = dir
            .path()
            .join(format!("out-{level}.nc"))
            .display()
            .to_string();
        ok(&[
            &src,
            &dst,
            "--chunks",
            "time=7,lat=5,lon=2",
            "--codec",
            &format!("zlib:{level}"),
            "-q",
        ]);
        check(
            "nc_check.py",
            &["nc-vs-nc", &src, &dst, "v_f4=7,5,2", "v_i2=7,5,2"],
        );
        let out = Command::new("ncdump")
            .args(["-hs", &dst])
            .output()
            .expect("ncdump (netcdf-bin)");
        let header = String::from_utf8_lossy(&out.stdout);
        for want in [
            "v_f4:_ChunkSizes = 7, 5, 2".to_string(),
            format!("v_f4:_DeflateLevel = {level}"),
            "v_f4:_Shuffle = \"true\"".to_string(),
        ] {
            assert!(
                header.contains(&want),
                "ncdump -hs lacks `{want}`:\n{header}"
            );
        }
        ok(&["verify", &src, &dst]);
    }
    // A classic file too.
    let classic = dir.path().join("classic.nc").display().to_string();
    ok(&[
        &fixture("netcdf/classic.nc"),
        &classic,
        "--chunks",
        "-1",
        "--netcdf-format",
        "classic",
        "-q",
    ]);
    ok(&["verify", &fixture("netcdf/classic.nc"), &classic]);
}

#[test]
fn h5py_reads_our_hdf5_output() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("hdf5/h5py_types.h5");
    for codec in ["gzip:1", "zstd:3"] {
        let dst = dir
            .path()
            .join(format!("out-{}.h5", &codec[..4]))
            .display()
            .to_string();
        ok(&[&src, &dst, "--chunks", "time=4,y=3", "--codec", codec, "-q"]);
        check("nc_check.py", &["h5-vs-h5", &src, &dst, "gzip/v_f4=4,3,5"]);
        ok(&["verify", &src, &dst]);
    }
}

/// Every pair of formats: raw -> A -> B -> raw gives back the same bytes.
#[test]
fn every_pair_of_formats_round_trips_random_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let arrays = [
        meta(
            "f8",
            &["t", "y", "x"],
            DataType::Float64,
            &[9, 7, 5],
            &[1, 7, 5],
        ),
        meta(
            "i2",
            &["t", "y", "x"],
            DataType::Int16,
            &[9, 7, 5],
            &[3, 2, 5],
        ),
        meta("u1", &["t", "y"], DataType::UInt8, &[9, 7], &[9, 1]),
        meta("i8", &["t"], DataType::Int64, &[9], &[4]),
    ];
    let src = dir.path().join("src.raw");
    write_raw(&src, &arrays);
    let src = src.display().to_string();
    let formats = ["zarr", "nc", "h5", "tdb"];
    for a in formats {
        let first = dir.path().join(format!("first.{a}")).display().to_string();
        ok(&[&src, &first, "--chunks", "t=2,y=3", "-q"]);
        for b in formats {
            let second = dir.path().join(format!("{a}-to.{b}")).display().to_string();
            ok(&[&first, &second, "--chunks", "t=-1,y=2", "-q"]);
            let back = dir
                .path()
                .join(format!("{a}-{b}.raw"))
                .display()
                .to_string();
            ok(&[&second, &back, "--chunks", "t=9", "-q"]);
            ok(&["verify", &src, &back]);
        }
    }
}

#[test]
fn tiledb_py_reads_what_we_write_from_netcdf_and_we_read_its_arrays() {
    let dir = tempfile::tempdir().unwrap();
    // (nc4_types.nc has a scalar variable, which TileDB cannot hold: the archive has none.)
    let src = fixture("netcdf/archive/*.nc");
    let dst = dir.path().join("from-nc.tdb").display().to_string();
    ok(&[
        &src,
        &dst,
        "--concat-dim",
        "time",
        "--chunks",
        "time=12,lat=2,lon=3",
        "-q",
    ]);
    ok(&["verify", &src, &dst, "--concat-dim", "time"]);
    // Arrays written by tiledb-py (from_numpy with uint64 dimensions, a group) to Zarr.
    for (fixture_name, chunks) in [
        ("tiledb/from_numpy.tdb", "-1,3"),
        ("tiledb/group.tdb", "time=-1,lat=2"),
    ] {
        let src = fixture(fixture_name);
        let out = dir
            .path()
            .join(format!("{}.zarr", fixture_name.replace('/', "-")))
            .display()
            .to_string();
        ok(&[&src, &out, "--chunks", chunks, "-q"]);
        ok(&["verify", &src, &out]);
    }
}

fn fails(args: &[&str], fragments: &[&str], untouched: &Path) {
    let before = std::fs::read_dir(untouched)
        .map(|_| snapshot(untouched))
        .unwrap_or_default();
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
    let after = std::fs::read_dir(untouched)
        .map(|_| snapshot(untouched))
        .unwrap_or_default();
    assert_eq!(before, after, "{args:?} modified its source");
}

#[test]
fn bad_netcdf_hdf5_and_tiledb_input_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("o.zarr").display().to_string();
    let nc = PathBuf::from(fixture("netcdf"));
    fails(
        &[&fixture("netcdf/truncated4.nc"), &dst, "--chunks", "-1"],
        &["truncated4.nc"],
        &nc,
    );
    fails(
        &[&fixture("netcdf/truncated3.nc"), &dst, "--chunks", "-1"],
        &["truncated3.nc"],
        &nc,
    );
    fails(
        &[&fixture("netcdf/not_netcdf.nc"), &dst, "--chunks", "-1"],
        &["not_netcdf.nc"],
        &nc,
    );
    fails(
        &[&fixture("netcdf/strings.nc"), &dst, "--chunks", "-1"],
        &["strings.nc", "not supported"],
        &nc,
    );
    fails(
        &[&fixture("hdf5/truncated.h5"), &dst, "--chunks", "-1"],
        &["truncated.h5"],
        &PathBuf::from(fixture("hdf5")),
    );
    // Archives that do not fit together, each naming the file at fault.
    let bad = PathBuf::from(fixture("netcdf/archive_bad"));
    for (file, what) in [
        ("other_lat.nc", "lat"),
        ("extra_var.nc", "extra_var.nc"),
        ("no_time.nc", "time"),
        ("other_units.nc", "units"),
    ] {
        let work = dir.path().join(format!("archive-{file}"));
        std::fs::create_dir_all(&work).unwrap();
        for good in std::fs::read_dir(fixture("netcdf/archive"))
            .unwrap()
            .flatten()
        {
            std::fs::copy(good.path(), work.join(good.file_name())).unwrap();
        }
        std::fs::copy(bad.join(file), work.join(file)).unwrap();
        let pattern = format!("{}/*.nc", work.display());
        fails(
            &[&pattern, &dst, "--concat-dim", "time", "--chunks", "-1"],
            &[file, what],
            &work,
        );
    }
    let pattern = fixture("netcdf/archive/*.nc");
    fails(&[&pattern, &dst, "--chunks", "-1"], &["--concat-dim"], &nc);
    fails(
        &[&pattern, &dst, "--concat-dim", "depth", "--chunks", "-1"],
        &["depth"],
        &nc,
    );
    let tdb = PathBuf::from(fixture("tiledb"));
    fails(
        &[&fixture("tiledb/sparse.tdb"), &dst, "--chunks", "-1"],
        &["sparse", "not supported"],
        &tdb,
    );
    fails(
        &[&fixture("tiledb/varlen.tdb"), &dst, "--chunks", "-1"],
        &["not supported"],
        &tdb,
    );
}

fn tile_extents(array: &str) -> serde_json::Value {
    let meta: serde_json::Value = serde_json::from_str(&ok(&["inspect", array, "--json"])).unwrap();
    meta["arrays"][0]["grid"].clone()
}

/// `rechunk in-place`, killed after every step of the swap: the array always reads the same
/// values, and rerunning the command finishes with the new tile extents.
#[test]
fn tiledb_in_place_survives_a_kill_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    // Same file name everywhere: an anonymous attribute is named after its array.
    let pristine = dir.path().join("pristine/from_numpy.tdb");
    copy_dir(Path::new(&fixture("tiledb/from_numpy.tdb")), &pristine);
    let pristine = pristine.display().to_string();
    let old = tile_extents(&pristine);
    for step in 1..=rechunker::in_place::LAST_STEP {
        let array = dir.path().join(format!("a{step}/from_numpy.tdb"));
        copy_dir(Path::new(&pristine), &array);
        let array = array.display().to_string();
        let args = ["in-place", array.as_str(), "--chunks", "-1,2", "-q"];
        let killed = rechunk_env(
            &args,
            &[(rechunker::in_place::ABORT_ENV, &step.to_string())],
        );
        assert!(
            !killed.status.success(),
            "step {step}: the abort hook did not fire"
        );
        // Readable, with the old values, whatever the step.
        ok(&["verify", &pristine, &array]);
        // Either the old array or the new one, never something in between.
        let now = tile_extents(&array);
        assert!(
            now == old || now[1]["regular"]["chunk"] == 2,
            "step {step}: {now}"
        );
        let out = ok(&args);
        assert!(
            out.contains("done") || out.contains("nothing to do"),
            "step {step}: {out}"
        );
        ok(&["verify", &pristine, &array]);
        let new = tile_extents(&array);
        assert_ne!(new, old, "step {step}: the tile extents did not change");
        assert_eq!(new[1]["regular"]["chunk"], 2, "step {step}: {new}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(format!("a{step}")))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "from_numpy.tdb")
            .collect();
        assert!(
            leftovers.is_empty(),
            "step {step}: left behind {leftovers:?}"
        );
    }
}
