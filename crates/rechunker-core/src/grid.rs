//! Chunk grids: how an array is cut into chunks (or blocks, or pieces) along each dimension.

use crate::region::{unravel, Region};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;

/// The cut of one dimension: either regular chunks of one size (the last may be shorter) or
/// explicit boundaries, as when a dimension is concatenated from files of different lengths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimGrid {
    Regular {
        len: u64,
        chunk: u64,
    },
    /// Boundaries `0 = b[0] < b[1] < ... < b[n] = len`; chunk `i` is `b[i]..b[i+1]`.
    Explicit {
        bounds: Arc<Vec<u64>>,
    },
}

impl DimGrid {
    /// Regular chunks of `chunk` elements (clamped to at least 1) over `len` elements.
    pub fn regular(len: u64, chunk: u64) -> Self {
        DimGrid::Regular {
            len,
            chunk: chunk.max(1),
        }
    }

    /// A grid from chunk lengths, e.g. the lengths of concatenated files. Zero lengths are dropped.
    pub fn from_lengths(lengths: impl IntoIterator<Item = u64>) -> Self {
        let mut bounds = vec![0u64];
        for l in lengths {
            if l > 0 {
                bounds.push(bounds.last().copied().unwrap_or(0) + l);
            }
        }
        DimGrid::Explicit {
            bounds: Arc::new(bounds),
        }
        .simplified()
    }

    /// Rewrites an explicit grid whose chunks are all equal (but the last) as a regular one.
    pub fn simplified(self) -> Self {
        if let DimGrid::Explicit { bounds } = &self {
            let n = bounds.len() - 1;
            if n == 0 {
                return DimGrid::regular(0, 1);
            }
            let first = bounds[1] - bounds[0];
            let regular = (0..n).all(|i| {
                let l = bounds[i + 1] - bounds[i];
                l == first || (i + 1 == n && l < first)
            });
            if regular {
                return DimGrid::regular(bounds[n], first);
            }
        }
        self
    }

