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
        // Off by choice: a JSON `true` attribute is stored as the int64 1 (src/meta.rs,
        // `inferred`), as tiledb-py stores Python booleans, because tiledb-py cannot read
        // `BOOL` metadata (tests/interop.rs holds the file to that); it reads back as 1.
        bools: false,
        // Off: TileDB metadata has no list of strings; one is stored as the text of its JSON
        // (`["a","bc"]`) and reads back as that string. Parsing such text back into a list would
        // turn a user's string that happens to look like one into a list.
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
