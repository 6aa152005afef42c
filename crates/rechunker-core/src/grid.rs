//! Chunk grids: how an array is cut into chunks (or blocks, or pieces) along each dimension.

use crate::region::{unravel, Region};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;

/// The cut of one dimension: either regular chunks of one size (the last may be shorter) or
/// explicit boundaries, as when a dimension is concatenated from files of different lengths.
///
/// Deserializing checks the grid ([`DimGrid::check`]): a chunk length of 0 or boundaries that do
/// not start at 0 and strictly increase are refused, so no grid read from a file divides by zero.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "DimGridRepr")]
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

/// [`DimGrid`] as stored, before [`DimGrid::check`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DimGridRepr {
    Regular { len: u64, chunk: u64 },
    Explicit { bounds: Vec<u64> },
}

impl TryFrom<DimGridRepr> for DimGrid {
    type Error = String;
    fn try_from(repr: DimGridRepr) -> Result<Self, String> {
        let grid = match repr {
            DimGridRepr::Regular { len, chunk } => DimGrid::Regular { len, chunk },
            DimGridRepr::Explicit { bounds } => DimGrid::Explicit {
                bounds: Arc::new(bounds),
            },
        };
        grid.check()?;
        Ok(grid)
    }
}

impl DimGrid {
    /// Checks that the grid is well-formed: regular chunks at least one element long, explicit
    /// boundaries starting at 0 and strictly increasing. Every grid the constructors build
    /// passes, and so does every grid deserialized; the methods below assume it (on a regular
    /// grid that fails they still never divide by zero).
    pub fn check(&self) -> Result<(), String> {
        match self {
            DimGrid::Regular { chunk: 0, len } => Err(format!(
                "a regular grid over {len} elements has chunks of length 0"
            )),
            DimGrid::Regular { .. } => Ok(()),
            DimGrid::Explicit { bounds } => {
                if bounds.first() != Some(&0) {
                    return Err(format!(
                        "explicit chunk boundaries {} do not start at 0",
                        short_list(bounds)
                    ));
                }
                if let Some(w) = bounds.windows(2).find(|w| w[1] <= w[0]) {
                    return Err(format!(
                        "explicit chunk boundaries {} do not increase ({} is followed by {}): a chunk of length 0 or less",
                        short_list(bounds),
                        w[0],
                        w[1]
                    ));
                }
                Ok(())
            }
        }
    }

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
            let n = bounds.len().saturating_sub(1);
            if n == 0 {
                return DimGrid::regular(0, 1);
            }
            let first = bounds[1].saturating_sub(bounds[0]);
            let regular = bounds[0] == 0
                && first > 0
                && (0..n).all(|i| {
                    let l = bounds[i + 1].wrapping_sub(bounds[i]);
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
            DimGrid::Regular { len, chunk } => len.div_ceil((*chunk).max(1)),
            DimGrid::Explicit { bounds } => (bounds.len() as u64).saturating_sub(1),
        }
    }

    /// Element range of chunk `i`.
    pub fn chunk_range(&self, i: u64) -> Range<u64> {
        match self {
            DimGrid::Regular { len, chunk } => {
                let start = i.saturating_mul(*chunk).min(*len);
                start..start.saturating_add(*chunk).min(*len)
            }
            DimGrid::Explicit { bounds } => bounds[i as usize]..bounds[i as usize + 1],
        }
    }

    /// The chunk holding element `x` (`x < len`).
    pub fn chunk_of(&self, x: u64) -> u64 {
        match self {
            DimGrid::Regular { chunk, .. } => x / (*chunk).max(1),
            DimGrid::Explicit { bounds } => {
                bounds.partition_point(|&b| b <= x).saturating_sub(1) as u64
            }
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
            DimGrid::Explicit { bounds } => bounds
                .windows(2)
                .map(|w| w[1].saturating_sub(w[0]))
                .max()
                .unwrap_or(0),
        }
    }

    /// The nominal chunk length: the regular size, or the longest explicit chunk.
    pub fn nominal_chunk(&self) -> u64 {
        match self {
            DimGrid::Regular { chunk, .. } => *chunk,
            DimGrid::Explicit { .. } => self.max_chunk_len(),
        }
    }

