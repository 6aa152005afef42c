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
//! With [`TileDbWriteOptions::keep_source`], a variable that came from a TileDB array (its
//! `encoding` is a [`KeptArray`] document) is written as that array was instead: source
//! dimensions, domains, orders, attribute, filters and fill value, new tile extents. An
//! array of one attribute is written directly (`__array/` for a lone one, else the member's
//! folder); one of several is written as one part per attribute (`__parts/`) that finalize
//! combines into the array (a dense write must carry every attribute). Finalize then copies
//! the source array's metadata and moves a lone array to `DST`, or makes the group.
//!
//! Attributes: with one variable, the dataset's attributes are plain metadata keys of the array
//! and the variable's are `__tiledb_attr.NAME.KEY` (TileDB-CF's convention); in a group, the
//! dataset's attributes are the group's metadata and each variable's are plain keys of its
//! array. [`crate::TileDbSource`] reads both back the same way.

use crate::array::{self, TileDbArray};
use crate::error::{Context as _, Result, TileDbError};
use crate::ffi::{self, Context};
use crate::ffi::{Datatype, Layout, ObjectType, QueryType};
use crate::fragments::{self, Fragments};
use crate::keep::{self, KeptArray};
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

/// How a TileDB target is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TileDbWriteOptions {
    /// Filters of every attribute (default `zstd:3`).
    pub codec: Codec,
    /// What happens to the fragments (one per write task) at the end.
    pub fragments: Fragments,
    /// Variables read from TileDB arrays are written as their source array was (same
    /// dimensions, domains, orders, attributes, filters, fill values, metadata; an array
    /// for an array, a group for a group), with new tile extents only, and `codec` is not
    /// used for them. The CLI sets it when no `--codec` is given.
    pub keep_source: bool,
}

/// The staging folder of a target at `path`.
pub fn staging_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".rechunk-partial");
    PathBuf::from(s)
}

