//! Object stores for rechunker, in one place: what a location string names
//! ([`Location::parse`]), how an object store is opened from it (credentials and endpoints from
//! the environment, retries with backoff bounded by time: [`open`], [`retry`]), the one tokio runtime every blocking call
//! runs on ([`block_on`]), and a [`ScratchStore`](rechunker_core::scratch::ScratchStore) on any
//! object store ([`ObjectScratch`]).
//!
//! The Zarr adapter reads and writes datasets through [`open_object`]; the scratch store uses
//! [`ObjectScratch`]; so `s3://`, `gs://`, `az://` and `http(s)://` mean the same to both.
//! Calls block on the shared runtime, so they must not be made from inside an async context.

mod error;
mod io;
mod location;
mod open;
pub mod retry;
mod runtime;
mod scratch;

pub use error::StoreError;
pub use io::{
    io_concurrency, io_window, set_io_concurrency, size_io_concurrency_for, DEFAULT_IO_CONCURRENCY,
    MAX_AUTO_IO_CONCURRENCY,
};
pub use location::{is_object_store, is_uri, Location};
pub use object_store;
pub use open::{open_object, set_anonymous, ObjectLocation};
pub use retry::{retry_timeout, set_retry_timeout, DEFAULT_RETRY_TIMEOUT};
pub use runtime::{block_on, runtime_handle};
pub use scratch::ObjectScratch;

/// Results of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;
