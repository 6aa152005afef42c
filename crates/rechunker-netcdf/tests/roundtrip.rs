//! Writes NetCDF through NetcdfTarget and reads it back through NetcdfSource; ncdump and
//! netCDF4-python read what we write with the requested chunks and filters.

// Shared with the other libhdf5-based crate: one copy, beside the code both use.
#[path = "../../rechunker-h5/test-support/common.rs"]
mod common;

use common::{data_for, fixtures, read_all, run_python, sub};
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, ChunkGrid, ChunkedArray, DataType, DatasetMeta,
    DatasetSource, DatasetTarget, Region, Scalar,
};
use rechunker_netcdf::{
    partial_path, NcCodec, NetcdfError, NetcdfFormat, NetcdfSource, NetcdfTarget,
    NetcdfWriteOptions,
};
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn meta(
    name: &str,
    dims: &[&str],
    dtype: DataType,
    shape: &[u64],
    chunks: &[u64],
    fill: Option<Scalar>,
) -> ArrayMeta {
    common::meta(
        name,
        dims,
        dtype,
        shape,
        chunks,
        fill,
        &[("count", json!(3))],
    )
}

fn classic_types() -> Vec<DataType> {
    vec![
        DataType::Bool,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Float32,
        DataType::Float64,
        DataType::Char,
    ]
}

/// Coordinates, an unlimited dimension, edge chunks, a scalar, every `types`, and (when the
/// format has them) groups.
fn sample(types: &[DataType], groups: bool) -> Vec<ArrayMeta> {
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
        meta("scalar", &[], DataType::Float64, &[], &[], None),
    ];
    for (i, dt) in types.iter().enumerate() {
        let fill = match dt {
            DataType::Bool => None,
            DataType::Float32 | DataType::Float64 => Some(Scalar::Float(-9.5)),
            _ => Some(Scalar::Int(7)),
        };
        out.push(meta(
            &format!("v_{}", dt.name()),
            &["time", "x"],
            *dt,
            &[7, 13],
            &[3, 4 + i as u64 % 3],
            fill,
        ));
    }
    if groups {
        out.push(meta(
            "grp/sub/counts",
            &["lat", "lon"],
            DataType::Int16,
            &[10, 9],
            &[10, 2],
            Some(Scalar::Int(-9)),
        ));
    }
    out
}

fn global_attrs() -> Attributes {
    let mut a = Attributes::default();
    a.insert("title", AttrValue::json(json!("round trip")));
    a.insert(
        "version",
        AttrValue {
            value: json!(2),
            dtype: Some(DataType::Int32),
        },
    );
    a
}

/// Writes every array unit by unit (in reverse order) and finalizes.
fn write(target: &NetcdfTarget, arrays: &[ArrayMeta], prepare: bool) -> Vec<Vec<u8>> {
    let dataset = DatasetMeta {
        arrays: arrays.to_vec(),
        attrs: global_attrs(),
    };
    if prepare {
        target.prepare(&dataset).unwrap();
    }
    let mut all = Vec::new();
    for (k, m) in arrays.iter().enumerate() {
        let a = target.create_array(m).unwrap();
        let data = data_for(m, k as u64 + 3);
        let grid = target.write_grid(m).unwrap();
        for i in (0..grid.num_chunks()).rev() {
            let r = grid.chunk_region_linear(i);
            a.write_region(&r, &sub(&data, &m.shape(), &r, m.item_size()))
                .unwrap();
        }
        all.push(data);
    }
    target.finalize(&dataset).unwrap();
    all
}

