//! tiledb-py (the project venv's) reads what we write: values, tile extents, filters, fill
//! values and metadata. Without the venv (`cargo xtask setup`) these tests fail.

mod common;

use common::*;
use rechunker_core::{AttrValue, DataType, DatasetMeta, DatasetTarget, Region, Scalar};
use rechunker_tiledb::{Codec, TileDbTarget, TileDbWriteOptions};
use serde_json::{json, Value};

const DESCRIBE: &str = r#"
import json, sys
import numpy as np
import tiledb

uri, raw = sys.argv[1], sys.argv[2]

def describe(array_uri, dump_name):
    with tiledb.open(array_uri) as A:
        s = A.schema
        dims = [[d.name, str(d.dtype), [int(v) for v in d.domain], int(d.tile)] for d in s.domain]
        attrs = []
        for a in s:
            fl = []
            for f in a.filters:
                level = getattr(f, "level", None)
                fl.append([type(f).__name__, level])
            fill = a.fill[0] if hasattr(a.fill, "__len__") else a.fill
            fill = fill.item() if hasattr(fill, "item") else fill
            fill = None if (isinstance(fill, float) and np.isnan(fill)) else fill
            data = A[:][a.name] if len(list(s)) > 1 else A[:]
            if isinstance(data, dict):
                data = data[a.name]
            expected = np.fromfile(f"{raw}/{dump_name}.bin", dtype=a.dtype).reshape(data.shape)
            same = bool(np.array_equal(data, expected, equal_nan=True))
            attrs.append({"name": a.name, "dtype": str(a.dtype), "filters": fl, "fill": fill, "equal": same})
        meta = {}
        for k in A.meta.keys():
            v = A.meta[k]
            if isinstance(v, tuple):
                v = [x.item() if hasattr(x, "item") else x for x in v]
            elif hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and np.isnan(v):
                v = "NaN"
            meta[k] = v
        return {"dims": dims, "attrs": attrs, "meta": meta, "cell_order": s.cell_order, "sparse": s.sparse}

kind = tiledb.object_type(uri)
out = {"kind": kind}
if kind == "group":
    g = tiledb.Group(uri)
    out["meta"] = {k: g.meta[k] for k in g.meta.keys()}
    out["members"] = {m.name: describe(m.uri, m.name) for m in g}
else:
    out["array"] = describe(uri, "array")
print(json.dumps(out))
"#;

fn write_dataset(uri: &str, raw: &std::path::Path, dataset: &DatasetMeta, codec: &str) {
    let options = TileDbWriteOptions {
        codec: codec.parse::<Codec>().unwrap(),
        ..Default::default()
    };
    let target = TileDbTarget::create(uri, options).unwrap();
    std::fs::create_dir_all(raw).unwrap();
    for (i, meta) in dataset.arrays.iter().enumerate() {
        let data = data_for(meta, 10 + i as u64);
        let dump = if dataset.arrays.len() == 1 {
            "array".to_string()
        } else {
            meta.name.clone()
        };
        std::fs::write(raw.join(format!("{dump}.bin")), &data).unwrap();
        let array = target.create_array(meta).unwrap();
        let blocks = rechunker_core::ChunkGrid::new(
            meta.grid.dims.iter().map(|g| g.consolidate(3)).collect(),
        );
        for b in 0..blocks.num_chunks() {
            let region: Region = blocks.chunk_region_linear(b);
            array
                .write_region(
                    &region,
                    &extract(&data, &meta.shape(), &region, meta.item_size()),
                )
                .unwrap();
        }
    }
    target.finalize(dataset).unwrap();
}

