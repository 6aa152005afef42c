//! Test data: deterministic, valid for its type, different in every element that matters.

use crate::layout::copy_box;
use crate::{ArrayMeta, DataType, Region};

/// Deterministic pseudo-random bytes (xorshift).
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

/// The whole of `meta`'s array as C-order native-endian bytes: bools are 0 or 1, floats are
/// finite values that compare equal bit for bit after any round trip (no NaN payloads).
pub fn data_for(meta: &ArrayMeta, seed: u64) -> Vec<u8> {
    let mut bytes = random_bytes(meta.num_bytes() as usize, seed);
    match meta.dtype {
        DataType::Bool => bytes.iter_mut().for_each(|b| *b &= 1),
        DataType::Float32 => {
            for c in bytes.chunks_exact_mut(4) {
                let v = u32::from_ne_bytes(c.try_into().expect("4 bytes"));
                c.copy_from_slice(&((v % 100_000) as f32 * 0.25 - 9000.0).to_ne_bytes());
            }
        }
        DataType::Float64 => {
            for c in bytes.chunks_exact_mut(8) {
                let v = u64::from_ne_bytes(c.try_into().expect("8 bytes"));
                c.copy_from_slice(&((v % 10_000_000) as f64 / 7.0 - 1e5).to_ne_bytes());
            }
        }
        _ => {}
    }
    bytes
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
