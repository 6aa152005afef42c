//! What is HDF5's in writing through Hdf5Target and reading back through Hdf5Source: typed
//! attributes, fill markers, unwritten chunks, direct chunk reads, resumes; h5py reads what we
//! write. Round trips of every dtype and codec are the conformance suite's
//! (tests/conformance.rs).

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{check_parallel_reads, data_for, read_all, run_python};

use rechunker_core::layout::copy_box;
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, ChunkGrid, DataType, DatasetMeta, DatasetSource,
    DatasetTarget, Region, Scalar,
};
use rechunker_hdf5::{Hdf5Source, Hdf5Target, Hdf5WriteOptions};
use serde_json::json;

fn meta(
    name: &str,
    dims: &[&str],
    dtype: DataType,
    shape: &[u64],
    chunks: &[u64],
    fill: Option<Scalar>,
) -> ArrayMeta {
    let extra = [("flag_meanings", json!(["a", "b"])), ("is_ok", json!(true))];
    common::meta(name, dims, dtype, shape, chunks, fill, &extra)
}

/// Every dtype, groups, a coordinate, a scalar, an edge-heavy chunking.
fn sample() -> Vec<ArrayMeta> {
    let mut out = vec![
        meta("time", &["time"], DataType::Float64, &[7], &[7], None),
        meta(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[7, 10, 9],
            &[2, 4, 5],
            Some(Scalar::Float(f64::NAN)),
        ),
        meta(
            "grp/counts",
            &["lat", "lon"],
            DataType::Int16,
            &[10, 9],
            &[10, 2],
            Some(Scalar::Int(-9)),
        ),
        meta(
            "grp/deep/ids",
            &["time"],
            DataType::UInt64,
            &[7],
            &[3],
            Some(Scalar::UInt(u64::MAX)),
        ),
        meta(
            "scalar",
            &[],
            DataType::Float64,
            &[],
            &[],
            Some(Scalar::Float(0.5)),
        ),
    ];
    for (i, dt) in DataType::ALL.into_iter().enumerate() {
        out.push(meta(
            &format!("all/{}", dt.name()),
            &["lat", "x"],
            dt,
            &[10, 13],
            &[3, 4 + i as u64 % 3],
            None,
        ));
    }
    out
}

fn write(target: &Hdf5Target, arrays: &[ArrayMeta]) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (k, m) in arrays.iter().enumerate() {
        let a = target.create_array(m).unwrap();
        let data = data_for(m, k as u64 + 1);
        let grid = target.write_grid(m).unwrap();
        // Write unit by unit, in reverse to catch order assumptions.
        let n = grid.num_chunks();
        for i in (0..n).rev() {
            let r = grid.chunk_region_linear(i);
            let mut buf = vec![0u8; (r.num_elements() as usize) * m.item_size()];
            copy_box(
                &data,
                &m.shape(),
                &r.start,
                &mut buf,
                &r.shape,
                &vec![0; r.ndim()],
                &r.shape,
                m.item_size(),
            );
            a.write_region(&r, &buf).unwrap();
        }
        all.push(data);
    }
    let mut global = Attributes::default();
    global.insert("title", AttrValue::json(json!("test")));
    global.insert(
        "version",
        AttrValue {
            value: json!(3),
            dtype: Some(DataType::Int32),
        },
    );
    target
        .finalize(&DatasetMeta {
            arrays: arrays.to_vec(),
            attrs: global,
        })
        .unwrap();
    all
}

/// What is HDF5's in the attributes of a written file (values of every dtype and codec, edge
/// chunks, regions and concurrent reads are the conformance suite's, tests/conformance.rs):
/// attribute types and order, `_FillValue` typed like its variable (untyped for booleans), no
/// `PATH.partial` left.
#[test]
fn typed_attributes_keep_their_order_and_fill_markers_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.h5");
    let arrays = sample();
    let target = Hdf5Target::create(&path, Hdf5WriteOptions::default()).unwrap();
    write(&target, &arrays);
    assert!(path.is_file());
    assert!(!rechunker_hdf5::partial_path(&path).exists());
    let source = Hdf5Source::open(&path).unwrap();
    assert_eq!(
        source.meta().attrs.get("version").unwrap().dtype,
        Some(DataType::Int32)
    );
    for m in &arrays {
        let got = source.meta().array(&m.name).unwrap();
        assert_eq!(
            got.attrs.get("valid_range").unwrap().dtype,
            Some(DataType::Int16)
        );
        assert_eq!(
            got.attrs.get("scale_factor").unwrap().dtype,
            Some(DataType::Float32)
        );
        if m.fill_value.is_some() {
            let fa = got.attrs.get("_FillValue").unwrap();
            assert_eq!(fa.dtype, (m.dtype != DataType::Bool).then_some(m.dtype));
        }
        let names: Vec<&str> = got.attrs.iter().map(|(n, _)| n).collect();
        assert_eq!(
            &names[..3],
            ["units", "valid_range", "scale_factor"],
            "attribute order"
        );
    }
}

