//! Layout-independent digests of array contents.
//!
//! Comparing two copies of an array value by value in blocks of one layout makes the other copy
//! decode each of its chunks many times (a time-series block touches every time-slice chunk).
//! A [`Digest`] instead sums a 128-bit hash of every element *and its position*, so each copy is
//! read once, whole chunks at a time in its own chunk order, and the sums compare equal exactly
//! when the contents do (up to a 2^-128-ish chance of a collision).

use crate::array::ChunkedArray;
use crate::error::Result;
use crate::layout::contiguous_runs;
use crate::region::{unravel, Region};
use rayon::prelude::*;
use std::fmt;

/// The wrapping sum of one 128-bit hash per element, each hash mixing the element's bytes with
/// its linear index in the whole array. Sums commute, so blocks can be digested in any order
/// and on any thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Digest([u64; 2]);

impl Digest {
    /// The digest of the elements in both `self` and `other` (disjoint sets of positions).
    pub fn combine(self, other: Digest) -> Digest {
        Digest([
            self.0[0].wrapping_add(other.0[0]),
            self.0[1].wrapping_add(other.0[1]),
        ])
    }

    /// The digest of `data` (C order, `item` bytes per element) holding `region` of an array
    /// of `array_shape`.
    pub fn of_block(region: &Region, array_shape: &[u64], data: &[u8], item: usize) -> Digest {
        debug_assert_eq!(data.len() as u64, region.num_elements() * item as u64);
        // The block's elements lie in the whole array as contiguous runs, in the block's order.
        let runs = contiguous_runs(array_shape, &region.start, &region.shape, 1);
        let mut sum = Digest::default();
        let mut at = 0;
        for run in runs {
            let bytes = &data[at..at + run.len() * item];
            sum = sum.add_row(run.start as u64, bytes, item);
            at += bytes.len();
        }
        sum
    }

    /// Adds the contiguous elements `bytes`, the first at linear position `first`.
    fn add_row(self, first: u64, bytes: &[u8], item: usize) -> Digest {
        let [mut a, mut b] = self.0;
        let mut add = |index: u64, value: u64| {
            a = a.wrapping_add(mix(value ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            b = b.wrapping_add(mix(
                value.rotate_left(29).wrapping_add(index) ^ 0xd6e8_feb8_6659_fd93
            ));
        };
        let mut index = first;
        match item {
            1 => bytes.iter().for_each(|&v| {
                add(index, v as u64);
                index += 1;
            }),
            2 => bytes.chunks_exact(2).for_each(|v| {
                add(index, u16::from_ne_bytes([v[0], v[1]]) as u64);
                index += 1;
            }),
            4 => bytes.chunks_exact(4).for_each(|v| {
                add(index, u32::from_ne_bytes([v[0], v[1], v[2], v[3]]) as u64);
                index += 1;
            }),
            8 => bytes.chunks_exact(8).for_each(|v| {
                let word: [u8; 8] = v.try_into().unwrap_or_default();
                add(index, u64::from_ne_bytes(word));
                index += 1;
            }),
            _ => bytes.chunks_exact(item.max(1)).for_each(|v| {
                // Wider or odd-sized elements: fold their bytes into one word first.
                let folded = v.chunks(8).fold(0u64, |h, part| {
                    let mut word = [0u8; 8];
                    word[..part.len()].copy_from_slice(part);
                    mix(h ^ u64::from_ne_bytes(word))
                });
                add(index, folded);
                index += 1;
            }),
        }
        Digest([a, b])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.0[0], self.0[1])
    }
}

/// SplitMix64's finalizer: a bijection of u64 whose output bits each depend on every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Blocks beyond this size make reads no faster, only the process bigger.
const DIGEST_BLOCK_TARGET: u64 = 64 << 20;

/// The digest of the whole of `array`, read in blocks of its own whole chunks, one block of up
/// to `block_budget` bytes (plus the array's read overhead) per thread of the current rayon pool.
pub fn digest_array(array: &dyn ChunkedArray, block_budget: u64) -> Result<Digest> {
    let meta = array.meta();
    let item = meta.item_size();
    let shape = meta.shape();
    let blocks = meta
        .grid
        .blocks_within(item as u64, block_budget.min(DIGEST_BLOCK_TARGET));
    (0..blocks.num_chunks())
        .into_par_iter()
        .map_init(Vec::new, |buf: &mut Vec<u8>, i| -> Result<Digest> {
            let region = blocks.chunk_region_linear(i);
            let len = region.num_elements() as usize * item;
            buf.clear();
            buf.resize(len, 0);
            array.read_region(&region, buf)?;
            Ok(Digest::of_block(&region, &shape, buf, item))
        })
        .try_reduce(Digest::default, |x, y| Ok(x.combine(y)))
}

/// The position of the first element where `a` and `b` differ, comparing blocks of whole
/// chunks of `b`, two buffers per block within `per_thread` bytes: slow when the layouts
/// differ, so only for naming the place once digests disagree.
pub fn first_difference(
    a: &dyn ChunkedArray,
    b: &dyn ChunkedArray,
    per_thread: u64,
) -> Result<Option<Vec<u64>>> {
    let meta = b.meta();
    let item = meta.item_size();
    let budget = per_thread.saturating_sub(a.read_overhead() + b.read_overhead()) / 2;
    let grid = meta.grid.blocks_within(item as u64, budget);
    let found = (0..grid.num_chunks())
        .into_par_iter()
        .map(|i| -> Result<Option<Vec<u64>>> {
            let region = grid.chunk_region_linear(i);
            let len = region.num_elements() as usize * item;
            let (mut x, mut y) = (vec![0u8; len], vec![0u8; len]);
            a.read_region(&region, &mut x)?;
            b.read_region(&region, &mut y)?;
            Ok(x.iter().zip(&y).position(|(p, q)| p != q).map(|byte| {
                let at = unravel((byte / item) as u64, &region.shape);
                at.iter().zip(&region.start).map(|(i, s)| i + s).collect()
            }))
        })
        .find_first(|r| !matches!(r, Ok(None)));
    found.unwrap_or(Ok(None))
}

/// How two arrays of the same shape and type compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    /// The first element (in `b`'s block order) where they differ.
    DiffersAt(Vec<u64>),
    /// The digests differed but a second, element-wise reading found no difference: one of
    /// them changed in between (or is being written).
    ReadDifferently(Digest, Digest),
}

