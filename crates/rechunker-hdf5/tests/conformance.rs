//! The adapter conformance suite on HDF5.

use rechunker_core::conformance::{AttrKinds, Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DatasetSource, DatasetTarget};
use rechunker_hdf5::{Hdf5Source, Hdf5Target, Hdf5WriteOptions};
use std::path::Path;

fn factory() -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        |p: &Path| {
            Ok(
                Box::new(Hdf5Target::create(p, Hdf5WriteOptions::default())?)
                    as Box<dyn DatasetTarget>,
            )
        },
        |p: &Path| Ok(Box::new(Hdf5Source::open(p)?) as Box<dyn DatasetSource>),
    )
    .owning(dir)
}

/// HDF5 attributes are typed and hold numbers, text, booleans and lists.
fn capabilities() -> Capabilities {
    let attrs = AttrKinds {
        typed: true,
        ..AttrKinds::all_json()
    };
    Capabilities {
        dataset_attrs: attrs.clone(),
        array_attrs: attrs,
        ..Capabilities::everything()
    }
}

conformance_tests!(factory, capabilities);
