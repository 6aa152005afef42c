//! Format-agnostic core of rechunker.
//!
//! Data flows one way: a source adapter ([`ChunkedArray`]) → the [`planner`] → the [`executor`] →
//! a target adapter ([`ChunkedArrayMut`]). The core knows no file format.

pub mod array;
pub mod autochunk;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod digest;
pub mod direct_io;
pub mod driver;
pub mod dtype;
pub mod error;
pub mod executor;
pub mod grid;
pub mod job;
pub mod layout;
pub mod mem;
pub mod meta;
pub mod names;
pub mod pages;
pub mod planner;
pub mod rates;
pub mod region;
pub mod scratch;
pub mod select;
pub mod spec;
pub mod units;

pub use array::{ChunkedArray, ChunkedArrayMut, DatasetSource, DatasetTarget};
pub use dtype::{DataType, Scalar};
pub use error::{BoxError, Error, Result};
pub use grid::{ChunkGrid, DimGrid};
pub use meta::{ArrayMeta, AttrValue, Attributes, DatasetMeta, NativeEncoding};
pub use planner::{plan, CostModel, Plan, PlanError, PlanRequest};
pub use region::Region;
pub use select::{SelectedSource, VariableSelection};
pub use spec::{ChunkSize, ChunkSpec};
