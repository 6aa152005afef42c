//! Reading a Zarr v2 or v3 group (every array in it, recursively) or a single array.

use crate::array::ZarrArray;
use crate::cf_fill;
use crate::error::{Result, ZarrError};
use crate::meta::{self, ParseError};
use crate::options::{ZarrFormat, ZarrReadOptions};
use crate::store::{open_store, Storage};
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, ChunkGrid, ChunkedArray, DatasetMeta, DatasetSource, Scalar,
};
use serde_json::{Map, Value};
use std::sync::Arc;
use zarrs::array::{ArrayMetadata, ArrayMetadataV2, ArrayMetadataV3};
use zarrs::storage::{StoreKey, StorePrefix};

/// Reads a JSON document from `key`, or `None` when there is none.
pub(crate) fn get_json(storage: &Storage, uri: &str, key: &str) -> Result<Option<Value>> {
    let store_key = StoreKey::new(key).map_err(|e| ZarrError::Metadata {
        uri: uri.into(),
        key: key.into(),
        message: e.to_string(),
    })?;
    let bytes = storage.get(&store_key).map_err(|e| ZarrError::Io {
        uri: uri.into(),
        key: key.into(),
        action: "read",
        message: e.to_string(),
    })?;
    bytes
        .map(|b| {
            serde_json::from_slice(&b).map_err(|e| ZarrError::Metadata {
                uri: uri.into(),
                key: key.into(),
                message: format!("not valid JSON: {e}"),
            })
        })
        .transpose()
}

/// `prefix` + `name` as a store key ("" prefix for the root).
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// One array found in the hierarchy: its name (path in the group, no leading `/`), format and
/// metadata documents.
struct Found {
    name: String,
    /// Where its documents are in the store ("" for a lone array at the root).
    dir: String,
    format: ZarrFormat,
    doc: Value,
    v2_attrs: Map<String, Value>,
}

/// A Zarr group or array opened for reading.
pub struct ZarrSource {
    uri: String,
    meta: DatasetMeta,
    arrays: Vec<Arc<ZarrArray>>,
}

