//! Writing a Zarr v2 or v3 group: arrays first, group metadata and consolidated metadata last.

use crate::array::ZarrArray;
use crate::error::{Result, ZarrError};
use crate::meta::{self, ArrayDocs};
use crate::options::{ZarrFormat, ZarrWriteOptions};
use crate::source::{build_array, get_json, join, node_path};
use crate::store::{open_store, Storage};
use rechunker_core::{ArrayMeta, ChunkGrid, ChunkedArrayMut, DatasetMeta, DatasetTarget, DimGrid};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use zarrs::storage::StoreKey;

/// A Zarr group being written. Arrays are created (or reopened, when a run resumes) by
/// [`DatasetTarget::create_array`]; [`DatasetTarget::finalize`] writes the group metadata and
/// then the consolidated metadata, last, so that no reader sees a half-written group as
/// complete.
pub struct ZarrTarget {
    uri: String,
    options: ZarrWriteOptions,
    storage: Storage,
    /// The folder of a local target, where a killed run may have left temporary files.
    local_root: Option<std::path::PathBuf>,
    /// Set once the root's old group metadata (from an earlier run) has been removed.
    root_prepared: Mutex<bool>,
}

impl std::fmt::Debug for ZarrTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrTarget")
            .field("uri", &self.uri)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Where one array's pieces go: its chunk shape and, when sharded, its shard shape.
struct Layout {
    chunk: Vec<u64>,
    shard: Option<Vec<u64>>,
}

impl Layout {
    /// The unit that is encoded and written whole.
    fn unit(&self) -> &[u64] {
        self.shard.as_deref().unwrap_or(&self.chunk)
    }
}

impl ZarrTarget {
    /// A target at `uri` (a local path, `file://`, `s3://`, `gs://` or `az://`). Nothing is
    /// read or written until the first array is created, so the same object can plan a run.
    pub fn create(uri: &str, options: ZarrWriteOptions) -> Result<ZarrTarget> {
        if options.zarr_format == ZarrFormat::V2 && options.shards.is_some() {
            return Err(ZarrError::Option(
                "sharding needs Zarr format 3; drop the shards or write --zarr-format 3".into(),
            ));
        }
        let store = open_store(uri)?;
        if !store.writable {
            return Err(ZarrError::Store {
                uri: uri.into(),
                message: "HTTP stores are read-only; write to a local path, s3://, gs:// or az://"
                    .into(),
            });
        }
        Ok(ZarrTarget {
            uri: uri.into(),
            options,
            storage: store.storage,
            local_root: store.local_root,
            root_prepared: Mutex::new(false),
        })
    }

    pub fn options(&self) -> &ZarrWriteOptions {
        &self.options
    }

    /// The grid of what is written whole for an array of `meta` (whose grid is the chunk grid):
    /// its shards when sharded, else its chunks. Write regions must be unions of these.
    pub fn write_grid(&self, meta: &ArrayMeta) -> Result<ChunkGrid> {
        let layout = self.layout(meta)?;
        Ok(ChunkGrid::regular(&meta.shape(), layout.unit()))
    }

    fn option_error(&self, meta: &ArrayMeta, message: String) -> ZarrError {
        ZarrError::Option(format!("{}: array `{}`: {message}", self.uri, meta.name))
    }

    fn layout(&self, meta: &ArrayMeta) -> Result<Layout> {
        let mut chunk = Vec::with_capacity(meta.ndim());
        for (d, g) in meta.grid.dims.iter().enumerate() {
            match g.clone().simplified() {
                DimGrid::Regular { len, chunk: c } => {
                    chunk.push(if len == 0 { c.max(1) } else { c.clamp(1, len) })
                }
                DimGrid::Explicit { .. } => {
                    return Err(ZarrError::Unsupported {
                        uri: self.uri.clone(),
                        variable: meta.name.clone(),
                        what: format!(
                            "an irregular chunk grid along `{}`",
                            meta.dims.get(d).map_or("?", String::as_str)
                        ),
                    })
                }
            }
        }
        let Some(spec) = &self.options.shards else {
            return Ok(Layout { chunk, shard: None });
        };
        if self.options.zarr_format == ZarrFormat::V2 {
            return Err(self.option_error(meta, "sharding needs Zarr format 3".into()));
        }
        let shape = meta.shape();
        let mut shard = Vec::with_capacity(chunk.len());
        for (d, want) in spec.lengths(&meta.dims).into_iter().enumerate() {
            let c = chunk[d];
            let dim = meta.dims.get(d).map_or("?", String::as_str);
            shard.push(match want {
                None => c,
                // -1 (or any length from the dimension's up) is one shard along it.
                Some(l) if l >= shape[d] => shape[d].div_ceil(c).max(1) * c,
                Some(l) if l == c => c,
                // A coordinate variable is stored in one chunk whatever --chunks says (as
                // xarray writes them); the shard holds that chunk, as one longer shard would.
                Some(_) if meta.is_coordinate() && c >= shape[d] => c,
                Some(l) if l < c => {
                    return Err(self.option_error(
                        meta,
                        format!(
                            "shard length {l} along `{dim}` is shorter than the chunk length {c}; a shard holds whole chunks: give a multiple of {c}, or -1 for the whole dimension"
                        ),
                    ))
                }
                Some(l) if l % c == 0 => l,
                Some(l) => {
                    return Err(self.option_error(
                        meta,
                        format!(
                            "shard length {l} along `{dim}` is not a multiple of the chunk length {c}"
                        ),
                    ))
                }
            });
        }
        Ok(Layout {
            chunk,
            shard: Some(shard),
        })
    }