/// What is NetCDF's in a written file (its values are the conformance suite's, run with every
/// format and codec in tests/conformance.rs): typed attributes, `_FillValue` markers, the
/// unlimited dimension, no internal markers.
fn check(path: &Path, arrays: &[ArrayMeta], unlimited: bool) {
    let s = NetcdfSource::open(path).unwrap();
    assert_eq!(
        s.meta().attrs.get("title").unwrap().value,
        json!("round trip")
    );
    assert_eq!(
        s.meta().attrs.get("version").unwrap().dtype,
        Some(DataType::Int32)
    );
    if unlimited {
        assert_eq!(s.unlimited_dims(), ["time"]);
    }
    for m in arrays {
        let a = s.array(&m.name).unwrap();
        let got = a.as_ref().meta().clone();
        assert_eq!(got.dtype, m.dtype, "{}", m.name);
        assert_eq!(got.shape(), m.shape(), "{}", m.name);
        assert_eq!(got.dims, m.dims, "{}", m.name);
        assert_eq!(got.attrs.get("units").unwrap().value, json!("K"));
        assert!(
            got.attrs.get("dtype").is_none(),
            "the bool marker is internal"
        );
        assert_eq!(
            got.attrs.get("valid_range").unwrap().dtype,
            Some(DataType::Int16)
        );
        assert_eq!(
            got.attrs.get("scale_factor").unwrap().dtype,
            Some(DataType::Float32)
        );
        if let Some(f) = m.fill_value {
            let attr = got.attrs.get("_FillValue").unwrap();
            if m.dtype == DataType::Char {
                // A char attribute is text: one character, here byte 7.
                assert_eq!(attr.dtype, None, "{}", m.name);
                assert_eq!(attr.value, json!("\u{7}"), "{}", m.name);
            } else {
                assert_eq!(attr.dtype, Some(m.dtype), "{}", m.name);
            }
            assert_eq!(
                got.fill_value.and_then(|g| g.to_bytes(m.dtype)),
                f.to_bytes(m.dtype),
                "{}",
                m.name
            );
        }
    }
}

#[test]
fn netcdf4_round_trips_every_dtype_and_codec() {
    let dir = tempfile::tempdir().unwrap();
    for (codec, prepare) in [
        (NcCodec::Deflate { level: 1 }, true),
        (NcCodec::Zstd { level: 3 }, true),
        (NcCodec::None, false),
        (NcCodec::Deflate { level: 4 }, false),
    ] {
        let path = dir.path().join(format!("out-{codec}-{prepare}.nc"));
        let arrays = sample(&DataType::ALL, true);
        let options = NetcdfWriteOptions {
            codec: Some(codec),
            unlimited_dims: vec!["time".into()],
            ..Default::default()
        };
        let target = NetcdfTarget::create(&path, options).unwrap();
        write(&target, &arrays, prepare);
        assert!(!partial_path(&path).exists());
        check(&path, &arrays, true);
    }
}

#[test]
fn netcdf3_formats_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for (format, prepare) in [
        (NetcdfFormat::Classic, true),
        (NetcdfFormat::Offset64, false),
        (NetcdfFormat::Netcdf4Classic, true),
        (NetcdfFormat::Cdf5, true),
    ] {
        let path = dir.path().join(format!("out-{format}.nc"));
        let types = if format == NetcdfFormat::Cdf5 {
            DataType::ALL.to_vec()
        } else {
            classic_types()
        };
        let arrays = sample(&types, false);
        let options = NetcdfWriteOptions {
            format: Some(format),
            codec: Some(if format.is_hdf5() {
                NcCodec::default()
            } else {
                NcCodec::None
            }),
            unlimited_dims: vec!["time".into()],
            ..Default::default()
        };
        let target = NetcdfTarget::create(&path, options).unwrap();
        write(&target, &arrays, prepare);
        check(&path, &arrays, true);
    }
}