impl std::fmt::Debug for ZarrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrSource")
            .field("uri", &self.uri)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl ZarrSource {
    /// Opens the Zarr v2 or v3 group or array at `uri` (a local path, `file://`, `s3://`,
    /// `gs://`, `az://` or `http(s)://`). Groups are read from their consolidated metadata when
    /// they have it, else by listing (plain HTTP cannot list: such groups need consolidated
    /// metadata). Every array must have a supported data type and a regular chunk grid.
    pub fn open(uri: &str) -> Result<ZarrSource> {
        Self::open_with(uri, &ZarrReadOptions::default())
    }

    /// [`ZarrSource::open`] with options: with `skip_unsupported`, arrays of types or codecs
    /// the adapter cannot read are left out, each with a warning line.
    pub fn open_with(uri: &str, options: &ZarrReadOptions) -> Result<ZarrSource> {
        let store = open_store(uri)?;
        if let Some(root) = &store.local_root {
            if !root.exists() {
                return Err(ZarrError::Store {
                    uri: uri.into(),
                    message: "no such file or directory".into(),
                });
            }
        }
        let storage = store.storage.clone();
        let (found, attrs) = if let Some(root) = get_json(&storage, uri, "zarr.json")? {
            match root.get("node_type").and_then(Value::as_str) {
                Some("array") => (
                    vec![Found {
                        name: array_name_from_uri(uri),
                        dir: String::new(),
                        format: ZarrFormat::V3,
                        doc: root,
                        v2_attrs: Map::new(),
                    }],
                    Attributes::default(),
                ),
                Some("group") => {
                    let attrs = attributes(root.get("attributes"));
                    let found = match root.pointer("/consolidated_metadata/metadata") {
                        Some(Value::Object(nodes)) => consolidated_v3(nodes),
                        _ if store.listable => walk(&storage, uri, "", ZarrFormat::V3)?,
                        _ => return Err(not_listable(uri)),
                    };
                    (found, attrs)
                }
                other => {
                    return Err(ZarrError::Metadata {
                        uri: uri.into(),
                        key: "zarr.json".into(),
                        message: format!("node_type is {other:?}, not \"array\" or \"group\""),
                    })
                }
            }
        } else if let Some(doc) = get_json(&storage, uri, ".zarray")? {
            let v2_attrs = get_json(&storage, uri, ".zattrs")?
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default();
            (
                vec![Found {
                    name: array_name_from_uri(uri),
                    dir: String::new(),
                    format: ZarrFormat::V2,
                    doc,
                    v2_attrs,
                }],
                Attributes::default(),
            )
        } else {
            let consolidated = get_json(&storage, uri, ".zmetadata")?;
            let group = get_json(&storage, uri, ".zgroup")?;
            if consolidated.is_none() && group.is_none() {
                return Err(ZarrError::NoMetadata { uri: uri.into() });
            }
            match consolidated.as_ref().and_then(|c| c.get("metadata")) {
                Some(Value::Object(entries)) => {
                    let attrs = attributes(entries.get(".zattrs"));
                    (consolidated_v2(entries), attrs)
                }
                _ => {
                    let attrs = attributes(get_json(&storage, uri, ".zattrs")?.as_ref());
                    if !store.listable {
                        return Err(not_listable(uri));
                    }
                    (walk(&storage, uri, "", ZarrFormat::V2)?, attrs)
                }
            }
        };
        tracing::debug!(uri, arrays = found.len(), "opening Zarr dataset");
        let mut arrays = Vec::with_capacity(found.len());
        for f in found {
            match open_found(uri, &storage, f) {
                Ok(mut array) => {
                    array.remote = store.local_root.is_none();
                    array.prefetcher = store.objects.clone();
                    arrays.push(Arc::new(array))
                }
                Err(
                    ZarrError::Unsupported { variable, what, .. }
                    | ZarrError::UnsupportedArray { variable, what, .. },
                ) if options.skip_unsupported => {
                    tracing::warn!("skipping array `{variable}` of {uri}: {what} is not supported");
                }
                Err(ZarrError::UnsupportedCodec {
                    variable, codec, ..
                }) if options.skip_unsupported => {
                    tracing::warn!(
                        "skipping array `{variable}` of {uri}: codec {codec} is not supported"
                    );
                }
                Err(ZarrError::Unsupported {
                    uri,
                    variable,
                    what,
                }) => {
                    return Err(ZarrError::UnsupportedArray {
                        uri,
                        variable,
                        what,
                    })
                }
                Err(e) => return Err(e),
            }
        }
        arrays.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
        let meta = DatasetMeta {
            arrays: arrays.iter().map(|a| a.meta.clone()).collect(),
            attrs,
        };
        Ok(ZarrSource {
            uri: uri.into(),
            meta,
            arrays,
        })
    }

    /// One array with its concrete type.
    pub fn array(&self, name: &str) -> Result<Arc<ZarrArray>> {
        self.arrays
            .iter()
            .find(|a| a.meta.name == name)
            .cloned()
            .ok_or_else(|| ZarrError::NoSuchArray {
                uri: self.uri.clone(),
                variable: name.into(),
            })
    }
}

impl DatasetSource for ZarrSource {
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

fn not_listable(uri: &str) -> ZarrError {
    ZarrError::Store {
        uri: uri.into(),
        message: "the group has no consolidated metadata and an HTTP server cannot be listed; consolidate it (zarr.consolidate_metadata) or read it from a listable store".into(),
    }
}

/// The name of a lone array: the last part of its path, without a `.zarr` extension.
fn array_name_from_uri(uri: &str) -> String {
    let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let last = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let stem = last.strip_suffix(".zarr").unwrap_or(&last);
    if stem.is_empty() || stem == "." || stem == ".." {
        "array".into()
    } else {
        stem.to_string()
    }
}

/// Group or array attributes as ours (JSON values, no type).
pub(crate) fn attributes(value: Option<&Value>) -> Attributes {
    Attributes(
        value
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), AttrValue::json(v.clone())))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