    /// True when every chunk of `coarse` is a union of whole chunks of this grid (both over the
    /// same length). Work is proportional to the explicit boundaries, never to the number of
    /// regular chunks, so it is cheap on any grid a file may hold.
    pub fn refines(&self, coarse: &DimGrid) -> bool {
        if self.len() != coarse.len() {
            return false;
        }
        let on_boundary = |x: u64| self.is_aligned(&(x..x));
        match (self, coarse) {
            (_, DimGrid::Regular { len, chunk }) if chunk >= len => true,
            (DimGrid::Regular { chunk: fine, .. }, DimGrid::Regular { chunk, .. }) => {
                *fine > 0 && chunk % fine == 0
            }
            (DimGrid::Explicit { bounds }, DimGrid::Regular { .. }) => {
                // Every interior boundary of `coarse` must be one of `bounds`.
                let n = coarse.num_chunks();
                n <= bounds.len() as u64
                    && (1..n).all(|i| bounds.binary_search(&coarse.chunk_range(i).start).is_ok())
            }
            (_, DimGrid::Explicit { bounds }) => bounds.iter().all(|&b| on_boundary(b)),
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

/// `values` for a message, shortened when long.
fn short_list(values: &[u64]) -> String {
    if values.len() <= 8 {
        format!("{values:?}")
    } else {
        format!(
            "[{}, ... {} more]",
            values[..6]
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            values.len() - 6
        )
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

    /// True when every chunk of `coarser` is a union of whole chunks of `self` (both over the
    /// same shape).
    pub fn refines(&self, coarser: &ChunkGrid) -> bool {
        self.ndim() == coarser.ndim()
            && self
                .dims
                .iter()
                .zip(&coarser.dims)
                .all(|(fine, coarse)| fine.refines(coarse))
    }

    /// Checks every dimension ([`DimGrid::check`]).
    pub fn check(&self) -> Result<(), String> {
        self.dims
            .iter()
            .enumerate()
            .try_for_each(|(d, g)| g.check().map_err(|e| format!("dimension {d}: {e}")))
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

    #[test]
    fn grids_read_from_json_are_checked() {
        let read = |text: &str| serde_json::from_str::<ChunkGrid>(text);
        let ok = read(r#"[{"regular":{"len":10,"chunk":4}},{"explicit":{"bounds":[0,3,8]}}]"#);
        assert_eq!(
            ok.unwrap(),
            ChunkGrid::new(vec![DimGrid::regular(10, 4), DimGrid::from_lengths([3, 5])])
        );
        for (bad, why) in [
            (r#"[{"regular":{"len":10,"chunk":0}}]"#, "length 0"),
            (r#"[{"regular":{"len":0,"chunk":0}}]"#, "length 0"),
            (r#"[{"explicit":{"bounds":[]}}]"#, "do not start at 0"),
            (r#"[{"explicit":{"bounds":[1,3]}}]"#, "do not start at 0"),
            (r#"[{"explicit":{"bounds":[0,3,3,8]}}]"#, "do not increase"),
            (r#"[{"explicit":{"bounds":[0,5,3]}}]"#, "do not increase"),
        ] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // What the constructors build serializes to what reads back.
        for g in [
            DimGrid::regular(0, 0),
            DimGrid::from_lengths([]),
            DimGrid::from_lengths([2, 9]),
        ] {
            g.check().unwrap();
            let text = serde_json::to_string(&g).unwrap();
            assert_eq!(serde_json::from_str::<DimGrid>(&text).unwrap(), g);
        }
    }

    #[test]
    fn unchecked_grids_do_not_divide_by_zero_or_overflow() {
        let zero = DimGrid::Regular { len: 10, chunk: 0 };
        assert!(zero.check().is_err());
        assert_eq!(zero.num_chunks(), 10);
        assert_eq!(zero.chunk_of(3), 3);
        let huge = DimGrid::regular(u64::MAX, u64::MAX / 2 + 1);
        assert_eq!(huge.num_chunks(), 2);
        assert_eq!(huge.chunk_range(1), u64::MAX / 2 + 1..u64::MAX);
        let empty = DimGrid::Explicit {
            bounds: Arc::new(vec![]),
        };
        assert_eq!(empty.num_chunks(), 0);
        assert_eq!(empty.clone().simplified(), DimGrid::regular(0, 1));
    }

    #[test]
    fn refinement_is_computed_without_enumerating_chunks() {
        let n = u64::MAX / 4;
        // Billions of chunks: answered by arithmetic.
        assert!(DimGrid::regular(n, 3).refines(&DimGrid::regular(n, 12)));
        assert!(!DimGrid::regular(n, 3).refines(&DimGrid::regular(n, 13)));
        assert!(DimGrid::regular(n, 3).refines(&DimGrid::regular(n, n)));
        assert!(!DimGrid::regular(n, 3).refines(&DimGrid::regular(n - 1, n)));
        // An explicit fine grid has few chunks, and so does any regular grid it refines.
        let fine = DimGrid::from_lengths([3, 5, 2, 5]);
        assert!(fine.refines(&DimGrid::from_lengths([8, 7])));
        assert!(!fine.refines(&DimGrid::from_lengths([7, 8])));
        assert!(fine.refines(&DimGrid::regular(15, 15)));
        assert!(!fine.refines(&DimGrid::regular(15, 5)));
        assert!(!fine.refines(&DimGrid::regular(15, 1)));
        assert!(DimGrid::from_lengths([4, 4, 4, 3])
            .simplified()
            .refines(&DimGrid::regular(15, 8)));
        assert!(DimGrid::from_lengths([4, 3, 1, 7]).refines(&DimGrid::regular(15, 8)));
        assert!(!DimGrid::from_lengths([4, 3, 2, 6]).refines(&DimGrid::regular(15, 8)));
        // Regular fine, explicit coarse: every boundary a multiple.
        assert!(DimGrid::regular(15, 4).refines(&DimGrid::from_lengths([8, 7])));
        assert!(!DimGrid::regular(15, 4).refines(&DimGrid::from_lengths([6, 9])));
        // Different dimensions or lengths never refine.
        let g = ChunkGrid::regular(&[4, 4], &[1, 1]);
        assert!(!g.refines(&ChunkGrid::regular(&[4], &[4])));
        assert!(!g.refines(&ChunkGrid::regular(&[4, 5], &[4, 5])));
    }
}
