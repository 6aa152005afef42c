//! Zarr v2 and v3 for rechunker, through [zarrs](https://zarrs.dev).
//!
//! - [`ZarrSource`] reads a group (every array in it, recursively; names are paths inside the
//!   group) or a single array, with every codec zarrs reads. Dimension names come from v3
//!   `dimension_names` or the v2 `_ARRAY_DIMENSIONS` attribute. A sharded array's chunk grid is
//!   its shard grid: a shard is what is read whole.
//! - [`ZarrTarget`] writes a group in Zarr v2 or v3 with one codec ([`Codec`]) and, for v3,
//!   optional sharding ([`ShardSpec`]). Every chunk (or shard) is encoded and stored whole, in
//!   one store write; group metadata and consolidated metadata (v2 `.zmetadata`, v3
//!   `consolidated_metadata` in the root `zarr.json`, as zarr-python writes them) come last.
//! - Stores from URIs: local paths and `file://` (writes are temp file + rename), `s3://`
//!   (credentials and `AWS_ENDPOINT_URL` from the environment), `gs://`, `az://`, and
//!   `http(s)://` read-only, opened by rechunker-store (as scratch is) with a few bounded retries.
//!
//! zarrs runs its codecs single-threaded here ([`CodecOptions`](zarrs::array::CodecOptions)
//! with a concurrent target of 1 on every call): the executor already runs one task per core.
//! The calls that talk to object stores block on a shared tokio runtime, so they must not be
//! made from inside an async context.

mod array;
mod bounded;
mod cf_fill;
pub mod driver;
mod error;
mod meta;
mod options;
mod source;
mod store;
mod target;
mod uri_ops;

pub use array::ZarrArray;
pub use error::ZarrError;
pub use meta::describe_dataset;
pub use options::{
    BloscCompressor, BloscShuffle, Codec, ShardSpec, ZarrFormat, ZarrReadOptions, ZarrWriteOptions,
};
pub use source::ZarrSource;
pub use target::ZarrTarget;
pub use uri_ops::{exists, looks_like_zarr, remove};
