//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rechunker_core::layout::copy_box;
use rechunker_core::{ArrayMeta, AttrValue, Attributes, DataType, Region, Scalar};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

/// Deterministic pseudo-random bytes (xorshift).
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

/// Random data valid for `meta`'s type (bools 0/1, finite floats).
pub fn data_for(meta: &ArrayMeta, seed: u64) -> Vec<u8> {
    let n = meta.num_bytes() as usize;
    let mut bytes = random_bytes(n, seed);
    match meta.dtype {
        DataType::Bool => bytes.iter_mut().for_each(|b| *b &= 1),
        DataType::Float32 => {
            for c in bytes.chunks_exact_mut(4) {
                let v = u32::from_ne_bytes(c.try_into().unwrap());
                c.copy_from_slice(&((v % 100_000) as f32 * 0.125 - 999.0).to_ne_bytes());
            }
        }
        DataType::Float64 => {
            for c in bytes.chunks_exact_mut(8) {
                let v = u64::from_ne_bytes(c.try_into().unwrap());
                c.copy_from_slice(&((v % 10_000_000) as f64 * 0.001 - 5.0).to_ne_bytes());
            }
        }
        _ => {}
    }
    bytes
}

pub fn meta(
    name: &str,
    dims: &[&str],
    dtype: DataType,
    shape: &[u64],
    chunks: &[u64],
) -> ArrayMeta {
    let mut attrs = Attributes::default();
    attrs.insert("units", AttrValue::json(json!("K")));
    attrs.insert(
        "valid_range",
        AttrValue {
            value: json!([0, 100]),
            dtype: Some(DataType::Int32),
        },
    );
    ArrayMeta {
        attrs,
        ..ArrayMeta::regular(name, dims, dtype, shape, chunks)
    }
}

/// The box `region` of a C-order array of `shape`.
pub fn extract(data: &[u8], shape: &[u64], region: &Region, item: usize) -> Vec<u8> {
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

/// A scalar as JSON, as our attributes spell it.
pub fn scalar_json(s: Scalar) -> serde_json::Value {
    match s {
        Scalar::Float(v) if v.is_nan() => json!("NaN"),
        Scalar::Float(v) => json!(v),
        Scalar::Int(v) => json!(v),
        Scalar::UInt(v) => json!(v),
        Scalar::Bool(v) => json!(v),
    }
}

/// The workspace venv's Python with tiledb-py and numpy (or $RECHUNKER_PYTHON). The tests that
/// need it fail when it is missing or lacks tiledb-py: tiledb-py is the judge of what we write.
pub fn python() -> PathBuf {
    let p = std::env::var_os("RECHUNKER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let probe = Command::new(&p)
        .args(["-c", "import tiledb, numpy"])
        .output();
    let problem = match &probe {
        Ok(out) if out.status.success() => return p,
        // The last line of the traceback names what is missing.
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("no error message")
            .to_string(),
        Err(e) => e.to_string(),
    };
    panic!(
        "{} cannot import tiledb and numpy ({problem}): run `cargo xtask setup` to make the venv \
         with the reference readers, or set RECHUNKER_PYTHON to a Python that has tiledb-py",
        p.display()
    );
}

/// Runs a Python snippet with tiledb-py; returns its stdout. Panics with its stderr on failure.
pub fn run_python(python: &std::path::Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("cannot run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiledb")
}
