//! HDF5 plumbing shared by rechunker's NetCDF and HDF5 adapters.
//!
//! libhdf5 and libnetcdf are not thread-safe: every call into either goes through one
//! process-wide reentrant lock ([`locked`]), the one `hdf5-metno` and `netcdf` already share
//! (`hdf5_sys::LOCK`, which `netcdf_sys::libnetcdf_lock` re-exports). [`locked`] is the one
//! call point for both libraries in rechunker: every call into libhdf5 or libnetcdf in this
//! crate, in rechunker-hdf5 and in rechunker-netcdf runs inside it (the zstd filter callback
//! runs inside a library call made under it), and every public function that calls into a
//! library takes it itself. The lock is reentrant, so a caller that needs several calls to be
//! atomic wraps them in `locked` too; functions documented "lock held" are private helpers of
//! one that took it. Each `unsafe` block says so in its `// SAFETY:` line. Holding the lock while
//! decompressing would serialize the whole job on one core, so [`ChunkedDataset`] does only
//! the file I/O under the lock:
//!
//! - reading: `H5Dget_chunk_info_by_coord` + `H5Dread_chunk` fetch one raw (still filtered)
//!   chunk under the lock; the caller's thread then reverses the filter pipeline (deflate,
//!   shuffle, zstd) outside it and copies the chunk into place;
//! - writing: chunks are padded, shuffled and compressed outside the lock, then stored with
//!   `H5Dwrite_chunk` under it.
//!
//! The executor calls `read_region` / `write_region` from several threads at once, so codecs
//! run on all cores while the lock is held only for short raw I/O. Datasets whose filters we do
//! not implement (or contiguous ones) fall back to `H5Dread` / `H5Dwrite` under the lock.
//!
//! Memory beyond the caller's buffer, per call (`C` = bytes of one full chunk, decoded;
//! `E` = [`encoded_bound`]`(C)`):
//! - direct read: the raw chunk (at most `E`), one intermediate stage (`C`, only with two
//!   filters) and the decoded chunk (`C`, skipped when a whole chunk lands on one contiguous
//!   run of the output) plus codec state (< 1 MiB): `E + 2C + 1 MiB`;
//! - direct write: a padded copy (`C`, skipped for whole chunks that are contiguous in the
//!   input), the shuffled copy (`C`) and the encoded chunk (`E`) plus codec state (1 MiB for
//!   zlib, 4-256 MiB for zstd by level): `E + 2C + state`;
//! - library fallback: libhdf5's filter buffers (`E + 2C`) and its conversion and sieve
//!   buffers ([`LIBRARY_BUFFERS`]); for contiguous data only the latter.
//!
//! Datasets are opened without a raw-data chunk cache; each open file keeps libhdf5's
//! metadata cache (a few MiB at most), which is process overhead, not per-task memory.

mod codec;
mod dataset;
mod dims;
mod dtype;
mod error;
mod files;
mod hid;
mod zstd_filter;

pub mod json;

pub use codec::{
    shuffle, unshuffle, CodecParseError, Filter, H5Codec, KeptFilters, Pipeline, ZSTD_FILTER_ID,
};
pub use dataset::{create_dataset, ChunkedDataset, DatasetSpec};
pub use dims::{attach_scale, is_scale, scale_names, set_scale};
pub use dtype::{classify_type, file_type, mem_type, read_type, TypeInfo};
pub use error::H5Error;
pub use files::{close_on_exec_all, create_file, link_exists, open_dataset, open_file};
pub use hid::{check, Hid};

/// Runs `f` holding the process-wide HDF5/NetCDF lock, with HDF5's automatic error printing
/// silenced on this thread (it is per thread in a thread-safe libhdf5), the library
/// initialized and our zstd filter registered. Reentrant.
pub fn locked<T>(f: impl FnOnce() -> T) -> T {
    hdf5::sync::sync(|| {
        zstd_filter::register_once();
        f()
    })
}

/// Upper bound of the stored size of a chunk of `raw` bytes: deflate and zstd grow
/// incompressible data by a fraction of a percent at most.
pub fn encoded_bound(raw: u64) -> u64 {
    raw + raw / 128 + 4096
}

/// Extra memory of the HDF5 library's own buffers in a fallback `H5Dread` / `H5Dwrite` call
/// (type conversion and sieve buffers), on top of what the chunk filters allocate.
pub const LIBRARY_BUFFERS: u64 = 2 << 20;

/// [`ZSTD_FILTER_ID`] as libnetcdf spells filter ids.
pub const ZSTD_FILTER_ID_U32: u32 = ZSTD_FILTER_ID as u32;

/// A read grid for data that is not chunked (contiguous HDF5 datasets, classic NetCDF
/// variables): slabs of about `target_bytes` that are whole along the trailing dimensions.
/// The first dimension whose inner slab exceeds the target is cut; the ones before it get 1.
pub fn slab_chunks(shape: &[u64], item: usize, target_bytes: u64) -> Vec<u64> {
    let mut chunk = shape.iter().map(|&n| n.max(1)).collect::<Vec<u64>>();
    let mut inner = item as u64;
    for d in (0..shape.len()).rev() {
        let row = inner * shape[d].max(1);
        if row > target_bytes {
            chunk[d] = (target_bytes / inner).clamp(1, shape[d].max(1));
            for c in chunk.iter_mut().take(d) {
                *c = 1;
            }
            break;
        }
        inner = row;
    }
    chunk
}

/// Default slab size of [`slab_chunks`].
pub const SLAB_BYTES: u64 = 4 << 20;

/// HDF5 stores chunks of less than 4 GiB (their size is a 32-bit field).
pub const MAX_CHUNK_BYTES: u64 = (4 << 30) - 1;

/// The message for a chunk shape HDF5 cannot store, if `chunk` of `item`-byte elements is one.
pub fn chunk_too_large(chunk: &[u64], item: usize) -> Option<String> {
    let bytes = chunk
        .iter()
        .try_fold(item as u64, |acc, &c| acc.checked_mul(c))
        .unwrap_or(u64::MAX);
    (bytes > MAX_CHUNK_BYTES).then(|| {
        format!(
            "chunks of {chunk:?} hold {bytes} bytes, but HDF5 (and so NetCDF-4) stores chunks below 4 GiB; choose smaller chunks"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs() {
        assert_eq!(
            slab_chunks(&[1000, 721, 1440], 4, SLAB_BYTES),
            [1, 721, 1440]
        );
        assert_eq!(slab_chunks(&[100, 10, 10], 8, SLAB_BYTES), [100, 10, 10]);
        assert_eq!(slab_chunks(&[10_000_000], 4, SLAB_BYTES), [1 << 20]);
        assert_eq!(
            slab_chunks(&[3, 4, 2_000_000], 4, SLAB_BYTES),
            [1, 1, 1 << 20]
        );
        assert_eq!(slab_chunks(&[], 4, SLAB_BYTES), Vec::<u64>::new());
        assert_eq!(slab_chunks(&[0, 5], 4, SLAB_BYTES), [1, 5]);
    }
}
