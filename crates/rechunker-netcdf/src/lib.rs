//! NetCDF for rechunker: NetCDF-3 (classic, 64-bit offset, CDF-5) and NetCDF-4 files, and
//! archives of many files concatenated along a dimension.
//!
//! - [`NetcdfSource`] reads one file ([`NetcdfSource::open`]) or many
//!   ([`NetcdfSource::open_many`]): dimensions (unlimited ones are reported by
//!   [`NetcdfSource::unlimited_dims`]), coordinate variables, every numeric type, attributes
//!   with their types (`_FillValue`, `scale_factor`, `add_offset` as stored), variables in
//!   groups as `group/var`. NetCDF-4 variables are HDF5 datasets: their chunks are fetched raw
//!   under the library lock and decoded on the reading thread (see `rechunker_h5`); NetCDF-3
//!   variables are read through libnetcdf, in slabs of about 4 MiB.
//! - [`NetcdfTarget`] writes NetCDF-4 (chunks = the target grid, zlib or zstd, shuffle) or a
//!   NetCDF-3 format. libnetcdf defines the file; NetCDF-4 data goes in as raw chunks encoded
//!   on the executor's threads. The file is `PATH.partial` until `finalize` renames it.
//!
//! Booleans follow xarray: stored as bytes with the attribute `dtype = "bool"`.

mod attrs;
mod classic;
pub mod driver;
mod error;
mod nc;
mod options;
mod scan;
mod source;
mod target;

pub use error::NetcdfError;
pub use options::{NcCodec, NetcdfFormat, NetcdfReadOptions, NetcdfWriteOptions};
pub use source::{is_netcdf, NetcdfArray, NetcdfSource};
pub use target::{partial_path, NetcdfTarget, NetcdfTargetArray};
