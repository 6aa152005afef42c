//! Files written by h5py (fixtures/hdf5/make_fixtures.py) read with the right values,
//! attributes and dimensions; bad input gives one clear error.

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{check_parallel_reads, check_partial_reads, fixture_values, fixtures, read_all};
use rechunker_core::{DataType, DatasetSource, Scalar};
use rechunker_hdf5::{Hdf5Error, Hdf5ReadOptions, Hdf5Source};
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

#[test]
fn reads_h5py_file() {
    let path = fixtures("hdf5").join("h5py_types.h5");
    let before = std::fs::read(&path).unwrap();
    let s = Hdf5Source::open(&path).unwrap();
    let meta = s.meta();
    assert_eq!(
        meta.attrs.get("title").unwrap().value,
        json!("h5py fixture")
    );
    assert_eq!(
        meta.attrs.get("count").unwrap().dtype,
        Some(DataType::Int32)
    );
    assert_eq!(meta.attrs.get("ratios").unwrap().value, json!([0.5, 0.25]));
    for (k, (suffix, dtype)) in TYPES.iter().enumerate() {
        let a = s.open_array(&format!("gzip/v_{suffix}")).unwrap();
        let m = a.meta();
        assert_eq!(m.dtype, *dtype);
        assert_eq!(m.shape(), [8, 6, 5]);
        assert_eq!(m.grid.nominal_chunk_shape(), [3, 4, 5]);
        assert_eq!(m.dims[..2], ["time", "y"]);
        assert!(m.dims[2].starts_with("phony_dim_"));
        assert_eq!(m.codecs, ["shuffle", "zlib(1)"]);
        let want = fixture_values(*dtype, 240, k as i64);
        assert_eq!(read_all(a.as_ref()), want, "v_{suffix}");
        check_partial_reads(a.as_ref(), &want);
    }
    // zstd (hdf5plugin), with typed attributes of many kinds.
    let z = s.open_array("zstd/tas").unwrap();
    let m = z.meta();
    assert_eq!(m.codecs, ["shuffle", "zstd(3)"]);
    assert_eq!(m.dims[0], "time");
    let want = fixture_values(DataType::Float32, 240, 20);
    assert_eq!(read_all(z.as_ref()), want);
    check_parallel_reads(z.as_ref(), &want);
    let attr = |n: &str| m.attrs.get(n).unwrap_or_else(|| panic!("no attribute {n}"));
    assert_eq!(attr("units").value, json!("K"));
    assert_eq!(attr("valid_range").value, json!([-50, 50]));
    assert_eq!(attr("valid_range").dtype, Some(DataType::Int16));
    assert_eq!(attr("flag").value, json!(true));
    assert_eq!(attr("labels").value, json!(["a", "bb", "ccc"]));
    assert_eq!(attr("fixed").value, json!("fixed-len"));
    assert_eq!(attr("_FillValue").value, json!(-999.0));
    assert_eq!(attr("_FillValue").dtype, Some(DataType::Float32));
    // Dimension scales are coordinates of their own dimension.
    assert_eq!(s.open_array("time").unwrap().meta().dims, ["time"]);
    assert_eq!(s.open_array("y").unwrap().meta().dims, ["y"]);
    // Contiguous (read in slabs through the library), big-endian (raw chunks swapped),
    // fletcher32 (through the library), bool, unwritten chunks, a scalar.
    let c = s.open_array("plain/contiguous").unwrap();
    assert!(c.meta().codecs.is_empty());
    assert_eq!(
        read_all(c.as_ref()),
        fixture_values(DataType::Int16, 48, 21)
    );
    let be = s.open_array("plain/big_endian").unwrap();
    let want = fixture_values(DataType::Float64, 48, 22);
    assert_eq!(read_all(be.as_ref()), want);
    check_partial_reads(be.as_ref(), &want);
    let ck = s.open_array("plain/checksummed").unwrap();
    assert_eq!(ck.meta().codecs, ["fletcher32"]);
    let want = fixture_values(DataType::UInt32, 48, 23);
    assert_eq!(read_all(ck.as_ref()), want);
    check_partial_reads(ck.as_ref(), &want);
    let mask = s.open_array("plain/mask").unwrap();
    assert_eq!(mask.meta().dtype, DataType::Bool);
    assert_eq!(
        read_all(mask.as_ref()),
        fixture_values(DataType::Bool, 48, 24)
    );
    let sparse = s.open_array("plain/sparse").unwrap();
    assert_eq!(sparse.meta().fill_value, Some(Scalar::Int(-5)));
    let got = read_all(sparse.as_ref());
    let written = fixture_values(DataType::Int32, 12, 25);
    for y in 0..8 {
        for x in 0..6 {
            let at = (y * 6 + x) * 4;
            let v = &got[at..at + 4];
            if y < 4 && x < 3 {
                let w = (y * 3 + x) * 4;
                assert_eq!(v, &written[w..w + 4]);
            } else {
                assert_eq!(v, (-5i32).to_ne_bytes());
            }
        }
    }
    let scalar = s.open_array("plain/scalar").unwrap();
    assert_eq!(read_all(scalar.as_ref()), 2.5f64.to_ne_bytes());
    let nodims = s.open_array("plain/nodims").unwrap();
    assert!(nodims
        .meta()
        .dims
        .iter()
        .all(|d| d.starts_with("phony_dim_")));
    assert_ne!(nodims.meta().dims[0], nodims.meta().dims[1]);
    // The source is opened read-only and left as it was.
    drop(s);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn bad_input_gives_one_clear_error() {
    let dir = fixtures("hdf5");
    let err = Hdf5Source::open(dir.join("not_hdf5.h5")).unwrap_err();
    assert!(matches!(err, Hdf5Error::NotHdf5 { .. }), "{err}");
    assert!(err.to_string().contains("not_hdf5.h5"), "{err}");

    let err = Hdf5Source::open(dir.join("truncated.h5")).unwrap_err();
    assert!(err.to_string().contains("truncated.h5"), "{err}");

    let err = Hdf5Source::open(dir.join("missing.h5")).unwrap_err();
    assert!(matches!(err, Hdf5Error::Open { .. }), "{err}");

    let err = Hdf5Source::open(dir.join("h5py_strings.h5")).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Hdf5Error::Unsupported { .. }), "{text}");
    assert!(
        text.contains("`names`")
            && text.contains("h5py_strings.h5")
            && text.contains("not supported"),
        "{text}"
    );

    let s = Hdf5Source::open_with(
        dir.join("h5py_strings.h5"),
        &Hdf5ReadOptions {
            skip_unsupported: true,
        },
    )
    .unwrap();
    let names: Vec<&str> = s.meta().arrays.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["ok"]);
}

/// A NetCDF-4 file read as HDF5 names its unlimited dimension in the arrays' metadata, as the
/// NetCDF source does; h5py's resizable datasets without dimension scales name none.
#[test]
fn netcdf4_unlimited_dimensions_are_in_the_metadata() {
    let s = Hdf5Source::open(fixtures("netcdf").join("nc4_types.nc")).unwrap();
    let meta = s.meta();
    assert_eq!(meta.unlimited_dims(), ["time"]);
    assert_eq!(meta.array("time").unwrap().unlimited_dims, ["time"]);
    assert!(meta.array("lat").unwrap().unlimited_dims.is_empty());
    let h5py = Hdf5Source::open(fixtures("hdf5").join("h5py_types.h5")).unwrap();
    assert!(h5py.meta().unlimited_dims().is_empty());
}
