//! Many NetCDF files as one source concatenated along a dimension, and archives that do not
//! fit together.

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{check_parallel_reads, check_partial_reads, fixtures, read_all};
use rechunker_core::{DataType, DatasetSource, DimGrid};
use rechunker_netcdf::{NetcdfError, NetcdfSource};
use serde_json::json;
use std::path::PathBuf;

fn archive(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|n| fixtures("netcdf").join(n)).collect()
}

/// tas[t, y, x] = t * 100 + y * 10 + x over the whole archive (see make_fixtures.py).
fn tas_expected(times: u64, lat: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for t in 0..times {
        for y in 0..lat {
            for x in 0..4 {
                out.extend(((t * 100 + y * 10 + x) as f32).to_ne_bytes());
            }
        }
    }
    out
}

#[test]
fn concatenates_files_in_coordinate_order() {
    // Given out of order: sorted by the first time value.
    let paths = archive(&[
        "archive/part_c.nc",
        "archive/part_a.nc",
        "archive/part_b.nc",
    ]);
    let s = NetcdfSource::open_many(&paths, "time").unwrap();
    let files: Vec<String> = s
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["part_a.nc", "part_b.nc", "part_c.nc"]);
    assert_eq!(s.unlimited_dims(), ["time"]);
    assert!(s.location().contains("3 files"), "{}", s.location());
    assert_eq!(s.meta().attrs.get("title").unwrap().value, json!("archive"));

    let time = s.open_array("time").unwrap();
    assert_eq!(time.meta().shape(), [12]);
    let t: Vec<f64> = read_all(time.as_ref())
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(t, (0..12).map(f64::from).collect::<Vec<_>>());

    let tas = s.open_array("tas").unwrap();
    let m = tas.meta();
    assert_eq!(m.shape(), [12, 3, 4]);
    assert_eq!(m.dtype, DataType::Float32);
    // Files of 4, 5 and 3 steps chunked by 2: every file boundary is a chunk boundary.
    assert_eq!(
        m.grid.dims[0],
        DimGrid::Explicit {
            bounds: std::sync::Arc::new(vec![0, 2, 4, 6, 8, 9, 11, 12])
        }
    );
    let want = tas_expected(12, 3);
    assert_eq!(read_all(tas.as_ref()), want);
    check_partial_reads(tas.as_ref(), &want);
    check_parallel_reads(s.array("tas").unwrap().as_ref(), &want);

    // A contiguous, packed variable: slabs per file, attributes from the first file.
    let pr = s.open_array("pr").unwrap();
    assert_eq!(
        pr.meta().attrs.get("scale_factor").unwrap().dtype,
        Some(DataType::Float32)
    );
    let got: Vec<i16> = read_all(pr.as_ref())
        .chunks_exact(2)
        .map(|c| i16::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let want: Vec<i16> = tas_expected(12, 3)
        .chunks_exact(4)
        .map(|c| (f32::from_ne_bytes(c.try_into().unwrap()) as i64 % 1000) as i16)
        .collect();
    assert_eq!(got, want);

    // A variable without the concatenated dimension comes from the first file.
    let lat = s.open_array("lat").unwrap();
    assert_eq!(lat.meta().shape(), [3]);
}

#[test]
fn mismatched_archives_give_one_clear_error() {
    let good = ["archive/part_a.nc", "archive/part_b.nc"];
    let with = |bad: &str| {
        let mut names = good.to_vec();
        names.push(bad);
        NetcdfSource::open_many(&archive(&names), "time").unwrap_err()
    };
    let err = with("archive_bad/other_lat.nc");
    assert!(matches!(err, NetcdfError::Mismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("other_lat.nc") && text.contains("`lat`"),
        "{text}"
    );

    let text = with("archive_bad/extra_var.nc").to_string();
    assert!(
        text.contains("extra_var.nc") && text.contains("`orog`"),
        "{text}"
    );

    let text = with("archive_bad/other_units.nc").to_string();
    assert!(
        text.contains("other_units.nc") && text.contains("units"),
        "{text}"
    );

    let err = with("archive_bad/no_time.nc");
    assert!(matches!(err, NetcdfError::MissingConcatDim { .. }), "{err}");
    assert!(err.to_string().contains("no_time.nc"), "{err}");

    let err = NetcdfSource::open_many(&archive(&good), "level").unwrap_err();
    assert!(matches!(err, NetcdfError::MissingConcatDim { .. }), "{err}");
    assert!(err.to_string().contains("`level`"), "{err}");

    // The same file twice overlaps.
    let err = NetcdfSource::open_many(
        &archive(&["archive/part_a.nc", "archive/part_a.nc"]),
        "time",
    )
    .unwrap_err();
    assert!(err.to_string().contains("overlap"), "{err}");

    let err = NetcdfSource::open_many::<PathBuf>(&[], "time").unwrap_err();
    assert!(err.to_string().contains("no NetCDF files"), "{err}");
}
