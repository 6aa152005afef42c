//! Arrays written by tiledb-py (fixtures/tiledb, made by make_fixtures.py) read correctly, and
//! inputs we cannot read are refused with one clear message each.

mod common;

use common::fixtures;
use rechunker_core::{AttrValue, DataType, DatasetSource, Region, Scalar};
use rechunker_tiledb::{TileDbError, TileDbSource};
use serde_json::json;

fn open(name: &str) -> TileDbSource {
    TileDbSource::open(fixtures().join(name).to_str().unwrap()).unwrap()
}

fn read<T: Copy>(
    source: &TileDbSource,
    name: &str,
    region: &Region,
    decode: fn(&[u8]) -> T,
) -> Vec<T> {
    let array = source.array(name).unwrap();
    let item = source.meta().array(name).unwrap().item_size();
    let mut out = vec![0u8; region.num_elements() as usize * item];
    array.read(region, &mut out).unwrap();
    out.chunks_exact(item).map(decode).collect()
}

#[test]
fn from_numpy_with_uint64_dimensions() {
    let s = open("from_numpy.tdb");
    assert_eq!(s.meta().arrays.len(), 1);
    let m = &s.meta().arrays[0];
    assert_eq!(m.name, "from_numpy");
    assert_eq!(m.dims, ["__dim_0", "__dim_1"]);
    assert_eq!(m.shape(), [7, 9]);
    assert_eq!(m.grid.nominal_chunk_shape(), [3, 4]);
    assert_eq!(m.dtype, DataType::Int32);
    assert_eq!(
        s.meta().attrs.get("source").unwrap().value,
        "tiledb.from_numpy"
    );
    let all = read(&s, "from_numpy", &Region::full(&[7, 9]), |b| {
        i32::from_ne_bytes(b.try_into().unwrap())
    });
    let expected: Vec<i32> = (0..63).map(|i| i * 3 - 50).collect();
    assert_eq!(all, expected);
    let part = read(
        &s,
        "from_numpy",
        &Region::new(vec![2, 3], vec![4, 5]),
        |b| i32::from_ne_bytes(b.try_into().unwrap()),
    );
    let expected: Vec<i32> = (2..6)
        .flat_map(|r| (3..8).map(move |c| (r * 9 + c) * 3 - 50))
        .collect();
    assert_eq!(part, expected);
}

/// The multi-attribute fixture's values at offsets (t, y) from the domain start.
fn multi_expected(t: usize, y: usize) -> (f32, u8, i64) {
    if (4..12).contains(&t) && (5..10).contains(&y) {
        (-1.0, 0, -7)
    } else {
        (
            t as f32 * 0.5 + y as f32,
            ((t + y) % 7) as u8,
            t as i64 * 1000 - y as i64,
        )
    }
}

#[test]
fn multi_attribute_array_with_offset_domains() {
    let s = open("multi.tdb");
    let names: Vec<&str> = s.meta().arrays.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["temp", "qc", "count"]);
    for a in &s.meta().arrays {
        assert_eq!(a.dims, ["time", "y"]);
        assert_eq!(a.shape(), [40, 12]);
        assert_eq!(a.grid.nominal_chunk_shape(), [8, 5]);
    }
    let temp = s.meta().array("temp").unwrap();
    assert_eq!(temp.codecs, ["byteshuffle", "zstd(level=5)"]);
    assert!(matches!(temp.fill_value, Some(Scalar::Float(v)) if v.is_nan()));
    assert_eq!(temp.attrs.get("units").unwrap().value, "degC");
    let qc = s.meta().array("qc").unwrap();
    assert_eq!(qc.codecs, ["gzip(level=6)"]);
    assert_eq!(qc.fill_value, Some(Scalar::UInt(255)));
    assert_eq!(
        qc.attrs.get("flag_values"),
        Some(&AttrValue {
            value: json!([0, 1, 2]),
            dtype: Some(DataType::Int64)
        })
    );
    let count = s.meta().array("count").unwrap();
    assert_eq!(count.codecs[0], "bitshuffle");
    assert!(count.codecs[1].starts_with("lz4"), "{:?}", count.codecs);
    assert_eq!(
        s.meta().attrs.get("title").unwrap().value,
        "multi-attribute fixture"
    );
    assert_eq!(s.meta().attrs.get("version").unwrap().value, 3);
    assert!(s.meta().attrs.get("__tiledb_attr.temp.units").is_none());
    // Whole and partial regions, crossing tiles and both fragments.
    for region in [
        Region::full(&[40, 12]),
        Region::new(vec![3, 2], vec![10, 7]),
        Region::new(vec![39, 11], vec![1, 1]),
    ] {
        let t = read(&s, "temp", &region, |b| {
            f32::from_ne_bytes(b.try_into().unwrap())
        });
        let q = read(&s, "qc", &region, |b| b[0]);
        let c = read(&s, "count", &region, |b| {
            i64::from_ne_bytes(b.try_into().unwrap())
        });
        let mut k = 0;
        for i in 0..region.shape[0] as usize {
            for j in 0..region.shape[1] as usize {
                let e = multi_expected(region.start[0] as usize + i, region.start[1] as usize + j);
                assert_eq!((t[k], q[k], c[k]), e, "{region} at {i},{j}");
                k += 1;
            }
        }
    }
}

