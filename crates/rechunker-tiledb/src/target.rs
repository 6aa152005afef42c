//! Writing a dataset as a TileDB array (one variable) or group (several).
//!
//! Every variable becomes a dense array of its own with one attribute named after it (an
//! anonymous attribute when the name is also one of its dimensions, which TileDB forbids),
//! `uint64` dimensions over `[0, n-1]` named like the variable's, and tile extents equal to the
//! target chunks. While the run goes on, the arrays live in `DST.rechunk-partial/` (one folder
//! per variable); nothing exists at `DST`. [`DatasetTarget::finalize`] writes the metadata,
//! tidies the fragments and then moves the result into place in one rename: the array itself
//! when there is one variable, else the staging folder made into a group whose members are the
//! arrays. So a run that fails leaves nothing at `DST` that looks complete, and a resumed run
//! finds its arrays again.
//!
//! Attributes: with one variable, the dataset's attributes are plain metadata keys of the array
//! and the variable's are `__tiledb_attr.NAME.KEY` (TileDB-CF's convention); in a group, the
//! dataset's attributes are the group's metadata and each variable's are plain keys of its
//! array. [`crate::TileDbSource`] reads both back the same way.

use crate::array::{self, TileDbArray};
use crate::error::{Context as _, Result, TileDbError};
use crate::ffi::{self, Context};
use crate::fragments::{self, Fragments};
use crate::meta;
use crate::schema::{self, ArrayInfo, DimInfo, Filters, NewAttr};
use crate::source::is_local;
use crate::types::Codec;
use rechunker_core::{
    ArrayMeta, ChunkGrid, ChunkedArrayMut, DatasetMeta, DatasetTarget, DimGrid, Scalar,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tiledb_sys as sys;

/// How a TileDB target is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TileDbWriteOptions {
    /// Filters of every attribute (default `zstd:3`).
    pub codec: Codec,
    /// What happens to the fragments (one per write task) at the end.
    pub fragments: Fragments,
}

/// The staging folder of a target at `path`.
pub fn staging_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".rechunk-partial");
    PathBuf::from(s)
}

/// A local path from a URI (`file://` stripped, trailing `/` dropped).
pub(crate) fn local_path(uri: &str) -> PathBuf {
    let p = uri.strip_prefix("file://").unwrap_or(uri);
    let trimmed = p.trim_end_matches('/');
    PathBuf::from(if trimmed.is_empty() { p } else { trimmed })
}

/// A variable name as a folder name: one escaped component, so names with slashes (from groups
/// of other formats) stay one folder and `..` cannot leave the target.
fn folder_name(name: &str) -> String {
    rechunker_core::names::path_component(name)
}

/// Removes a target and its staging folder (for `--overwrite`).
pub fn remove(uri: &str) -> Result<()> {
    let path = local_path(uri);
    for p in [staging_path(&path), path] {
        let result = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TileDbError::io(&p, "remove", e)),
        }
    }
    Ok(())
}

/// A TileDB array or group being written.
pub struct TileDbTarget {
    uri: String,
    path: PathBuf,
    staging: PathBuf,
    options: TileDbWriteOptions,
    ctx: Arc<Context>,
    created: Mutex<BTreeMap<String, Arc<ArrayInfo>>>,
}