/// The staging folder of a lone kept array.
const LONE_FOLDER: &str = "__array";
/// The staging folder of the single-attribute parts of kept multi-attribute arrays.
const PARTS_FOLDER: &str = "__parts";

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
    /// Said once that some array cannot be kept as it was.
    warned: std::sync::atomic::AtomicBool,
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
            warned: Default::default(),
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
                tdb_type: Datatype::UInt64,
                lo: 0,
                hi: len as i128 - 1,
                extent: chunk.clamp(1, len),
            });
        }
        Ok(dims)
    }

    /// The source array `meta` keeps, when it keeps one (see [`TileDbWriteOptions::keep_source`]).
    fn kept(&self, meta: &ArrayMeta) -> Option<KeptArray> {
        if !self.options.keep_source {
            return None;
        }
        let k = KeptArray::from_encoding(meta.encoding.as_ref())?;
        let chunks = meta.grid.nominal_chunk_shape();
        if !k.writable() {
            if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                variable = meta.name,
                    "an int8/int16 dimension spanning 0 cannot be written as it was; writing uint64 dimensions from 0"
                );
            }
            return None;
        }
        (k.dims(&chunks).is_some() && k.orders().is_some()).then_some(k)
    }

    /// Where the kept array of `k` is staged ("__array" for a lone one).
    fn kept_path(&self, k: &KeptArray) -> PathBuf {
        if k.array.is_empty() {
            self.staging.join(LONE_FOLDER)
        } else {
            self.member_path(&k.array)
        }
    }

    /// Where variable `meta` of kept array `k` is written: the array itself when it has one
    /// attribute, else a single-attribute part that finalize combines with the others.
    fn kept_part_path(&self, k: &KeptArray, meta: &ArrayMeta) -> PathBuf {
        if k.shared() {
            self.staging
                .join(PARTS_FOLDER)
                .join(folder_name(&meta.name))
        } else {
            self.kept_path(k)
        }
    }

    /// The dimensions of the kept array `k` with `meta`'s chunks as tiles.
    fn kept_dims(&self, k: &KeptArray, meta: &ArrayMeta) -> Result<Vec<DimInfo>> {
        let dims = k
            .dims(&meta.grid.nominal_chunk_shape())
            .ok_or_else(|| self.unsupported(meta, "a TileDB encoding this version cannot read"))?;
        schema::check_dims(&self.ctx, &self.uri, &dims)?;
        Ok(dims)
    }

    /// Creates (or reopens) the array of variable `meta` as its source array `k` was.
    fn kept_array(&self, meta: &ArrayMeta, k: &KeptArray) -> Result<TileDbArray> {
        let dims = self.kept_dims(k, meta)?;
        let path = self.kept_part_path(k, meta);
        let uri = path.display().to_string();
        let (info, existed) = schema::reopen_or_create(&self.ctx, &path, |uri| {
            let source = ffi::Schema::load(&self.ctx, &k.uri)
                .at(&k.uri, "cannot read the source array's schema")?;
            let source_info = ArrayInfo::from_schema(&source, &k.uri)?;
            let lists = source
                .attributes()
                .at(&k.uri, "cannot read the attributes")?
                .iter()
                .map(|a| a.filters())
                .collect::<ffi::LibResult<Vec<_>>>()
                .at(&k.uri, "cannot read the filters")?;
            let index = source_info
                .attrs
                .iter()
                .position(|a| a.name == k.attribute && a.dtype == meta.dtype)
                .ok_or_else(|| {
                    self.unsupported(meta, format!("no attribute `{}` in {}", k.attribute, k.uri))
                })?;
            let attr = &source_info.attrs[index];
            schema::create_array(
                &self.ctx,
                uri,
                &dims,
                &[NewAttr {
                    name: &attr.name,
                    dtype: attr.dtype,
                    fill: Some(attr.fill.clone()),
                    filters: Filters::Like(&lists[index]),
                }],
                k.orders().unwrap_or((Layout::RowMajor, Layout::RowMajor)),
            )
        })?;
        if existed
            && !(info.dims == dims
                && info.attrs.len() == 1
                && info.attrs[0].name == k.attribute
                && info.attrs[0].dtype == meta.dtype)
        {
            return Err(TileDbError::Exists {
                uri,
                message: format!(
                    "holds an array of an earlier run with other dimensions, chunks or type than `{}` now has; rerun with --overwrite to start over",
                    meta.name
                ),
            });
        }
        Ok(self.attribute_array(meta, info))
    }

    /// The variable `meta` as attribute 0 of the array `info`, with the codecs and fill
    /// value that array really has.
    fn attribute_array(&self, meta: &ArrayMeta, info: ArrayInfo) -> TileDbArray {
        let info = Arc::new(info);
        let mut array_meta = meta.clone();
        array_meta.codecs = info.attrs[0].filters.clone();
        array_meta.fill_value = Scalar::from_bytes(meta.dtype, &info.attrs[0].fill);
        self.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(meta.name.clone(), info.clone());
        TileDbArray::attribute(self.ctx.clone(), info, 0, array_meta)
    }

    /// Creates (or, when a run resumes, reopens) the array of one variable.
    pub fn array(&self, meta: &ArrayMeta) -> Result<TileDbArray> {
        if let Some(k) = self.kept(meta) {
            return self.kept_array(meta, &k);
        }
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
                (Layout::RowMajor, Layout::RowMajor),
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
        Ok(self.attribute_array(meta, info))
    }

    fn put_metadata(&self, uri: &str, entries: &[(String, ffi::MetaValue)]) -> Result<()> {
        let array = ffi::Array::open(&self.ctx, uri, QueryType::Write)
            .at(uri, "cannot open the array to write its metadata")?;
        for (k, v) in entries {
            array
                .put_metadata(k, v)
                .at(uri, &format!("cannot write metadata `{k}`"))?;
        }
        array.close().at(uri, "cannot save the metadata")
    }

    /// Makes the staging folder a group of the arrays `members` (each in the folder of its
    /// name) with the dataset's attributes as metadata.
    fn write_group(&self, meta: &DatasetMeta, members: &[String]) -> Result<()> {
        let staging = self.staging.display().to_string();
        if self
            .ctx
            .object_type(&staging)
            .at(&staging, "cannot inspect")?
            != ObjectType::Group
        {
            self.ctx
                .create_group(&staging)
                .at(&staging, "cannot create the group")?;
        }
        // Members an interrupted finalize already added.
        let existing: Vec<String> = ffi::Group::open(&self.ctx, &staging, QueryType::Read)
            .at(&staging, "cannot open the group")?
            .members()
            .at(&staging, "cannot list the group")?
            .into_iter()
            .filter_map(|m| m.name)
            .collect();
        let group = ffi::Group::open(&self.ctx, &staging, QueryType::Write)
            .at(&staging, "cannot open the group for writing")?;
        for name in members {
            if !existing.contains(name) {
                group
                    .add_member(&folder_name(name), true, name)
                    .at(&staging, &format!("cannot add `{name}` to the group"))?;
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
        match self.kept(meta) {
            Some(k) => {
                self.kept_dims(&k, meta)?;
            }
            None => {
                self.dims(meta)?;
            }
        }
        Ok(meta.grid.clone())
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        array::write_overhead_for(meta.max_chunk_bytes(), meta.num_bytes())
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        Ok(self.finish(meta)?)
    }
}

/// The variables of one kept source array, in the order of its attributes.
struct KeptGroup<'a> {
    key: KeptArray,
    vars: Vec<(&'a ArrayMeta, KeptArray)>,
}

impl TileDbTarget {
    fn finish(&self, meta: &DatasetMeta) -> Result<()> {
        if self.path.exists() {
            return Err(TileDbError::Exists {
                uri: self.uri.clone(),
                message: "exists already; remove it (or use --overwrite) before writing here"
                    .into(),
            });
        }
        let mut kept: Vec<KeptGroup<'_>> = Vec::new();
        let mut plain: Vec<&ArrayMeta> = Vec::new();
        for a in &meta.arrays {
            match self.kept(a) {
                Some(k) => match kept.iter_mut().find(|g| g.key.array == k.array) {
                    Some(g) => g.vars.push((a, k)),
                    None => kept.push(KeptGroup {
                        key: k.clone(),
                        vars: vec![(a, k)],
                    }),
                },
                None => plain.push(a),
            }
        }
        for g in &mut kept {
            g.vars
                .sort_by_key(|(_, k)| k.attributes.iter().position(|n| *n == k.attribute));
            self.finish_kept(g)?;
        }
        let lone_kept = plain.is_empty() && kept.len() == 1 && kept[0].key.array.is_empty();
        let single = kept.is_empty() && plain.len() == 1;
        for a in &plain {
            self.finish_plain(meta, a, single)?;
        }
        let parts = self.staging.join(PARTS_FOLDER);
        if parts.exists() {
            std::fs::remove_dir_all(&parts)
                .map_err(|e| TileDbError::io(&parts, "remove the combined parts", e))?;
        }
        let from = if lone_kept {
            self.kept_path(&kept[0].key)
        } else if single {
            self.member_path(&plain[0].name)
        } else if kept.is_empty() && plain.is_empty() {
            return Err(TileDbError::unsupported(
                &self.uri,
                "a dataset without variables",
            ));
        } else {
            let mut members: Vec<String> = kept.iter().map(|g| g.key.array.clone()).collect();
            members.extend(plain.iter().map(|a| a.name.clone()));
            self.write_group(meta, &members)?;
            self.staging.clone()
        };
        let (from_s, to_s) = (from.display().to_string(), self.path.display().to_string());
        self.ctx
            .object_move(&from_s, &to_s)
            .at(&to_s, &format!("cannot move {from_s} into place"))?;
        if lone_kept || single {
            if let Err(e) = std::fs::remove_dir_all(&self.staging) {
                tracing::warn!(path = %self.staging.display(), "cannot remove the staging folder: {e}");
            }
        }
        Ok(())
    }

    /// Writes the metadata of a variable written as a dataset of its own kind.
    fn finish_plain(&self, meta: &DatasetMeta, a: &ArrayMeta, single: bool) -> Result<()> {
        let path = self.member_path(&a.name);
        let uri = path.display().to_string();
        if !path.exists() {
            return Err(TileDbError::Exists {
                uri: uri.clone(),
                message: format!(
                    "the array of `{}` was never created; run the rechunk again",
                    a.name
                ),
            });
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
        fragments::tidy(&self.ctx, &uri, self.options.fragments)
    }

    /// Puts the attributes of a kept array together (when it has several), then gives it the
    /// source array's metadata, entry for entry. Safe to repeat after an interruption: the
    /// combined array replaces the parts in one rename.
    fn finish_kept(&self, g: &KeptGroup<'_>) -> Result<()> {
        let path = self.kept_path(&g.key);
        let uri = path.display().to_string();
        if g.key.shared() && !path.exists() {
            let mut parts = Vec::new();
            for (a, k) in &g.vars {
                let part = self.kept_part_path(k, a);
                let part_uri = part.display().to_string();
                if !part.exists() {
                    return Err(TileDbError::Exists {
                        uri: part_uri,
                        message: format!(
                            "the array of `{}` was never created; run the rechunk again",
                            a.name
                        ),
                    });
                }
                parts.push(Arc::new(ArrayInfo::load(&self.ctx, &part_uri)?));
            }
            let source = ffi::Schema::load(&self.ctx, &g.key.uri)
                .at(&g.key.uri, "cannot read the source array's schema")?;
            let names = source
                .attributes()
                .at(&g.key.uri, "cannot read the attributes")?
                .iter()
                .map(|a| Ok((a.name()?, a.filters()?)))
                .collect::<ffi::LibResult<Vec<_>>>()
                .at(&g.key.uri, "cannot read the filters")?;
            let mut attrs = Vec::new();
            for p in &parts {
                let attr = &p.attrs[0];
                let Some((_, list)) = names.iter().find(|(n, _)| *n == attr.name) else {
                    return Err(TileDbError::unsupported(
                        &g.key.uri,
                        format!("the attribute `{}` is gone from the source", attr.name),
                    ));
                };
                attrs.push(NewAttr {
                    name: &attr.name,
                    dtype: attr.dtype,
                    fill: Some(attr.fill.clone()),
                    filters: Filters::Like(list),
                });
            }
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".combining");
            let tmp = PathBuf::from(tmp);
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)
                    .map_err(|e| TileDbError::io(&tmp, "remove an unfinished array", e))?;
            }
            let orders = g
                .key
                .orders()
                .unwrap_or((Layout::RowMajor, Layout::RowMajor));
            keep::combine(
                &self.ctx,
                &parts,
                &attrs,
                orders,
                &tmp.display().to_string(),
            )?;
            std::fs::rename(&tmp, &path)
                .map_err(|e| TileDbError::io(&path, "move the combined array into place", e))?;
        }
        if !path.exists() {
            return Err(TileDbError::Exists {
                uri,
                message: "the array was never created; run the rechunk again".into(),
            });
        }
        // Entry for entry, but those of attributes left out (`--variables`).
        let dropped: Vec<String> = g
            .key
            .attributes
            .iter()
            .filter(|n| !g.vars.iter().any(|(_, k)| k.attribute == **n))
            .map(|n| meta::attr_key(n, ""))
            .collect();
        let entries: Vec<_> = crate::source::array_metadata(&self.ctx, &g.key.uri)?
            .into_iter()
            .filter(|(k, _)| !dropped.iter().any(|d| k.starts_with(d.as_str())))
            .collect();
        self.put_metadata(&uri, &entries)?;
        fragments::tidy(&self.ctx, &uri, self.options.fragments)
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