#[test]
fn group_members_and_column_major_arrays() {
    let s = open("group.tdb");
    let names: Vec<&str> = s.meta().arrays.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["time", "field"]);
    assert_eq!(s.meta().attrs.get("Conventions").unwrap().value, "CF-1.8");
    let field = s.meta().array("field").unwrap();
    assert_eq!(field.dims, ["time", "lat", "lon"]);
    assert_eq!(field.dtype, DataType::UInt16);
    assert_eq!(field.grid.nominal_chunk_shape(), [4, 3, 8]);
    assert_eq!(field.attrs.get("long_name").unwrap().value, "a field");
    let region = Region::new(vec![1, 2, 3], vec![7, 4, 5]);
    let v = read(&s, "field", &region, |b| {
        u16::from_ne_bytes(b.try_into().unwrap())
    });
    let mut k = 0;
    for t in 1..8u16 {
        for y in 2..6u16 {
            for x in 3..8u16 {
                assert_eq!(v[k], t * 100 + y * 10 + x);
                k += 1;
            }
        }
    }
    let time = read(&s, "time", &Region::full(&[10]), |b| {
        i64::from_ne_bytes(b.try_into().unwrap())
    });
    assert_eq!(time, (0..10).map(|i| i * 3600).collect::<Vec<i64>>());
}

fn open_error(path: &std::path::Path) -> TileDbError {
    TileDbSource::open(path.to_str().unwrap()).unwrap_err()
}

#[test]
fn bad_inputs_give_one_clear_error_each() {
    let sparse = fixtures().join("sparse.tdb");
    let e = open_error(&sparse).to_string();
    assert!(
        e.contains("sparse array") && e.contains("not supported") && e.contains("sparse.tdb"),
        "{e}"
    );

    let varlen = fixtures().join("varlen.tdb");
    let e = open_error(&varlen).to_string();
    assert!(
        e.contains("variable-length attribute `name`") && e.contains("not supported"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let e = open_error(dir.path()).to_string();
    assert!(e.ends_with("is not a TileDB array or group"), "{e}");
    let file = dir.path().join("data.nc");
    std::fs::write(&file, b"CDF\x01").unwrap();
    let e = open_error(&file).to_string();
    assert!(e.contains("data.nc is not a TileDB array or group"), "{e}");
    let e = open_error(&dir.path().join("missing.tdb")).to_string();
    assert!(
        e.contains("missing.tdb is not a TileDB array or group (it does not exist)"),
        "{e}"
    );
    // None of them is a library error: each is a one-line explanation.
    for e in [
        open_error(&sparse),
        open_error(&varlen),
        open_error(dir.path()),
    ] {
        assert!(!matches!(e, TileDbError::Library { .. }), "{e:?}");
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn int32_dimensions_with_negative_starts() {
    let s = open("int32_dims.tdb");
    let m = s.meta().array("z").unwrap();
    assert_eq!(m.dims, ["row", "col"]);
    assert_eq!(m.shape(), [20, 11]);
    assert_eq!(m.grid.nominal_chunk_shape(), [6, 4]);
    // Offsets from the domain starts: row 3 is row -7, col 5 is col 1005.
    let region = Region::new(vec![3, 5], vec![15, 6]);
    let v = read(&s, "z", &region, |b| {
        f64::from_ne_bytes(b.try_into().unwrap())
    });
    let mut k = 0;
    for r in 3..18 {
        for c in 5..11 {
            assert_eq!(v[k], r as f64 * 100.0 + c as f64 + 0.25);
            k += 1;
        }
    }
}
