//! One conformance suite for every format adapter and scratch store (feature `testing`).
//!
//! Each adapter's `tests/conformance.rs` describes how to make a fresh target and reopen it as a
//! source ([`Factory`]), declares what the format can hold ([`Capabilities`]), and expands
//! [`conformance_tests!`](crate::conformance_tests) to get one `#[test]` per case. A case the
//! capabilities rule out checks that the adapter refuses it cleanly where that is meaningful,
//! and otherwise passes without running (it says so on stderr).
//!
//! Cases panic with a message naming the adapter, the array and the region that went wrong.

mod arrays;
mod data;
mod helpers;
mod local;
mod memory;
mod metadata;
mod scratch;

pub use arrays::{
    concurrent_reads, concurrent_writes, dims_of_different_lengths, most_dimensions,
    nothing_stored_before_first_array, partial_edge_chunks, regions_crossing_chunks,
    round_trip_every_dtype, spread_over_threads,
};
pub use data::{data_for, sub};
pub use local::LocalFactory;
pub use memory::{memory_overhead, MEMORY_MARGIN};
pub use metadata::{attributes, fill_values, unwritten_reads_as_reported_fill};
pub use scratch::scratch_store;

use crate::{DataType, DatasetSource, DatasetTarget};
use std::sync::{RwLock, RwLockReadGuard};

/// Makes the datasets of one adapter. Every case names its own dataset, so cases can run at once.
pub trait Factory: Sync {
    /// A new, empty target for dataset `name` (nothing of that name exists yet).
    fn create(&self, name: &str) -> crate::Result<Box<dyn DatasetTarget>>;

    /// The dataset `name`, finalized, opened for reading.
    fn open(&self, name: &str) -> crate::Result<Box<dyn DatasetSource>>;

    /// Everything stored where dataset `name` would live (paths relative to that place, sorted),
    /// or `None` when this factory cannot look (the lazy-creation case then fails, if claimed).
    fn stored(&self, name: &str) -> Option<Vec<String>>;
}

/// Which attribute values a format keeps, each through a round trip unchanged.
#[derive(Clone, Debug, Default)]
pub struct AttrKinds {
    pub text: bool,
    pub integers: bool,
    pub floats: bool,
    /// Lists of numbers (`[1.5, 2.5]`).
    pub number_lists: bool,
    pub bools: bool,
    pub text_lists: bool,
    /// [`AttrValue::dtype`](crate::AttrValue::dtype) comes back as written (typed attributes: NetCDF, HDF5, TileDB).
    pub typed: bool,
}

impl AttrKinds {
    /// Any JSON value (Zarr, the raw format).
    pub fn all_json() -> Self {
        AttrKinds {
            text: true,
            integers: true,
            floats: true,
            number_lists: true,
            bools: true,
            text_lists: true,
            typed: false,
        }
    }
}

/// What an adapter claims to support. The suite holds it to each claim.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// The element types it writes and reads back.
    pub dtypes: Vec<DataType>,
    /// Disjoint write units may be written from many threads at once.
    pub concurrent_writers: bool,
    /// Kinds of dataset-level (global) attributes kept.
    pub dataset_attrs: AttrKinds,
    /// Kinds of array (variable) attributes kept.
    pub array_attrs: AttrKinds,
    /// The fill value is kept and unwritten chunks read as it.
    pub fill_values: bool,
    /// ... but only when a `_FillValue` attribute (the CF missing-value marker) of the same
    /// value marks it (Zarr v2: xarray reads its `fill_value` as that marker). The suite then
    /// writes the marker too.
    pub fill_needs_marker: bool,
    /// Types whose fill value is lost even so: a known gap, named where it is set.
    pub no_fill_for: Vec<DataType>,
    /// Types whose unwritten elements read as something else than the fill value the source
    /// reports for them: a known bug, named where it is set.
    pub unwritten_differs_for: Vec<DataType>,
    /// The most dimensions an array may have.
    pub max_dims: usize,
    /// 0-d (scalar) arrays.
    pub scalars: bool,
    /// Arrays of one dataset may use one dimension name with different lengths. When false, the
    /// target must refuse such a dataset with an error.
    pub dims_of_different_lengths: bool,
    /// Nothing is stored until the first array is created (planning leaves no trace).
    pub lazy_create: bool,
}

impl Capabilities {
    /// A format that keeps everything the core can describe.
    pub fn everything() -> Self {
        Capabilities {
            dtypes: DataType::ALL.to_vec(),
            concurrent_writers: true,
            dataset_attrs: AttrKinds::all_json(),
            array_attrs: AttrKinds::all_json(),
            fill_values: true,
            fill_needs_marker: false,
            no_fill_for: Vec::new(),
            unwritten_differs_for: Vec::new(),
            max_dims: 8,
            scalars: true,
            dims_of_different_lengths: true,
            lazy_create: true,
        }
    }
}

/// Cases share the process with [`memory_overhead`], which measures resident memory: they hold
/// this shared, it holds it alone.
static MEASURING: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MEASURING.read().unwrap_or_else(|e| e.into_inner())
}

/// One adapter case: it panics, saying what went wrong, when the adapter breaks its contract.
pub type Case = fn(&dyn Factory, &Capabilities);

/// Every adapter case by name, for running them in one test (e.g. against one server).
pub const CASES: &[(&str, Case)] = &[
    ("round_trip_every_dtype", round_trip_every_dtype),
    ("partial_edge_chunks", partial_edge_chunks),
    ("regions_crossing_chunks", regions_crossing_chunks),
    ("concurrent_reads", concurrent_reads),
    ("concurrent_writes", concurrent_writes),
    ("spread_over_threads", spread_over_threads),
    ("fill_values", fill_values),
    (
        "unwritten_reads_as_reported_fill",
        unwritten_reads_as_reported_fill,
    ),
    ("attributes", attributes),
    ("most_dimensions", most_dimensions),
    ("dims_of_different_lengths", dims_of_different_lengths),
    (
        "nothing_stored_before_first_array",
        nothing_stored_before_first_array,
    ),
    ("memory_overhead", memory_overhead),
];

/// One `#[test]` per conformance case (the same as [`CASES`]), for the adapter that
/// `$factory()` makes with the capabilities `$caps()` (both paths to functions of the test
/// file).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path, $caps:path) => {
        $crate::conformance_tests!(@cases $factory, $caps;
            round_trip_every_dtype, partial_edge_chunks, regions_crossing_chunks,
            concurrent_reads, concurrent_writes, spread_over_threads, fill_values,
            unwritten_reads_as_reported_fill,
            attributes, most_dimensions,
            dims_of_different_lengths, nothing_stored_before_first_array, memory_overhead);
    };
    (@cases $factory:path, $caps:path; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$factory(), &$caps());
            }
        )*
    };
}