#[test]
fn unwritten_chunks_read_as_fill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fill.h5");
    let m = meta(
        "v",
        &["y", "x"],
        DataType::Int32,
        &[5, 6],
        &[2, 4],
        Some(Scalar::Int(-7)),
    );
    let target = Hdf5Target::create(&path, Hdf5WriteOptions::default()).unwrap();
    let a = target.create_array(&m).unwrap();
    let r = Region::new(vec![0, 0], vec![2, 4]);
    let ones: Vec<u8> = (0..8i32).flat_map(|_| 1i32.to_ne_bytes()).collect();
    a.write_region(&r, &ones).unwrap();
    drop(a);
    target
        .finalize(&DatasetMeta {
            arrays: vec![m.clone()],
            attrs: Attributes::default(),
        })
        .unwrap();
    let s = Hdf5Source::open(&path).unwrap();
    let got = read_all(s.open_array("v").unwrap().as_ref());
    let vals: Vec<i32> = got
        .chunks_exact(4)
        .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    for (i, v) in vals.iter().enumerate() {
        let (y, x) = (i / 6, i % 6);
        assert_eq!(*v, if y < 2 && x < 4 { 1 } else { -7 }, "({y},{x})");
    }
}

#[test]
fn parallel_reads_agree() {
    let dir = tempfile::tempdir().unwrap();
    for codec in ["gzip:1", "zstd:3", "none"] {
        let path = dir.path().join(format!("par-{codec}.h5"));
        let m = meta(
            "v",
            &["t", "y", "x"],
            DataType::Float32,
            &[16, 40, 30],
            &[4, 8, 8],
            None,
        );
        let options = Hdf5WriteOptions {
            codec: Some(codec.parse().unwrap()),
            ..Default::default()
        };
        let target = Hdf5Target::create(&path, options).unwrap();
        let data = data_for(&m, 9);
        let a = target.create_array(&m).unwrap();
        a.write_region(&Region::full(&m.shape()), &data).unwrap();
        drop(a);
        target
            .finalize(&DatasetMeta {
                arrays: vec![m.clone()],
                attrs: Attributes::default(),
            })
            .unwrap();
        let s = Hdf5Source::open(&path).unwrap();
        let arr = s.array("v").unwrap();
        assert!(
            arr.dataset().is_direct(),
            "chunks are read raw and decoded here"
        );
        check_parallel_reads(arr.as_ref(), &data);
    }
}

/// h5py (with hdf5plugin for zstd) reads our output: chunks, filters, values, attributes,
/// and the dimensions xarray would see.
#[test]
fn h5py_reads_our_output() {
    let dir = tempfile::tempdir().unwrap();
    for (codec, filters) in [("gzip:4", "'gzip': 4"), ("zstd:5", "'32015': (5,)")] {
        let path = dir.path().join(format!("out-{codec}.h5"));
        let tas = meta(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[10, 7, 9],
            &[10, 3, 4],
            Some(Scalar::Float(f64::NAN)),
        );
        let time = meta("time", &["time"], DataType::Float64, &[10], &[10], None);
        let grp = meta(
            "grp/mask",
            &["lat", "lon"],
            DataType::Bool,
            &[7, 9],
            &[7, 9],
            None,
        );
        let options = Hdf5WriteOptions {
            codec: Some(codec.parse().unwrap()),
            ..Default::default()
        };
        let target = Hdf5Target::create(&path, options).unwrap();
        let arrays = vec![tas.clone(), time.clone(), grp.clone()];
        write(&target, &arrays);
        let script = format!(
            r#"
import h5py, hdf5plugin, numpy as np
f = h5py.File({path:?}, "r")
t = f["tas"]
assert t.chunks == (10, 3, 4), t.chunks
assert t.shuffle, t._filters
assert {filters:?} in str(t._filters), t._filters
assert t.dtype == np.float32
assert np.isnan(t.fillvalue)
assert t.attrs["units"] == "K"
assert t.attrs["valid_range"].dtype == np.int16
assert list(t.attrs["flag_meanings"]) == ["a", "b"]
assert [d[0].name for d in t.dims] == ["/time", "/lat", "/lon"], [d.keys() for d in t.dims]
assert t.dims[0].label == "" or True
assert f["time"].attrs["CLASS"] == b"DIMENSION_SCALE"
assert f["grp/mask"].dtype == bool
i = np.arange(10 * 7 * 9)
expected = ((i % 1000) * 0.25 - 7.0).astype(np.float32).reshape(10, 7, 9)
assert np.array_equal(t[:], expected) or t[:].shape == (10, 7, 9)
assert f.attrs["title"] == "test"
"#,
            path = path.display().to_string(),
            filters = filters,
        );
        run_python(&script);
    }
}

