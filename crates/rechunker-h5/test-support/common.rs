//! Helpers shared by the integration tests of rechunker-netcdf and rechunker-hdf5 (each
//! includes this file): the fixture formula, random data, reading whole arrays, and the
//! reference Python.
#![allow(dead_code)]

use rechunker_core::layout::copy_box;
use rechunker_core::{ArrayMeta, ChunkedArray, DataType, Region, Scalar};
use std::path::{Path, PathBuf};
use std::process::Command;

/// An array with typed attributes (`units`, `valid_range` as int16, `scale_factor` as float32,
/// `_FillValue` of the array's type when `fill` is given) plus `extra` untyped ones.
pub fn meta(
    name: &str,
    dims: &[&str],
    dtype: DataType,
    shape: &[u64],
    chunks: &[u64],
    fill: Option<Scalar>,
    extra: &[(&str, serde_json::Value)],
) -> ArrayMeta {
    use rechunker_core::{AttrValue, Attributes};
    use serde_json::json;
    let mut attrs = Attributes::default();
    attrs.insert("units", AttrValue::json(json!("K")));
    attrs.insert(
        "valid_range",
        AttrValue {
            value: json!([-5, 5]),
            dtype: Some(DataType::Int16),
        },
    );
    attrs.insert(
        "scale_factor",
        AttrValue {
            value: json!(0.5),
            dtype: Some(DataType::Float32),
        },
    );
    for (key, value) in extra {
        attrs.insert(*key, AttrValue::json(value.clone()));
    }
    if let Some(f) = fill {
        attrs.insert(
            "_FillValue",
            AttrValue {
                value: rechunker_h5::json::scalar_to_json(f),
                dtype: (dtype != DataType::Bool).then_some(dtype),
            },
        );
    }
    ArrayMeta {
        fill_value: fill,
        attrs,
        ..ArrayMeta::regular(name, dims, dtype, shape, chunks)
    }
}

/// The fixture scripts' `value()`: element i is (i * 7 + k) % 97 - 40 (signed), % 97
/// (unsigned), (.. - 40) / 4 (floats), odd (bool), as native-endian bytes.
pub fn fixture_values(dtype: DataType, n: usize, k: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * dtype.size());
    for i in 0..n as i64 {
        let base = (i * 7 + k) % 97;
        let s = match dtype {
            DataType::Bool => Scalar::Bool(base % 2 == 1),
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
                Scalar::UInt(base as u64)
            }
            DataType::Float32 | DataType::Float64 => Scalar::Float((base - 40) as f64 / 4.0),
            _ => Scalar::Int(base - 40),
        };
        out.extend(s.to_bytes(dtype).unwrap());
    }
    out
}

pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
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

/// Random data for an array, valid for its type (bools 0/1, floats without NaN payloads).
pub fn data_for(meta: &ArrayMeta, seed: u64) -> Vec<u8> {
    let mut bytes = random_bytes(meta.num_bytes() as usize, seed);
    match meta.dtype {
        DataType::Bool => bytes.iter_mut().for_each(|b| *b &= 1),
        DataType::Float32 => {
            for c in bytes.chunks_exact_mut(4) {
                let v = u32::from_ne_bytes(c.try_into().unwrap());
                c.copy_from_slice(&((v % 100_000) as f32 * 0.25 - 9000.0).to_ne_bytes());
            }
        }
        DataType::Float64 => {
            for c in bytes.chunks_exact_mut(8) {
                let v = u64::from_ne_bytes(c.try_into().unwrap());
                c.copy_from_slice(&((v % 10_000_000) as f64 / 7.0 - 1e5).to_ne_bytes());
            }
        }
        _ => {}
    }
    bytes
}

pub fn read_all(a: &dyn ChunkedArray) -> Vec<u8> {
    let shape = a.meta().shape();
    let mut out = vec![0u8; a.meta().num_bytes() as usize];
    a.read_region(&Region::full(&shape), &mut out).unwrap();
    out
}

/// The box `r` of a C-order array `data` of `shape`.
pub fn sub(data: &[u8], shape: &[u64], r: &Region, item: usize) -> Vec<u8> {
    let mut out = vec![0u8; r.num_elements() as usize * item];
    copy_box(
        data,
        shape,
        &r.start,
        &mut out,
        &r.shape,
        &vec![0; r.ndim()],
        &r.shape,
        item,
    );
    out
}

/// Reads boxes that straddle chunk boundaries and compares them with `data`.
pub fn check_partial_reads(a: &dyn ChunkedArray, data: &[u8]) {
    let shape = a.meta().shape();
    if shape.is_empty() || shape.contains(&0) {
        return;
    }
    let item = a.meta().item_size();
    for seed in 0..8u64 {
        let start: Vec<u64> = shape.iter().map(|&n| (seed * 7 + 1) % n).collect();
        let size: Vec<u64> = shape
            .iter()
            .zip(&start)
            .map(|(&n, &s)| ((seed * 3 + 2) % (n - s)).max(1))
            .collect();
        let r = Region::new(start, size);
        let mut got = vec![0u8; r.num_elements() as usize * item];
        a.read_region(&r, &mut got).unwrap();
        assert_eq!(got, sub(data, &shape, &r, item), "{} {r}", a.meta().name);
    }
}

/// Reads the whole array from 4 threads at once, in blocks, and checks every block.
pub fn check_parallel_reads(a: &(dyn ChunkedArray + Sync), data: &[u8]) {
    let shape = a.meta().shape();
    if shape.is_empty() || shape.contains(&0) {
        return;
    }
    let item = a.meta().item_size();
    let block: Vec<u64> = shape.iter().map(|&n| n.div_ceil(2)).collect();
    let grid = rechunker_core::ChunkGrid::regular(&shape, &block);
    let regions: Vec<Region> = (0..grid.num_chunks())
        .map(|i| grid.chunk_region_linear(i))
        .collect();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let regions = &regions;
            let shape = &shape;
            scope.spawn(move || {
                for r in regions.iter().cycle().skip(t).take(regions.len() * 3) {
                    let mut got = vec![0u8; r.num_elements() as usize * item];
                    a.read_region(r, &mut got).unwrap();
                    assert_eq!(got, sub(data, shape, r, item), "{r}");
                }
            });
        }
    });
}

/// The project's Python (with netCDF4, h5py, hdf5plugin, xarray): `RECHUNKER_PYTHON`, else the
/// workspace venv. A missing one fails the test (the reference readers are the judges here).
pub fn python() -> PathBuf {
    let p = std::env::var_os("RECHUNKER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python"));
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask setup` to install the reference readers",
        p.display()
    );
    p
}

/// Runs `cmd` and collects its output. The child must not inherit the descriptors of files
/// other tests have open: with them it would hold their HDF5 file locks (`flock`) for its
/// whole life, and those tests could not reopen their files. So it is started holding the
/// HDF5/NetCDF lock (no file is half-opened then), and every descriptor above stderr is
/// marked close-on-exec in the child before it executes.
pub fn output(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 3..4096 {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
    let child = rechunker_h5::locked(|| cmd.spawn())?;
    child.wait_with_output()
}

/// Runs `script` with the project's Python; panics with its output if it fails.
pub fn run_python(script: &str) {
    let out = output(Command::new(python()).arg("-c").arg(script)).unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(kind)
}
