//! What is TileDB's in writing through TileDbTarget and reading back through TileDbSource:
//! default filters and fill values, lone arrays and fragments, staging and resumes, refusals.
//! Round trips of every dtype, regions and attributes are the conformance suite's
//! (tests/conformance.rs).

mod common;

use common::*;
use rechunker_core::{
    ChunkedArrayMut, DataType, DatasetMeta, DatasetSource, DatasetTarget, Region, Scalar,
};
use rechunker_tiledb::{fragment_count, Codec, TileDbSource, TileDbTarget, TileDbWriteOptions};
use std::sync::Arc;

/// Writes each array of `dataset` in blocks of 2x.. chunks from several threads; returns the data.
fn write(target: &TileDbTarget, dataset: &DatasetMeta) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (i, meta) in dataset.arrays.iter().enumerate() {
        let data = data_for(meta, i as u64 + 1);
        let array: Arc<dyn ChunkedArrayMut> = target.create_array(meta).unwrap();
        let blocks = rechunker_core::ChunkGrid::new(
            meta.grid.dims.iter().map(|g| g.consolidate(2)).collect(),
        );
        std::thread::scope(|s| {
            for b in 0..blocks.num_chunks() {
                let region = blocks.chunk_region_linear(b);
                let bytes = extract(&data, &meta.shape(), &region, meta.item_size());
                let array = array.clone();
                s.spawn(move || array.write_region(&region, &bytes).unwrap());
            }
        });
        all.push(data);
    }
    target.finalize(dataset).unwrap();
    all
}

fn check(source: &TileDbSource, dataset: &DatasetMeta, data: &[Vec<u8>]) {
    for (meta, data) in dataset.arrays.iter().zip(data) {
        let got = source
            .meta()
            .array(&meta.name)
            .unwrap_or_else(|| panic!("no {}", meta.name));
        assert_eq!(got.dims, meta.dims);
        assert_eq!(got.dtype, meta.dtype);
        assert_eq!(got.grid, meta.grid, "{}", meta.name);
        assert_eq!(got.attrs, meta.attrs, "{}", meta.name);
        let array = source.open_array(&meta.name).unwrap();
        let shape = meta.shape();
        let mut out = vec![0u8; data.len()];
        array.read_region(&Region::full(&shape), &mut out).unwrap();
        assert!(out == *data, "{} differs", meta.name);
        // A region cutting through tiles.
        let region = Region::new(
            shape.iter().map(|&n| n / 3).collect(),
            shape.iter().map(|&n| (n / 2).max(1)).collect(),
        );
        let mut part = vec![0u8; region.num_elements() as usize * meta.item_size()];
        array.read_region(&region, &mut part).unwrap();
        assert!(
            part == extract(data, &shape, &region, meta.item_size()),
            "{} {region}",
            meta.name
        );
    }
}

/// What is TileDB's in a group of every dtype (whose values, edge tiles, regions, attributes
/// and fill values the conformance suite checks): the default filters, and TileDB's own
/// default fill value (the type's minimum) where the dataset gives none.
#[test]
fn a_group_gets_the_default_filters_and_tiledbs_fill_values() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("all.tdb");
    let uri = uri.to_str().unwrap();
    let mut arrays = Vec::new();
    for (i, dt) in DataType::ALL.into_iter().enumerate() {
        let mut m = meta(dt.name(), &["y", "x"], dt, &[13, 17], &[5, 4]);
        if i % 2 == 0 {
            m.fill_value = Some(Scalar::UInt(1));
        }
        arrays.push(m);
    }
    let dataset = DatasetMeta {
        arrays,
        attrs: Default::default(),
    };
    let target = TileDbTarget::create(uri, TileDbWriteOptions::default()).unwrap();
    write(&target, &dataset);
    assert!(!target.staging().exists());
    let source = TileDbSource::open(uri).unwrap();
    for m in &source.meta().arrays {
        assert_eq!(m.codecs, ["zstd(level=3)"], "{}", m.name);
    }
    // Fill values: ours where given, TileDB's defaults (the type's minimum) elsewhere.
    assert_eq!(
        source.meta().array("int16").unwrap().fill_value,
        Some(Scalar::Int(1))
    );
    assert_eq!(
        source.meta().array("int8").unwrap().fill_value,
        Some(Scalar::Int(-128))
    );
}

