//! A scratch store on an object store: every object is one PUT, so it appears whole or not at
//! all, and [`put_if_absent`](ScratchStore::put_if_absent) is a conditional PUT
//! ([`PutMode::Create`]: `If-None-Match: *` on S3, a generation match on GCS), so of two
//! processes that race for one key exactly one wins.

use crate::error::StoreError;
use crate::open::open_object;
use crate::runtime::runtime_handle;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rechunker_core::scratch::ScratchStore;
use rechunker_core::Error;
use std::future::Future;
use std::sync::Arc;

/// A [`ScratchStore`] on any [`ObjectStore`], keys relative to its root.
pub struct ObjectScratch {
    uri: String,
    store: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
}

impl ObjectScratch {
    /// The scratch store under the URL `uri` (`s3://`, `gs://`, `az://`).
    pub fn open(uri: &str) -> crate::Result<ObjectScratch> {
        let location = open_object(uri)?;
        if !location.writable {
            return Err(StoreError::location(uri, "scratch needs a writable store"));
        }
        ObjectScratch::new(uri, location.store)
    }

    /// A scratch store on `store` (e.g. an in-memory one), named `uri` in messages.
    pub fn new(uri: &str, store: Arc<dyn ObjectStore>) -> crate::Result<ObjectScratch> {
        Ok(ObjectScratch {
            uri: uri.into(),
            store,
            handle: runtime_handle(uri)?,
        })
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::scratch(self.uri.clone(), format!("{what}: {e}"))
    }

    /// The object path of `key`; a key that is not a plain relative path is refused.
    fn path(&self, key: &str) -> rechunker_core::Result<Path> {
        match Path::parse(key) {
            Ok(path) if !key.is_empty() => Ok(path),
            Ok(_) => Err(self.error("not a scratch key", "the key is empty")),
            Err(e) => Err(self.error(&format!("`{key}` is not a scratch key"), e)),
        }
    }

    /// The object path of a `/`-terminated folder, or `None` for the whole store.
    fn prefix(&self, prefix: &str) -> rechunker_core::Result<Option<Path>> {
        match prefix.trim_end_matches('/') {
            "" => Ok(None),
            folder => self.path(folder).map(Some),
        }
    }

    /// Blocks on `future` on the shared runtime.
    fn wait<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    fn put_payload(
        &self,
        path: &Path,
        payload: PutPayload,
        mode: PutMode,
    ) -> object_store::Result<()> {
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        self.wait(self.store.put_opts(path, payload, options))
            .map(drop)
    }

    /// Every object path at or below `prefix`.
    fn list_paths(&self, prefix: Option<&Path>) -> rechunker_core::Result<Vec<Path>> {
        self.wait(
            self.store
                .list(prefix)
                .map_ok(|meta| meta.location)
                .try_collect::<Vec<_>>(),
        )
        .map_err(|e| self.error("cannot list", e))
    }

    /// The object under `key` as the response holds it, or `None` if there is none.
    fn fetch(&self, key: &str) -> rechunker_core::Result<Option<bytes::Bytes>> {
        let path = self.path(key)?;
        let read = self.wait(async {
            match self.store.get(&path).await {
                Ok(found) => found.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        read.map_err(|e| self.error(&format!("cannot read `{key}`"), e))
    }
}

impl ScratchStore for ObjectScratch {
    fn location(&self) -> String {
        self.uri.clone()
    }

    fn put(&self, key: &str, data: &[u8]) -> rechunker_core::Result<()> {
        self.put_parts(key, &[data])
    }

    fn put_vec(&self, key: &str, data: &mut Vec<u8>) -> rechunker_core::Result<()> {
        // The request owns its body: hand it the buffer rather than a copy of it.
        let payload = PutPayload::from(bytes::Bytes::from(std::mem::take(data)));
        self.put_payload(&self.path(key)?, payload, PutMode::Overwrite)
            .map_err(|e| self.error(&format!("cannot write `{key}`"), e))
    }

    fn put_parts(&self, key: &str, parts: &[&[u8]]) -> rechunker_core::Result<()> {
        // One copy of each part into the payload, no gathering buffer first.
        let payload: PutPayload = parts.iter().map(|p| bytes_of(p)).collect::<PutPayload>();
        self.put_payload(&self.path(key)?, payload, PutMode::Overwrite)
            .map_err(|e| self.error(&format!("cannot write `{key}`"), e))
    }

    /// One conditional PUT: the store itself refuses the second writer, so no read-then-write
    /// window exists. A retry after a lost response may report `false` for an object this very
    /// call wrote; callers that compare the object's content (the scratch marker does) are
    /// unaffected.
    fn put_if_absent(&self, key: &str, data: &[u8]) -> rechunker_core::Result<bool> {
        let path = self.path(key)?;
        match self.put_payload(&path, PutPayload::from(bytes_of(data)), PutMode::Create) {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e @ object_store::Error::NotImplemented { .. }) => Err(self.error(
                &format!("cannot write `{key}` only if it is absent (the store offers no conditional put; for S3-compatible servers, leave AWS_CONDITIONAL_PUT unset or set it to `etag`)"),
                e,
            )),
            Err(e) => Err(self.error(&format!("cannot write `{key}`"), e)),
        }
    }

    fn get(&self, key: &str) -> rechunker_core::Result<Option<Vec<u8>>> {
        Ok(self.fetch(key)?.map(|b| b.to_vec()))
    }

    fn get_into(&self, key: &str, buf: &mut Vec<u8>) -> rechunker_core::Result<bool> {
        // Straight from the response into the caller's buffer: one copy, not two.
        match self.fetch(key)? {
            Some(bytes) => {
                buf.clear();
                buf.extend_from_slice(&bytes);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn list(&self, prefix: &str) -> rechunker_core::Result<Vec<String>> {
        let folder = self.prefix(prefix)?;
        let start = folder.as_ref().map_or(0, |f| f.as_ref().len() + 1);
        Ok(self
            .list_paths(folder.as_ref())?
            .iter()
            .filter_map(|p| p.as_ref().get(start..).map(String::from))
            .collect())
    }

    fn delete(&self, key: &str) -> rechunker_core::Result<()> {
        let path = self.path(key)?;
        match self.wait(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(&format!("cannot delete `{key}`"), e)),
        }
    }

    fn delete_many(&self, keys: &[String]) -> rechunker_core::Result<()> {
        let paths = keys
            .iter()
            .map(|k| self.path(k))
            .collect::<rechunker_core::Result<Vec<_>>>()?;
        self.delete_paths(paths)
    }

    fn remove_prefix(&self, prefix: &str) -> rechunker_core::Result<()> {
        let folder = self.prefix(prefix)?;
        let paths = self.list_paths(folder.as_ref())?;
        self.delete_paths(paths)
    }
}

impl ObjectScratch {
    /// Deletes `paths` (missing ones are no error).
    fn delete_paths(&self, paths: Vec<Path>) -> rechunker_core::Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        // One batched request per thousand keys on S3, rather than one per key.
        let locations = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        self.wait(
            self.store
                .delete_stream(locations)
                .or_else(|e| async move {
                    match e {
                        object_store::Error::NotFound { path, .. } => Ok(Path::from(path)),
                        e => Err(e),
                    }
                })
                .try_collect::<Vec<_>>(),
        )
        .map(drop)
        .map_err(|e| self.error("cannot remove", e))
    }
}

fn bytes_of(data: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(data)
}
