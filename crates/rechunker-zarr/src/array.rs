//! One Zarr array: reading regions straight into the caller's buffer, writing whole chunks (or
//! whole shards).

use crate::bounded;
use crate::error::{Result, ZarrError};
use crate::meta::{self, CodecCost};
use crate::store::Storage;
use rayon::prelude::*;
use rechunker_core::layout::{buffer_len, copy_box, fill_elements};
use rechunker_core::{ArrayMeta, ChunkedArray, ChunkedArrayMut, Region};
use std::sync::Arc;
use unsafe_cell_slice::UnsafeCellSlice;
use zarrs::array::{
    Array, ArrayBytes, ArrayBytesDecodeIntoTarget, ArrayBytesFixedDisjointView, ArrayError,
    ArraySubset, CodecOptions,
};

/// Codec options for every retrieve and store call: zarrs' own parallelism off, because the
/// executor already runs one task per core and budgets memory per task.
pub(crate) fn codec_options() -> CodecOptions {
    CodecOptions::default().with_concurrent_target(1)
}

/// What zarrs refused when it opened an array, said once: its "unsupported Zarr V2 array:"
/// prefix and "is not supported" suffix are dropped (ours adds the suffix), and a codec zarrs
/// does not have is named with the way out.
fn zarrs_refusal(uri: &str, variable: &str, message: &str) -> ZarrError {
    let what = message
        .strip_prefix("unsupported Zarr V2 array: ")
        .unwrap_or(message)
        .trim();
    let what = what.strip_suffix(" is not supported").unwrap_or(what);
    match what.strip_prefix("codec ") {
        Some(codec) if !codec.contains(' ') => ZarrError::UnsupportedCodec {
            uri: uri.into(),
            variable: variable.into(),
            codec: codec.into(),
        },
        _ => ZarrError::Unsupported {
            uri: uri.into(),
            variable: variable.into(),
            what: what.into(),
        },
    }
}