fn describe(python: &std::path::Path, uri: &str, raw: &std::path::Path) -> Value {
    let out = run_python(python, DESCRIBE, &[uri, raw.to_str().unwrap()]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn tiledb_py_reads_our_group() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("era.tdb");
    let uri = uri.to_str().unwrap();
    let mut tas = meta(
        "tas",
        &["time", "lat", "lon"],
        DataType::Float32,
        &[11, 7, 13],
        &[4, 7, 5],
    );
    tas.fill_value = Some(Scalar::Float(f64::NAN));
    tas.attrs.insert(
        "_FillValue",
        AttrValue {
            value: json!("NaN"),
            dtype: Some(DataType::Float32),
        },
    );
    let mut mask = meta("mask", &["lat", "lon"], DataType::Int16, &[7, 13], &[7, 13]);
    mask.fill_value = Some(Scalar::Int(-9));
    let time = meta("time", &["time"], DataType::Int64, &[11], &[11]);
    let mut dataset = DatasetMeta {
        arrays: vec![tas, mask, time],
        attrs: Default::default(),
    };
    dataset
        .attrs
        .insert("Conventions", AttrValue::json(json!("CF-1.8")));
    dataset
        .attrs
        .insert("history", AttrValue::json(json!("made by a test")));
    write_dataset(uri, &dir.path().join("raw"), &dataset, "zstd:5+byteshuffle");
    let d = describe(&python, uri, &dir.path().join("raw"));
    assert_eq!(d["kind"], "group");
    assert_eq!(
        d["meta"],
        json!({"Conventions": "CF-1.8", "history": "made by a test"})
    );
    let tas = &d["members"]["tas"];
    assert_eq!(
        tas["dims"],
        json!([
            ["time", "uint64", [0, 10], 4],
            ["lat", "uint64", [0, 6], 7],
            ["lon", "uint64", [0, 12], 5]
        ])
    );
    let a = &tas["attrs"][0];
    assert_eq!(a["name"], "tas");
    assert_eq!(a["dtype"], "float32");
    assert_eq!(
        a["filters"],
        json!([["ByteShuffleFilter", null], ["ZstdFilter", 5]])
    );
    assert_eq!(a["fill"], Value::Null, "NaN fill");
    assert_eq!(a["equal"], true);
    assert_eq!(tas["meta"]["units"], "K");
    assert_eq!(tas["meta"]["valid_range"], json!([0, 100]));
    assert_eq!(tas["meta"]["_FillValue"], "NaN");
    let mask = &d["members"]["mask"]["attrs"][0];
    assert_eq!(
        (mask["fill"].clone(), mask["equal"].clone()),
        (json!(-9), json!(true))
    );
    // The coordinate's attribute is anonymous: TileDB forbids an attribute named like a dimension.
    let time = &d["members"]["time"];
    assert_eq!(time["attrs"][0]["name"], "");
    assert_eq!(time["attrs"][0]["equal"], true);
    assert_eq!(time["dims"], json!([["time", "uint64", [0, 10], 11]]));
}

#[test]
fn tiledb_py_reads_our_lone_array() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let uri = dir.path().join("u8.tdb");
    let uri = uri.to_str().unwrap();
    let m = meta("counts", &["y", "x"], DataType::UInt8, &[30, 20], &[8, 20]);
    let mut dataset = DatasetMeta {
        arrays: vec![m],
        attrs: Default::default(),
    };
    dataset
        .attrs
        .insert("title", AttrValue::json(json!("lone")));
    dataset.attrs.insert("flag", AttrValue::json(json!(true)));
    write_dataset(uri, &dir.path().join("raw"), &dataset, "lz4+bitshuffle");
    let d = describe(&python, uri, &dir.path().join("raw"));
    assert_eq!(d["kind"], "array");
    let a = &d["array"];
    assert_eq!(
        a["dims"],
        json!([["y", "uint64", [0, 29], 8], ["x", "uint64", [0, 19], 20]])
    );
    assert_eq!(
        a["attrs"][0]["filters"],
        json!([["BitShuffleFilter", null], ["LZ4Filter", 1]])
    );
    assert_eq!(
        a["attrs"][0]["fill"], 255,
        "TileDB's default fill for uint8"
    );
    assert_eq!(a["attrs"][0]["equal"], true);
    assert_eq!(a["meta"]["title"], "lone");
    assert_eq!(
        a["meta"]["flag"], 1,
        "booleans are stored as tiledb-py stores them: int64"
    );
    assert_eq!(a["meta"]["__tiledb_attr.counts.units"], "K");
    assert_eq!(a["cell_order"], "row-major");
    assert_eq!(a["sparse"], false);
}