/// Compares `a` with `b` value for value, within `per_thread` bytes of buffers per thread of
/// the current rayon pool: each is read once into a [`Digest`], and only when those differ are
/// they compared block by block to name the place. The one comparison behind `rechunk verify`
/// and the in-place check before a swap.
pub fn compare_arrays(
    a: &dyn ChunkedArray,
    b: &dyn ChunkedArray,
    per_thread: u64,
) -> Result<Comparison> {
    let budget = |array: &dyn ChunkedArray| per_thread.saturating_sub(array.read_overhead()).max(1);
    let (x, y) = (digest_array(a, budget(a))?, digest_array(b, budget(b))?);
    if x == y {
        return Ok(Comparison::Equal);
    }
    Ok(match first_difference(a, b, per_thread)? {
        Some(at) => Comparison::DiffersAt(at),
        None => Comparison::ReadDifferently(x, y),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::ChunkGrid;
    use crate::layout::copy_box;

    /// The digest of an array does not depend on how it is cut into blocks, and changes when
    /// one element changes or two elements swap places.
    #[test]
    fn digests_depend_on_values_and_positions_not_blocks() {
        let shape = [5u64, 7, 3];
        for item in [1usize, 2, 4, 8, 3] {
            let n = shape.iter().product::<u64>() as usize * item;
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            let whole = Digest::of_block(&Region::full(&shape), &shape, &data, item);
            for chunks in [[1u64, 7, 3], [2, 3, 2], [5, 1, 1], [4, 4, 4]] {
                let grid = ChunkGrid::regular(&shape, &chunks);
                let mut sum = Digest::default();
                for i in 0..grid.num_chunks() {
                    let r = grid.chunk_region_linear(i);
                    let mut part = vec![0u8; r.num_elements() as usize * item];
                    copy_box(
                        &data,
                        &shape,
                        &r.start,
                        &mut part,
                        &r.shape,
                        &[0, 0, 0],
                        &r.shape,
                        item,
                    );
                    sum = sum.combine(Digest::of_block(&r, &shape, &part, item));
                }
                assert_eq!(sum, whole, "item {item}, chunks {chunks:?}");
            }
            let mut changed = data.clone();
            changed[n / 2] ^= 1;
            assert_ne!(
                Digest::of_block(&Region::full(&shape), &shape, &changed, item),
                whole
            );
            let mut swapped = data.clone();
            let (a, b) = (item, 2 * item);
            for k in 0..item {
                swapped.swap(a + k, b + k);
            }
            if swapped != data {
                assert_ne!(
                    Digest::of_block(&Region::full(&shape), &shape, &swapped, item),
                    whole
                );
            }
        }
    }

    #[test]
    fn scalars_and_empty_arrays_have_digests() {
        let one = Digest::of_block(&Region::full(&[]), &[], &[7, 0, 0, 0], 4);
        assert_ne!(one, Digest::default());
        let empty = Digest::of_block(&Region::full(&[0, 4]), &[0, 4], &[], 4);
        assert_eq!(empty, Digest::default());
    }
}