/// A Zarr array opened through zarrs, with its metadata in rechunker's terms.
pub struct ZarrArray {
    pub(crate) uri: String,
    pub(crate) meta: ArrayMeta,
    pub(crate) array: Array<dyn zarrs::storage::ReadableWritableListableStorageTraits>,
    /// zarrs' chunk shape (the shard shape when sharded): not clipped at the array's edge.
    pub(crate) chunk: Vec<u64>,
    pub(crate) cost: CodecCost,
    /// True when the chunk grid's unit is a shard (for messages).
    pub(crate) sharded: bool,
    /// A v2 array with `fill_value: null` has no fill value: a chunk that is not stored reads
    /// as whatever the reader's memory held (zarr-python 2 returns uninitialised bytes), so
    /// every chunk is stored, even one equal to zarrs' stand-in fill value.
    store_every_chunk: bool,
    /// On an object store: reads fetch a window of chunks ahead of the one being decoded.
    pub(crate) remote: bool,
    /// A source's object store, through which the next task's first chunks are fetched early.
    pub(crate) prefetcher: Option<Arc<crate::store::ObjectStorage>>,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray")
            .field("uri", &self.uri)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl ZarrArray {
    pub(crate) fn new(
        uri: String,
        meta: ArrayMeta,
        storage: Storage,
        path: &str,
        metadata: zarrs::array::ArrayMetadata,
        chunk: Vec<u64>,
        cost: CodecCost,
    ) -> Result<Self> {
        let unsupported = |what: String| ZarrError::Unsupported {
            uri: uri.clone(),
            variable: meta.name.clone(),
            what,
        };
        let store_every_chunk = matches!(
            &metadata,
            zarrs::array::ArrayMetadata::V2(v2) if v2.fill_value == zarrs::array::FillValueMetadata::Null
        );
        let opened = Array::new_with_metadata(storage.clone(), path, metadata)
            .map_err(|e| zarrs_refusal(&uri, &meta.name, &e.to_string()))?;
        // Every decoder capped at the size its output may have (see `bounded`); codecs zarrs
        // cannot bound are capped at what the largest chunk of this array may take encoded.
        let chunk_bytes = chunk.iter().product::<u64>() * meta.item_size() as u64;
        let fallback = meta::encoded_bound(chunk_bytes) * 2;
        let array = bounded::bound_array(&opened, storage, path, fallback)
            .map_err(|e| unsupported(format!("its codecs ({e})")))?;
        let sharded = cost.inner.is_some();
        Ok(ZarrArray {
            uri,
            meta,
            array,
            chunk,
            cost,
            sharded,
            store_every_chunk,
            remote: false,
            prefetcher: None,
        })
    }

    fn item(&self) -> usize {
        self.meta.item_size()
    }

    fn chunk_bytes(&self) -> u64 {
        self.chunk.iter().product::<u64>() * self.item() as u64
    }

    fn key(&self, index: &[u64]) -> String {
        self.array.chunk_key(index).as_str().to_string()
    }

    fn check_len(&self, region: &Region, len: usize) -> Result<()> {
        let expected = buffer_len(&region.shape, self.item()).map(|n| n as u64);
        if expected != Some(len as u64) {
            return Err(ZarrError::BufferSize {
                uri: self.uri.clone(),
                variable: self.meta.name.clone(),
                region: region.clone(),
                expected: expected.unwrap_or(u64::MAX),
                found: len as u64,
            });
        }
        Ok(())
    }

    fn in_bounds(&self, region: &Region) -> Result<()> {
        let shape = self.meta.shape();
        if region.ndim() != shape.len() || (0..region.ndim()).any(|d| region.end(d) > shape[d]) {
            return Err(ZarrError::OutOfBounds {
                uri: self.uri.clone(),
                variable: self.meta.name.clone(),
                region: region.clone(),
                shape,
            });
        }
        Ok(())
    }

    /// Reads `region` into `out` (C order, native endian): each chunk is decoded by zarrs
    /// straight into its place in `out`, by up to `threads` threads of the current rayon pool.
    pub fn read(&self, region: &Region, out: &mut [u8], threads: usize) -> Result<()> {
        self.in_bounds(region)?;
        self.check_len(region, out.len())?;
        if region.is_empty() {
            return Ok(());
        }
        let options = codec_options();
        let item = self.item();
        let grid = &self.meta.grid;
        let chunks = chunk_indices(grid.chunks_overlapping(region));
        let out = UnsafeCellSlice::new(out);
        // On object stores each group fetches a window of its next chunks while it decodes.
        let group = |part: &[Vec<u64>], run: &mut dyn FnMut() -> Result<()>| {
            if !self.remote || self.sharded {
                return run();
            }
            let keys = part.iter().map(|c| self.key(c)).collect();
            crate::store::reads_ahead(keys, run)
        };
        in_groups_with(&chunks, threads, group, |(), index| {
            let Some(overlap) = grid.chunk_region(index).intersect(region) else {
                return Ok(());
            };
            let read_error = |message: String| ZarrError::ReadChunk {
                uri: self.uri.clone(),
                variable: self.meta.name.clone(),
                key: self.key(index),
                message,
            };
            let in_array =
                ArraySubset::new_with_start_shape(overlap.start.clone(), overlap.shape.clone())
                    .map_err(|e| read_error(e.to_string()))?;
            let in_out =
                ArraySubset::new_with_start_shape(overlap.offset_in(region), overlap.shape.clone())
                    .map_err(|e| read_error(e.to_string()))?;
            // SAFETY: the views alive at once, one per thread, are of the overlaps of distinct
            // chunks with `region`, which are disjoint boxes of `out`.
            let mut view =
                unsafe { ArrayBytesFixedDisjointView::new(out, item, &region.shape, in_out) }
                    .map_err(|e| read_error(e.to_string()))?;
            self.array
                .retrieve_array_subset_into_opt(
                    &in_array,
                    ArrayBytesDecodeIntoTarget::Fixed(&mut view),
                    &options,
                )
                .map_err(|e| match (bounded::exceeded(&e), e) {
                    (Some(limit), _) => ZarrError::DecodesTooLarge {
                        uri: self.uri.clone(),
                        variable: self.meta.name.clone(),
                        key: self.key(index),
                        limit,
                        what: if self.sharded && limit != self.chunk_bytes() {
                            "an inner chunk of shard"
                        } else {
                            "chunk"
                        },
                    },
                    (None, ArrayError::CodecError(e)) => {
                        read_error(format!("{e}; the chunk is truncated or corrupt"))
                    }
                    (None, other) => read_error(other.to_string()),
                })
        })
    }

    /// Writes `data` to `region`, a union of whole chunks (shards when sharded): each is
    /// encoded and stored whole, in one store write, by up to `threads` threads of the current
    /// rayon pool (each with its own chunk buffer).
    pub fn write(&self, region: &Region, data: &[u8], threads: usize) -> Result<()> {
        self.in_bounds(region)?;
        self.check_len(region, data.len())?;
        let grid = &self.meta.grid;
        if !grid.is_aligned(region) {
            return Err(ZarrError::Unaligned {
                uri: self.uri.clone(),
                variable: self.meta.name.clone(),
                region: region.clone(),
                unit: if self.sharded { "shards" } else { "chunks" },
            });
        }
        if region.is_empty() {
            return Ok(());
        }
        let options = codec_options().with_store_empty_chunks(self.store_every_chunk);
        let item = self.item();
        let fill = self.meta.fill_bytes();
        let chunks = chunk_indices(grid.chunks_overlapping(region));
        // On object stores each group's chunks are stored while the next are encoded (a
        // window of writes in flight per thread); the region counts as written only once
        // every write of every group has landed.
        let group = |_: &[Vec<u64>], run: &mut dyn FnMut() -> Result<()>| {
            let (done, landed) = crate::store::writes_behind(run);
            done?;
            landed.map_err(|(key, e)| ZarrError::WriteChunk {
                uri: self.uri.clone(),
                variable: self.meta.name.clone(),
                key,
                message: e.to_string(),
            })
        };
        in_groups_with(&chunks, threads, group, |buffer: &mut Vec<u8>, index| {
            let chunk = grid.chunk_region(index);
            let write_error = |message: String| ZarrError::WriteChunk {
                uri: self.uri.clone(),
                variable: self.meta.name.clone(),
                key: self.key(index),
                message,
            };
            let clipped = chunk.shape != self.chunk;
            let bytes: &[u8] = if chunk == *region && !clipped {
                data
            } else {
                let len = buffer_len(&self.chunk, item)
                    .ok_or_else(|| write_error("chunk too large for memory".into()))?;
                // Every byte is written below (fill and copy), so a reused buffer of the same
                // length is not zeroed first: that memset was 3.4% of a blosc-lz4 run.
                buffer.resize(len, 0);
                if clipped {
                    // Zarr stores edge chunks whole: pad with the fill value.
                    fill_elements(buffer, &fill);
                }
                copy_box(
                    data,
                    &region.shape,
                    &chunk.offset_in(region),
                    buffer,
                    &self.chunk,
                    &vec![0; chunk.ndim()],
                    &chunk.shape,
                    item,
                );
                buffer
            };
            self.array
                .store_chunk_opt(index, ArrayBytes::new_flen(bytes), &options)
                .map_err(|e| write_error(e.to_string()))
        })
    }
}

/// The chunk indices of `ranges` (one per dimension), in C order.
fn chunk_indices(ranges: Vec<std::ops::Range<u64>>) -> Vec<Vec<u64>> {
    let counts: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    rechunker_core::region::indices(&counts)
        .map(|rel| rel.iter().zip(&ranges).map(|(i, r)| r.start + i).collect())
        .collect()
}

/// Runs `each` on every chunk of `chunks`, in up to `threads` groups of consecutive chunks side
/// by side on the current rayon pool, each group with its own state (a chunk buffer) and run
/// inside `group` (given the group's chunks and a closure it calls once: e.g. to fetch ahead,
/// or to wait for the group's writes at its end); the first error stops the rest. One group
/// runs on the calling thread, in order.
fn in_groups_with<S: Default + Send>(
    chunks: &[Vec<u64>],
    threads: usize,
    group: impl Fn(&[Vec<u64>], &mut dyn FnMut() -> Result<()>) -> Result<()> + Sync,
    each: impl Fn(&mut S, &[u64]) -> Result<()> + Sync,
) -> Result<()> {
    let per_group = chunks.len().div_ceil(threads.max(1)).max(1);
    let run = |part: &[Vec<u64>]| {
        let mut state = S::default();
        group(part, &mut || {
            part.iter().try_for_each(|c| each(&mut state, c))
        })
    };
    if per_group >= chunks.len() {
        return run(chunks);
    }
    chunks.par_chunks(per_group).try_for_each(run)
}

impl ChunkedArray for ZarrArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        Ok(self.read(region, out, 1)?)
    }

    fn read_region_parallel(
        &self,
        region: &Region,
        out: &mut [u8],
        threads: usize,
    ) -> rechunker_core::Result<()> {
        Ok(self.read(region, out, threads)?)
    }

    fn read_sample(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        if !self.remote {
            return self.read_region(region, out);
        }
        Ok(crate::store::keeping_reads(|| self.read(region, out, 1))?)
    }

    fn prefetch_overhead(&self) -> u64 {
        match (&self.prefetcher, self.sharded) {
            (Some(_), false) => {
                rechunker_store::io_window() as u64 * meta::encoded_bound(self.chunk_bytes())
            }
            _ => 0,
        }
    }

    fn prefetch(&self, region: &Region, threads: usize) {
        let Some(prefetcher) = self.prefetcher.as_ref().filter(|_| !self.sharded) else {
            return;
        };
        if self.in_bounds(region).is_err() {
            return;
        }
        // The read splits the chunks into `threads` runs, each fetching a window of its next
        // chunks: the first window of every run is what the read would ask for first.
        let chunks = chunk_indices(self.meta.grid.chunks_overlapping(region));
        let per_group = chunks.len().div_ceil(threads.max(1)).max(1);
        let window = rechunker_store::io_window().max(1);
        let keys = chunks
            .chunks(per_group)
            .flat_map(|run| run.iter().take(window))
            .map(|c| self.key(c));
        let started = prefetcher.prefetch(keys);
        tracing::debug!(
            variable = self.meta.name,
            %region,
            started,
            "prefetching the next task's first chunks"
        );
    }

    fn read_overhead(&self) -> u64 {
        // On object stores a thread holds a window of fetched, still encoded chunks.
        let ahead = if self.remote && !self.sharded {
            rechunker_store::io_window() as u64 * meta::encoded_bound(self.chunk_bytes())
        } else {
            0
        };
        self.cost
            .read_overhead(self.chunk_bytes(), self.item() as u64)
            + ahead
    }
}

