//! The scratch-store conformance suite on object stores: object_store's in-memory store, and S3
//! (moto from the workspace venv, started here).

use object_store::memory::InMemory;
use rechunker_core::conformance::scratch_store;
use rechunker_store::ObjectScratch;
use std::sync::Arc;

#[path = "../test-support/moto.rs"]
mod moto;
use moto::Moto;

#[test]
fn in_memory() {
    let store = ObjectScratch::new("memory://", Arc::new(InMemory::new())).unwrap();
    scratch_store(&store);
}

#[test]
fn on_s3() {
    let moto = Moto::start();
    // Only this test sets AWS_* in this binary.
    moto.use_for_s3();
    moto.create_bucket("bucket");
    let store = ObjectScratch::open("s3://bucket/work/x.rechunk-scratch").unwrap();
    scratch_store(&store);
}
