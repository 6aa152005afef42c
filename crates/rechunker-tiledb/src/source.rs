//! Reading a TileDB array or group as a dataset.
//!
//! - An array: every attribute is a variable over the array's dimensions, named after the
//!   attribute (an anonymous attribute, as `tiledb.from_numpy` writes, after the array: the last
//!   part of its URI without a `.tdb` / `.tiledb` extension). Metadata keys
//!   `__tiledb_attr.A.KEY` are attributes of the variable of attribute `A`; the other keys are
//!   the dataset's attributes.
//! - A group (members found recursively; a subgroup's members are named `sub/name`): a member
//!   array with one attribute is a variable named after the member (its name in the group, or
//!   the last part of its URI); a member with several attributes gives one variable per
//!   attribute, named after the attribute. When two variables would share a name, each of them
//!   is named `member/attribute`. The group's metadata are the dataset's attributes; a member
//!   array's plain metadata keys are attributes of each of its variables.
//!
//! Dimension names are the TileDB dimension names, shared by name across member arrays.
//! Coordinates of regions are 0-based offsets from the start of each dimension's domain.

use crate::array::{self, TileDbArray};
use crate::error::{Context as _, Result, TileDbError};
use crate::ffi::{self, Context};
use crate::ffi::{ObjectType, QueryType};
use crate::keep::KeptArray;
use crate::meta;
use crate::schema::ArrayInfo;
use rechunker_core::{ArrayMeta, Attributes, ChunkedArray, DatasetMeta, DatasetSource, Scalar};
use std::sync::Arc;

/// One array found at or below the dataset's URI.
pub(crate) struct Found {
    /// Path of the member inside the group ("" for a lone array).
    pub path: String,
    pub uri: String,
}

/// A TileDB array or group opened for reading.
pub struct TileDbSource {
    uri: String,
    meta: DatasetMeta,
    arrays: Vec<Arc<TileDbArray>>,
}

impl std::fmt::Debug for TileDbSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileDbSource")
            .field("uri", &self.uri)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// The last part of a URI, without a `.tdb` / `.tiledb` extension ("array" if nothing is left).
pub(crate) fn name_from_uri(uri: &str) -> String {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let stem = last
        .strip_suffix(".tdb")
        .or_else(|| last.strip_suffix(".tiledb"))
        .unwrap_or(last);
    if stem.is_empty() || stem == "." || stem == ".." {
        "array".into()
    } else {
        stem.to_string()
    }
}

/// True when `uri` names a local path (no scheme, or `file://`).
pub(crate) fn is_local(uri: &str) -> bool {
    match uri.split_once("://") {
        Some((scheme, _)) => scheme == "file",
        None => true,
    }
}

/// A local URI as an absolute path (so that a plan file run from elsewhere finds it); other
/// URIs as they are.
fn absolute(uri: &str) -> String {
    if !is_local(uri) {
        return uri.into();
    }
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    std::fs::canonicalize(path).map_or_else(|_| uri.into(), |p| p.display().to_string())
}

/// What is at `uri`, with a clear error when it is nothing TileDB.
pub(crate) fn object_type(ctx: &Context, uri: &str) -> Result<ObjectType> {
    let kind = ctx.object_type(uri).at(uri, "cannot inspect")?;
    if kind == ObjectType::Invalid {
        let exists =
            !is_local(uri) || std::path::Path::new(uri.trim_start_matches("file://")).exists();
        return Err(TileDbError::NotTileDb {
            uri: uri.into(),
            exists,
        });
    }
    Ok(kind)
}

/// The arrays of the group at `uri` (recursively) and the group's metadata.
pub(crate) fn walk_group(
    ctx: &Arc<Context>,
    uri: &str,
    prefix: &str,
    out: &mut Vec<Found>,
) -> Result<Vec<(String, ffi::MetaValue)>> {
    let group = ffi::Group::open(ctx, uri, QueryType::Read).at(uri, "cannot open the group")?;
    let members = group.members().at(uri, "cannot list the group")?;
    let metadata = group.metadata().at(uri, "cannot read the group metadata")?;
    drop(group);
    for m in members {
        let name = m
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| name_from_uri(&m.uri));
        let path = format!("{prefix}{name}");
        match m.kind {
            ObjectType::Array => out.push(Found { path, uri: m.uri }),
            ObjectType::Group => {
                walk_group(ctx, &m.uri, &format!("{path}/"), out)?;
            }
            _ => tracing::warn!(
                group = uri,
                member = m.uri,
                "skipping a group member that is neither an array nor a group"
            ),
        }
    }
    Ok(metadata)
}

/// What is at a dataset's URI.
pub(crate) struct Layout {
    pub is_group: bool,
    /// The arrays: the array itself, or the group's (recursively).
    pub found: Vec<Found>,
    /// The group's metadata (empty for a lone array).
    pub group_metadata: Vec<(String, ffi::MetaValue)>,
}