#[test]
fn formats_refuse_what_they_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let classic = |name: &str| {
        NetcdfTarget::create(
            dir.path().join(name),
            NetcdfWriteOptions {
                format: Some(NetcdfFormat::Classic),
                codec: Some(NcCodec::None),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let m = meta("u", &["x"], DataType::UInt16, &[4], &[4], None);
    let err = classic("a.nc").array(&m).unwrap_err();
    assert!(matches!(err, NetcdfError::Format { .. }), "{err}");
    assert!(
        err.to_string().contains("uint16") && err.to_string().contains("`u`"),
        "{err}"
    );
    let m = meta("grp/v", &["x"], DataType::Int16, &[4], &[4], None);
    let err = classic("b.nc").array(&m).unwrap_err();
    assert!(err.to_string().contains("groups"), "{err}");
    let err = NetcdfTarget::create(
        dir.path().join("c.nc"),
        NetcdfWriteOptions {
            format: Some(NetcdfFormat::Classic),
            codec: Some(NcCodec::Zstd { level: 3 }),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("uncompressed"), "{err}");
}

#[test]
fn unwritten_chunks_read_as_fill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fill.nc");
    let m = meta(
        "v",
        &["y", "x"],
        DataType::Int32,
        &[5, 6],
        &[2, 4],
        Some(Scalar::Int(-7)),
    );
    let target = NetcdfTarget::create(&path, NetcdfWriteOptions::default()).unwrap();
    let a = target.create_array(&m).unwrap();
    let ones: Vec<u8> = (0..8).flat_map(|_| 1i32.to_ne_bytes()).collect();
    a.write_region(&Region::new(vec![0, 0], vec![2, 4]), &ones)
        .unwrap();
    drop(a);
    target
        .finalize(&DatasetMeta {
            arrays: vec![m.clone()],
            attrs: Attributes::default(),
        })
        .unwrap();
    let s = NetcdfSource::open(&path).unwrap();
    let got = read_all(s.open_array("v").unwrap().as_ref());
    for (i, c) in got.chunks_exact(4).enumerate() {
        let v = i32::from_ne_bytes(c.try_into().unwrap());
        let (y, x) = (i / 6, i % 6);
        assert_eq!(v, if y < 2 && x < 4 { 1 } else { -7 }, "({y},{x})");
    }
}

/// An interrupted run leaves only `PATH.partial`; resuming it completes the file.
#[test]
fn interrupted_runs_look_unfinished_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    for format in [NetcdfFormat::Netcdf4, NetcdfFormat::Offset64] {
        let path = dir.path().join(format!("resume-{format}.nc"));
        let options = NetcdfWriteOptions {
            format: Some(format),
            codec: Some(if format.is_hdf5() {
                NcCodec::default()
            } else {
                NcCodec::None
            }),
            ..Default::default()
        };
        let m = meta("v", &["y", "x"], DataType::Float64, &[6, 4], &[2, 4], None);
        let data = data_for(&m, 5);
        let grid = ChunkGrid::regular(&[6, 4], &[2, 4]);
        let dataset = DatasetMeta {
            arrays: vec![m.clone()],
            attrs: global_attrs(),
        };
        {
            let target = NetcdfTarget::create(&path, options.clone()).unwrap();
            target.prepare(&dataset).unwrap();
            let a = target.create_array(&m).unwrap();
            let r = grid.chunk_region_linear(0);
            a.write_region(&r, &sub(&data, &[6, 4], &r, 8)).unwrap();
            // The run dies here: no finalize.
        }
        assert!(!path.exists(), "an unfinished file must not look complete");
        assert!(partial_path(&path).exists());
        let resumed = NetcdfTarget::create(
            &path,
            NetcdfWriteOptions {
                resume: true,
                ..options
            },
        )
        .unwrap();
        resumed.prepare(&dataset).unwrap();
        let a = resumed.create_array(&m).unwrap();
        for i in 1..grid.num_chunks() {
            let r = grid.chunk_region_linear(i);
            a.write_region(&r, &sub(&data, &[6, 4], &r, 8)).unwrap();
        }
        drop(a);
        resumed.finalize(&dataset).unwrap();
        let s = NetcdfSource::open(&path).unwrap();
        assert_eq!(read_all(s.open_array("v").unwrap().as_ref()), data);
    }
}

/// A NetCDF-4 file may be open through libnetcdf (one source scanning it) and through HDF5
/// (another reading its chunks) in one process.
#[test]
fn one_file_open_through_both_libraries() {
    let path = fixtures("netcdf").join("nc4_types.nc");
    let a = NetcdfSource::open(&path).unwrap();
    let first = read_all(a.open_array("v_f4").unwrap().as_ref());
    let b = NetcdfSource::open(&path).unwrap();
    assert_eq!(read_all(b.open_array("v_f4").unwrap().as_ref()), first);
    assert_eq!(
        read_all(a.open_array("v_i2").unwrap().as_ref()),
        read_all(b.open_array("v_i2").unwrap().as_ref())
    );
}

/// ncdump and netCDF4-python see the chunks, deflate level and shuffle we asked for.
#[test]
fn reference_readers_see_chunks_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ref.nc");
    let tas = meta(
        "tas",
        &["time", "lat", "lon"],
        DataType::Float32,
        &[12, 10, 9],
        &[12, 5, 3],
        Some(Scalar::Float(1e20)),
    );
    let time = meta("time", &["time"], DataType::Float64, &[12], &[12], None);
    let mask = meta(
        "mask",
        &["lat", "lon"],
        DataType::Bool,
        &[10, 9],
        &[10, 9],
        None,
    );
    let arrays = vec![tas, time, mask];
    let options = NetcdfWriteOptions {
        codec: Some(NcCodec::Deflate { level: 4 }),
        unlimited_dims: vec!["time".into()],
        ..Default::default()
    };
    let target = NetcdfTarget::create(&path, options).unwrap();
    write(&target, &arrays, true);
    let out = common::output(Command::new("ncdump").arg("-hs").arg(&path)).unwrap_or_else(|e| {
        panic!("cannot run ncdump ({e}): install netcdf-bin (`cargo xtask setup`)")
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("time = UNLIMITED ; // (12 currently)"),
        "{text}"
    );
    assert!(text.contains("tas:_ChunkSizes = 12, 5, 3 ;"), "{text}");
    assert!(text.contains("tas:_DeflateLevel = 4 ;"), "{text}");
    assert!(text.contains("tas:_Shuffle = \"true\" ;"), "{text}");
    assert!(text.contains("tas:_FillValue = 1.e+20f ;"), "{text}");
    assert!(text.contains("tas:scale_factor = 0.5f ;"), "{text}");
    assert!(text.contains("tas:valid_range = -5s, 5s ;"), "{text}");
    assert!(text.contains(":title = \"round trip\" ;"), "{text}");
    let script = format!(
        r#"
import netCDF4, numpy as np, xarray as xr
d = netCDF4.Dataset({path:?})
t = d["tas"]
assert t.chunking() == [12, 5, 3], t.chunking()
f = t.filters()
assert f["zlib"] and f["shuffle"] and f["complevel"] == 4, f
assert d.dimensions["time"].isunlimited()
assert t.dimensions == ("time", "lat", "lon")
assert t.dtype == np.float32 and t._FillValue == np.float32(1e20)
t.set_auto_maskandscale(False)
assert t[:].shape == (12, 10, 9)
ds = xr.open_dataset({path:?})
assert ds["mask"].dtype == bool, ds["mask"].dtype
assert ds["tas"].encoding["chunksizes"] == (12, 5, 3)
assert ds.attrs["title"] == "round trip"
"#,
        path = path.display().to_string()
    );
    run_python(&script);
}

/// NetCDF-4 with zstd (filter 32015): netCDF4-python and h5py read it with hdf5plugin's
/// plugins.
#[test]
fn zstd_netcdf4_reads_with_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zstd.nc");
    let tas = meta(
        "tas",
        &["t", "x"],
        DataType::Float32,
        &[10, 7],
        &[4, 3],
        None,
    );
    let options = NetcdfWriteOptions {
        codec: Some(NcCodec::Zstd { level: 5 }),
        ..Default::default()
    };
    let target = NetcdfTarget::create(&path, options).unwrap();
    let data = write(&target, std::slice::from_ref(&tas), true).remove(0);
    let first: Vec<f32> = data[..28]
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    let script = format!(
        r#"
import os, hdf5plugin
os.environ["HDF5_PLUGIN_PATH"] = hdf5plugin.PLUGIN_PATH
import h5py, netCDF4, numpy as np
want = np.array({first:?}, dtype=np.float32)
h = h5py.File({path:?}, "r")["tas"]
assert h._filters["32015"] == (5,) and h.shuffle, h._filters
assert np.array_equal(h[0], want)
v = netCDF4.Dataset({path:?})["tas"]
assert v.filters()["zstd"] and v.filters()["complevel"] == 5, v.filters()
v.set_auto_maskandscale(False)
assert np.array_equal(v[0], want)
"#,
        path = path.display().to_string()
    );
    run_python(&script);
}

