//! Store-level operations on URIs for the command line: does a target exist, remove it, and a
//! [`ScratchStore`] on any store this crate opens (so scratch can live on S3 beside the target).

use crate::error::{Result, ZarrError};
use crate::store::{open_store, Storage};
use rechunker_core::scratch::ScratchStore;
use zarrs::storage::{Bytes, StoreKey, StorePrefix};

fn prefix(uri: &str, p: &str) -> Result<StorePrefix> {
    if p.is_empty() {
        return Ok(StorePrefix::root());
    }
    let p = if p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    };
    StorePrefix::new(p).map_err(|e| ZarrError::Store {
        uri: uri.into(),
        message: e.to_string(),
    })
}

fn key(uri: &str, k: &str) -> Result<StoreKey> {
    StoreKey::new(k).map_err(|e| ZarrError::Store {
        uri: uri.into(),
        message: e.to_string(),
    })
}

fn storage_error(uri: &str, what: &str, e: impl std::fmt::Display) -> ZarrError {
    ZarrError::Store {
        uri: uri.into(),
        message: format!("{what}: {e}"),
    }
}

/// True when anything is stored at or below `uri`.
pub fn exists(uri: &str) -> Result<bool> {
    let store = open_store(uri)?;
    if let Some(root) = &store.local_root {
        return Ok(root.exists());
    }
    let keys = store
        .storage
        .list_prefix(&StorePrefix::root())
        .map_err(|e| storage_error(uri, "cannot list", e))?;
    Ok(!keys.is_empty())
}

/// True when `uri` holds Zarr metadata at its root (a group, an array or consolidated
/// metadata, v2 or v3): what `--overwrite` may replace.
pub fn looks_like_zarr(uri: &str) -> Result<bool> {
    let store = open_store(uri)?;
    for name in ["zarr.json", ".zgroup", ".zarray", ".zmetadata"] {
        let found = store
            .storage
            .get(&key(uri, name)?)
            .map_err(|e| storage_error(uri, "cannot read", e))?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes everything at or below `uri` (for `--overwrite`).
pub fn remove(uri: &str) -> Result<()> {
    let store = open_store(uri)?;
    if let Some(root) = &store.local_root {
        return match std::fs::remove_dir_all(root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(storage_error(uri, "cannot remove", e))
            }
            _ => Ok(()),
        };
    }
    store
        .storage
        .erase_prefix(&StorePrefix::root())
        .map_err(|e| storage_error(uri, "cannot remove", e))
}

/// A scratch store under a URI prefix (local, `s3://`, `gs://`, `az://`). Every object is one
/// PUT (or, locally, a temporary file renamed into place), so it is written whole.
pub struct StoreScratch {
    uri: String,
    storage: Storage,
}

impl StoreScratch {
    pub fn open(uri: &str) -> Result<StoreScratch> {
        let store = open_store(uri)?;
        if !store.writable {
            return Err(ZarrError::Store {
                uri: uri.into(),
                message: "scratch needs a writable store".into(),
            });
        }
        Ok(StoreScratch {
            uri: uri.into(),
            storage: store.storage,
        })
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> rechunker_core::Error {
        rechunker_core::Error::scratch(self.uri.clone(), format!("{what}: {e}"))
    }
}

impl ScratchStore for StoreScratch {
    fn location(&self) -> String {
        self.uri.clone()
    }

    fn put(&self, k: &str, data: &[u8]) -> rechunker_core::Result<()> {
        let store_key = key(&self.uri, k)?;
        self.storage
            .set(&store_key, Bytes::copy_from_slice(data))
            .map_err(|e| self.error(&format!("cannot write `{k}`"), e))
    }

    fn put_if_absent(&self, k: &str, data: &[u8]) -> rechunker_core::Result<bool> {
        // Not atomic between processes; one process never races itself on a key.
        if self.get(k)?.is_some() {
            return Ok(false);
        }
        self.put(k, data)?;
        Ok(true)
    }

    fn get(&self, k: &str) -> rechunker_core::Result<Option<Vec<u8>>> {
        let store_key = key(&self.uri, k)?;
        let bytes = self
            .storage
            .get(&store_key)
            .map_err(|e| self.error(&format!("cannot read `{k}`"), e))?;
        Ok(bytes.map(|b| b.to_vec()))
    }

    fn list(&self, p: &str) -> rechunker_core::Result<Vec<String>> {
        let store_prefix = prefix(&self.uri, p)?;
        let keys = self
            .storage
            .list_prefix(&store_prefix)
            .map_err(|e| self.error("cannot list", e))?;
        let start = store_prefix.as_str().len();
        Ok(keys
            .iter()
            .map(|k| k.as_str()[start..].to_string())
            .collect())
    }

    fn delete(&self, k: &str) -> rechunker_core::Result<()> {
        let store_key = key(&self.uri, k)?;
        self.storage
            .erase(&store_key)
            .map_err(|e| self.error(&format!("cannot delete `{k}`"), e))
    }

    fn remove_prefix(&self, p: &str) -> rechunker_core::Result<()> {
        let store_prefix = prefix(&self.uri, p)?;
        self.storage
            .erase_prefix(&store_prefix)
            .map_err(|e| self.error("cannot remove", e))
    }
}