fn consolidated_v3(nodes: &Map<String, Value>) -> Vec<Found> {
    nodes
        .iter()
        .filter(|(_, doc)| doc.get("node_type").and_then(Value::as_str) == Some("array"))
        .map(|(name, doc)| Found {
            name: name.trim_matches('/').to_string(),
            dir: name.trim_matches('/').to_string(),
            format: ZarrFormat::V3,
            doc: doc.clone(),
            v2_attrs: Map::new(),
        })
        .collect()
}

fn consolidated_v2(entries: &Map<String, Value>) -> Vec<Found> {
    entries
        .iter()
        .filter_map(|(key, doc)| {
            let name = key.strip_suffix(".zarray")?.trim_matches('/');
            let attrs_key = join(name, ".zattrs");
            Some(Found {
                name: name.to_string(),
                dir: name.to_string(),
                format: ZarrFormat::V2,
                doc: doc.clone(),
                v2_attrs: entries
                    .get(&attrs_key)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .filter(|f| !f.name.is_empty())
        .collect()
}

/// Finds the arrays below the group at `prefix` by listing: each child folder is an array,
/// a group (walked in turn) or neither (skipped).
fn walk(storage: &Storage, uri: &str, prefix: &str, format: ZarrFormat) -> Result<Vec<Found>> {
    let store_prefix = if prefix.is_empty() {
        StorePrefix::root()
    } else {
        StorePrefix::new(format!("{prefix}/")).map_err(|e| ZarrError::Metadata {
            uri: uri.into(),
            key: prefix.into(),
            message: e.to_string(),
        })?
    };
    let listing = storage.list_dir(&store_prefix).map_err(|e| ZarrError::Io {
        uri: uri.into(),
        key: format!("{prefix}/"),
        action: "list",
        message: e.to_string(),
    })?;
    let mut children: Vec<String> = listing
        .prefixes()
        .iter()
        .map(|p| p.as_str().trim_end_matches('/').to_string())
        .collect();
    children.sort();
    let mut out = Vec::new();
    for child in children {
        match format {
            ZarrFormat::V3 => {
                let Some(doc) = get_json(storage, uri, &join(&child, "zarr.json"))? else {
                    continue;
                };
                match doc.get("node_type").and_then(Value::as_str) {
                    Some("array") => out.push(Found {
                        name: child.clone(),
                        dir: child,
                        format,
                        doc,
                        v2_attrs: Map::new(),
                    }),
                    Some("group") => out.extend(walk(storage, uri, &child, format)?),
                    _ => {}
                }
            }
            ZarrFormat::V2 => {
                if let Some(doc) = get_json(storage, uri, &join(&child, ".zarray"))? {
                    let v2_attrs = get_json(storage, uri, &join(&child, ".zattrs"))?
                        .and_then(|v| v.as_object().cloned())
                        .unwrap_or_default();
                    out.push(Found {
                        name: child.clone(),
                        dir: child,
                        format,
                        doc,
                        v2_attrs,
                    });
                } else if get_json(storage, uri, &join(&child, ".zgroup"))?.is_some() {
                    out.extend(walk(storage, uri, &child, format)?);
                }
            }
        }
    }
    Ok(out)
}

/// The zarrs metadata of an array document (v2: with its attributes merged in).
pub(crate) fn zarrs_metadata(
    doc: &Value,
    v2_attrs: &Map<String, Value>,
    format: ZarrFormat,
) -> std::result::Result<ArrayMetadata, String> {
    let mut doc = doc.clone();
    meta::zarrs_view(&mut doc, format);
    match format {
        ZarrFormat::V3 => serde_json::from_value::<ArrayMetadataV3>(doc)
            .map(ArrayMetadata::V3)
            .map_err(|e| e.to_string()),
        ZarrFormat::V2 => {
            if let Some(o) = doc.as_object_mut() {
                o.remove("attributes");
            }
            meta::normalize_v2_dtype(&mut doc);
            let mut metadata =
                serde_json::from_value::<ArrayMetadataV2>(doc).map_err(|e| e.to_string())?;
            metadata.attributes = v2_attrs.clone();
            Ok(ArrayMetadata::V2(metadata))
        }
    }
}

/// Builds the array `found` describes, at its path in `storage`.
fn open_found(uri: &str, storage: &Storage, found: Found) -> Result<ZarrArray> {
    let metadata_key = match found.format {
        ZarrFormat::V3 => join(&found.dir, "zarr.json"),
        ZarrFormat::V2 => join(&found.dir, ".zarray"),
    };
    let mut array = build_array(
        uri,
        storage,
        &found.name,
        &node_path(&found.dir),
        &metadata_key,
        found.format,
        &found.doc,
        &found.v2_attrs,
    )?;
    // What a Zarr target keeps when it rewrites the array (see `meta::kept_docs`); a lone array
    // has its documents at the root of the store.
    array.meta.encoding = Some(meta::native_encoding(
        found.format,
        &found.doc,
        &found.v2_attrs,
        found.dir.is_empty(),
    ));
    Ok(array)
}

/// The zarrs node path of the node whose documents are in store folder `dir`.
pub(crate) fn node_path(dir: &str) -> String {
    format!("/{dir}")
}

/// Opens the array at zarrs node `path` from its metadata documents; `name` is what the
/// dataset calls it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_array(
    uri: &str,
    storage: &Storage,
    name: &str,
    path: &str,
    metadata_key: &str,
    format: ZarrFormat,
    doc: &Value,
    v2_attrs: &Map<String, Value>,
) -> Result<ZarrArray> {
    let parsed = meta::parse_array(doc, v2_attrs, format).map_err(|e| match e {
        ParseError::Unsupported(what) => ZarrError::Unsupported {
            uri: uri.into(),
            variable: name.into(),
            what,
        },
        ParseError::Malformed(message) => ZarrError::Metadata {
            uri: uri.into(),
            key: metadata_key.into(),
            message,
        },
    })?;
    let metadata =
        zarrs_metadata(doc, v2_attrs, format).map_err(|message| ZarrError::Metadata {
            uri: uri.into(),
            key: metadata_key.into(),
            message,
        })?;
    let shape: Vec<u64> = doc
        .get("shape")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let meta = ArrayMeta {
        name: name.into(),
        dims: parsed.dims,
        dtype: parsed.dtype,
        grid: ChunkGrid::regular(&shape, &parsed.chunk),
        fill_value: None,
        attrs: parsed.attrs,
        codecs: parsed.codecs,
        encoding: None,
        unlimited_dims: Vec::new(),
    };
    let mut array = ZarrArray::new(
        uri.into(),
        meta,
        storage.clone(),
        path,
        metadata,
        parsed.chunk,
        parsed.cost,
    )?;
    let zarrs_size = array.array.data_type().fixed_size();
    if zarrs_size != Some(parsed.dtype.size()) {
        return Err(ZarrError::Unsupported {
            uri: uri.into(),
            variable: name.into(),
            what: format!("data type {} as zarrs reads it", parsed.dtype),
        });
    }
    if !parsed.fill_is_null {
        array.meta.fill_value =
            Scalar::from_bytes(parsed.dtype, array.array.fill_value().as_ne_bytes());
    }
    match format {
        ZarrFormat::V2 => {
            cf_fill::from_v2(&mut array.meta.attrs, array.meta.fill_value, parsed.dtype)
        }
        ZarrFormat::V3 => cf_fill::from_v3(&mut array.meta.attrs, parsed.dtype),
    }
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_uris() {
        assert_eq!(array_name_from_uri("/data/tas.zarr/"), "tas");
        assert_eq!(array_name_from_uri("s3://bucket/x/precip"), "precip");
        assert_eq!(array_name_from_uri("s3://bucket"), "bucket");
        assert_eq!(array_name_from_uri("."), "array");
        assert_eq!(node_path("a/b"), "/a/b");
        assert_eq!(node_path(""), "/");
    }
}
