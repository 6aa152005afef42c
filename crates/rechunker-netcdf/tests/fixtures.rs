//! Files written by netCDF4-python (fixtures/netcdf/make_fixtures.py) read with the right
//! values, attributes and dimensions; bad input gives one clear error and is left untouched.

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{check_parallel_reads, check_partial_reads, fixture_values, fixtures, read_all};
use rechunker_core::{DataType, DatasetSource, Scalar};
use rechunker_netcdf::{NetcdfError, NetcdfReadOptions, NetcdfSource};
use serde_json::json;

const TYPES: [(&str, DataType); 10] = [
    ("i1", DataType::Int8),
    ("u1", DataType::UInt8),
    ("i2", DataType::Int16),
    ("u2", DataType::UInt16),
    ("i4", DataType::Int32),
    ("u4", DataType::UInt32),
    ("i8", DataType::Int64),
    ("u8", DataType::UInt64),
    ("f4", DataType::Float32),
    ("f8", DataType::Float64),
];

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn reads_netcdf4_written_by_netcdf4_python() {
    let path = fixtures("netcdf").join("nc4_types.nc");
    let before = std::fs::read(&path).unwrap();
    let s = NetcdfSource::open(&path).unwrap();
    assert_eq!(s.unlimited_dims(), ["time"]);
    let meta = s.meta();
    // Each array's metadata names the unlimited dimensions among its own.
    assert_eq!(meta.unlimited_dims(), ["time"]);
    assert_eq!(meta.array("time").unwrap().unlimited_dims, ["time"]);
    assert!(meta.array("lat").unwrap().unlimited_dims.is_empty());
    let names: Vec<&str> = meta.arrays.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(&names[..3], ["time", "lat", "lon"]);
    assert!(names.contains(&"grp/inner"), "{names:?}");
    assert_eq!(
        meta.attrs.get("title").unwrap().value,
        json!("netCDF4-python fixture")
    );
    assert_eq!(
        meta.attrs.get("version").unwrap().dtype,
        Some(DataType::Int32)
    );
    let time = s.open_array("time").unwrap();
    assert_eq!(time.meta().dims, ["time"]);
    assert_eq!(
        time.meta().attrs.get("units").unwrap().value,
        json!("hours since 2000-01-01")
    );
    let t: Vec<f64> = read_all(time.as_ref())
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(t, [0.0, 6.0, 12.0, 18.0, 24.0, 30.0, 36.0]);
    for (k, (suffix, dtype)) in TYPES.iter().enumerate() {
        let a = s.open_array(&format!("v_{suffix}")).unwrap();
        let m = a.meta();
        assert_eq!(m.dtype, *dtype, "v_{suffix}");
        assert_eq!(m.dims, ["time", "lat", "lon"]);
        assert_eq!(m.shape(), [7, 5, 6]);
        assert_eq!(m.grid.nominal_chunk_shape(), [2, 3, 4]);
        assert_eq!(m.codecs, ["shuffle", "zlib(1)"]);
        let want = fixture_values(*dtype, 210, k as i64);
        assert_eq!(read_all(a.as_ref()), want, "v_{suffix}");
        check_partial_reads(a.as_ref(), &want);
    }
    check_parallel_reads(
        s.array("v_f4").unwrap().as_ref(),
        &fixture_values(DataType::Float32, 210, 8),
    );
    // Packed data: attributes copied as stored, with their types.
    let p = s.open_array("packed").unwrap();
    let m = p.meta();
    let attr = |n: &str| m.attrs.get(n).unwrap_or_else(|| panic!("no attribute {n}"));
    assert_eq!(attr("_FillValue").value, json!(-32767));
    assert_eq!(attr("_FillValue").dtype, Some(DataType::Int16));
    assert_eq!(m.fill_value, Some(Scalar::Int(-32767)));
    assert_eq!(attr("scale_factor").dtype, Some(DataType::Float32));
    assert_eq!(attr("add_offset").dtype, Some(DataType::Float32));
    assert!((attr("add_offset").value.as_f64().unwrap() - 273.15).abs() < 1e-4);
    assert_eq!(attr("valid_range").value, json!([-30000, 30000]));
    assert_eq!(attr("valid_range").dtype, Some(DataType::Int16));
    assert_eq!(attr("flag_values").value, json!([1, 2, 4]));
    assert_eq!(attr("flag_values").dtype, Some(DataType::UInt8));
    assert_eq!(attr("big").value, json!(1u64 << 40));
    assert_eq!(attr("big").dtype, Some(DataType::Int64));
    assert_eq!(attr("ubig").value, json!(1u64 << 63));
    assert_eq!(attr("ubig").dtype, Some(DataType::UInt64));
    assert_eq!(attr("ratio").dtype, Some(DataType::Float64));
    assert_eq!(attr("names").value, json!(["alpha", "beta"]));
    assert_eq!(attr("comment").value, json!("char attribute"));
    let order: Vec<&str> = m.attrs.iter().map(|(n, _)| n).collect();
    assert_eq!(&order[..3], ["_FillValue", "scale_factor", "add_offset"]);
    let mut want = fixture_values(DataType::Int16, 210, 3);
    want[..2].copy_from_slice(&(-32767i16).to_ne_bytes());
    assert_eq!(read_all(p.as_ref()), want);
    // Big-endian chunks (byte-swapped after decoding), contiguous data (slabs through the
    // library), fletcher32 (through the library), unwritten chunks, a scalar, a group.
    let be = s.open_array("big_endian").unwrap();
    let want = fixture_values(DataType::Float64, 30, 5);
    assert_eq!(read_all(be.as_ref()), want);
    check_partial_reads(be.as_ref(), &want);
    let c = s.open_array("contiguous").unwrap();
    assert!(c.meta().codecs.is_empty());
    assert_eq!(read_all(c.as_ref()), fixture_values(DataType::Int32, 30, 6));
    let ck = s.open_array("checksummed").unwrap();
    assert!(
        ck.meta().codecs.contains(&"fletcher32".to_string()),
        "{:?}",
        ck.meta().codecs
    );
    let want = fixture_values(DataType::Float32, 30, 7);
    assert_eq!(read_all(ck.as_ref()), want);
    check_partial_reads(ck.as_ref(), &want);
    let sp = s.open_array("sparse").unwrap();
    let got = f32s(&read_all(sp.as_ref()));
    let written = f32s(&fixture_values(DataType::Float32, 6, 8));
    for y in 0..5 {
        for x in 0..6 {
            let v = got[y * 6 + x];
            if y < 2 && x < 3 {
                assert_eq!(v, written[y * 3 + x]);
            } else {
                assert_eq!(v, -1.5, "({y},{x}) is unwritten: the fill value");
            }
        }
    }
    let scalar = s.open_array("scalar").unwrap();
    assert!(scalar.meta().dims.is_empty());
    assert_eq!(read_all(scalar.as_ref()), 42.5f64.to_ne_bytes());
    let inner = s.open_array("grp/inner").unwrap();
    assert_eq!(inner.meta().dims, ["lat", "lon"]);
    assert_eq!(
        read_all(inner.as_ref()),
        fixture_values(DataType::UInt16, 30, 9)
    );
    drop(s);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the source must not change"
    );
}

