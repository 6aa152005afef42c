//! What is Zarr's in writing through the DatasetTarget API and reading back through
//! ZarrSource: codecs, shards, fill values, metadata documents, corrupt chunks, resumes. The
//! round trips of every dtype, edge chunks and regions are the conformance suite's
//! (tests/conformance.rs, with every codec).

use rechunker_core::layout::copy_box;
use rechunker_core::region::indices;
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, ChunkGrid, DataType, DatasetMeta, DatasetSource,
    DatasetTarget, Region, Scalar,
};
use rechunker_zarr::{Codec, ShardSpec, ZarrFormat, ZarrSource, ZarrTarget, ZarrWriteOptions};
use serde_json::json;
use std::path::Path;

/// Deterministic pseudo-random bytes (xorshift), valid for every dtype but bool.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn data_for(meta: &ArrayMeta, seed: u64) -> Vec<u8> {
    let n = meta.num_bytes() as usize;
    let mut bytes = random_bytes(n, seed);
    match meta.dtype {
        DataType::Bool => bytes.iter_mut().for_each(|b| *b &= 1),
        // Keep floats finite and comparable (no NaN payloads): small integers as floats.
        DataType::Float32 => {
            for (i, c) in bytes.chunks_exact_mut(4).enumerate() {
                c.copy_from_slice(&((i % 1000) as f32 * 0.5 - 7.0).to_ne_bytes());
            }
        }
        DataType::Float64 => {
            for (i, c) in bytes.chunks_exact_mut(8).enumerate() {
                c.copy_from_slice(&((i as f64).sqrt() + seed as f64).to_ne_bytes());
            }
        }
        _ => {}
    }
    bytes
}

fn array_meta(
    name: &str,
    dims: &[&str],
    dtype: DataType,
    shape: &[u64],
    chunks: &[u64],
    fill: Option<Scalar>,
) -> ArrayMeta {
    let mut attrs = Attributes::default();
    attrs.insert("units", AttrValue::json(json!("K")));
    attrs.insert("scale", AttrValue::json(json!([1.5, 2])));
    // The missing-value marker, as NetCDF sources carry it: v2 keeps a fill value only as that.
    if let Some(f) = fill {
        let value = match f {
            Scalar::Float(v) if v.is_nan() => json!("NaN"),
            Scalar::Float(v) => json!(v),
            Scalar::Int(v) => json!(v),
            Scalar::UInt(v) => json!(v),
            Scalar::Bool(v) => json!(v),
        };
        attrs.insert(
            "_FillValue",
            AttrValue {
                value,
                dtype: Some(dtype),
            },
        );
    }
    ArrayMeta {
        fill_value: fill,
        attrs,
        ..ArrayMeta::regular(name, dims, dtype, shape, chunks)
    }
}

fn sample_arrays() -> Vec<ArrayMeta> {
    vec![
        array_meta(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[7, 10, 9],
            &[2, 4, 5],
            Some(Scalar::Float(f64::NAN)),
        ),
        array_meta("time", &["time"], DataType::Float64, &[7], &[7], None),
        array_meta(
            "mask",
            &["lat", "lon"],
            DataType::Bool,
            &[10, 9],
            &[3, 3],
            Some(Scalar::Bool(false)),
        ),
        array_meta(
            "grp/counts",
            &["lat", "lon"],
            DataType::Int16,
            &[10, 9],
            &[10, 2],
            Some(Scalar::Int(-9)),
        ),
        array_meta(
            "grp/deep/ids",
            &["time"],
            DataType::UInt64,
            &[7],
            &[3],
            Some(Scalar::UInt(u64::MAX)),
        ),
        array_meta(
            "small",
            &["x"],
            DataType::Int8,
            &[5],
            &[2],
            Some(Scalar::Int(1)),
        ),
        array_meta("u32", &["x"], DataType::UInt32, &[5], &[5], None),
        array_meta(
            "scalar",
            &[],
            DataType::Float64,
            &[],
            &[],
            Some(Scalar::Float(0.5)),
        ),
        array_meta(
            "empty",
            &["e", "x"],
            DataType::Int32,
            &[0, 5],
            &[2, 5],
            None,
        ),
    ]
}

