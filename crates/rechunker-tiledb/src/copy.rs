//! TileDB → TileDB rechunking that keeps the structure: the same arrays (and group), the same
//! dimensions, domains, attributes, fill values, orders, filters (unless a codec is given) and
//! metadata; only the tile extents change.
//!
//! Every TileDB array is one variable of the executor, because a dense write must carry every
//! attribute of the array: an array with one attribute is that attribute; an array with
//! several is their slot view (see [`TileDbArray::slots`]).

use crate::array::{self, TileDbArray, SLOT_DIM};
use crate::error::{Context as _, Result, TileDbError};
use crate::ffi::{self, Context, FilterList, MetaValue};
use crate::ffi::{ObjectType, QueryType};
use crate::fragments::{self, Fragments};
use crate::schema::{self, ArrayInfo, DimInfo, Filters, NewAttr};
use crate::source;
use crate::target::local_path;
use crate::types::Codec;
use rechunker_core::{
    ArrayMeta, ChunkedArray, ChunkedArrayMut, DatasetMeta, DatasetSource, DatasetTarget,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One array of a layout.
pub(crate) struct Member {
    /// The variable's name (the group member's name, or the array's).
    pub name: String,
    /// Folder inside the group ("" for a lone array).
    pub rel: String,
    pub info: Arc<ArrayInfo>,
}

/// A TileDB array or a group of arrays, opened for a structure-preserving copy.
pub(crate) struct ArraySource {
    uri: String,
    pub is_group: bool,
    pub members: Vec<Member>,
    meta: DatasetMeta,
    arrays: Vec<Arc<TileDbArray>>,
}

impl ArraySource {
    /// Opens the array or group at the local path `uri`; a lone array's variable is called
    /// `lone_name`. Groups may hold only arrays, stored in folders inside the group (so that
    /// the group can be moved whole).
    pub fn open(uri: &str, lone_name: &str) -> Result<ArraySource> {
        let ctx = array::context().at(uri, "cannot start TileDB")?;
        let source::Layout {
            is_group, found, ..
        } = source::find(&ctx, uri)?;
        let root = std::fs::canonicalize(local_path(uri))
            .map_err(|e| TileDbError::io(local_path(uri), "resolve", e))?;
        let mut members = Vec::new();
        let mut arrays = Vec::new();
        for f in found {
            let info = Arc::new(ArrayInfo::load(&ctx, &f.uri)?);
            let rel = if is_group {
                if f.path.contains('/') {
                    return Err(TileDbError::unsupported(
                        uri,
                        format!("rechunking in place a group with subgroups (`{}`)", f.path),
                    ));
                }
                let member = std::fs::canonicalize(local_path(&f.uri))
                    .map_err(|e| TileDbError::io(local_path(&f.uri), "resolve", e))?;
                match member.strip_prefix(&root) {
                    Ok(r) if r.components().count() == 1 => r.display().to_string(),
                    _ => {
                        return Err(TileDbError::unsupported(
                            uri,
                            format!(
                                "rechunking in place a group whose member `{}` is not a folder inside it ({})",
                                f.path, f.uri
                            ),
                        ))
                    }
                }
            } else {
                String::new()
            };
            let mut name = if is_group {
                f.path.clone()
            } else {
                lone_name.to_string()
            };
            // A lone 1-d array named like its dimension is no coordinate variable.
            if !is_group && info.dims.len() == 1 && info.dims[0].name == name {
                name.push_str(".array");
            }
            let array = if info.attrs.len() == 1 {
                let attr = &info.attrs[0];
                let meta = ArrayMeta {
                    name: name.clone(),
                    dims: info.dim_names(),
                    dtype: attr.dtype,
                    grid: info.grid(),
                    // The copy takes fill values from the schema, not from here; and a NaN in
                    // the plan would make a resumed plan never compare equal to the stored one.
                    fill_value: None,
                    attrs: Default::default(),
                    codecs: attr.filters.clone(),
                    encoding: None,
                    unlimited_dims: Vec::new(),
                };
                TileDbArray::attribute(ctx.clone(), info.clone(), 0, meta)
            } else {
                TileDbArray::slots(ctx.clone(), info.clone(), &name)
            };
            arrays.push(Arc::new(array));
            members.push(Member { name, rel, info });
        }
        Ok(ArraySource {
            uri: uri.into(),
            is_group,
            meta: DatasetMeta {
                arrays: arrays.iter().map(|a| a.meta().clone()).collect(),
                attrs: Default::default(),
            },
            members,
            arrays,
        })
    }

    pub fn array(&self, name: &str) -> Result<Arc<TileDbArray>> {
        self.arrays
            .iter()
            .find(|a| a.meta().name == name)
            .cloned()
            .ok_or_else(|| TileDbError::NoSuchVariable {
                uri: self.uri.clone(),
                variable: name.into(),
            })
    }

    /// The folder of member `m` below `root` (the root itself for a lone array).
    pub fn member_path(&self, root: &Path, m: &Member) -> PathBuf {
        if self.is_group {
            root.join(&m.rel)
        } else {
            root.to_path_buf()
        }
    }
}

impl DatasetSource for ArraySource {
    fn location(&self) -> &str {
        &self.uri
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> rechunker_core::Result<Arc<dyn ChunkedArray>> {
        Ok(self.array(name)?)
    }
}

/// Writes the copy of an [`ArraySource`] at `root`.
pub(crate) struct ArrayCopyTarget {
    uri: String,
    root: PathBuf,
    source: Arc<ArraySource>,
    codec: Option<Codec>,
    fragments: Fragments,
    ctx: Arc<Context>,
}

impl ArrayCopyTarget {
    pub fn new(
        root: &Path,
        source: Arc<ArraySource>,
        codec: Option<Codec>,
        fragments: Fragments,
    ) -> Result<Self> {
        let uri = root.display().to_string();
        Ok(ArrayCopyTarget {
            ctx: array::context().at(&uri, "cannot start TileDB")?,
            uri,
            root: root.to_path_buf(),
            source,
            codec,
            fragments,
        })
    }

    fn member(&self, name: &str) -> Result<&Member> {
        self.source
            .members
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| TileDbError::NoSuchVariable {
                uri: self.source.uri.clone(),
                variable: name.into(),
            })
    }

    /// The new dimensions of `member`: the old ones with the tile extents of `meta`'s grid.
    fn dims(member: &Member, meta: &ArrayMeta) -> Vec<DimInfo> {
        let chunks = meta.grid.nominal_chunk_shape();
        let offset = usize::from(meta.dims.first().is_some_and(|d| d == SLOT_DIM));
        member
            .info
            .dims
            .iter()
            .enumerate()
            .map(|(d, dim)| DimInfo {
                extent: chunks
                    .get(d + offset)
                    .copied()
                    .unwrap_or(dim.extent)
                    .clamp(1, dim.len()),
                ..dim.clone()
            })
            .collect()
    }

    /// Checks, before anything is written, that every array's new tiles fit its domain.
    pub fn check_tiles(&self, metas: &[ArrayMeta]) -> Result<()> {
        for meta in metas {
            let member = self.member(&meta.name)?;
            schema::check_dims(&self.ctx, &member.info.uri, &Self::dims(member, meta))?;
        }
        Ok(())
    }

    fn create(&self, meta: &ArrayMeta) -> Result<TileDbArray> {
        let member = self.member(&meta.name)?;
        let path = self.source.member_path(&self.root, member);
        let uri = path.display().to_string();
        let dims = Self::dims(member, meta);
        let same = |info: &ArrayInfo| {
            info.dims == dims
                && info.attrs.len() == member.info.attrs.len()
                && info
                    .attrs
                    .iter()
                    .zip(&member.info.attrs)
                    .all(|(a, b)| a.name == b.name && a.dtype == b.dtype)
        };
        let (info, existed) = schema::reopen_or_create(&self.ctx, &path, |uri| {
            // The old attributes' filters, copied from the old schema.
            let old = ffi::Schema::load(&self.ctx, &member.info.uri)
                .at(&member.info.uri, "cannot read the array schema")?;
            let old_attrs = old
                .attributes()
                .at(&member.info.uri, "cannot read the attributes")?;
            let lists: Vec<FilterList> = old_attrs
                .iter()
                .map(|a| a.filters())
                .collect::<ffi::LibResult<_>>()
                .at(&member.info.uri, "cannot read the filters")?;
            let attrs: Vec<NewAttr<'_>> = member
                .info
                .attrs
                .iter()
                .zip(&lists)
                .map(|(a, list)| NewAttr {
                    name: &a.name,
                    dtype: a.dtype,
                    fill: Some(a.fill.clone()),
                    filters: match self.codec {
                        Some(c) => Filters::Codec(c),
                        None => Filters::Like(list),
                    },
                })
                .collect();
            schema::create_array(
                &self.ctx,
                uri,
                &dims,
                &attrs,
                (member.info.cell_order, member.info.tile_order),
            )
        })?;
        if existed && !same(&info) {
            return Err(TileDbError::Exists {
                uri,
                message: "holds an array of an earlier run with other tile extents; remove it (and the in-place journal) to start over".into(),
            });
        }
        let info = Arc::new(info);
        Ok(if info.attrs.len() == 1 {
            let mut m = meta.clone();
            m.codecs = info.attrs[0].filters.clone();
            TileDbArray::attribute(self.ctx.clone(), info, 0, m)
        } else {
            TileDbArray::slots(self.ctx.clone(), info, &meta.name)
        })
    }

    fn copy_metadata(&self, from: &str, to: &str) -> Result<()> {
        let entries = source::array_metadata(&self.ctx, from)?;
        if entries.is_empty() {
            return Ok(());
        }
        let array = ffi::Array::open(&self.ctx, to, QueryType::Write)
            .at(to, "cannot open the array to write its metadata")?;
        for (k, v) in &entries {
            array
                .put_metadata(k, v)
                .at(to, &format!("cannot write metadata `{k}`"))?;
        }
        array.close().at(to, "cannot save the metadata")
    }

    fn write_group(&self) -> Result<()> {
        let uri = &self.uri;
        if self.ctx.object_type(uri).at(uri, "cannot inspect")? != ObjectType::Group {
            self.ctx
                .create_group(uri)
                .at(uri, "cannot create the group")?;
        }
        let old = ffi::Group::open(&self.ctx, &self.source.uri, QueryType::Read)
            .at(&self.source.uri, "cannot open the group")?;
        let metadata: Vec<(String, MetaValue)> = old
            .metadata()
            .at(&self.source.uri, "cannot read the group metadata")?;
        drop(old);
        let existing: Vec<String> = ffi::Group::open(&self.ctx, uri, QueryType::Read)
            .at(uri, "cannot open the group")?
            .members()
            .at(uri, "cannot list the group")?
            .into_iter()
            .filter_map(|m| m.name)
            .collect();
        let group = ffi::Group::open(&self.ctx, uri, QueryType::Write)
            .at(uri, "cannot open the group for writing")?;
        for m in &self.source.members {
            if !existing.contains(&m.name) {
                group
                    .add_member(&m.rel, true, &m.name)
                    .at(uri, &format!("cannot add `{}` to the group", m.name))?;
            }
        }
        for (k, v) in &metadata {
            group
                .put_metadata(k, v)
                .at(uri, &format!("cannot write group metadata `{k}`"))?;
        }
        group.close().at(uri, "cannot save the group")
    }
}

impl DatasetTarget for ArrayCopyTarget {
    fn location(&self) -> &str {
        &self.uri
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        Ok(Arc::new(self.create(meta)?))
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        array::write_overhead_for(meta.max_chunk_bytes(), meta.num_bytes())
    }

    fn finalize(&self, _meta: &DatasetMeta) -> rechunker_core::Result<()> {
        for m in &self.source.members {
            let to = self.source.member_path(&self.root, m).display().to_string();
            self.copy_metadata(&m.info.uri, &to)?;
            fragments::tidy(&self.ctx, &to, self.fragments)?;
        }
        if self.source.is_group {
            self.write_group()?;
        }
        Ok(())
    }
}