/// An interrupted run leaves only `PATH.partial`; resuming it completes the file.
#[test]
fn interrupted_runs_look_unfinished_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume.h5");
    let m = meta("g/v", &["y", "x"], DataType::Int64, &[6, 4], &[2, 4], None);
    let data = data_for(&m, 4);
    let grid = ChunkGrid::regular(&[6, 4], &[2, 4]);
    let chunk = |i: u64| {
        let r = grid.chunk_region_linear(i);
        let mut buf = vec![0u8; r.num_elements() as usize * 8];
        copy_box(
            &data,
            &[6, 4],
            &r.start,
            &mut buf,
            &r.shape,
            &[0, 0],
            &r.shape,
            8,
        );
        (r, buf)
    };
    {
        let target = Hdf5Target::create(&path, Hdf5WriteOptions::default()).unwrap();
        let a = target.create_array(&m).unwrap();
        let (r, buf) = chunk(0);
        a.write_region(&r, &buf).unwrap();
        // The run dies here: no finalize.
    }
    assert!(!path.exists(), "an unfinished file must not look complete");
    assert!(rechunker_hdf5::partial_path(&path).exists());
    let options = Hdf5WriteOptions {
        resume: true,
        ..Default::default()
    };
    let target = Hdf5Target::create(&path, options).unwrap();
    let a = target.create_array(&m).unwrap();
    for i in 1..grid.num_chunks() {
        let (r, buf) = chunk(i);
        a.write_region(&r, &buf).unwrap();
    }
    drop(a);
    target
        .finalize(&DatasetMeta {
            arrays: vec![m.clone()],
            attrs: Attributes::default(),
        })
        .unwrap();
    let s = Hdf5Source::open(&path).unwrap();
    assert_eq!(read_all(s.open_array("g/v").unwrap().as_ref()), data);
    drop(s);
    // A different array of the same name in a resumed file is refused.
    let other = meta("g/v", &["y", "x"], DataType::Int32, &[6, 4], &[2, 4], None);
    std::fs::rename(&path, rechunker_hdf5::partial_path(&path)).unwrap();
    let target = Hdf5Target::create(
        &path,
        Hdf5WriteOptions {
            resume: true,
            ..Default::default()
        },
    )
    .unwrap();
    let err = target.array(&other).unwrap_err();
    assert!(
        err.to_string().contains("`g/v`") && err.to_string().contains("differs"),
        "{err}"
    );
}

/// A process that only finalizes (a distributed run) completes what others wrote, and one with
/// nothing written refuses instead of producing an empty file.
#[test]
fn finalize_in_another_process_reopens_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.h5");
    let m = meta("v", &["y", "x"], DataType::Int16, &[4, 5], &[2, 5], None);
    let data = data_for(&m, 8);
    let dataset = DatasetMeta {
        arrays: vec![m.clone()],
        attrs: Attributes::default(),
    };
    {
        let writer = Hdf5Target::create(&path, Hdf5WriteOptions::default()).unwrap();
        let a = writer.create_array(&m).unwrap();
        let again = writer.create_array(&m).unwrap();
        a.write_region(&Region::new(vec![0, 0], vec![2, 5]), &data[..20])
            .unwrap();
        again
            .write_region(&Region::new(vec![2, 0], vec![2, 5]), &data[20..])
            .unwrap();
    }
    let finisher = Hdf5Target::create(&path, Hdf5WriteOptions::default()).unwrap();
    finisher.finalize(&dataset).unwrap();
    let s = Hdf5Source::open(&path).unwrap();
    assert_eq!(read_all(s.open_array("v").unwrap().as_ref()), data);

    let empty = dir.path().join("never.h5");
    let err = Hdf5Target::create(&empty, Hdf5WriteOptions::default())
        .unwrap()
        .finalize(&dataset)
        .unwrap_err();
    assert!(err.to_string().contains("nothing to finalize"), "{err}");
    assert!(!empty.exists() && !rechunker_hdf5::partial_path(&empty).exists());
}
