//! Writing a Zarr v2 or v3 group: arrays first, group metadata and consolidated metadata last.

use crate::array::ZarrArray;
use crate::error::{Result, ZarrError};
use crate::meta::{self, ArrayDocs, KeptDocs};
use crate::options::{ZarrFormat, ZarrWriteOptions};
use crate::source::{build_array, get_json, join, node_path};
use crate::store::{open_store, Storage};
use rechunker_core::{
    array::EncodeSample, ArrayMeta, ChunkGrid, ChunkedArrayMut, DatasetMeta, DatasetTarget,
    DimGrid, Region,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use zarrs::storage::StoreKey;

/// Metadata documents read, written or removed at once (see `ZarrTarget::each_at_once`).
const METADATA_AT_ONCE: usize = 16;

/// A Zarr group (or lone array) being written. Arrays are created (or reopened, when a run
/// resumes) by [`DatasetTarget::create_array`]; [`DatasetTarget::finalize`] writes the group
/// metadata and then the consolidated metadata, last, so that no reader sees a half-written
/// group as complete. A lone source array (see [`rechunker_core::NativeEncoding::lone`]) is
/// written as a lone array at the root, whose metadata document finalize writes, last.
///
/// Unless the options say otherwise, each array keeps its Zarr source's format version and
/// encoding (see [`ZarrWriteOptions`]).
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
        if options.zarr_format == Some(ZarrFormat::V2) && options.shards.is_some() {
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

    /// The version an array is written in: `--zarr-format`, else its Zarr source's, else 3.
    fn format_of(&self, meta: &ArrayMeta) -> ZarrFormat {
        self.options
            .zarr_format
            .or_else(|| meta::kept_docs(meta).map(|k| k.format))
            .unwrap_or_default()
    }

    /// The source's documents to keep: for an array from Zarr, when no codec is given and it is
    /// written in its source's version.
    fn kept(&self, meta: &ArrayMeta) -> Option<KeptDocs> {
        if self.options.codec.is_some() {
            return None;
        }
        meta::kept_docs(meta).filter(|k| k.format == self.format_of(meta))
    }

    /// The version a group of `meta`'s arrays is written in.
    fn group_format(&self, meta: &DatasetMeta) -> ZarrFormat {
        self.options
            .zarr_format
            .or_else(|| meta.arrays.first().map(|a| self.format_of(a)))
            .unwrap_or_default()
    }

    /// The metadata documents of one array.
    fn docs(&self, meta: &ArrayMeta, layout: &Layout) -> Result<(ZarrFormat, ArrayDocs)> {
        let format = self.format_of(meta);
        let docs = match self.kept(meta) {
            Some(kept) => {
                meta::rechunked_docs(&kept, &meta.shape(), &layout.chunk, layout.shard.as_deref())
            }
            None => meta::array_docs(
                meta,
                format,
                self.options.codec.unwrap_or_default(),
                &layout.chunk,
                layout.shard.as_deref(),
            ),
        }
        .map_err(|what| self.option_error(meta, what))?;
        Ok((format, docs))
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
        if self.format_of(meta) == ZarrFormat::V2 {
            return Err(self.option_error(
                meta,
                "sharding needs Zarr format 3 (this array is Zarr v2); add --zarr-format 3".into(),
            ));
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

    /// `op` on every item at once, [`METADATA_AT_ONCE`] at a time: on an object store each
    /// metadata read, write or removal is a round trip, and a dataset of many variables would
    /// otherwise pay them one after another. Results in the order of `items`.
    fn each_at_once<I: Sync, T: Send>(
        &self,
        items: &[I],
        op: impl Fn(&I) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(items.len());
        for batch in items.chunks(METADATA_AT_ONCE) {
            let results: Vec<Result<T>> = std::thread::scope(|scope| {
                let running: Vec<_> = batch.iter().map(|item| scope.spawn(|| op(item))).collect();
                running
                    .into_iter()
                    .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            for r in results {
                out.push(r?);
            }
        }
        Ok(out)
    }

    /// [`get`](Self::get) of every key at once.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>> {
        self.each_at_once(keys, |k| self.get(k))
    }

    /// [`set`](Self::set) of every document at once.
    fn set_many(&self, docs: &[(String, Value)]) -> Result<()> {
        self.each_at_once(docs, |(k, v)| self.set(k, v)).map(drop)
    }

    /// Before the first array is written, removes the root group metadata an earlier run may
    /// have left, so the target does not look complete while it is rewritten. Refuses to write
    /// into a lone array.
    fn prepare_root(&self) -> Result<()> {
        self.once_for_root(|| {
            let [v2_array, v3_node] = self
                .get_many(&[".zarray".into(), "zarr.json".into()])?
                .try_into()
                .unwrap_or_default();
            let is_array = v2_array.is_some()
                || v3_node
                    .is_some_and(|d| d.get("node_type").and_then(Value::as_str) == Some("array"));
            if is_array {
                return Err(ZarrError::Exists {
                    uri: self.uri.clone(),
                    key: "/".into(),
                    message: "it is a Zarr array, not a group".into(),
                });
            }
            tracing::debug!(uri = %self.uri, "removing old root group metadata before writing");
            self.each_at_once(&["zarr.json", ".zmetadata", ".zgroup", ".zattrs"], |k| {
                self.erase(k)
            })?;
            Ok(())
        })
    }

    /// Before a lone array is written at the root: refuses a root that holds a group, Zarr of the
    /// other version or another array; removes the metadata of the same array (an earlier
    /// run's), so the target does not look complete while it is rewritten (finalize writes it
    /// again).
    fn prepare_lone_root(&self, meta_key: &str, other_key: &str, docs: &ArrayDocs) -> Result<()> {
        self.once_for_root(|| {
            let is_group = self.get(".zgroup")?.is_some()
                || self.get(".zmetadata")?.is_some()
                || self
                    .get("zarr.json")?
                    .is_some_and(|d| d.get("node_type").and_then(Value::as_str) == Some("group"));
            if is_group {
                return Err(ZarrError::Exists {
                    uri: self.uri.clone(),
                    key: "/".into(),
                    message: "it is a Zarr group, and the source is a lone array".into(),
                });
            }
            if self.get(other_key)?.is_some() {
                return Err(ZarrError::Exists {
                    uri: self.uri.clone(),
                    key: other_key.into(),
                    message: "it is Zarr of another version".into(),
                });
            }
            if let Some(existing) = self.get(meta_key)? {
                let same_attrs = match &docs.attrs {
                    Some(a) => self.get(".zattrs")?.as_ref() == Some(a),
                    None => true,
                };
                if existing != docs.array || !same_attrs {
                    return Err(ZarrError::Exists {
                        uri: self.uri.clone(),
                        key: meta_key.into(),
                        message:
                            "another array is there (shape, type, chunks, codecs or attributes differ)"
                                .into(),
                    });
                }
                tracing::debug!(uri = %self.uri, "removing the lone array's old metadata before writing");
                self.erase(meta_key)?;
            }
            Ok(())
        })
    }

    /// Runs `prepare` once per target, before the first array is written: the root's old
    /// metadata is dealt with exactly once, however many arrays are created.
    fn once_for_root(&self, prepare: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut done = self
            .root_prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*done {
            prepare()?;
            *done = true;
        }
        Ok(())
    }

    /// Creates (or reopens, when identical) one array and returns it with its concrete type.
    /// Encodes `data`, the values of `region` (one write unit), as [`ZarrTarget::array`]'s
    /// array of `meta` would, into a store in memory, until `seconds` have passed (1 to 8
    /// times); only the encoding and storing is timed. What the planner times to learn the
    /// target codec's rate on this data.
    pub fn encode_sample(
        &self,
        meta: &ArrayMeta,
        region: &Region,
        data: &[u8],
        seconds: f64,
    ) -> Result<EncodeSample> {
        let layout = self.layout(meta)?;
        let (format, docs) = self.docs(meta, &layout)?;
        let v2_attrs = docs.v2_attrs();
        let memory = Arc::new(zarrs_storage::store::MemoryStore::new());
        let storage: Storage = memory.clone();
        let meta_key = match format {
            ZarrFormat::V3 => "zarr.json",
            ZarrFormat::V2 => ".zarray",
        };
        let name = match meta.name.trim_matches('/') {
            "" => "sample",
            name => name,
        };
        let array = build_array(
            &self.uri,
            &storage,
            name,
            &node_path(""),
            meta_key,
            format,
            &docs.array,
            &v2_attrs,
        )?;
        let mut sample = EncodeSample {
            times: 0,
            seconds: 0.0,
            encoded: 0,
        };
        while sample.times == 0 || (sample.seconds < seconds && sample.times < 8) {
            let started = std::time::Instant::now();
            array.write(region, data, 1)?;
            sample.seconds += started.elapsed().as_secs_f64();
            sample.times += 1;
        }
        sample.encoded =
            zarrs_storage::ListableStorageTraits::size(memory.as_ref()).map_err(|e| {
                ZarrError::Store {
                    uri: self.uri.clone(),
                    message: format!("encoding a sample in memory: {e}"),
                }
            })?;
        Ok(sample)
    }

    pub fn array(&self, meta: &ArrayMeta) -> Result<ZarrArray> {
        let layout = self.layout(meta)?;
        let (format, docs) = self.docs(meta, &layout)?;
        let v2_attrs = docs.v2_attrs();
        let lone = meta.encoding.as_ref().is_some_and(|e| e.lone);
        let name = meta.name.trim_matches('/');
        if name.is_empty() {
            return Err(self.option_error(meta, "an array needs a name".into()));
        }
        // A lone array lives at the root of the store.
        let dir = if lone { "" } else { name };
        let (meta_key, other_key) = match format {
            ZarrFormat::V3 => (join(dir, "zarr.json"), join(dir, ".zarray")),
            ZarrFormat::V2 => (join(dir, ".zarray"), join(dir, "zarr.json")),
        };
        // Validate with zarrs before anything is stored.
        let mut array = build_array(
            &self.uri,
            &self.storage,
            name,
            &node_path(dir),
            &meta_key,
            format,
            &docs.array,
            &v2_attrs,
        )?;
        array.meta.fill_value = meta.fill_value.or(array.meta.fill_value);
        array.meta.encoding = meta.encoding.clone();
        if lone {
            // Its metadata is written by finalize, last: until then the target holds chunks only.
            self.prepare_lone_root(&meta_key, &other_key, &docs)?;
            return Ok(array);
        }
        let ArrayDocs { array: doc, attrs } = docs;
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

    /// A lone array's metadata, at the root: v2 `.zattrs` before `.zarray`, so the array is
    /// never seen without its attributes.
    fn finalize_lone(&self, array: &ArrayMeta) -> Result<()> {
        let layout = self.layout(array)?;
        let (format, docs) = self.docs(array, &layout)?;
        match format {
            ZarrFormat::V3 => self.set("zarr.json", &docs.array),
            ZarrFormat::V2 => {
                match &docs.attrs {
                    Some(a) => self.set(".zattrs", a)?,
                    None => self.erase(".zattrs")?,
                }
                self.set(".zarray", &docs.array)
            }
        }
    }

    fn finalize_v3(&self, meta: &DatasetMeta) -> Result<()> {
        // Consolidated nodes in sorted key order: zarr-python 3 groups a node's children by
        // consecutive keys of one depth, so the children of each group must come together.
        let mut nodes = BTreeMap::new();
        let doc = json!({"zarr_format": 3, "node_type": "group", "attributes": {}});
        let groups: Vec<(String, Value)> = Self::groups(meta)
            .into_iter()
            .map(|g| (join(&g, "zarr.json"), doc.clone()))
            .collect();
        self.set_many(&groups)?;
        for (group, (_, doc)) in Self::groups(meta).into_iter().zip(groups) {
            nodes.insert(group, doc);
        }
        let names: Vec<&str> = meta
            .arrays
            .iter()
            .map(|a| a.name.trim_matches('/'))
            .collect();
        let keys: Vec<String> = names.iter().map(|n| join(n, "zarr.json")).collect();
        for ((name, key), doc) in names.iter().zip(&keys).zip(self.get_many(&keys)?) {
            let doc = doc.ok_or_else(|| self.missing_array(name, key.clone()))?;
            nodes.insert(name.to_string(), doc);
        }
        let root = json!({
            "zarr_format": 3,
            "node_type": "group",
            "attributes": meta::group_attributes_json(&meta.attrs),
            "consolidated_metadata": {
                "kind": "inline",
                "must_understand": false,
                "metadata": Map::from_iter(nodes),
            },
        });
        self.set("zarr.json", &root)
    }

    fn finalize_v2(&self, meta: &DatasetMeta) -> Result<()> {
        // Sorted keys, for the same reason as in `finalize_v3`.
        let mut entries = BTreeMap::new();
        let group = json!({"zarr_format": 2});
        // The arrays' documents as written (by this process or the workers of a distributed
        // run), read all at once.
        let names: Vec<&str> = meta
            .arrays
            .iter()
            .map(|a| a.name.trim_matches('/'))
            .collect();
        let keys: Vec<String> = names
            .iter()
            .flat_map(|n| [join(n, ".zarray"), join(n, ".zattrs")])
            .collect();
        let docs = self.get_many(&keys)?;
        for ((name, keys), docs) in names.iter().zip(keys.chunks(2)).zip(docs.chunks(2)) {
            let array = docs[0]
                .clone()
                .ok_or_else(|| self.missing_array(name, keys[0].clone()))?;
            entries.insert(keys[0].clone(), array);
            if let Some(attrs) = docs[1].clone() {
                entries.insert(keys[1].clone(), attrs);
            }
        }
        // Every group document at once, then the consolidated metadata last: only it makes the
        // target look complete.
        let mut groups: Vec<(String, Value)> = Self::groups(meta)
            .into_iter()
            .map(|g| (join(&g, ".zgroup"), group.clone()))
            .chain([(".zgroup".to_string(), group.clone())])
            .collect();
        let attrs = meta::group_attributes_json(&meta.attrs);
        if attrs.is_empty() {
            self.erase(".zattrs")?;
        } else {
            groups.push((".zattrs".into(), Value::Object(attrs)));
        }
        self.set_many(&groups)?;
        entries.extend(groups);
        self.set(
            ".zmetadata",
            &json!({"zarr_consolidated_format": 1, "metadata": Map::from_iter(entries)}),
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

    fn encode_sample(
        &self,
        meta: &ArrayMeta,
        region: &Region,
        data: &[u8],
        seconds: f64,
    ) -> Option<rechunker_core::Result<EncodeSample>> {
        Some(ZarrTarget::encode_sample(self, meta, region, data, seconds).map_err(Into::into))
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        let item = meta.item_size() as u64;
        match self.layout(meta) {
            Ok(layout) => {
                let bytes = |shape: &[u64]| shape.iter().product::<u64>() * item;
                // A kept chain may have more stages than the one compressor we write (filters,
                // order F, transpose): one more chunk-sized buffer each.
                let extra = self
                    .docs(meta, &layout)
                    .ok()
                    .map_or(0, |(format, docs)| meta::extra_encode_stages(&docs, format));
                // A thread keeps a window of encoded chunks (or shards) in flight while it
                // encodes the next (see `store::writes_behind`).
                let in_flight = crate::store::write_window_bytes(
                    bytes(layout.unit()),
                    self.local_root.is_none(),
                );
                meta::write_overhead(
                    bytes(layout.unit()),
                    layout.shard.as_ref().map(|_| bytes(&layout.chunk)),
                ) + extra * bytes(&layout.chunk)
                    + in_flight
            }
            // create_array reports the problem; until then, budget for a plain chunk.
            Err(_) => meta::write_overhead(meta.max_chunk_bytes(), None),
        }
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        if let Some(root) = &self.local_root {
            rechunker_core::scratch::remove_own_temp_files(root);
        }
        if let Some(array) = meta.lone_array() {
            self.finalize_lone(array)?;
            return Ok(());
        }
        match self.group_format(meta) {
            ZarrFormat::V3 => self.finalize_v3(meta)?,
            ZarrFormat::V2 => self.finalize_v2(meta)?,
        }
        Ok(())
    }
}