/// Writes each array whole, write-grid unit by write-grid unit, then finalizes.
fn write_dataset(target: &ZarrTarget, arrays: &[ArrayMeta], skip_last_unit: bool) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (i, meta) in arrays.iter().enumerate() {
        let data = data_for(meta, i as u64 + 1);
        let array = target.create_array(meta).unwrap();
        let grid = target.write_grid(meta).unwrap();
        let n = grid.num_chunks();
        for linear in 0..n {
            if skip_last_unit && linear + 1 == n && n > 1 {
                continue;
            }
            let region = grid.chunk_region_linear(linear);
            let part = extract(&data, &meta.shape(), &region, meta.item_size());
            array.write_region(&region, &part).unwrap();
        }
        all.push(data);
    }
    let mut attrs = Attributes::default();
    attrs.insert("title", AttrValue::json(json!("test dataset")));
    attrs.insert("version", AttrValue::json(json!(3)));
    target
        .finalize(&DatasetMeta {
            arrays: arrays.to_vec(),
            attrs,
        })
        .unwrap();
    all
}

fn extract(data: &[u8], shape: &[u64], region: &Region, item: usize) -> Vec<u8> {
    let mut out = vec![0u8; region.num_elements() as usize * item];
    copy_box(
        data,
        shape,
        &region.start,
        &mut out,
        &region.shape,
        &vec![0; region.ndim()],
        &region.shape,
        item,
    );
    out
}

fn read(source: &ZarrSource, name: &str, region: &Region) -> Vec<u8> {
    let array = source.open_array(name).unwrap();
    let mut out = vec![0xAB; region.num_elements() as usize * array.meta().item_size()];
    array.read_region(region, &mut out).unwrap();
    out
}

fn same_bits(meta: &ArrayMeta, a: &[u8], b: &[u8]) {
    assert_eq!(a.len(), b.len(), "{}", meta.name);
    if a != b {
        let item = meta.item_size();
        let first = a
            .chunks(item)
            .zip(b.chunks(item))
            .position(|(x, y)| x != y)
            .unwrap();
        panic!("`{}` differs at element {first}", meta.name);
    }
}

fn options(format: ZarrFormat, codec: &str, shards: Option<&str>) -> ZarrWriteOptions {
    ZarrWriteOptions {
        zarr_format: Some(format),
        codec: Some(codec.parse().unwrap()),
        shards: shards.map(|s| s.parse::<ShardSpec>().unwrap()),
    }
}