/// The arrays at `uri` and the group metadata.
pub(crate) fn find(ctx: &Arc<Context>, uri: &str) -> Result<Layout> {
    match object_type(ctx, uri)? {
        ObjectType::Array => Ok(Layout {
            is_group: false,
            found: vec![Found {
                path: String::new(),
                uri: uri.into(),
            }],
            group_metadata: Vec::new(),
        }),
        _ => {
            let mut found = Vec::new();
            let group_metadata = walk_group(ctx, uri, "", &mut found)?;
            Ok(Layout {
                is_group: true,
                found,
                group_metadata,
            })
        }
    }
}

/// Reads an array's metadata.
pub(crate) fn array_metadata(
    ctx: &Arc<Context>,
    uri: &str,
) -> Result<Vec<(String, ffi::MetaValue)>> {
    let array = ffi::Array::open(ctx, uri, QueryType::Read).at(uri, "cannot open the array")?;
    array.metadata().at(uri, "cannot read the array metadata")
}

impl TileDbSource {
    /// Opens the dense array or group at `uri` (a local path, `file://` or any URI libtiledb
    /// reads). Fails on sparse arrays and on attributes that are variable-length, nullable,
    /// multi-valued or not numbers.
    pub fn open(uri: &str) -> Result<TileDbSource> {
        let ctx = array::context().at(uri, "cannot start TileDB")?;
        let Layout {
            is_group,
            found,
            group_metadata,
        } = find(&ctx, uri)?;
        struct Var {
            name: String,
            qualified: String,
            info: Arc<ArrayInfo>,
            index: usize,
            attrs: Attributes,
            kept: Option<KeptArray>,
        }
        let mut vars: Vec<Var> = Vec::new();
        let mut dataset_attrs = if is_group {
            meta::to_attributes(&group_metadata, uri)
        } else {
            Attributes::default()
        };
        for f in &found {
            let info = Arc::new(ArrayInfo::load(&ctx, &f.uri)?);
            let all = meta::to_attributes(&array_metadata(&ctx, &f.uri)?, &f.uri);
            let names: Vec<String> = info.attrs.iter().map(|a| a.name.clone()).collect();
            let (per_attr, rest) = meta::split_keys(all, &names);
            let member = if f.path.is_empty() {
                name_from_uri(uri)
            } else {
                f.path.clone()
            };
            if !is_group {
                dataset_attrs = rest.clone();
            }
            let single = info.attrs.len() == 1;
            let source_uri = absolute(&f.uri);
            for (i, (attr, own)) in info.attrs.iter().zip(per_attr).enumerate() {
                let name = if (is_group && single) || attr.name.is_empty() {
                    member.clone()
                } else {
                    attr.name.clone()
                };
                let mut attrs = if is_group {
                    rest.clone()
                } else {
                    Attributes::default()
                };
                for (k, v) in own.0 {
                    attrs.insert(k, v);
                }
                let kept = KeptArray::new(&info, &source_uri, &f.path, i);
                vars.push(Var {
                    kept,
                    qualified: format!("{member}/{}", attr.name),
                    name,
                    info: info.clone(),
                    index: i,
                    attrs,
                });
            }
        }
        let mut arrays = Vec::new();
        for v in &vars {
            let shared = vars.iter().filter(|w| w.name == v.name).count() > 1;
            let name = if shared {
                v.qualified.clone()
            } else {
                v.name.clone()
            };
            let attr = &v.info.attrs[v.index];
            let meta = ArrayMeta {
                name,
                dims: v.info.dim_names(),
                dtype: attr.dtype,
                grid: v.info.grid(),
                fill_value: Scalar::from_bytes(attr.dtype, &attr.fill),
                attrs: v.attrs.clone(),
                codecs: attr.filters.clone(),
                encoding: v.kept.as_ref().map(KeptArray::encoding),
                unlimited_dims: Vec::new(),
            };
            arrays.push(Arc::new(TileDbArray::attribute(
                ctx.clone(),
                v.info.clone(),
                v.index,
                meta,
            )));
        }
        tracing::debug!(uri, arrays = arrays.len(), "opened TileDB dataset");
        Ok(TileDbSource {
            uri: uri.into(),
            meta: DatasetMeta {
                arrays: arrays.iter().map(|a| a.meta().clone()).collect(),
                attrs: dataset_attrs,
            },
            arrays,
        })
    }

    /// One variable with its concrete type.
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
}

impl DatasetSource for TileDbSource {
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

/// True when `uri` holds a TileDB array or group (for format detection).
pub fn is_tiledb(uri: &str) -> bool {
    array::context()
        .ok()
        .and_then(|ctx| ctx.object_type(uri).ok())
        .is_some_and(|k| k != ObjectType::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_uris() {
        assert_eq!(name_from_uri("/data/tas.tdb/"), "tas");
        assert_eq!(name_from_uri("s3://bucket/x/precip"), "precip");
        assert_eq!(name_from_uri("file:///a/b.tiledb"), "b");
        assert_eq!(name_from_uri("."), "array");
        assert!(is_local("/a") && is_local("file:///a") && !is_local("s3://b/a"));
    }
}