impl std::fmt::Debug for TileDbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileDbTarget")
            .field("uri", &self.uri)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TileDbTarget {
    /// A target at the local path (or `file://` URI) `uri`. Nothing is read or written until
    /// the first array is created, so the same object can plan a run.
    pub fn create(uri: &str, options: TileDbWriteOptions) -> Result<TileDbTarget> {
        if !is_local(uri) {
            return Err(TileDbError::unsupported(
                uri,
                "writing TileDB to an object store (write to a local path)",
            ));
        }
        let path = local_path(uri);
        Ok(TileDbTarget {
            uri: uri.into(),
            staging: staging_path(&path),
            path,
            options,
            ctx: array::context().at(uri, "cannot start TileDB")?,
            created: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn options(&self) -> &TileDbWriteOptions {
        &self.options
    }

    /// Where the arrays are while the run goes on.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    fn member_path(&self, name: &str) -> PathBuf {
        self.staging.join(folder_name(name))
    }

    fn unsupported(&self, meta: &ArrayMeta, what: impl std::fmt::Display) -> TileDbError {
        TileDbError::unsupported(&self.uri, format!("`{}`: {what}", meta.name))
    }

    /// The dimensions of the array for `meta`: uint64 over `[0, n-1]`, tiles = chunks.
    fn dims(&self, meta: &ArrayMeta) -> Result<Vec<DimInfo>> {
        if meta.ndim() == 0 {
            return Err(self.unsupported(
                meta,
                "a scalar (0-dimensional) variable (TileDB arrays need a dimension)",
            ));
        }
        let mut dims = Vec::new();
        for (d, (name, g)) in meta.dims.iter().zip(&meta.grid.dims).enumerate() {
            if meta.dims[..d].contains(name) {
                return Err(self.unsupported(meta, format!("the repeated dimension `{name}`")));
            }
            let (len, chunk) = match g.clone().simplified() {
                DimGrid::Regular { len, chunk } => (len, chunk),
                DimGrid::Explicit { .. } => {
                    return Err(
                        self.unsupported(meta, format!("an irregular chunk grid along `{name}`"))
                    )
                }
            };
            if len == 0 {
                return Err(self.unsupported(meta, format!("the empty dimension `{name}`")));
            }
            dims.push(DimInfo {
                name: name.clone(),
                tdb_type: sys::TILEDB_UINT64,
                lo: 0,
                hi: len as i128 - 1,
                extent: chunk.clamp(1, len),
            });
        }
        Ok(dims)
    }

    /// Creates (or, when a run resumes, reopens) the array of one variable.
    pub fn array(&self, meta: &ArrayMeta) -> Result<TileDbArray> {
        let dims = self.dims(meta)?;
        let attr_name = if meta.dims.contains(&meta.name) {
            String::new()
        } else {
            meta.name.clone()
        };
        let path = self.member_path(&meta.name);
        let uri = path.display().to_string();
        let expected = |info: &ArrayInfo| {
            info.dims == dims
                && info.attrs.len() == 1
                && info.attrs[0].name == attr_name
                && info.attrs[0].dtype == meta.dtype
        };
        let (info, existed) = schema::reopen_or_create(&self.ctx, &path, |uri| {
            let fill = meta
                .fill_value
                .and_then(|f| f.to_bytes(meta.dtype))
                .or_else(|| fill_marker(meta).and_then(|f| f.to_bytes(meta.dtype)));
            schema::create_array(
                &self.ctx,
                uri,
                &dims,
                &[NewAttr {
                    name: &attr_name,
                    dtype: meta.dtype,
                    fill,
                    filters: Filters::Codec(self.options.codec),
                }],
                (sys::TILEDB_ROW_MAJOR, sys::TILEDB_ROW_MAJOR),
            )
        })?;
        if existed && !expected(&info) {
            return Err(TileDbError::Exists {
                uri: uri.clone(),
                message: format!(
                    "holds an array of an earlier run with other dimensions, chunks or type than `{}` now has; rerun with --overwrite to start over",
                    meta.name
                ),
            });
        }
        let info = Arc::new(info);
        let mut array_meta = meta.clone();
        array_meta.codecs = info.attrs[0].filters.clone();
        array_meta.fill_value = Scalar::from_bytes(meta.dtype, &info.attrs[0].fill);
        self.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(meta.name.clone(), info.clone());
        Ok(TileDbArray::attribute(
            self.ctx.clone(),
            info,
            0,
            array_meta,
        ))
    }

    fn put_metadata(&self, uri: &str, entries: &[(String, ffi::MetaValue)]) -> Result<()> {
        let array = ffi::Array::open(&self.ctx, uri, sys::TILEDB_WRITE)
            .at(uri, "cannot open the array to write its metadata")?;
        for (k, v) in entries {
            array
                .put_metadata(k, v)
                .at(uri, &format!("cannot write metadata `{k}`"))?;
        }
        array.close().at(uri, "cannot save the metadata")
    }

    fn write_group(&self, meta: &DatasetMeta) -> Result<()> {
        let staging = self.staging.display().to_string();
        if self
            .ctx
            .object_type(&staging)
            .at(&staging, "cannot inspect")?
            != sys::TILEDB_GROUP
        {
            self.ctx
                .create_group(&staging)
                .at(&staging, "cannot create the group")?;
        }
        // Members an interrupted finalize already added.
        let existing: Vec<String> = ffi::Group::open(&self.ctx, &staging, sys::TILEDB_READ)
            .at(&staging, "cannot open the group")?
            .members()
            .at(&staging, "cannot list the group")?
            .into_iter()
            .filter_map(|m| m.name)
            .collect();
        let group = ffi::Group::open(&self.ctx, &staging, sys::TILEDB_WRITE)
            .at(&staging, "cannot open the group for writing")?;
        for a in &meta.arrays {
            if !existing.contains(&a.name) {
                group
                    .add_member(&folder_name(&a.name), true, &a.name)
                    .at(&staging, &format!("cannot add `{}` to the group", a.name))?;
            }
        }
        for (k, v) in meta.attrs.iter() {
            group
                .put_metadata(k, &meta::from_attr(v))
                .at(&staging, &format!("cannot write group metadata `{k}`"))?;
        }
        group.close().at(&staging, "cannot save the group")
    }
}

/// The `_FillValue` marker attribute of `meta`, if readable.
fn fill_marker(meta: &ArrayMeta) -> Option<Scalar> {
    let v = &meta.attrs.get("_FillValue")?.value;
    match v {
        serde_json::Value::Array(a) if a.len() == 1 => json_scalar(&a[0]),
        other => json_scalar(other),
    }
}

fn json_scalar(v: &serde_json::Value) -> Option<Scalar> {
    match v {
        serde_json::Value::Bool(b) => Some(Scalar::Bool(*b)),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Scalar::Int)
            .or_else(|| n.as_u64().map(Scalar::UInt))
            .or_else(|| n.as_f64().map(Scalar::Float)),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(Scalar::Float(f64::NAN)),
            "Infinity" => Some(Scalar::Float(f64::INFINITY)),
            "-Infinity" => Some(Scalar::Float(f64::NEG_INFINITY)),
            _ => None,
        },
        _ => None,
    }
}

