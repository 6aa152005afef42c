//! The `rechunker` package: the format registry behind the `rechunk` command line.
//!
//! Adapters never know each other; this is the one place that knows them all and picks one by
//! looking at a path.

pub mod formats;
pub mod memory;
pub mod ownership;
pub mod verify;