    fn set(&self, key: &str, value: &Value) -> Result<()> {
        let io_error = |message: String| ZarrError::Io {
            uri: self.uri.clone(),
            key: key.into(),
            action: "write",
            message,
        };
        let store_key = StoreKey::new(key).map_err(|e| io_error(e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| io_error(e.to_string()))?;
        self.storage
            .set(&store_key, bytes.into())
            .map_err(|e| io_error(e.to_string()))
    }

    fn erase(&self, key: &str) -> Result<()> {
        let io_error = |message: String| ZarrError::Io {
            uri: self.uri.clone(),
            key: key.into(),
            action: "remove",
            message,
        };
        let store_key = StoreKey::new(key).map_err(|e| io_error(e.to_string()))?;
        self.storage
            .erase(&store_key)
            .map_err(|e| io_error(e.to_string()))
    }

    fn get(&self, key: &str) -> Result<Option<Value>> {
        get_json(&self.storage, &self.uri, key)
    }

    /// Before the first array is written, removes the root group metadata an earlier run may
    /// have left, so the target does not look complete while it is rewritten. Refuses to write
    /// into a lone array.
    fn prepare_root(&self) -> Result<()> {
        let mut done = self
            .root_prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *done {
            return Ok(());
        }
        let is_array = self.get(".zarray")?.is_some()
            || self
                .get("zarr.json")?
                .is_some_and(|d| d.get("node_type").and_then(Value::as_str) == Some("array"));
        if is_array {
            return Err(ZarrError::Exists {
                uri: self.uri.clone(),
                key: "/".into(),
                message: "it is a Zarr array, not a group".into(),
            });
        }
        tracing::debug!(uri = %self.uri, "removing old root group metadata before writing");
        for key in ["zarr.json", ".zmetadata", ".zgroup", ".zattrs"] {
            self.erase(key)?;
        }
        *done = true;
        Ok(())
    }

    /// Creates (or reopens, when identical) one array and returns it with its concrete type.
    pub fn array(&self, meta: &ArrayMeta) -> Result<ZarrArray> {
        let layout = self.layout(meta)?;
        let format = self.options.zarr_format;
        let ArrayDocs { array: doc, attrs } = meta::array_docs(
            meta,
            format,
            self.options.codec,
            &layout.chunk,
            layout.shard.as_deref(),
        )
        .map_err(|what| self.option_error(meta, what))?;
        let v2_attrs: Map<String, Value> = attrs
            .as_ref()
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let name = meta.name.trim_matches('/');
        if name.is_empty() {
            return Err(self.option_error(meta, "an array needs a name".into()));
        }
        let (meta_key, other_key) = match format {
            ZarrFormat::V3 => (join(name, "zarr.json"), join(name, ".zarray")),
            ZarrFormat::V2 => (join(name, ".zarray"), join(name, "zarr.json")),
        };
        // Validate with zarrs before anything is stored.
        let mut array = build_array(
            &self.uri,
            &self.storage,
            name,
            &node_path(name),
            &meta_key,
            format,
            &doc,
            &v2_attrs,
        )?;
        array.meta.fill_value = meta.fill_value.or(array.meta.fill_value);
        self.prepare_root()?;
        if self.get(&other_key)?.is_some() {
            return Err(ZarrError::Exists {
                uri: self.uri.clone(),
                key: other_key,
                message: format!("it is Zarr of another version than {format}"),
            });
        }
        let attrs_key = join(name, ".zattrs");
        let same = match self.get(&meta_key)? {
            None => false,
            Some(existing) if existing == doc => match &attrs {
                Some(a) => self.get(&attrs_key)?.as_ref() == Some(a),
                None => true,
            },
            Some(_) => {
                return Err(ZarrError::Exists {
                    uri: self.uri.clone(),
                    key: meta_key,
                    message: "shape, type, chunks, codecs or attributes differ".into(),
                })
            }
        };
        if !same {
            if let Some(a) = &attrs {
                // .zattrs before .zarray: an array is never seen without its dimension names.
                self.set(&attrs_key, a)?;
            }
            self.set(&meta_key, &doc)?;
        }
        Ok(array)
    }

    /// Group paths (not the root) that hold the arrays of `meta`.
    fn groups(meta: &DatasetMeta) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for a in &meta.arrays {
            let name = a.name.trim_matches('/');
            let mut at = 0;
            while let Some(i) = name[at..].find('/') {
                out.insert(name[..at + i].to_string());
                at += i + 1;
            }
        }
        out
    }

