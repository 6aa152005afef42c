//! The traits every format adapter implements. The executor moves plain bytes (native-endian,
//! C order) plus a [`DataType`](crate::DataType), so one executor serves every format pair.

use crate::error::Result;
use crate::grid::ChunkGrid;
use crate::layout;
use crate::meta::{ArrayMeta, DatasetMeta};
use crate::region::Region;
use rayon::prelude::*;
use std::sync::Arc;

/// A chunked N-d array that can be read by region.
pub trait ChunkedArray: Send + Sync {
    fn meta(&self) -> &ArrayMeta;

    /// Reads `region` into `out`, which holds exactly `region.num_elements() * item_size` bytes,
    /// C order, native endian. Unwritten chunks read as the fill value. Called concurrently from
    /// several threads with disjoint or overlapping regions.
    fn read_region(&self, region: &Region, out: &mut [u8]) -> Result<()>;

    /// Reads `region` like [`ChunkedArray::read_region`], spreading its chunks over up to
    /// `threads` threads of the current rayon pool; each may hold [`ChunkedArray::read_overhead`].
    /// By default the region is cut into slabs of whole chunks along its first dimension (each a
    /// contiguous part of `out`); adapters that can split any way override it.
    fn read_region_parallel(&self, region: &Region, out: &mut [u8], threads: usize) -> Result<()> {
        let Some(first) = self.meta().grid.dims.first() else {
            return self.read_region(region, out);
        };
        let slabs = layout::slabs(region, first, threads);
        let item = self.meta().item_size();
        match layout::split_slabs_mut(out, &slabs, item) {
            Some(parts) if parts.len() > 1 => slabs
                .par_iter()
                .zip(parts)
                .try_for_each(|(slab, part)| self.read_region(slab, part)),
            // One slab, or a buffer of the wrong size (which read_region reports).
            _ => self.read_region(region, out),
        }
    }

    /// Reads `region` like [`ChunkedArray::read_region`], for the planner's rate probe. An
    /// adapter that fetches chunks from an object store may keep the encoded bytes it fetched,
    /// [`crate::rates::KEPT_SAMPLE_BYTES`] at most, for the run's own first read of the same
    /// chunks, so that planning adds no second transfer of them.
    fn read_sample(&self, region: &Region, out: &mut [u8]) -> Result<()> {
        self.read_region(region, out)
    }

    /// Bytes this array allocates beyond `out` while reading a region (encoded chunk and decode
    /// buffers). The planner reserves them, so the whole process stays within its budget.
    fn read_overhead(&self) -> u64 {
        2 * self.meta().max_chunk_bytes()
    }

    /// Bytes per thread that [`ChunkedArray::prefetch`] may hold until the read takes them; 0
    /// when it does nothing. The planner counts them in a first-stage task's memory while it
    /// writes, and the executor then picks each runner's next task before the current one
    /// writes, so that its reads start early.
    fn prefetch_overhead(&self) -> u64 {
        0
    }

    /// Starts fetching the first chunks of `region`, which this process reads next with
    /// [`ChunkedArray::read_region_parallel`] over `threads` threads, and returns at once; the
    /// read takes them. An adapter whose reads wait on a store's round trips (object stores)
    /// overlaps them with the current task's writes this way, holding at most `threads` times
    /// [`ChunkedArray::prefetch_overhead`].
    fn prefetch(&self, region: &Region, threads: usize) {
        let _ = (region, threads);
    }
}

/// An array that can also be written, one union of whole chunks at a time.
pub trait ChunkedArrayMut: ChunkedArray {
    /// Writes `data` (laid out like [`ChunkedArray::read_region`]'s `out`) to `region`, which is a
    /// union of whole chunks of this array. Each chunk must be stored whole and atomically: a
    /// crash leaves either the old chunk or the new one. Disjoint regions are written concurrently.
    fn write_region(&self, region: &Region, data: &[u8]) -> Result<()>;

    /// Writes `region` like [`ChunkedArrayMut::write_region`], spreading its chunks over up to
    /// `threads` threads of the current rayon pool, each holding at most
    /// [`ChunkedArrayMut::write_overhead`]. By default one thread writes: formats whose library
    /// serialises writes (HDF5, NetCDF) or orders them (TileDB) gain nothing from more.
    fn write_region_parallel(&self, region: &Region, data: &[u8], threads: usize) -> Result<()> {
        let _ = threads;
        self.write_region(region, data)
    }

    /// Bytes this array allocates beyond `data` while writing a region (chunk copy and encoded
    /// output).
    fn write_overhead(&self) -> u64 {
        2 * self.meta().max_chunk_bytes()
    }
}

/// What [`DatasetTarget::encode_sample`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeSample {
    /// Times the sample was encoded.
    pub times: u64,
    /// Seconds all of them took.
    pub seconds: f64,
    /// Bytes of one encoded sample.
    pub encoded: u64,
}

/// A readable dataset: several arrays with shared dimensions and global attributes.
pub trait DatasetSource: Send + Sync {
    /// Where the dataset lives, for messages.
    fn location(&self) -> &str;

    fn meta(&self) -> &DatasetMeta;

    fn open_array(&self, name: &str) -> Result<Arc<dyn ChunkedArray>>;
}

/// A dataset being written. Arrays are created first, filled by the executor, and the dataset is
/// made visible as complete only by [`DatasetTarget::finalize`].
pub trait DatasetTarget: Send + Sync {
    fn location(&self) -> &str;

    /// Creates the array `meta` describes (its grid is the target chunking), or reopens it when a
    /// run resumes. The adapter chooses its codecs; `meta.codecs` is ignored.
    fn create_array(&self, meta: &ArrayMeta) -> Result<Arc<dyn ChunkedArrayMut>>;

    /// The units the array is written in: its chunk grid, or a coarser one when the format
    /// stores several chunks per object (Zarr shards), which must then be written whole.
    /// Errors here are the target options not fitting the array, found before anything runs.
    fn write_grid(&self, meta: &ArrayMeta) -> Result<ChunkGrid> {
        Ok(meta.grid.clone())
    }

    /// What [`ChunkedArrayMut::write_overhead`] will be for an array of `meta`, known before
    /// the array exists so the planner can budget for it.
    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        2 * meta.max_chunk_bytes()
    }

    /// Encodes `data`, the values of `region` (one write unit of [`DatasetTarget::write_grid`]),
    /// as the arrays [`DatasetTarget::create_array`] makes would, storing it nowhere, again
    /// and again until `seconds` have passed (at least once, at most 8 times): the planner
    /// learns what the target's codec costs on this data. Only the encoding is timed, not
    /// setting the encoder up. `None` where the adapter cannot encode apart from writing (the
    /// planner then uses its fixed rate).
    fn encode_sample(
        &self,
        meta: &ArrayMeta,
        region: &Region,
        data: &[u8],
        seconds: f64,
    ) -> Option<Result<EncodeSample>> {
        let _ = (meta, region, data, seconds);
        None
    }

    /// Called once before arrays are created, with the whole target dataset, for formats that
    /// must define every variable up front (NetCDF's define mode). Must be idempotent: every
    /// process of a distributed run calls it.
    fn prepare(&self, _meta: &DatasetMeta) -> Result<()> {
        Ok(())
    }

    /// Writes the dataset-level metadata last, so that no reader sees a half-written dataset as
    /// complete.
    fn finalize(&self, meta: &DatasetMeta) -> Result<()>;
}