/// A process that only finalizes (a distributed run) completes what others wrote, and one with
/// nothing written refuses instead of producing an empty file.
#[test]
fn finalize_in_another_process_reopens_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.nc");
    let m = meta("v", &["y", "x"], DataType::Int16, &[4, 5], &[2, 5], None);
    let data = data_for(&m, 8);
    let dataset = DatasetMeta {
        arrays: vec![m.clone()],
        attrs: global_attrs(),
    };
    {
        let writer = NetcdfTarget::create(&path, NetcdfWriteOptions::default()).unwrap();
        writer.prepare(&dataset).unwrap();
        // Created once per stage by the executor: the second call reopens.
        let a = writer.create_array(&m).unwrap();
        let again = writer.create_array(&m).unwrap();
        a.write_region(&Region::new(vec![0, 0], vec![2, 5]), &data[..20])
            .unwrap();
        again
            .write_region(&Region::new(vec![2, 0], vec![2, 5]), &data[20..])
            .unwrap();
    }
    let finisher = NetcdfTarget::create(&path, NetcdfWriteOptions::default()).unwrap();
    finisher.finalize(&dataset).unwrap();
    let s = NetcdfSource::open(&path).unwrap();
    assert_eq!(read_all(s.open_array("v").unwrap().as_ref()), data);

    let empty = dir.path().join("never.nc");
    let err = NetcdfTarget::create(&empty, NetcdfWriteOptions::default())
        .unwrap()
        .finalize(&dataset)
        .unwrap_err();
    assert!(err.to_string().contains("nothing to finalize"), "{err}");
    assert!(!empty.exists() && !partial_path(&empty).exists());
}
