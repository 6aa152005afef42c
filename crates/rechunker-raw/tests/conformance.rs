//! The adapter conformance suite on the raw format.

use rechunker_core::conformance::{Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DatasetSource, DatasetTarget};
use rechunker_raw::{RawSource, RawTarget};
use std::path::Path;

fn factory() -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        |p: &Path| Ok(Box::new(RawTarget::create(p)?) as Box<dyn DatasetTarget>),
        |p: &Path| Ok(Box::new(RawSource::open(p)?) as Box<dyn DatasetSource>),
    )
    .owning(dir)
}

/// The reference format keeps everything the core describes.
fn capabilities() -> Capabilities {
    Capabilities::everything()
}

conformance_tests!(factory, capabilities);