impl ChunkedArrayMut for ZarrArray {
    fn write_region(&self, region: &Region, data: &[u8]) -> rechunker_core::Result<()> {
        Ok(self.write(region, data, 1)?)
    }

    fn write_region_parallel(
        &self,
        region: &Region,
        data: &[u8],
        threads: usize,
    ) -> rechunker_core::Result<()> {
        Ok(self.write(region, data, threads)?)
    }

    fn write_overhead(&self) -> u64 {
        let inner = self
            .cost
            .inner
            .as_ref()
            .map(|(shape, _)| shape.iter().product::<u64>() * self.item() as u64);
        meta::write_overhead(self.chunk_bytes(), inner)
            + crate::store::write_window_bytes(self.chunk_bytes(), self.remote)
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn zarrs_refusals_are_said_once() {
        let e = zarrs_refusal(
            "in.zarr",
            "x",
            "unsupported Zarr V2 array: codec bz2 is not supported",
        )
        .to_string();
        assert_eq!(
            e,
            "in.zarr: array `x`: codec bz2 is not supported; convert it with zarr-python (numcodecs) to zstd or blosc first"
        );
        let e = zarrs_refusal("in.zarr", "x", "data type <M8 is not supported").to_string();
        assert_eq!(e, "in.zarr: array `x`: data type <M8 is not supported");
    }
}