/// What is Zarr's in a dataset written with each codec, format and sharding (the values of
/// every dtype, edge chunks and partial regions are the conformance suite's, run with each
/// codec in tests/conformance.rs): the codecs are reported, a shard is what is read whole,
/// and a v2 array without a fill value has none where v3 always has one.
#[test]
fn codecs_grids_and_fill_values_are_the_formats() {
    for (format, codec, shards) in [
        (ZarrFormat::V3, "zstd:3", None),
        (ZarrFormat::V3, "blosc:lz4:5:shuffle", None),
        (ZarrFormat::V3, "gzip:1", None),
        (ZarrFormat::V3, "none", None),
        (ZarrFormat::V3, "zstd:1", Some("time=6,lon=100")),
        (ZarrFormat::V3, "blosc:zstd:3:bitshuffle", Some("4,8,5")),
        (ZarrFormat::V2, "zstd:3", None),
        (ZarrFormat::V2, "blosc:zstd:3:bitshuffle", None),
        (ZarrFormat::V2, "gzip:1", None),
        (ZarrFormat::V2, "none", None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("out.zarr").display().to_string();
        let target = ZarrTarget::create(&uri, options(format, codec, shards)).unwrap();
        let arrays = sample_arrays();
        write_dataset(&target, &arrays, false);
        let source = ZarrSource::open(&uri).unwrap();
        let meta = source.meta();
        assert_eq!(
            meta.attrs.get("title").unwrap().value,
            json!("test dataset")
        );
        for written in &arrays {
            let what = format!("{format:?} {codec} {shards:?} `{}`", written.name);
            let got = meta.array(&written.name).unwrap();
            assert!(
                !got.codecs.is_empty() || codec == "none",
                "{what}: {:?}",
                got.codecs
            );
            match (written.fill_value, got.fill_value) {
                (Some(Scalar::Float(a)), Some(Scalar::Float(b))) if a.is_nan() => {
                    assert!(b.is_nan(), "{what}")
                }
                (None, got) if format == ZarrFormat::V2 => assert_eq!(got, None, "{what}"),
                (None, got) => assert!(got.is_some(), "{what}"),
                (w, g) => assert_eq!(
                    g.and_then(|g| g.to_bytes(written.dtype)),
                    w.and_then(|w| w.to_bytes(written.dtype)),
                    "{what}"
                ),
            }
            let grid = target.write_grid(written).unwrap();
            assert_eq!(got.grid, grid, "{what}: a shard is what is read whole");
        }
    }
}

#[test]
fn unwritten_chunks_read_as_fill_value() {
    for (format, shards) in [
        (ZarrFormat::V2, None),
        (ZarrFormat::V3, None),
        (ZarrFormat::V3, Some("lat=8")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("file://{}", dir.path().join("f.zarr").display());
        let target = ZarrTarget::create(&uri, options(format, "zstd:1", shards)).unwrap();
        let meta = array_meta(
            "v",
            &["lat", "lon"],
            DataType::Int32,
            &[10, 6],
            &[4, 6],
            Some(Scalar::Int(-7)),
        );
        let data = write_dataset(&target, std::slice::from_ref(&meta), true);
        let source = ZarrSource::open(&uri).unwrap();
        let got = read(&source, "v", &Region::full(&[10, 6]));
        let grid = target.write_grid(&meta).unwrap();
        let skipped = grid.chunk_region_linear(grid.num_chunks() - 1);
        for idx in indices(&[10, 6]) {
            let i = (idx[0] * 6 + idx[1]) as usize * 4;
            let element = &got[i..i + 4];
            let in_skipped = skipped.contains(&Region::new(idx.clone(), vec![1, 1]));
            if in_skipped {
                assert_eq!(element, (-7i32).to_ne_bytes(), "{format:?} {idx:?}");
            } else {
                assert_eq!(element, &data[0][i..i + 4], "{format:?} {idx:?}");
            }
        }
    }
}

#[test]
fn metadata_has_dimension_names_and_no_zarrs_attribute() {
    let dir = tempfile::tempdir().unwrap();
    for format in [ZarrFormat::V2, ZarrFormat::V3] {
        let path = dir.path().join(format!("m{format}.zarr"));
        let target = ZarrTarget::create(
            path.to_str().unwrap(),
            options(format, "blosc:lz4:5:shuffle", None),
        )
        .unwrap();
        write_dataset(&target, &sample_arrays(), false);
        let text = |p: &str| std::fs::read_to_string(path.join(p)).unwrap();
        let mut all = String::new();
        for entry in walk(&path) {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".z") || name == "zarr.json" {
                all.push_str(&std::fs::read_to_string(&entry).unwrap());
            }
            assert!(!name.ends_with(".tmp"), "temporary file left: {entry:?}");
        }
        assert!(!all.contains("_zarrs"), "{all}");
        match format {
            ZarrFormat::V3 => {
                let tas: serde_json::Value = serde_json::from_str(&text("tas/zarr.json")).unwrap();
                assert_eq!(tas["dimension_names"], json!(["time", "lat", "lon"]));
                assert_eq!(tas["fill_value"], json!("NaN"));
                assert_eq!(tas["attributes"]["units"], json!("K"));
                let root: serde_json::Value = serde_json::from_str(&text("zarr.json")).unwrap();
                assert_eq!(root["node_type"], "group");
                assert_eq!(root["attributes"]["title"], "test dataset");
                let cm = &root["consolidated_metadata"];
                assert_eq!(cm["kind"], "inline");
                assert_eq!(cm["must_understand"], false);
                assert_eq!(cm["metadata"]["tas"], tas);
                assert_eq!(cm["metadata"]["grp/deep"]["node_type"], "group");
                assert!(path.join("grp/deep/zarr.json").is_file());
            }
            ZarrFormat::V2 => {
                let attrs: serde_json::Value = serde_json::from_str(&text("tas/.zattrs")).unwrap();
                assert_eq!(attrs["_ARRAY_DIMENSIONS"], json!(["time", "lat", "lon"]));
                let zarray: serde_json::Value = serde_json::from_str(&text("tas/.zarray")).unwrap();
                assert_eq!(zarray["dtype"], "<f4");
                assert_eq!(zarray["compressor"]["id"], "blosc");
                assert!(zarray.get("node_type").is_none());
                let zmeta: serde_json::Value = serde_json::from_str(&text(".zmetadata")).unwrap();
                assert_eq!(zmeta["zarr_consolidated_format"], 1);
                assert_eq!(zmeta["metadata"]["tas/.zarray"], zarray);
                assert_eq!(zmeta["metadata"]["tas/.zattrs"], attrs);
                assert_eq!(zmeta["metadata"][".zattrs"]["title"], "test dataset");
                assert_eq!(zmeta["metadata"]["grp/deep/.zgroup"]["zarr_format"], 2);
                assert!(path.join(".zgroup").is_file());
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn corrupt_and_truncated_chunks_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    for (format, codec, key) in [
        (ZarrFormat::V3, "zstd:3", "v/c/1/0"),
        (ZarrFormat::V3, "none", "v/c/1/0"),
        (ZarrFormat::V2, "gzip:1", "v/1.0"),
        (ZarrFormat::V2, "blosc:lz4:5:shuffle", "v/1.0"),
    ] {
        let path = dir
            .path()
            .join(format!("c{format}{}.zarr", codec.replace(':', "")));
        let uri = path.display().to_string();
        let target = ZarrTarget::create(&uri, options(format, codec, None)).unwrap();
        let meta = array_meta("v", &["a", "b"], DataType::Float64, &[8, 4], &[4, 4], None);
        write_dataset(&target, std::slice::from_ref(&meta), false);
        let chunk = path.join(key);
        let bytes = std::fs::read(&chunk).unwrap();
        std::fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
        let source = ZarrSource::open(&uri).unwrap();
        let array = source.open_array("v").unwrap();
        let mut out = vec![0u8; 8 * 4 * 8];
        let e = array
            .read_region(&Region::full(&[8, 4]), &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(key) && e.contains("`v`") && e.contains("truncated or corrupt"),
            "{codec}: {e}"
        );
        // The intact chunk still reads.
        let mut first = vec![0u8; 4 * 4 * 8];
        array
            .read_region(&Region::new(vec![0, 0], vec![4, 4]), &mut first)
            .unwrap();
        // Garbage of the right length fails as well (except uncompressed, which has no check).
        if codec != "none" {
            std::fs::write(&chunk, random_bytes(bytes.len(), 9)).unwrap();
            let e = array
                .read_region(&Region::new(vec![4, 0], vec![4, 4]), &mut first)
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{codec}: {e}");
        }
    }
}

#[test]
fn missing_or_unfinished_metadata_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let e = ZarrSource::open(dir.path().join("nothing").to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such file"), "{e}");
    let e = ZarrSource::open(dir.path().to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a Zarr store"), "{e}");

    // Arrays written, finalize never ran: the group is not complete.
    let path = dir.path().join("half.zarr");
    let target = ZarrTarget::create(path.to_str().unwrap(), ZarrWriteOptions::default()).unwrap();
    let meta = array_meta("v", &["x"], DataType::Int32, &[4], &[2], None);
    target.create_array(&meta).unwrap();
    let e = ZarrSource::open(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a Zarr store") && e.contains("--resume"),
        "{e}"
    );

    // Malformed JSON names its key; a finalize without the array names the array.
    std::fs::write(path.join("zarr.json"), "{not json").unwrap();
    let e = ZarrSource::open(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("zarr.json") && e.contains("not valid JSON"),
        "{e}"
    );
    let mut missing = meta.clone();
    missing.name = "other".into();
    let e = target
        .finalize(&DatasetMeta {
            arrays: vec![meta, missing],
            attrs: Default::default(),
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("`other` was never created"), "{e}");
}

#[test]
fn bad_options_are_rejected() {
    let e = "lzma:3".parse::<Codec>().unwrap_err().to_string();
    assert!(e.contains("unknown codec `lzma`"), "{e}");
    let e = ZarrTarget::create(
        "/tmp/never-written.zarr",
        options(ZarrFormat::V2, "zstd:3", Some("x=4")),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sharding needs Zarr format 3"), "{e}");
    assert!(!Path::new("/tmp/never-written.zarr").exists());

    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("s.zarr").display().to_string();
    let target = ZarrTarget::create(&uri, options(ZarrFormat::V3, "zstd:3", Some("x=5"))).unwrap();
    assert!(
        !dir.path().join("s.zarr").exists(),
        "create must not touch the store"
    );
    let meta = array_meta("v", &["x"], DataType::Int32, &[20], &[2], None);
    let e = target.create_array(&meta).err().unwrap().to_string();
    assert!(e.contains("not a multiple of the chunk length 2"), "{e}");
    let e = ZarrTarget::create("https://example.com/data.zarr", Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("read-only"), "{e}");
    let e = ZarrTarget::create("ftp://host/x", Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown scheme"), "{e}");
}

#[test]
fn writes_must_cover_whole_chunks_or_shards() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("a.zarr").display().to_string();
    let target = ZarrTarget::create(&uri, options(ZarrFormat::V3, "zstd:1", Some("x=4"))).unwrap();
    let meta = array_meta("v", &["x"], DataType::UInt8, &[10], &[2], None);
    let array = target.create_array(&meta).unwrap();
    // A whole chunk, but not a whole shard.
    let e = array
        .write_region(&Region::new(vec![0], vec![2]), &[1, 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not aligned to whole shards"), "{e}");
    let e = array
        .write_region(&Region::new(vec![0], vec![4]), &[1, 2])
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs 4 bytes"), "{e}");
    // The last shard is clipped by the array's end.
    array
        .write_region(&Region::new(vec![8], vec![2]), &[5, 6])
        .unwrap();
    assert!(target.write_overhead(&meta) >= 2 * 4);
    assert!(array.write_overhead() >= 2 * 4);
}

#[test]
fn resumed_runs_reopen_identical_arrays_and_refuse_others() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("r.zarr").display().to_string();
    let opts = options(ZarrFormat::V2, "zstd:3", None);
    let meta = array_meta("v", &["x", "y"], DataType::Float32, &[6, 6], &[3, 3], None);
    let first = ZarrTarget::create(&uri, opts.clone()).unwrap();
    let data = write_dataset(&first, std::slice::from_ref(&meta), false);
    // A second run over the same target reopens the array and rewrites the group at the end.
    let second = ZarrTarget::create(&uri, opts.clone()).unwrap();
    second.create_array(&meta).unwrap();
    assert!(
        ZarrSource::open(&uri).is_err(),
        "the group must not look complete while it is rewritten"
    );
    second
        .finalize(&DatasetMeta {
            arrays: vec![meta.clone()],
            attrs: Default::default(),
        })
        .unwrap();
    let source = ZarrSource::open(&uri).unwrap();
    same_bits(&meta, &read(&source, "v", &Region::full(&[6, 6])), &data[0]);

    let mut other = meta.clone();
    other.grid = ChunkGrid::regular(&[6, 6], &[2, 2]);
    let e = ZarrTarget::create(&uri, opts)
        .unwrap()
        .create_array(&other)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("v/.zarray") && e.contains("already exists"),
        "{e}"
    );
    let e = ZarrTarget::create(&uri, Default::default())
        .unwrap()
        .create_array(&meta)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("another version"), "{e}");
}

#[test]
fn reads_foreign_v2_big_endian_and_rejects_unsupported_types() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("foreign.zarr");
    std::fs::create_dir_all(root.join("be")).unwrap();
    std::fs::write(root.join(".zgroup"), r#"{"zarr_format": 2}"#).unwrap();
    std::fs::write(
        root.join("be/.zarray"),
        r#"{"zarr_format": 2, "shape": [5], "chunks": [3], "dtype": ">i4", "compressor": null,
            "fill_value": 42, "order": "C", "filters": null}"#,
    )
    .unwrap();
    let chunk0: Vec<u8> = [1i32, -2, 3].iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(root.join("be/0"), chunk0).unwrap();
    let source = ZarrSource::open(root.to_str().unwrap()).unwrap();
    let meta = source.meta().array("be").unwrap().clone();
    assert_eq!(meta.dims, ["dim_0"]);
    assert_eq!(meta.fill_value, Some(Scalar::Int(42)));
    let got = read(&source, "be", &Region::full(&[5]));
    let want: Vec<u8> = [1i32, -2, 3, 42, 42]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    assert_eq!(got, want);
    let array = source.open_array("be").unwrap();
    assert!(array.read_overhead() >= 3 * 4);

    std::fs::create_dir_all(root.join("c")).unwrap();
    std::fs::write(
        root.join("c/.zarray"),
        r#"{"zarr_format": 2, "shape": [5], "chunks": [3], "dtype": "<c8", "compressor": null,
            "fill_value": null, "order": "C", "filters": null}"#,
    )
    .unwrap();
    let e = ZarrSource::open(root.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`c`") && e.contains("<c8") && e.contains("not supported"),
        "{e}"
    );
}

#[test]
fn lone_arrays_open_by_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("g.zarr");
    let target = ZarrTarget::create(root.to_str().unwrap(), ZarrWriteOptions::default()).unwrap();
    let meta = array_meta(
        "precip",
        &["t", "y"],
        DataType::Float64,
        &[3, 4],
        &[2, 2],
        None,
    );
    let data = write_dataset(&target, std::slice::from_ref(&meta), false);
    let lone = ZarrSource::open(root.join("precip").to_str().unwrap()).unwrap();
    assert_eq!(lone.meta().arrays.len(), 1);
    assert_eq!(lone.meta().arrays[0].name, "precip");
    assert_eq!(lone.meta().arrays[0].dims, ["t", "y"]);
    same_bits(
        &meta,
        &read(&lone, "precip", &Region::full(&[3, 4])),
        &data[0],
    );
    assert!(lone.open_array("nope").is_err());
}

#[test]
fn shards_shorter_than_a_chunk_are_refused_not_rounded() {
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("s.zarr").display().to_string();
    let meta = array_meta(
        "tas",
        &["time", "lat"],
        DataType::Float32,
        &[100, 40],
        &[10, 8],
        None,
    );
    let grid = |shards: &str| {
        ZarrTarget::create(&uri, options(ZarrFormat::V3, "zstd:1", Some(shards)))
            .unwrap()
            .write_grid(&meta)
    };
    // Shorter than the chunk: refused, naming the dimension and the chunk length.
    let e = grid("time=5").unwrap_err().to_string();
    assert!(
        e.contains("`time`") && e.contains("chunk length 10") && e.contains("shorter"),
        "{e}"
    );
    let e = grid("time=20,lat=4").unwrap_err().to_string();
    assert!(e.contains("`lat`") && e.contains("chunk length 8"), "{e}");
    // Equal to the chunk, a multiple of it, the whole dimension or -1: accepted as asked.
    assert_eq!(
        grid("time=10,lat=16").unwrap(),
        ChunkGrid::regular(&[100, 40], &[10, 16])
    );
    assert_eq!(
        grid("time=-1,lat=40").unwrap(),
        ChunkGrid::regular(&[100, 40], &[100, 40])
    );
    // A coordinate variable is stored in one chunk whatever the data's chunks are; a shard
    // length meant for the data holds that one chunk.
    let lat = array_meta("lat", &["lat"], DataType::Float64, &[40], &[40], None);
    let target =
        ZarrTarget::create(&uri, options(ZarrFormat::V3, "zstd:1", Some("lat=16"))).unwrap();
    assert_eq!(
        target.write_grid(&lat).unwrap(),
        ChunkGrid::regular(&[40], &[40])
    );
}