impl DatasetTarget for TileDbTarget {
    fn location(&self) -> &str {
        &self.uri
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        Ok(Arc::new(self.array(meta)?))
    }

    fn write_grid(&self, meta: &ArrayMeta) -> rechunker_core::Result<ChunkGrid> {
        self.dims(meta)?;
        Ok(meta.grid.clone())
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        array::write_overhead_for(meta.max_chunk_bytes(), meta.num_bytes())
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        if self.path.exists() {
            return Err(TileDbError::Exists {
                uri: self.uri.clone(),
                message: "exists already; remove it (or use --overwrite) before writing here"
                    .into(),
            }
            .into());
        }
        let single = meta.arrays.len() == 1;
        for a in &meta.arrays {
            let path = self.member_path(&a.name);
            let uri = path.display().to_string();
            if !path.exists() {
                return Err(TileDbError::Exists {
                    uri: uri.clone(),
                    message: format!(
                        "the array of `{}` was never created; run the rechunk again",
                        a.name
                    ),
                }
                .into());
            }
            let attr_name = if a.dims.contains(&a.name) {
                ""
            } else {
                a.name.as_str()
            };
            let mut entries = Vec::new();
            if single {
                for (k, v) in meta.attrs.iter() {
                    entries.push((k.to_string(), meta::from_attr(v)));
                }
                for (k, v) in a.attrs.iter() {
                    entries.push((meta::attr_key(attr_name, k), meta::from_attr(v)));
                }
            } else {
                for (k, v) in a.attrs.iter() {
                    entries.push((k.to_string(), meta::from_attr(v)));
                }
            }
            self.put_metadata(&uri, &entries)?;
            fragments::tidy(&self.ctx, &uri, self.options.fragments)?;
        }
        let from = if single {
            match meta.arrays.first() {
                Some(a) => self.member_path(&a.name),
                None => {
                    return Err(
                        TileDbError::unsupported(&self.uri, "a dataset without variables").into(),
                    )
                }
            }
        } else {
            self.write_group(meta)?;
            self.staging.clone()
        };
        let (from_s, to_s) = (from.display().to_string(), self.path.display().to_string());
        self.ctx
            .object_move(&from_s, &to_s)
            .at(&to_s, &format!("cannot move {from_s} into place"))?;
        if single {
            if let Err(e) = std::fs::remove_dir_all(&self.staging) {
                tracing::warn!(path = %self.staging.display(), "cannot remove the staging folder: {e}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_one_component() {
        assert_eq!(folder_name("tas"), "tas");
        assert_eq!(folder_name("a/b%c"), "a%2Fb%25c");
        assert_eq!(folder_name(".."), "%2E%2E");
        assert_eq!(
            staging_path(Path::new("/x/out.tdb")),
            Path::new("/x/out.tdb.rechunk-partial")
        );
        assert_eq!(local_path("file:///x/y/"), Path::new("/x/y"));
    }
}
