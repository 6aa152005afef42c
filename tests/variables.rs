//! Choosing what to copy and how to chunk each variable: `--variables`, `--drop-variables`,
//! per-variable `--chunks` (text and JSON), `--chunks auto --for ...`, in plan files and verify.

mod common;
#[path = "common/python.rs"]
mod python;

use common::*;
use rechunker_core::{AttrValue, DataType, DatasetMeta};
use std::path::Path;

const T: u64 = 240;
const LAT: u64 = 30;
const LON: u64 = 40;

/// tas and pr (time, lat, lon) in one chunk per time step, orog (lat, lon), the coordinates
/// time, lat, lon, and `area` (lat, lon), which tas's CF `coordinates` attribute names.
fn source(dir: &Path) -> String {
    let path = dir.join("src.raw");
    let mut tas = meta(
        "tas",
        &["time", "lat", "lon"],
        DataType::Float32,
        &[T, LAT, LON],
        &[1, LAT, LON],
    );
    tas.attrs
        .insert("coordinates", AttrValue::json("area".into()));
    write_raw(
        &path,
        &[
            meta("time", &["time"], DataType::Float64, &[T], &[T]),
            meta("lat", &["lat"], DataType::Float64, &[LAT], &[LAT]),
            meta("lon", &["lon"], DataType::Float64, &[LON], &[LON]),
            meta(
                "area",
                &["lat", "lon"],
                DataType::Float32,
                &[LAT, LON],
                &[LAT, LON],
            ),
            tas,
            meta(
                "pr",
                &["time", "lat", "lon"],
                DataType::Float32,
                &[T, LAT, LON],
                &[1, LAT, LON],
            ),
            meta(
                "orog",
                &["lat", "lon"],
                DataType::Float32,
                &[LAT, LON],
                &[10, 10],
            ),
        ],
    );
    path.display().to_string()
}

fn inspect(path: &str) -> DatasetMeta {
    serde_json::from_str(&ok(&["inspect", path, "--json"])).unwrap()
}

fn names(meta: &DatasetMeta) -> Vec<&str> {
    meta.arrays.iter().map(|a| a.name.as_str()).collect()
}

fn chunks(meta: &DatasetMeta, name: &str) -> Vec<u64> {
    meta.array(name)
        .unwrap_or_else(|| panic!("no `{name}` in {:?}", names(meta)))
        .grid
        .nominal_chunk_shape()
}

fn dst(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn variables_keep_their_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let out = dst(dir.path(), "tas.raw");
    ok(&[
        &src,
        &out,
        "--chunks",
        "time=-1,lat=10",
        "--variables",
        "tas",
        "-q",
    ]);
    let meta = inspect(&out);
    assert_eq!(names(&meta), ["time", "lat", "lon", "area", "tas"]);
    assert_eq!(chunks(&meta, "tas"), [T, 10, LON]);
    // verify compares what was copied; without the selection DST lacks pr.
    let v = ok(&["verify", &src, &out, "--variables", "tas"]);
    assert!(v.contains("identical: 5 arrays"), "{v}");
    let whole = rechunk(&["verify", &src, &out]);
    assert!(!whole.status.success() && stderr(&whole).contains("`pr`"));
    // inspect lists only the selection.
    let listed = ok(&["inspect", &src, "--variables", "pr"]);
    assert!(
        listed.contains("  pr float32") && !listed.contains("  tas float32"),
        "{listed}"
    );
}

#[test]
fn drop_variables_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let out = dst(dir.path(), "rest.raw");
    ok(&[
        &src,
        &out,
        "--chunks",
        "time=24",
        "--drop-variables",
        "pr,orog",
        "-q",
    ]);
    let meta = inspect(&out);
    assert_eq!(names(&meta), ["time", "lat", "lon", "area", "tas"]);
    assert_eq!(chunks(&meta, "tas"), [24, LAT, LON]);
    assert_eq!(chunks(&meta, "time"), [T]);
    ok(&["verify", &src, &out, "--drop-variables", "pr,orog"]);
}

#[test]
fn unknown_variables_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let before = snapshot(Path::new(&src));
    let out = dst(dir.path(), "x.raw");
    for args in [
        vec!["--variables", "tas,huss"],
        vec!["--drop-variables", "huss"],
        vec!["--chunks", "huss:time=1"],
    ] {
        let mut all = vec![src.as_str(), out.as_str()];
        if args[0] != "--chunks" {
            all.extend(["--chunks", "time=10"]);
        }
        all.extend(&args);
        let o = rechunk(&all);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(
            e.contains("`huss`") && e.contains("time, lat, lon, area, tas, pr, orog"),
            "{e}"
        );
        assert!(!Path::new(&out).exists());
    }
    assert_eq!(snapshot(Path::new(&src)), before);
}

