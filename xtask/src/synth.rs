//! Synthetic datasets in the raw reference format, for the demo and the benchmarks.

use anyhow::Result;
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, DataType, DatasetMeta, DatasetTarget, Region, Scalar,
};
use rechunker_raw::RawTarget;
use std::path::Path;

/// A reproducible "temperature" field: a smooth pattern plus small hashed noise, so it
/// compresses about as well as real model output, and values depend on (t, lat, lon), so any
/// misplaced element shows up in a verify.
fn value(t: u64, y: u64, x: u64) -> f32 {
    let mut h = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ y.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ x;
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 32;
    let noise = (h & 0xffff) as f32 / 65536.0 - 0.5;
    let (t, y, x) = (t as f32, y as f32, x as f32);
    273.15 + 30.0 * (y * 0.02).cos() + 5.0 * (x * 0.03 + t * 0.1).sin() + 0.001 * t + 0.2 * noise
}

/// The `tas(time, lat, lon)` metadata of the canonical case, with time-slice chunks.
pub fn tas_meta(time: u64, lat: u64, lon: u64) -> ArrayMeta {
    let mut attrs = Attributes::default();
    attrs.insert("units", AttrValue::json("K".into()));
    attrs.insert(
        "long_name",
        AttrValue::json("near-surface air temperature".into()),
    );
    ArrayMeta {
        fill_value: Some(Scalar::Float(f64::NAN)),
        attrs,
        ..ArrayMeta::regular(
            "tas",
            &["time", "lat", "lon"],
            DataType::Float32,
            &[time, lat, lon],
            &[1, lat, lon],
        )
    }
}

fn dataset(meta: ArrayMeta) -> DatasetMeta {
    let mut attrs = Attributes::default();
    attrs.insert(
        "title",
        AttrValue::json("synthetic tas for rechunker".into()),
    );
    DatasetMeta {
        arrays: vec![meta],
        attrs,
    }
}

/// Writes `tas` of the given shape as time slices. Slices are written one at a time, so the
/// generator needs one slice of memory.
pub fn write_tas(path: &Path, time: u64, lat: u64, lon: u64) -> Result<()> {
    let meta = tas_meta(time, lat, lon);
    let target = RawTarget::create(path)?;
    let array = target.array(&meta)?;
    let mut slice = vec![0u8; (lat * lon * 4) as usize];
    for t in 0..time {
        for (i, out) in slice.chunks_exact_mut(4).enumerate() {
            let (y, x) = (i as u64 / lon, i as u64 % lon);
            out.copy_from_slice(&value(t, y, x).to_ne_bytes());
        }
        rechunker_core::ChunkedArrayMut::write_region(
            &array,
            &Region::new(vec![t, 0, 0], vec![1, lat, lon]),
            &slice,
        )?;
    }
    target.finalize(&dataset(meta))?;
    Ok(())
}

/// Writes only the metadata of `tas` (every chunk reads as the fill value): enough to plan
/// arrays far larger than the disk.
pub fn write_tas_metadata(path: &Path, time: u64, lat: u64, lon: u64) -> Result<()> {
    write_metadata(path, tas_meta(time, lat, lon))
}

/// Writes a dataset of one array that has metadata but no chunks.
pub fn write_metadata(path: &Path, meta: ArrayMeta) -> Result<()> {
    let target = RawTarget::create(path)?;
    target.array(&meta)?;
    target.finalize(&dataset(meta))?;
    Ok(())
}

/// One month of hourly `tas` on a `lat` x `lon` grid, with CF coordinates (`time` in hours
/// since 2000-01-01, `lat`, `lon`), starting at hour `t0`: one file of a NetCDF archive.
pub fn write_month(path: &Path, t0: u64, hours: u64, lat: u64, lon: u64) -> Result<()> {
    let attrs = |pairs: &[(&str, &str)]| {
        let mut a = Attributes::default();
        for (k, v) in pairs {
            a.insert(*k, AttrValue::json((*v).into()));
        }
        a
    };
    let coord = |name: &str, len: u64, dtype: DataType, a: Attributes| ArrayMeta {
        attrs: a,
        ..ArrayMeta::regular(name, &[name], dtype, &[len], &[len])
    };
    let time = coord(
        "time",
        hours,
        DataType::Float64,
        attrs(&[
            ("units", "hours since 2000-01-01"),
            ("calendar", "standard"),
            ("standard_name", "time"),
        ]),
    );
    let lat_meta = coord(
        "lat",
        lat,
        DataType::Float32,
        attrs(&[("units", "degrees_north"), ("standard_name", "latitude")]),
    );
    let lon_meta = coord(
        "lon",
        lon,
        DataType::Float32,
        attrs(&[("units", "degrees_east"), ("standard_name", "longitude")]),
    );
    let mut tas = tas_meta(hours, lat, lon);
    tas.attrs.insert(
        "_FillValue",
        AttrValue {
            value: "NaN".into(),
            dtype: Some(DataType::Float32),
        },
    );
    let target = RawTarget::create(path)?;
    let write = |meta: &ArrayMeta, bytes: Vec<u8>| -> Result<()> {
        let array = target.array(meta)?;
        rechunker_core::ChunkedArrayMut::write_region(
            &array,
            &Region::full(&meta.shape()),
            &bytes,
        )?;
        Ok(())
    };
    write(
        &time,
        (t0..t0 + hours)
            .flat_map(|h| (h as f64).to_ne_bytes())
            .collect(),
    )?;
    write(
        &lat_meta,
        (0..lat)
            .flat_map(|y| (-90.0 + 180.0 * y as f32 / (lat - 1).max(1) as f32).to_ne_bytes())
            .collect(),
    )?;
    write(
        &lon_meta,
        (0..lon)
            .flat_map(|x| (360.0 * x as f32 / lon as f32).to_ne_bytes())
            .collect(),
    )?;
    let array = target.array(&tas)?;
    let mut slice = vec![0u8; (lat * lon * 4) as usize];
    for t in 0..hours {
        for (i, out) in slice.chunks_exact_mut(4).enumerate() {
            out.copy_from_slice(&value(t0 + t, i as u64 / lon, i as u64 % lon).to_ne_bytes());
        }
        rechunker_core::ChunkedArrayMut::write_region(
            &array,
            &Region::new(vec![t, 0, 0], vec![1, lat, lon]),
            &slice,
        )?;
    }
    let mut global = attrs(&[
        ("title", "synthetic hourly near-surface air temperature"),
        ("Conventions", "CF-1.8"),
    ]);
    global.insert("source", AttrValue::json("cargo xtask demo".into()));
    target.finalize(&DatasetMeta {
        arrays: vec![time, lat_meta, lon_meta, tas],
        attrs: global,
    })?;
    Ok(())
}
