//! The one tokio runtime every object store call runs on. Its workers drive connections; the
//! callers (the executor's threads) block on their own requests.

use crate::error::StoreError;
use crate::Result;
use std::future::Future;
use std::sync::OnceLock;

fn runtime() -> std::result::Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 4);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("rechunker-store-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A handle to the shared runtime (started on first use); `uri` is named if it cannot start.
pub fn runtime_handle(uri: &str) -> Result<tokio::runtime::Handle> {
    runtime()
        .map(|rt| rt.handle().clone())
        .map_err(|message| StoreError::location(uri, message))
}

/// Runs `future` to completion on the shared runtime, blocking this (non-async) thread.
pub fn block_on<F: Future>(uri: &str, future: F) -> Result<F::Output> {
    Ok(runtime_handle(uri)?.block_on(future))
}