#[test]
fn chunks_per_variable_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let out = dst(dir.path(), "per.raw");
    ok(&[
        &src,
        &out,
        "--chunks",
        "tas:time=-1,lat=10;pr:time=24;time=48,lon=20",
        "-q",
    ]);
    let meta = inspect(&out);
    assert_eq!(chunks(&meta, "tas"), [T, 10, LON]);
    assert_eq!(chunks(&meta, "pr"), [24, LAT, LON]);
    assert_eq!(chunks(&meta, "orog"), [10, 20]);
    assert_eq!(chunks(&meta, "area"), [LAT, 20]);
    assert_eq!(chunks(&meta, "time"), [T], "coordinates stay whole");
    ok(&["verify", &src, &out]);

    let json = dir.path().join("chunks.json");
    std::fs::write(
        &json,
        r#"{"tas": {"time": -1, "lat": 24}, "pr": null, "*": {"time": 100}}"#,
    )
    .unwrap();
    let out = dst(dir.path(), "json.raw");
    let at = format!("@{}", json.display());
    ok(&[&src, &out, "--chunks", &at, "-q"]);
    let meta = inspect(&out);
    assert_eq!(chunks(&meta, "tas"), [T, 24, LON]);
    assert_eq!(chunks(&meta, "pr"), [1, LAT, LON]);
    assert_eq!(chunks(&meta, "orog"), [10, 10]);
    ok(&["verify", &src, &out]);
    // A dimension the named variable does not have.
    let bad = rechunk(&[&src, &dst(dir.path(), "bad.raw"), "--chunks", "orog:time=5"]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("`orog`"),
        "{}",
        stderr(&bad)
    );
}

/// Bytes of one chunk of a float32 array.
fn chunk_bytes(c: &[u64]) -> u64 {
    c.iter().product::<u64>() * 4
}

#[test]
fn auto_chunks_follow_the_access_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let target = 64u64 << 10;
    let auto = |pattern: &str, size: &str, name: &str| -> (DatasetMeta, String) {
        let out = dst(dir.path(), name);
        let plan = ok(&[
            "plan",
            &src,
            &out,
            "--chunks",
            "auto",
            "--for",
            pattern,
            "--target-chunk-size",
            size,
        ]);
        ok(&[
            &src,
            &out,
            "--chunks",
            "auto",
            "--for",
            pattern,
            "--target-chunk-size",
            size,
            "-q",
        ]);
        ok(&["verify", &src, &out]);
        (inspect(&out), plan)
    };
    let within = |c: &[u64], target: u64| {
        let b = chunk_bytes(c);
        assert!(b * 2 >= target && b <= 2 * target, "{c:?}: {b} bytes");
    };

    let (meta, plan) = auto("time-series", "64KiB", "ts.raw");
    let tas = chunks(&meta, "tas");
    assert_eq!(tas[0], T, "{tas:?}");
    assert!(tas[1].abs_diff(tas[2]) <= 2, "square-ish: {tas:?}");
    within(&tas, target);
    assert_eq!(chunks(&meta, "time"), [T]);
    assert!(
        plan.contains("time-series: time whole (240), lat/lon "),
        "{plan}"
    );
    assert!(plan.contains("chunks (240, "), "{plan}");
    assert!(plan.contains("coordinate: whole (240)"), "{plan}");
    // orog has no time dimension: balanced, one chunk since it is small.
    assert_eq!(chunks(&meta, "orog"), [LAT, LON]);

    // A whole map is 4.7 KiB: one per chunk, 1 along time.
    let (meta, plan) = auto("maps", "64KiB", "maps.raw");
    assert_eq!(chunks(&meta, "tas"), [1, LAT, LON]);
    assert!(plan.contains("maps: time 1, lat/lon 30x40"), "{plan}");
    // A target below one map: 1 along time, blocks of the map near the target.
    let (meta, _) = auto("maps", "2KiB", "maps-small.raw");
    let tas = chunks(&meta, "tas");
    assert_eq!(tas[0], 1, "{tas:?}");
    within(&tas, 2 << 10);

    let (meta, plan) = auto("balanced", "64KiB", "bal.raw");
    let tas = chunks(&meta, "tas");
    within(&tas, target);
    let counts: Vec<u64> = [T, LAT, LON]
        .iter()
        .zip(&tas)
        .map(|(s, c)| s.div_ceil(*c))
        .collect();
    assert!(
        counts.iter().max().unwrap() <= &(2 * counts.iter().min().unwrap()),
        "{tas:?}: {counts:?} chunks"
    );
    assert!(plan.contains("balanced: time/lat/lon "), "{plan}");

    // --for without auto is a mistake.
    let o = rechunk(&[
        "plan",
        &src,
        &dst(dir.path(), "x.raw"),
        "--chunks",
        "time=5",
        "--for",
        "maps",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--chunks auto"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_files_carry_selection_and_per_variable_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let out = dst(dir.path(), "dist.raw");
    let plan = dir.path().join("plan.json").display().to_string();
    ok(&[
        "plan",
        &src,
        &out,
        "--chunks",
        "tas:auto;pr:time=-1,lat=5;time=12",
        "--for",
        "time-series",
        "--target-chunk-size",
        "64KiB",
        "--variables",
        "tas,pr",
        "-o",
        &plan,
    ]);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(
        file["chunks"],
        "tas:auto(for=time-series,size=64KiB);pr:time=-1,lat=5;time=12"
    );
    assert_eq!(file["selection"]["variables"][0], "tas");
    run_plan_file(&plan);
    let meta = inspect(&out);
    assert_eq!(names(&meta), ["time", "lat", "lon", "area", "tas", "pr"]);
    let tas = chunks(&meta, "tas");
    assert_eq!(tas[0], T);
    assert!(chunk_bytes(&tas) * 2 >= 64 << 10 && chunk_bytes(&tas) <= 128 << 10);
    assert_eq!(chunks(&meta, "pr"), [T, 5, LON]);
    assert_eq!(chunks(&meta, "area"), [LAT, LON]);
    ok(&["verify", &src, &out, "--variables", "tas,pr"]);
}

#[test]
fn resume_keeps_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let out = dst(dir.path(), "r.raw");
    let args = [
        src.as_str(),
        out.as_str(),
        "--chunks",
        "auto",
        "--variables",
        "pr",
        "-q",
    ];
    let failed = rechunk_env(&args, &[("RECHUNKER_FAIL_TASK", "0:0")]);
    assert!(!failed.status.success());
    let mut other = args.to_vec();
    other[5] = "tas";
    other.push("--resume");
    let o = rechunk(&other);
    assert!(
        !o.status.success() && stderr(&o).contains("--variables"),
        "{}",
        stderr(&o)
    );
    let mut same = args.to_vec();
    same.push("--resume");
    ok(&same);
    assert_eq!(names(&inspect(&out)), ["time", "lat", "lon", "pr"]);
}

