//! HDF5 for rechunker.
//!
//! - [`Hdf5Source`] reads every numeric dataset of a file, in groups (names are paths without
//!   the leading `/`), chunked or contiguous. Dimension names come from dimension scales
//!   (`DIMENSION_LIST`, as netCDF-4, h5py and xarray write them); dimensions without a scale
//!   get `phony_dim_N` names, one per distinct length, as h5netcdf does. Attributes keep
//!   their types. Contiguous datasets are read in slabs of about 4 MiB along the leading
//!   dimensions.
//! - [`Hdf5Target`] writes chunked datasets with deflate or zstd (filter 32015, readable with
//!   h5py + hdf5plugin) and optional shuffle, the attributes, and dimension scales so that h5py
//!   and xarray see the dimensions. It writes `PATH.partial` and renames it to `PATH` in
//!   `finalize`, so an interrupted run never leaves a file that looks complete.
//!
//! Chunks whose filters are shuffle, deflate or zstd are fetched and stored raw under the
//! process-wide HDF5 lock and decoded / encoded outside it, on the executor's threads (see
//! `rechunker_h5`). Other filters and contiguous data go through the library under the lock.

mod array;
mod attrs;
pub mod driver;
mod error;
mod options;
mod source;
mod target;

pub use array::Hdf5Array;
pub use error::Hdf5Error;
pub use options::{Hdf5Codec, Hdf5WriteOptions};
pub use source::{is_hdf5, Hdf5ReadOptions, Hdf5Source};
pub use target::{partial_path, Hdf5Target};
