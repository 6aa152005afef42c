//! Store-level operations on URIs for the command line: does a target exist, is it Zarr,
//! remove it. (Scratch on object stores is rechunker-store's `ObjectScratch`.)

use crate::error::{Result, ZarrError};
use crate::store::open_store;
use zarrs::storage::{StoreKey, StorePrefix};

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