/// CF station names and time strings as NetCDF `char` arrays (`station_name(station,
/// name_strlen)` with `_Encoding = "utf-8"`, `time_str(time, date_strlen)`, a 0-d char), written
/// by netCDF4-python: carried to Zarr v2 (`|S1`) and v3 (zarr-python's one-byte
/// `null_terminated_bytes`), NetCDF (`char`), HDF5 (one-byte strings, h5py's `S1`), raw and
/// TileDB (`char`; it has no 0-d arrays, so without the scalar), with identical values; the
/// reference readers agree and xarray decodes the same strings from the source and Zarr v2.
#[test]
fn netcdf_station_names_and_time_strings_are_carried() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let src = path("stations.nc");
    python::check("char_check.py", &["write", &src]);
    let inspect = ok(&["inspect", &src]);
    assert!(
        inspect.contains("station_name char (station, name_strlen)"),
        "{inspect}"
    );
    let chunks = "station=2,time=3";
    let (v2, v3, nc, h5) = (
        path("v2.zarr"),
        path("v3.zarr"),
        path("out.nc"),
        path("out.h5"),
    );
    ok(&[&src, &v2, "--chunks", chunks, "--zarr-format", "2", "-q"]);
    for dst in [&v3, &nc, &h5, &path("out.raw")] {
        ok(&[&src, dst, "--chunks", chunks, "-q"]);
    }
    for dst in [&v2, &v3, &nc, &h5, &path("out.raw")] {
        ok(&["verify", &src, dst]);
    }
    let tdb = path("out.tdb");
    ok(&[
        &src,
        &tdb,
        "--chunks",
        chunks,
        "--drop-variables",
        "flag",
        "-q",
    ]);
    ok(&["verify", &src, &tdb, "--drop-variables", "flag"]);
    let zarray: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{v2}/station_name/.zarray")).unwrap(),
    )
    .unwrap();
    assert_eq!(zarray["dtype"], "|S1", "{zarray}");
    let zattrs = std::fs::read_to_string(format!("{v2}/station_name/.zattrs")).unwrap();
    assert!(zattrs.contains("\"_Encoding\": \"utf-8\""), "{zattrs}");
    let zarr_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{v3}/station_name/zarr.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        zarr_json["data_type"],
        serde_json::json!({"name": "null_terminated_bytes", "configuration": {"length_bytes": 1}}),
        "{zarr_json}"
    );
    // Back from Zarr to NetCDF: still char.
    let back = path("back.nc");
    ok(&[&v3, &back, "--chunks", "station=1", "-q"]);
    ok(&["verify", &src, &back]);
    python::check("char_check.py", &["check", &src, &v2, &v3, &nc, &h5]);
}
