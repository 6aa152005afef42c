//! `rechunk verify`: are two datasets equal, value for value?

use anyhow::{bail, Result};
use rayon::prelude::*;
use rechunker_core::region::unravel;
use rechunker_core::{ChunkGrid, DatasetSource};

/// Compares every array of `source` with the array of the same name in `target`, in blocks of
/// whole target chunks grown along the last dimensions first (so both sides read long
/// contiguous runs), two buffers per block and a block per thread within `max_mem`.
/// Returns the number of bytes compared.
pub fn verify(source: &dyn DatasetSource, target: &dyn DatasetSource, max_mem: u64) -> Result<u64> {
    let (src_name, dst_name) = (source.location(), target.location());
    let mut compared = 0;
    for meta in &source.meta().arrays {
        let Some(other) = target.meta().array(&meta.name) else {
            bail!(
                "{dst_name} has no variable `{}`, which {src_name} has",
                meta.name
            );
        };
        if other.shape() != meta.shape() || other.dtype != meta.dtype {
            bail!(
                "`{}` differs: {} {:?} in {src_name} but {} {:?} in {dst_name}",
                meta.name,
                meta.dtype,
                meta.shape(),
                other.dtype,
                other.shape()
            );
        }
        let (a, b) = (
            source.open_array(&meta.name)?,
            target.open_array(&meta.name)?,
        );
        let threads = rayon::current_num_threads() as u64;
        let overhead = a.read_overhead() + b.read_overhead();
        let budget = (max_mem / threads).saturating_sub(overhead) / 2;
        let grid = comparison_blocks(&other.grid, meta.item_size() as u64, budget);
        let item = meta.item_size();
        (0..grid.num_chunks())
            .into_par_iter()
            .try_for_each(|i| -> Result<()> {
                let region = grid.chunk_region_linear(i);
                let len = region.num_elements() as usize * item;
                let (mut x, mut y) = (vec![0u8; len], vec![0u8; len]);
                a.read_region(&region, &mut x)?;
                b.read_region(&region, &mut y)?;
                if let Some(byte) = x.iter().zip(&y).position(|(p, q)| p != q) {
                    let at = unravel((byte / item) as u64, &region.shape);
                    let at: Vec<u64> = at.iter().zip(&region.start).map(|(i, s)| i + s).collect();
                    bail!(
                        "`{}` differs at {at:?} between {src_name} and {dst_name}",
                        meta.name
                    );
                }
                Ok(())
            })?;
        compared += meta.num_bytes();
    }
    Ok(compared)
}

/// Blocks of whole chunks of `grid`, grown from the last dimension backwards while a block stays
/// within `budget` bytes.
fn comparison_blocks(grid: &ChunkGrid, item: u64, budget: u64) -> ChunkGrid {
    let mut blocks = grid.clone();
    for d in (0..grid.ndim()).rev() {
        let others: u64 = blocks
            .dims
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != d)
            .map(|(_, g)| g.max_chunk_len())
            .product();
        let per_chunk = others * grid.dims[d].max_chunk_len() * item;
        let factor = (budget / per_chunk.max(1)).clamp(1, grid.dims[d].num_chunks().max(1));
        blocks.dims[d] = grid.dims[d].consolidate(factor);
        if factor < grid.dims[d].num_chunks() {
            break;
        }
    }
    blocks
}