#[test]
fn reads_netcdf3_formats() {
    for (file, extended) in [
        ("classic.nc", false),
        ("offset64.nc", false),
        ("cdf5.nc", true),
    ] {
        let path = fixtures("netcdf").join(file);
        let s = NetcdfSource::open(&path).unwrap();
        assert_eq!(s.unlimited_dims(), ["time"], "{file}");
        let mut types = vec![
            ("i1", DataType::Int8),
            ("i2", DataType::Int16),
            ("i4", DataType::Int32),
            ("f4", DataType::Float32),
            ("f8", DataType::Float64),
        ];
        if extended {
            types.extend([
                ("u1", DataType::UInt8),
                ("u2", DataType::UInt16),
                ("u4", DataType::UInt32),
                ("i8", DataType::Int64),
                ("u8", DataType::UInt64),
            ]);
        }
        for (k, (suffix, dtype)) in types.iter().enumerate() {
            let a = s.open_array(&format!("v_{suffix}")).unwrap();
            assert_eq!(a.meta().dtype, *dtype, "{file} v_{suffix}");
            assert_eq!(a.meta().dims, ["time", "y", "x"]);
            assert!(a.meta().codecs.is_empty());
            let want = fixture_values(*dtype, 60, k as i64);
            assert_eq!(read_all(a.as_ref()), want, "{file} v_{suffix}");
            check_partial_reads(a.as_ref(), &want);
            check_parallel_reads(s.array(&format!("v_{suffix}")).unwrap().as_ref(), &want);
        }
        let fixed = s.open_array("fixed").unwrap();
        assert_eq!(fixed.meta().fill_value, Some(Scalar::Float(-9.0)));
        assert_eq!(
            fixed.meta().attrs.get("scale_factor").unwrap().dtype,
            Some(DataType::Float64)
        );
        assert_eq!(
            read_all(fixed.as_ref()),
            fixture_values(DataType::Float64, 12, 11)
        );
        let t = s.open_array("time").unwrap();
        assert_eq!(
            t.meta().attrs.get("units").unwrap().value,
            json!("days since 1970-01-01")
        );
    }
}

#[test]
fn bad_input_gives_one_clear_error() {
    let dir = fixtures("netcdf");
    let before: Vec<Vec<u8>> = [
        "not_netcdf.nc",
        "truncated3.nc",
        "truncated4.nc",
        "strings.nc",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap())
    .collect();

    let err = NetcdfSource::open(dir.join("not_netcdf.nc")).unwrap_err();
    assert!(matches!(err, NetcdfError::NotNetcdf { .. }), "{err}");
    assert!(err.to_string().contains("not_netcdf.nc"), "{err}");

    let err = NetcdfSource::open(dir.join("missing.nc")).unwrap_err();
    assert!(matches!(err, NetcdfError::Open { .. }), "{err}");

    let err = NetcdfSource::open(dir.join("truncated4.nc")).unwrap_err();
    assert!(matches!(err, NetcdfError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("truncated4.nc"), "{err}");

    // A truncated NetCDF-3 file: libnetcdf would read the missing data as fill values, so the
    // header is checked against the file's length.
    let err = NetcdfSource::open(dir.join("truncated3.nc")).unwrap_err();
    assert!(matches!(err, NetcdfError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("truncated3.nc"), "{err}");

    let err = NetcdfSource::open(dir.join("strings.nc")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, NetcdfError::Unsupported { .. }), "{text}");
    assert!(
        text.contains("`station`") && text.contains("strings.nc") && text.contains("not supported"),
        "{text}"
    );
    let s = NetcdfSource::open_with(
        dir.join("strings.nc"),
        &NetcdfReadOptions {
            skip_unsupported: true,
        },
    )
    .unwrap();
    let names: Vec<&str> = s.meta().arrays.iter().map(|a| a.name.as_str()).collect();
    // The variable-length `station` strings are skipped; the `code` char variable is carried.
    assert_eq!(names, ["code", "ok"]);

    let after: Vec<Vec<u8>> = [
        "not_netcdf.nc",
        "truncated3.nc",
        "truncated4.nc",
        "strings.nc",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap())
    .collect();
    assert_eq!(before, after, "sources must not change");
}
