//! What is TileDB's in rechunking an array (or a group of arrays) where it is: TileDB cannot
//! change the tile extents of an existing array, so the library's in-place workflow
//! (`rechunker::in_place`: journal, resume, copy, verification, exchange order) copies it
//! beside the original. This module supplies, through [`InPlaceTarget`]:
//!
//! - the copy target: the same arrays (and group), schema, attributes, filters (or a new
//!   codec), fill values and metadata; only the tile extents change (see `copy.rs`);
//! - the crash-safe exchange: one `renameat2(RENAME_EXCHANGE)` of the two folders, atomic, so
//!   that at every instant the array's folder holds a complete array, the old one or the new
//!   one. It needs a local file system that can exchange directories (ext4, xfs, btrfs,
//!   tmpfs, ...), which [`InPlaceTarget::check_exchange`] probes before anything is written;
//! - the deletion of the old array after the exchange, which never follows a link inside it.

use crate::copy::{ArrayCopyTarget, ArraySource};
use crate::error::TileDbError;
use crate::fragments::Fragments;
use crate::source::{is_local, name_from_uri};
use crate::types::Codec;
use rechunker_core::driver::{DriverError, InPlaceTarget};
use rechunker_core::{ArrayMeta, DatasetSource, DatasetTarget};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TileDB array or group opened to be rechunked where it is.
pub struct TileDbInPlace {
    /// The location as given (a lone array's variable is named after it, in the source and
    /// in the copy alike).
    uri: String,
    source: Arc<ArraySource>,
    codec: Option<Codec>,
    fragments: Fragments,
}

impl TileDbInPlace {
    /// Opens the array or group at the local path `uri`; `codec` replaces every attribute's
    /// filters in the copy (`None` keeps each one's own).
    pub fn open(uri: &str, codec: Option<Codec>) -> Result<Self, TileDbError> {
        if !is_local(uri) {
            return Err(TileDbError::unsupported(
                uri,
                "rechunking in place on an object store (it needs an atomic folder exchange)",
            ));
        }
        Ok(TileDbInPlace {
            uri: uri.into(),
            source: Arc::new(ArraySource::open(uri, &name_from_uri(uri))?),
            codec,
            fragments: Fragments::default(),
        })
    }

    fn copy_writer(&self, copy: &Path) -> Result<ArrayCopyTarget, TileDbError> {
        ArrayCopyTarget::new(copy, self.source.clone(), self.codec, self.fragments)
    }
}

impl InPlaceTarget for TileDbInPlace {
    fn source(&self) -> Arc<dyn DatasetSource> {
        self.source.clone()
    }

    fn codec(&self) -> Option<String> {
        self.codec.map(|c| c.to_string())
    }

    fn check_arrays(&self, arrays: &[ArrayMeta]) -> Result<(), DriverError> {
        // The copy's folder is not touched: only its schema is checked.
        let writer = self
            .copy_writer(Path::new(&self.uri))
            .map_err(DriverError::adapter)?;
        writer.check_tiles(arrays).map_err(DriverError::adapter)
    }

    fn copy_target(&self, copy: &Path) -> Result<Box<dyn DatasetTarget>, DriverError> {
        Ok(Box::new(
            self.copy_writer(copy).map_err(DriverError::adapter)?,
        ))
    }

    fn open_copy(&self, copy: &Path) -> Result<Box<dyn DatasetSource>, DriverError> {
        let copy = copy.display().to_string();
        Ok(Box::new(
            ArraySource::open(&copy, &name_from_uri(&self.uri)).map_err(DriverError::adapter)?,
        ))
    }

    fn check_exchange(&self, dataset: &Path) -> Result<(), DriverError> {
        let a = beside(dataset, ".rechunk-probe-a");
        let b = beside(dataset, ".rechunk-probe-b");
        for p in [&a, &b] {
            let _ = std::fs::remove_dir(p);
            std::fs::create_dir(p).map_err(|e| {
                DriverError::adapter(TileDbError::io(p, "create a probe folder", e))
            })?;
        }
        let result = exchange(&a, &b);
        let _ = std::fs::remove_dir(&a);
        let _ = std::fs::remove_dir(&b);
        result.map_err(|e| {
            DriverError::Invalid(format!(
                "{}: its file system cannot exchange two folders atomically ({e}), which an in-place rechunk needs so that a crash never loses the array; rechunk into a new array instead",
                dataset.display()
            ))
        })
    }

    fn exchange(&self, dataset: &Path, copy: &Path) -> std::io::Result<()> {
        exchange(dataset, copy)
    }

    fn delete_old(&self, old: &Path, first_deleted: &mut dyn FnMut()) -> Result<(), DriverError> {
        delete_tree(old, first_deleted).map_err(DriverError::adapter)
    }
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Atomically exchanges two folders.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both strings are valid NUL-terminated paths for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Deletes a folder tree, calling `first_deleted` after its first entry. A link inside is
/// removed itself, never followed.
fn delete_tree(path: &Path, first_deleted: &mut dyn FnMut()) -> Result<(), TileDbError> {
    let entries = match std::fs::read_dir(path) {
        Ok(d) => d
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TileDbError::io(path, "list", e)),
    };
    for (i, e) in entries.iter().enumerate() {
        let is_dir = std::fs::symlink_metadata(e).is_ok_and(|m| m.file_type().is_dir());
        let result = if is_dir {
            std::fs::remove_dir_all(e)
        } else {
            std::fs::remove_file(e)
        };
        match result {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(TileDbError::io(e, "delete", err)),
        }
        if i == 0 {
            first_deleted();
        }
    }
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TileDbError::io(path, "delete", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_swaps_two_folders_and_deleting_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("old"), b"old").unwrap();
        std::fs::write(b.join("new"), b"new").unwrap();
        exchange(&a, &b).unwrap();
        assert!(a.join("new").exists() && b.join("old").exists());
        // A link inside the old copy to a folder outside it: the folder outside stays.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, b.join("link")).unwrap();
        let mut calls = 0;
        delete_tree(&b, &mut || calls += 1).unwrap();
        assert_eq!(calls, 1);
        assert!(!b.exists());
        assert!(outside.join("keep").exists());
        delete_tree(&b, &mut || calls += 1).unwrap();
        assert_eq!(calls, 1, "nothing there, nothing deleted");
        assert!(exchange(&a, &dir.path().join("missing")).is_err());
    }
}