#[test]
fn one_variable_is_a_lone_array_with_few_fragment_files() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("tas.tdb");
    let uri = uri.to_str().unwrap();
    let mut m = meta(
        "tas",
        &["time", "lat", "lon"],
        DataType::Float32,
        &[18, 8, 28],
        &[3, 4, 7],
    );
    m.fill_value = Some(Scalar::Float(f64::NAN));
    let dataset = DatasetMeta {
        arrays: vec![m],
        attrs: Default::default(),
    };
    let options = TileDbWriteOptions {
        codec: "gzip:4+byteshuffle".parse::<Codec>().unwrap(),
        ..Default::default()
    };
    let target = TileDbTarget::create(uri, options).unwrap();
    let data = write(&target, &dataset);
    let source = TileDbSource::open(uri).unwrap();
    check(&source, &dataset, &data);
    let tas = source.meta().array("tas").unwrap();
    assert_eq!(tas.codecs, ["byteshuffle", "gzip(level=4)"]);
    match tas.fill_value {
        Some(Scalar::Float(v)) => assert!(v.is_nan()),
        other => panic!("{other:?}"),
    }
    // One fragment per write call (3 x 1 x 2 blocks of 2x2x2 tiles): no partial tiles.
    assert_eq!(fragment_count(uri), 6);
}

#[test]
fn resumed_writes_reopen_their_arrays_and_nothing_is_visible_before_finalize() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("r.tdb");
    let uri = uri.to_str().unwrap();
    let m = meta("v", &["y", "x"], DataType::Int32, &[8, 6], &[4, 6]);
    let data = data_for(&m, 5);
    let top = Region::new(vec![0, 0], vec![4, 6]);
    let bottom = Region::new(vec![4, 0], vec![4, 6]);
    {
        let first = TileDbTarget::create(uri, TileDbWriteOptions::default()).unwrap();
        let a = first.create_array(&m).unwrap();
        a.write_region(&top, &extract(&data, &[8, 6], &top, 4))
            .unwrap();
        // Interrupted here: nothing at the target's path, the staging folder holds the array.
        assert!(!std::path::Path::new(uri).exists());
        assert!(TileDbSource::open(uri).is_err());
    }
    let second = TileDbTarget::create(uri, TileDbWriteOptions::default()).unwrap();
    let a = second.create_array(&m).unwrap();
    a.write_region(&bottom, &extract(&data, &[8, 6], &bottom, 4))
        .unwrap();
    let dataset = DatasetMeta {
        arrays: vec![m.clone()],
        attrs: Default::default(),
    };
    second.finalize(&dataset).unwrap();
    check(&TileDbSource::open(uri).unwrap(), &dataset, &[data]);
    // A resumed run with other chunks finds the earlier array and refuses it.
    let third = TileDbTarget::create(
        dir.path().join("s.tdb").to_str().unwrap(),
        TileDbWriteOptions::default(),
    )
    .unwrap();
    third.create_array(&m).unwrap();
    let mut other = m.clone();
    other.grid = rechunker_core::ChunkGrid::regular(&[8, 6], &[2, 6]);
    let e = third.create_array(&other).err().unwrap().to_string();
    assert!(
        e.contains("earlier run") && e.contains("--overwrite"),
        "{e}"
    );
}

#[test]
fn unsupported_targets_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("bad.tdb");
    let target =
        TileDbTarget::create(uri.to_str().unwrap(), TileDbWriteOptions::default()).unwrap();
    let scalar = meta("crs", &[], DataType::Int32, &[], &[]);
    let empty = meta("e", &["n"], DataType::Int32, &[0], &[1]);
    let repeated = meta("m", &["d", "d"], DataType::Float64, &[3, 3], &[3, 3]);
    for (m, needle) in [
        (scalar, "scalar (0-dimensional) variable"),
        (empty, "empty dimension `n`"),
        (repeated, "repeated dimension `d`"),
    ] {
        let e = target.write_grid(&m).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("not supported"), "{e}");
    }
    assert!(!target.staging().exists() && !uri.exists());
    let e = TileDbTarget::create("s3://bucket/x.tdb", TileDbWriteOptions::default()).unwrap_err();
    assert!(e.to_string().contains("object store"), "{e}");
    let e = "zstd:99".parse::<Codec>().unwrap_err();
    assert!(e.contains("not a zstd level"), "{e}");
}