    fn missing_array(&self, name: &str, key: String) -> ZarrError {
        ZarrError::Metadata {
            uri: self.uri.clone(),
            key,
            message: format!("array `{name}` was never created; run the rechunk again"),
        }
    }

    fn finalize_v3(&self, meta: &DatasetMeta) -> Result<()> {
        let mut nodes = Map::new();
        for group in Self::groups(meta) {
            let doc = json!({"zarr_format": 3, "node_type": "group", "attributes": {}});
            self.set(&join(&group, "zarr.json"), &doc)?;
            nodes.insert(group, doc);
        }
        for a in &meta.arrays {
            let name = a.name.trim_matches('/');
            let key = join(name, "zarr.json");
            let doc = self
                .get(&key)?
                .ok_or_else(|| self.missing_array(name, key))?;
            nodes.insert(name.to_string(), doc);
        }
        let root = json!({
            "zarr_format": 3,
            "node_type": "group",
            "attributes": meta::group_attributes_json(&meta.attrs),
            "consolidated_metadata": {
                "kind": "inline",
                "must_understand": false,
                "metadata": nodes,
            },
        });
        self.set("zarr.json", &root)
    }

    fn finalize_v2(&self, meta: &DatasetMeta) -> Result<()> {
        let mut entries = Map::new();
        let group = json!({"zarr_format": 2});
        for g in Self::groups(meta) {
            let key = join(&g, ".zgroup");
            self.set(&key, &group)?;
            entries.insert(key, group.clone());
        }
        for a in &meta.arrays {
            let name = a.name.trim_matches('/');
            let key = join(name, ".zarray");
            let doc = self
                .get(&key)?
                .ok_or_else(|| self.missing_array(name, key.clone()))?;
            entries.insert(key, doc);
            let attrs_key = join(name, ".zattrs");
            if let Some(attrs) = self.get(&attrs_key)? {
                entries.insert(attrs_key, attrs);
            }
        }
        let attrs = meta::group_attributes_json(&meta.attrs);
        if attrs.is_empty() {
            self.erase(".zattrs")?;
        } else {
            let attrs = Value::Object(attrs);
            self.set(".zattrs", &attrs)?;
            entries.insert(".zattrs".into(), attrs);
        }
        self.set(".zgroup", &group)?;
        entries.insert(".zgroup".into(), group);
        self.set(
            ".zmetadata",
            &json!({"zarr_consolidated_format": 1, "metadata": entries}),
        )
    }
}

impl DatasetTarget for ZarrTarget {
    fn location(&self) -> &str {
        &self.uri
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        Ok(Arc::new(self.array(meta)?))
    }

    fn write_grid(&self, meta: &ArrayMeta) -> rechunker_core::Result<ChunkGrid> {
        Ok(ZarrTarget::write_grid(self, meta)?)
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        let item = meta.item_size() as u64;
        match self.layout(meta) {
            Ok(layout) => {
                let bytes = |shape: &[u64]| shape.iter().product::<u64>() * item;
                meta::write_overhead(
                    bytes(layout.unit()),
                    layout.shard.as_ref().map(|_| bytes(&layout.chunk)),
                )
            }
            // create_array reports the problem; until then, budget for a plain chunk.
            Err(_) => meta::write_overhead(meta.max_chunk_bytes(), None),
        }
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        if let Some(root) = &self.local_root {
            rechunker_core::scratch::remove_own_temp_files(root);
        }
        match self.options.zarr_format {
            ZarrFormat::V3 => self.finalize_v3(meta)?,
            ZarrFormat::V2 => self.finalize_v2(meta)?,
        }
        Ok(())
    }
}
