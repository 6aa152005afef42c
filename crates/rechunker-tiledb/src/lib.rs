//! TileDB dense arrays and groups for rechunker, through the project's own thin FFI
//! (`tiledb_sys`, libtiledb 2.30) wrapped by the safe layer [`ffi`] (the only module that
//! touches `tiledb_sys`), and crash-safe in-place rechunking.
//!
//! - [`TileDbSource`] reads a dense array or a group of them as a dataset. Variables: in an
//!   array, one per attribute, named after it (an anonymous attribute after the array); in a
//!   group, a single-attribute member array is a variable named after the member, a
//!   multi-attribute one gives a variable per attribute; names that would clash become
//!   `member/attribute`. Metadata are attributes (`__tiledb_attr.A.KEY` keys, TileDB-CF's
//!   convention, belong to the variable of attribute `A`). Dimensions of any integer type,
//!   with domains starting anywhere: regions are 0-based offsets from each domain's start.
//!   Sparse arrays and variable-length, nullable or multi-valued attributes are refused with a
//!   message naming them. See [`source`] for the details.
//! - [`TileDbTarget`] writes a dataset as one dense array per variable (an array at the target
//!   when there is one variable, else a group), `uint64` dimensions over `[0, n-1]`, tile
//!   extents = target chunks, filters from a [`Codec`] (`zstd:3`, `gzip:6+byteshuffle`,
//!   `lz4+bitshuffle`, `none`), fill values, metadata. It is staged in `DST.rechunk-partial`
//!   and moved into place by [`DatasetTarget::finalize`](rechunker_core::DatasetTarget), so a
//!   failed run leaves nothing at `DST`. Each write task makes one fragment; [`Fragments`]
//!   says what happens to them at the end. With [`TileDbWriteOptions::keep_source`] (the CLI
//!   without `--codec`), variables read from TileDB arrays are written as their arrays were
//!   instead: the same dimensions, domains, orders, attributes, filters, fill values and
//!   metadata, a lone array at the target and a group as a group; only the tiles change
//!   (see `keep.rs`).
//! - [`in_place::TileDbInPlace`] is what is TileDB's in rechunking an array or group where it
//!   is (the driver's `in_place` capability): a copy beside it (same schema, attributes,
//!   filters, fill values and metadata; new tile extents) and an atomic folder exchange. The
//!   workflow around them (journal, resume, verification) is `rechunker::in_place`'s.
//!
//! Memory: reads run with `sm.mem.tile_upper_memory_limit` = 4 MiB and writes submit 4 MiB of
//! tiles at a time, so the library's own memory per call is bounded and reported to the
//! planner as [`ChunkedArray::read_overhead`](rechunker_core::ChunkedArray::read_overhead) /
//! `write_overhead` (measured, see `tests/measure.rs`).

mod array;
mod copy;
pub mod driver;
mod error;
pub mod ffi;
mod fragments;
pub mod in_place;
mod keep;
mod meta;
mod schema;
pub mod source;
mod target;
mod types;

pub use array::TileDbArray;
pub use error::TileDbError;
pub use fragments::{fragment_count, Fragments, AUTO_LIMIT};
pub use source::{is_tiledb, TileDbSource};
pub use target::{remove, staging_path, TileDbTarget, TileDbWriteOptions};
pub use types::{Codec, Compressor, Shuffle};

/// The linked libtiledb's version, e.g. `(2, 30, 0)`.
pub fn library_version() -> (i32, i32, i32) {
    ffi::library_version()
}
