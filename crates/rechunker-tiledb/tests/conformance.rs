//! The adapter conformance suite on TileDB.

use rechunker_core::conformance::{AttrKinds, Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DatasetSource, DatasetTarget};
use rechunker_tiledb::{TileDbSource, TileDbTarget, TileDbWriteOptions};
use std::path::Path;

fn uri(p: &Path) -> String {
    p.to_str().expect("a UTF-8 temporary path").to_string()
}

fn factory() -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        |p: &Path| {
            Ok(Box::new(TileDbTarget::create(
                &uri(p),
                TileDbWriteOptions::default(),
            )?) as Box<dyn DatasetTarget>)
        },
        |p: &Path| Ok(Box::new(TileDbSource::open(&uri(p))?) as Box<dyn DatasetSource>),
    )
    .owning(dir)
}

/// TileDB metadata is typed; arrays need a dimension.
fn capabilities() -> Capabilities {
    let attrs = AttrKinds {
        typed: true,
        // Bug: a JSON `true` attribute reads back as the number 1 (stored as an integer, not
        // TILEDB_BOOL, by src/meta.rs), so a boolean attribute does not survive a round trip.
        bools: false,
        // Gap: a list of strings reads back as one string of its JSON (`["a","bc"]`).
        text_lists: false,
        ..AttrKinds::all_json()
    };
    Capabilities {
        dataset_attrs: attrs.clone(),
        array_attrs: attrs,
        scalars: false,
        ..Capabilities::everything()
    }
}

conformance_tests!(factory, capabilities);