    pub fn len(&self) -> u64 {
        match self {
            DimGrid::Regular { len, .. } => *len,
            DimGrid::Explicit { bounds } => *bounds.last().unwrap_or(&0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_chunks(&self) -> u64 {
        match self {
            DimGrid::Regular { len, chunk } => len.div_ceil(*chunk),
            DimGrid::Explicit { bounds } => bounds.len() as u64 - 1,
        }
    }

    /// Element range of chunk `i`.
    pub fn chunk_range(&self, i: u64) -> Range<u64> {
        match self {
            DimGrid::Regular { len, chunk } => (i * chunk).min(*len)..((i + 1) * chunk).min(*len),
            DimGrid::Explicit { bounds } => bounds[i as usize]..bounds[i as usize + 1],
        }
    }

    /// The chunk holding element `x` (`x < len`).
    pub fn chunk_of(&self, x: u64) -> u64 {
        match self {
            DimGrid::Regular { chunk, .. } => x / chunk,
            DimGrid::Explicit { bounds } => (bounds.partition_point(|&b| b <= x) - 1) as u64,
        }
    }

    /// Indices of the chunks that overlap elements `range`.
    pub fn chunks_overlapping(&self, range: Range<u64>) -> Range<u64> {
        if range.start >= range.end {
            return 0..0;
        }
        self.chunk_of(range.start)..self.chunk_of(range.end - 1) + 1
    }

    /// True when `range` starts and ends on chunk boundaries (or the end of the dimension).
    pub fn is_aligned(&self, range: &Range<u64>) -> bool {
        let on_boundary = |x: u64| {
            x == self.len() || (x < self.len() && self.chunk_range(self.chunk_of(x)).start == x)
        };
        on_boundary(range.start) && on_boundary(range.end)
    }

    /// The longest chunk, for memory bounds.
    pub fn max_chunk_len(&self) -> u64 {
        match self {
            DimGrid::Regular { len, chunk } => (*chunk).min(*len),
            DimGrid::Explicit { bounds } => {
                bounds.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
            }
        }
    }

    /// The nominal chunk length: the regular size, or the longest explicit chunk.
    pub fn nominal_chunk(&self) -> u64 {
        match self {
            DimGrid::Regular { chunk, .. } => *chunk,
            DimGrid::Explicit { .. } => self.max_chunk_len(),
        }
    }

    /// Groups consecutive chunks of this grid into blocks of about `factor` chunks each, so
    /// every block is a union of whole chunks. For explicit grids, chunks are packed greedily
    /// while the block stays within `factor * nominal_chunk` elements.
    pub fn consolidate(&self, factor: u64) -> DimGrid {
        let factor = factor.max(1);
        match self {
            DimGrid::Regular { len, chunk } => {
                DimGrid::regular(*len, chunk.saturating_mul(factor).min((*len).max(1)))
            }
            DimGrid::Explicit { bounds } => {
                let limit = self.nominal_chunk().saturating_mul(factor);
                let mut out = vec![0u64];
                let mut block_start = 0;
                for w in bounds.windows(2) {
                    if w[1] - block_start > limit && w[0] > block_start {
                        out.push(w[0]);
                        block_start = w[0];
                    }
                }
                out.push(self.len());
                out.dedup();
                DimGrid::Explicit {
                    bounds: Arc::new(out),
                }
                .simplified()
            }
        }
    }
}

/// A chunk grid over all dimensions of an array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChunkGrid {
    pub dims: Vec<DimGrid>,
}

impl ChunkGrid {
    pub fn new(dims: Vec<DimGrid>) -> Self {
        ChunkGrid { dims }
    }

    /// A regular grid: `chunks[d]` elements along dimension `d` of `shape`.
    pub fn regular(shape: &[u64], chunks: &[u64]) -> Self {
        ChunkGrid::new(
            shape
                .iter()
                .zip(chunks)
                .map(|(&l, &c)| DimGrid::regular(l, c))
                .collect(),
        )
    }

    pub fn ndim(&self) -> usize {
        self.dims.len()
    }

    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().map(DimGrid::len).collect()
    }

    /// Chunks per dimension.
    pub fn grid_shape(&self) -> Vec<u64> {
        self.dims.iter().map(DimGrid::num_chunks).collect()
    }

    /// Total number of chunks (1 for a 0-d array, 0 if any dimension is empty).
    pub fn num_chunks(&self) -> u64 {
        self.dims.iter().map(DimGrid::num_chunks).product()
    }

    /// The region of the chunk at multi-index `index`.
    pub fn chunk_region(&self, index: &[u64]) -> Region {
        let (start, shape) = self
            .dims
            .iter()
            .zip(index)
            .map(|(g, &i)| {
                let r = g.chunk_range(i);
                (r.start, r.end - r.start)
            })
            .unzip();
        Region::new(start, shape)
    }

    /// The region of the chunk with C-order linear index `linear`.
    pub fn chunk_region_linear(&self, linear: u64) -> Region {
        self.chunk_region(&unravel(linear, &self.grid_shape()))
    }

    /// Per dimension, the range of chunk indices overlapping `region`.
    pub fn chunks_overlapping(&self, region: &Region) -> Vec<Range<u64>> {
        self.dims
            .iter()
            .enumerate()
            .map(|(d, g)| g.chunks_overlapping(region.start[d]..region.end(d)))
            .collect()
    }

    /// Regions of all chunks overlapping `region`, in C order of chunk index.
    pub fn chunk_regions_overlapping<'a>(
        &'a self,
        region: &Region,
    ) -> impl Iterator<Item = Region> + 'a {
        let ranges = self.chunks_overlapping(region);
        let counts: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
        let total: u64 = counts.iter().product();
        (0..total).map(move |i| {
            let rel = unravel(i, &counts);
            let index: Vec<u64> = rel
                .iter()
                .zip(&ranges)
                .map(|(r, range)| range.start + r)
                .collect();
            self.chunk_region(&index)
        })
    }

    /// True when `region` is a union of whole chunks of this grid.
    pub fn is_aligned(&self, region: &Region) -> bool {
        self.dims
            .iter()
            .enumerate()
            .all(|(d, g)| g.is_aligned(&(region.start[d]..region.end(d))))
    }

    /// Elements in the largest chunk.
    pub fn max_chunk_elements(&self) -> u64 {
        self.dims.iter().map(DimGrid::max_chunk_len).product()
    }

    /// Blocks of whole chunks of this grid, grown from the last dimension backwards while a
    /// block stays within `budget` bytes of `item`-byte elements (so reads are long contiguous
    /// runs of whole chunks). A single chunk larger than `budget` stays one block.
    pub fn blocks_within(&self, item: u64, budget: u64) -> ChunkGrid {
        let mut blocks = self.clone();
        for d in (0..self.ndim()).rev() {
            let others: u64 = blocks
                .dims
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != d)
                .map(|(_, g)| g.max_chunk_len())
                .product();
            let per_chunk = others * self.dims[d].max_chunk_len() * item;
            let factor = (budget / per_chunk.max(1)).clamp(1, self.dims[d].num_chunks().max(1));
            blocks.dims[d] = self.dims[d].consolidate(factor);
            if factor < self.dims[d].num_chunks() {
                break;
            }
        }
        blocks
    }

    /// The nominal chunk shape (regular sizes, longest explicit chunks).
    pub fn nominal_chunk_shape(&self) -> Vec<u64> {
        self.dims.iter().map(DimGrid::nominal_chunk).collect()
    }

    /// True when every chunk of `coarser` is a union of whole chunks of `self`.
    pub fn refines(&self, coarser: &ChunkGrid) -> bool {
        self.dims.iter().zip(&coarser.dims).all(|(fine, coarse)| {
            (0..coarse.num_chunks()).all(|i| fine.is_aligned(&coarse.chunk_range(i)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_grid_basics() {
        let g = DimGrid::regular(10, 4);
        assert_eq!(g.num_chunks(), 3);
        assert_eq!(g.chunk_range(2), 8..10);
        assert_eq!(g.chunk_of(7), 1);
        assert_eq!(g.chunks_overlapping(3..9), 0..3);
        assert!(g.is_aligned(&(4..10)));
        assert!(!g.is_aligned(&(4..9)));
        assert_eq!(g.consolidate(2), DimGrid::regular(10, 8));
        assert_eq!(DimGrid::regular(0, 4).num_chunks(), 0);
    }

    #[test]
    fn explicit_grid_basics() {
        let g = DimGrid::from_lengths([3, 5, 2, 5]);
        assert_eq!(g.num_chunks(), 4);
        assert_eq!(g.len(), 15);
        assert_eq!(g.chunk_of(8), 2);
        assert_eq!(g.chunk_range(1), 3..8);
        assert_eq!(g.max_chunk_len(), 5);
        let c = g.consolidate(2);
        assert!(ChunkGrid::new(vec![g.clone()]).refines(&ChunkGrid::new(vec![c])));
        assert_eq!(DimGrid::from_lengths([4, 4, 2]), DimGrid::regular(10, 4));
    }

    #[test]
    fn grid_regions() {
        let g = ChunkGrid::regular(&[5, 7], &[2, 3]);
        assert_eq!(g.num_chunks(), 9);
        assert_eq!(
            g.chunk_region_linear(8),
            Region::new(vec![4, 6], vec![1, 1])
        );
        let r = Region::new(vec![1, 2], vec![2, 2]);
        assert_eq!(g.chunk_regions_overlapping(&r).count(), 4);
        assert!(ChunkGrid::regular(&[5, 7], &[1, 3]).refines(&g));
        assert!(!g.refines(&ChunkGrid::regular(&[5, 7], &[1, 3])));
        assert_eq!(ChunkGrid::regular(&[], &[]).num_chunks(), 1);
    }
}
