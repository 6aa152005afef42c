//! The `rechunker` package: rewrite chunked N-d arrays (Zarr, TileDB, HDF5, NetCDF, raw) into a
//! new chunk layout within a memory limit, as a library ([`api`]) and as the `rechunk` command
//! line, which is a thin shell over it.
//!
//! Adapters never know each other; [`formats`] is the one place that knows them all and picks
//! one by looking at a path.

pub mod api;
pub mod cli;
mod fault;
pub mod formats;
pub mod in_place;
pub mod memory;
pub mod ownership;
pub mod plan_file;
pub mod verify;

pub use api::{NoProgress, Plan, Progress, Rechunk, Report};
pub use rechunker_core::{ChunkSpec, VariableSelection};
pub use verify::{Verified, Verify};
