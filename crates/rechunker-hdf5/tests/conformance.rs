//! The adapter conformance suite on HDF5.

use rechunker_core::conformance::{AttrKinds, Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DatasetSource, DatasetTarget};
use rechunker_hdf5::{Hdf5Codec, Hdf5Source, Hdf5Target, Hdf5WriteOptions};
use std::path::Path;

fn factory() -> impl Factory {
    factory_with(Hdf5WriteOptions::default())
}

fn factory_with(options: Hdf5WriteOptions) -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        move |p: &Path| {
            Ok(Box::new(Hdf5Target::create(p, options.clone())?) as Box<dyn DatasetTarget>)
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

/// The other codecs (the default is deflate 1 with shuffle) through the data cases: every
/// dtype, partial edge chunks, regions crossing chunks and concurrent reads (which read raw
/// chunks and decode them here).
macro_rules! codec_cases {
    ($($module:ident: $codec:expr, $shuffle:expr;)*) => {
        $(
            mod $module {
                use super::*;

                fn factory() -> impl Factory {
                    factory_with(Hdf5WriteOptions {
                        codec: Some($codec),
                        shuffle: $shuffle,
                        resume: false,
                    })
                }

                conformance_tests!(@cases factory, capabilities;
                    round_trip_every_dtype, partial_edge_chunks, regions_crossing_chunks,
                    concurrent_reads);
            }
        )*
    };
}

codec_cases! {
    zstd: Hdf5Codec::Zstd { level: 3 }, true;
    no_codec: Hdf5Codec::None, true;
    deflate_6_without_shuffle: Hdf5Codec::Deflate { level: 6 }, false;
}
