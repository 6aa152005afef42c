//! Zarr metadata documents as JSON: building them for writing, reading dims, dtype, grid, fill
//! value and codecs out of them, and the memory their codec chains need.
//!
//! Metadata is written from JSON built here (and validated by zarrs before it is stored) rather
//! than through zarrs' writers, so the documents hold exactly what zarr-python writes: no
//! `_zarrs` attribute, no `node_type` in v2 `.zarray`.

use crate::cf_fill;
use crate::options::{Codec, ZarrFormat};
use rechunker_core::{
    ArrayMeta, AttrValue, Attributes, DataType, DatasetMeta, NativeEncoding, Scalar,
};
use serde_json::{json, Map, Value};

/// The v2 attribute xarray keeps dimension names in.
pub(crate) const ARRAY_DIMENSIONS: &str = "_ARRAY_DIMENSIONS";
/// The attribute zarrs adds to arrays it writes; never copied.
const ZARRS_ATTRIBUTE: &str = "_zarrs";

/// The numpy type string of `dtype` in Zarr v2 (little-endian).
pub(crate) fn dtype_v2(dtype: DataType) -> &'static str {
    match dtype {
        DataType::Bool => "|b1",
        DataType::Int8 => "|i1",
        DataType::Int16 => "<i2",
        DataType::Int32 => "<i4",
        DataType::Int64 => "<i8",
        DataType::UInt8 => "|u1",
        DataType::UInt16 => "<u2",
        DataType::UInt32 => "<u4",
        DataType::UInt64 => "<u8",
        DataType::Float32 => "<f4",
        DataType::Float64 => "<f8",
        DataType::Char => "|S1",
    }
}

/// The v3 `data_type` of `dtype`: its name, or for characters what zarr-python 3 writes for
/// numpy `S1` (`null_terminated_bytes` of one byte).
pub(crate) fn dtype_v3(dtype: DataType) -> Value {
    match dtype {
        DataType::Char => {
            json!({"name": NULL_TERMINATED_BYTES, "configuration": {"length_bytes": 1}})
        }
        other => json!(other.name()),
    }
}

/// zarr-python 3's v3 name of numpy's fixed-length bytes (`S<n>`).
const NULL_TERMINATED_BYTES: &str = "null_terminated_bytes";

/// True for a v3 `data_type` of one-byte `null_terminated_bytes` (numpy `S1`).
fn is_v3_char(value: &Value) -> bool {
    value.get("name").and_then(Value::as_str) == Some(NULL_TERMINATED_BYTES)
        && value.pointer("/configuration/length_bytes") == Some(&json!(1))
}

/// An array document as zarrs is given it: zarrs has no one-byte character type, so a
/// character array (v2 `|S1`, v3 one-byte `null_terminated_bytes`) is handed over as `uint8`
/// with its base64 fill value as that byte. The bytes stored are the same; only what the
/// store's own document says differs. Other documents are left alone.
pub(crate) fn zarrs_view(doc: &mut Value, format: ZarrFormat) {
    let (field, uint8) = match format {
        ZarrFormat::V2 => ("dtype", "|u1"),
        ZarrFormat::V3 => ("data_type", "uint8"),
    };
    let Some(dtype) = doc.get(field) else {
        return;
    };
    if parse_dtype(dtype, format) != Ok(DataType::Char) {
        return;
    }
    doc[field] = json!(uint8);
    if let Some(text) = doc.get("fill_value").and_then(Value::as_str) {
        let byte = cf_fill::base64_decode(text)
            .and_then(|b| b.first().copied())
            .unwrap_or(0);
        doc["fill_value"] = json!(byte);
    }
}

/// Spells a v2 document's one-byte `dtype` without a byte order (`|u1`, `|i1`, `|b1`), as numpy
/// does: NCZarr writes `<u1`, which zarrs and zarr-python 3 refuse. Other types are left alone.
pub(crate) fn normalize_v2_dtype(doc: &mut Value) {
    let Some(dtype) = doc.get_mut("dtype") else {
        return;
    };
    if let Some(body) = dtype
        .as_str()
        .and_then(|s| s.strip_prefix(['<', '>', '=']))
        .filter(|body| matches!(*body, "u1" | "i1" | "b1"))
    {
        *dtype = Value::String(format!("|{body}"));
    }
}

/// Parses a v2 numpy type string (any byte order) or a v3 data type name.
pub(crate) fn parse_dtype(value: &Value, format: ZarrFormat) -> Result<DataType, String> {
    if format == ZarrFormat::V3 && is_v3_char(value) {
        return Ok(DataType::Char);
    }
    let Some(name) = value.as_str() else {
        return Err(format!("data type {value}"));
    };
    let parsed = match format {
        ZarrFormat::V3 => DataType::from_name(name).filter(|d| *d != DataType::Char),
        ZarrFormat::V2 => {
            let body = name.trim_start_matches(['<', '>', '|', '=']);
            match body {
                "b1" | "?" => Some(DataType::Bool),
                "i1" => Some(DataType::Int8),
                "i2" => Some(DataType::Int16),
                "i4" => Some(DataType::Int32),
                "i8" => Some(DataType::Int64),
                "u1" => Some(DataType::UInt8),
                "u2" => Some(DataType::UInt16),
                "u4" => Some(DataType::UInt32),
                "u8" => Some(DataType::UInt64),
                "f4" => Some(DataType::Float32),
                "f8" => Some(DataType::Float64),
                "S1" => Some(DataType::Char),
                _ => None,
            }
        }
    };
    parsed.ok_or_else(|| format!("data type `{name}`"))
}

/// The fill value as Zarr JSON (`"NaN"`, `"Infinity"` for non-finite floats).
pub(crate) fn fill_json(fill: Scalar, dtype: DataType) -> Option<Value> {
    // Narrow to the array's type first, so that e.g. 1e40 for float32 is caught.
    let bytes = fill.to_bytes(dtype)?;
    if dtype == DataType::Char {
        // numpy bytes in base64, as zarr-python writes them; `\0` is the empty string.
        let text: &[u8] = if bytes == [0] { &[] } else { &bytes };
        return Some(json!(cf_fill::base64_encode(text)));
    }
    Some(match Scalar::from_bytes(dtype, &bytes)? {
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(v) => json!(v),
        Scalar::UInt(v) => json!(v),
        Scalar::Float(v) if v.is_nan() => json!("NaN"),
        Scalar::Float(v) if v.is_infinite() => {
            json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Scalar::Float(v) => json!(v),
    })
}

/// The v3 codec list for `codec` on `item`-byte elements (without sharding).
fn codecs_v3(codec: Codec, item: usize) -> Vec<Value> {
    let mut out = vec![bytes_codec(item)];
    match codec {
        Codec::None => {}
        Codec::Zstd { level } => {
            out.push(json!({"name": "zstd", "configuration": {"level": level, "checksum": false}}))
        }
        Codec::Gzip { level } => {
            out.push(json!({"name": "gzip", "configuration": {"level": level}}))
        }
        Codec::Blosc {
            cname,
            clevel,
            shuffle,
        } => out.push(json!({"name": "blosc", "configuration": {
            "cname": cname.name(),
            "clevel": clevel,
            "shuffle": shuffle.name(),
            "typesize": item,
            "blocksize": 0,
        }})),
    }
    out
}

fn bytes_codec(item: usize) -> Value {
    if item == 1 {
        json!({"name": "bytes"})
    } else {
        json!({"name": "bytes", "configuration": {"endian": "little"}})
    }
}

/// The v2 `compressor` entry for `codec` (numcodecs configuration).
fn compressor_v2(codec: Codec) -> Value {
    match codec {
        Codec::None => Value::Null,
        Codec::Zstd { level } => json!({"id": "zstd", "level": level}),
        Codec::Gzip { level } => json!({"id": "gzip", "level": level}),
        Codec::Blosc {
            cname,
            clevel,
            shuffle,
        } => json!({
            "id": "blosc",
            "cname": cname.name(),
            "clevel": clevel,
            "shuffle": shuffle.v2_id(),
            "blocksize": 0,
        }),
    }
}

/// User attributes of `meta` as a JSON object (dimension names and `_zarrs` are left out).
fn attributes_json(attrs: &Attributes) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(k, _)| *k != ARRAY_DIMENSIONS && *k != ZARRS_ATTRIBUTE)
        .map(|(k, v)| (k.to_string(), v.value.clone()))
        .collect()
}

/// Group attributes as a JSON object.
pub(crate) fn group_attributes_json(attrs: &Attributes) -> Map<String, Value> {
    attributes_json(attrs)
}

/// The metadata documents of one array to write.
pub(crate) struct ArrayDocs {
    /// v3 `zarr.json` or v2 `.zarray`.
    pub array: Value,
    /// v2 `.zattrs` (always has `_ARRAY_DIMENSIONS`); `None` for v3.
    pub attrs: Option<Value>,
}

impl ArrayDocs {
    /// The v2 `.zattrs` as a map (empty for v3).
    pub fn v2_attrs(&self) -> serde_json::Map<String, Value> {
        self.attrs
            .as_ref()
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// Builds the metadata of an array with `meta`'s shape, dtype, dims, attributes and fill value,
/// chunks of `chunk` elements and, when `shard` is given (v3 only), shards of that shape.
pub(crate) fn array_docs(
    meta: &ArrayMeta,
    format: ZarrFormat,
    codec: Codec,
    chunk: &[u64],
    shard: Option<&[u64]>,
) -> Result<ArrayDocs, String> {
    let dtype = meta.dtype;
    // A lone array that named no dimensions gets none invented (xarray needs them only in
    // groups it opens); arrays of groups are named for xarray.
    let lone = meta.encoding.as_ref().is_some_and(|e| e.lone);
    let names_kept = !lone || dims_were_named(meta);
    let as_json = |f: Scalar| {
        fill_json(f, dtype)
            .ok_or_else(|| format!("fill value {f} does not fit its data type {dtype}"))
    };
    let marker = cf_fill::marker(&meta.attrs, dtype);
    let mut attrs = attributes_json(&meta.attrs);
    attrs.remove(cf_fill::FILL_VALUE);
    // v2 readers take the array's fill value as the missing-value marker; v3 keeps the two apart.
    let fill = match format {
        ZarrFormat::V2 => marker
            .or_else(|| cf_fill::char_marker(&meta.attrs, dtype))
            .map(as_json)
            .transpose()?,
        ZarrFormat::V3 => meta.fill_value.or(marker).map(as_json).transpose()?,
    };
    if let (ZarrFormat::V3, Some(m)) = (format, marker) {
        if let Some(v) = cf_fill::v3_attribute(m, dtype) {
            attrs.insert(cf_fill::FILL_VALUE.into(), v);
        }
    }
    match format {
        ZarrFormat::V3 => {
            // v3 requires a fill value; zero (false) is what readers assume for "none".
            let fill = fill.unwrap_or_else(|| {
                if dtype == DataType::Bool {
                    json!(false)
                } else if dtype == DataType::Char {
                    json!("")
                } else if dtype.is_float() {
                    json!(0.0)
                } else {
                    json!(0)
                }
            });
            let item = meta.item_size();
            let (grid_chunk, codecs) = match shard {
                Some(shard) => (
                    shard.to_vec(),
                    vec![json!({"name": "sharding_indexed", "configuration": {
                        "chunk_shape": chunk,
                        "codecs": codecs_v3(codec, item),
                        "index_codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"},
                        ],
                        "index_location": "end",
                    }})],
                ),
                None => (chunk.to_vec(), codecs_v3(codec, item)),
            };
            let mut doc = json!({
                "zarr_format": 3,
                "node_type": "array",
                "shape": meta.shape(),
                "data_type": dtype_v3(dtype),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid_chunk}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill,
                "codecs": codecs,
                "attributes": attrs,
                "dimension_names": meta.group_dims(),
            });
            if meta.dims.len() != meta.ndim() || !names_kept {
                if let Some(o) = doc.as_object_mut() {
                    o.remove("dimension_names");
                }
            }
            Ok(ArrayDocs {
                array: doc,
                attrs: None,
            })
        }
        ZarrFormat::V2 => {
            if shard.is_some() {
                return Err("sharding needs Zarr v3".into());
            }
            let doc = json!({
                "zarr_format": 2,
                "shape": meta.shape(),
                "chunks": chunk,
                "dtype": dtype_v2(dtype),
                "compressor": compressor_v2(codec),
                "fill_value": fill.unwrap_or(Value::Null),
                "order": "C",
                "filters": null,
                "dimension_separator": ".",
            });
            if meta.dims.len() == meta.ndim() && names_kept {
                attrs.insert(ARRAY_DIMENSIONS.into(), json!(meta.group_dims()));
            }
            Ok(ArrayDocs {
                array: doc,
                attrs: Some(Value::Object(attrs)),
            })
        }
    }
}

/// The `format` of the [`NativeEncoding`] a Zarr source gives its arrays.
pub(crate) const ENCODING_FORMAT: &str = "zarr";

/// The source array's own documents, to keep when a Zarr target rewrites it: v3
/// `{"zarr.json": DOC}`, v2 `{".zarray": DOC, ".zattrs": ATTRS}` (`.zattrs` only when it holds
/// anything). `lone`: the array is the whole store, at its root.
pub(crate) fn native_encoding(
    format: ZarrFormat,
    doc: &Value,
    v2_attrs: &Map<String, Value>,
    lone: bool,
) -> NativeEncoding {
    let mut docs = Map::new();
    match format {
        ZarrFormat::V3 => {
            docs.insert("zarr.json".into(), doc.clone());
        }
        ZarrFormat::V2 => {
            docs.insert(".zarray".into(), doc.clone());
            if !v2_attrs.is_empty() {
                docs.insert(".zattrs".into(), Value::Object(v2_attrs.clone()));
            }
        }
    }
    NativeEncoding {
        format: ENCODING_FORMAT.into(),
        document: Value::Object(docs),
        lone,
    }
}

/// A Zarr source array's documents, as [`native_encoding`] stored them: format, array document
/// and (v2) attributes. `None` for arrays of other formats.
pub(crate) struct KeptDocs {
    pub format: ZarrFormat,
    pub array: Value,
    pub attrs: Option<Value>,
}

pub(crate) fn kept_docs(meta: &ArrayMeta) -> Option<KeptDocs> {
    let encoding = meta
        .encoding
        .as_ref()
        .filter(|e| e.format == ENCODING_FORMAT)?;
    let docs = encoding.document.as_object()?;
    if let Some(doc) = docs.get("zarr.json") {
        return Some(KeptDocs {
            format: ZarrFormat::V3,
            array: doc.clone(),
            attrs: None,
        });
    }
    Some(KeptDocs {
        format: ZarrFormat::V2,
        array: docs.get(".zarray")?.clone(),
        attrs: docs.get(".zattrs").cloned(),
    })
}

/// The Zarr version of the dataset's arrays when they came from Zarr ("zarr v2 array",
/// "zarr v3 group"), for `rechunk inspect`.
pub fn describe_dataset(meta: &DatasetMeta) -> Option<String> {
    let formats: Vec<ZarrFormat> = meta
        .arrays
        .iter()
        .map(|a| kept_docs(a).map(|k| k.format))
        .collect::<Option<_>>()?;
    let first = *formats.first()?;
    if formats.iter().any(|f| *f != first) {
        return Some("zarr group of v2 and v3 arrays".into());
    }
    let node = if meta.lone_array().is_some() {
        "array"
    } else {
        "group"
    };
    Some(format!("zarr v{first} {node}"))
}

/// True unless `meta` came from a Zarr array that named no dimensions (its `dim_0`, ... are
/// ours then, not the user's).
pub(crate) fn dims_were_named(meta: &ArrayMeta) -> bool {
    match kept_docs(meta) {
        None => true,
        Some(k) => match k.format {
            ZarrFormat::V3 => k.array.get("dimension_names").is_some_and(|n| !n.is_null()),
            ZarrFormat::V2 => k
                .attrs
                .as_ref()
                .and_then(|a| a.get(ARRAY_DIMENSIONS))
                .is_some_and(|n| !n.is_null()),
        },
    }
}

/// The kept documents of a source array with only the chunking changed: v2 `chunks`; v3 the
/// grid's `chunk_shape` and, for sharding, the `sharding_indexed` codec. A sharded source's
/// inner codecs become the array's codecs unless `shard` is given (`--shards`); then they are
/// wrapped in a `sharding_indexed` codec (the source's index codecs and location, when it had
/// them). Everything else (codecs and their settings, fill value, order, key encoding,
/// attributes, dimension names, unknown keys) stays as the source had it.
pub(crate) fn rechunked_docs(
    kept: &KeptDocs,
    shape: &[u64],
    chunk: &[u64],
    shard: Option<&[u64]>,
) -> Result<ArrayDocs, String> {
    let mut doc = kept.array.clone();
    let obj = doc
        .as_object_mut()
        .ok_or("the source's array metadata is not a JSON object")?;
    obj.insert("shape".into(), json!(shape));
    match kept.format {
        ZarrFormat::V2 => {
            if shard.is_some() {
                return Err("sharding needs Zarr format 3; add --zarr-format 3".into());
            }
            obj.insert("chunks".into(), json!(chunk));
            normalize_v2_dtype(&mut doc);
        }
        ZarrFormat::V3 => {
            let codecs = obj
                .get("codecs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let is_sharding =
                |c: &Value| c.get("name").and_then(Value::as_str) == Some("sharding_indexed");
            // The codecs that encode one chunk, and the source's shard index settings.
            let (plain, index) = match codecs.iter().position(is_sharding) {
                Some(i) => {
                    let config = codecs[i].get("configuration");
                    let mut plain: Vec<Value> = codecs[..i].to_vec();
                    plain.extend(
                        config
                            .and_then(|c| c.get("codecs"))
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default(),
                    );
                    (plain, config.cloned())
                }
                None => (codecs, None),
            };
            let grid_chunk = match shard {
                Some(shard) => {
                    let get = |key: &str, default: Value| {
                        index
                            .as_ref()
                            .and_then(|c| c.get(key))
                            .cloned()
                            .unwrap_or(default)
                    };
                    let sharding = json!({"name": "sharding_indexed", "configuration": {
                        "chunk_shape": chunk,
                        "codecs": plain,
                        "index_codecs": get("index_codecs", json!([
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"},
                        ])),
                        "index_location": get("index_location", json!("end")),
                    }});
                    obj.insert("codecs".into(), json!([sharding]));
                    shard.to_vec()
                }
                None => {
                    obj.insert("codecs".into(), Value::Array(plain));
                    chunk.to_vec()
                }
            };
            let grid = obj
                .get_mut("chunk_grid")
                .and_then(|g| g.get_mut("configuration"))
                .and_then(Value::as_object_mut)
                .ok_or("the source's chunk_grid has no configuration")?;
            grid.insert("chunk_shape".into(), json!(grid_chunk));
        }
    }
    Ok(ArrayDocs {
        array: doc,
        attrs: kept.attrs.clone(),
    })
}

/// Codec stages beyond one (bytes-to-bytes compressor) that encoding a chunk of `docs` runs
/// through, each holding a chunk-sized buffer: filters, order F, array-to-array codecs.
pub(crate) fn extra_encode_stages(docs: &ArrayDocs, format: ZarrFormat) -> u64 {
    let v2_attrs = docs
        .attrs
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match parse_array(&docs.array, &v2_attrs, format) {
        Ok(parsed) => {
            let cost = parsed
                .cost
                .inner
                .map_or(parsed.cost.stages, |(_, c)| c.stages);
            cost.saturating_sub(1) as u64
        }
        Err(_) => 0,
    }
}

/// What an opened array's metadata says, in our terms.
pub(crate) struct ParsedArray {
    pub dtype: DataType,
    pub dims: Vec<String>,
    /// The chunk grid's chunk shape: the shard shape for sharded arrays.
    pub chunk: Vec<u64>,
    pub fill_is_null: bool,
    pub attrs: Attributes,
    pub codecs: Vec<String>,
    pub cost: CodecCost,
}

/// Why an array document cannot be used.
#[derive(Debug, PartialEq)]
pub(crate) enum ParseError {
    /// Valid Zarr that this adapter does not handle (the text names it).
    Unsupported(String),
    /// Not valid metadata.
    Malformed(String),
}

impl From<&str> for ParseError {
    fn from(s: &str) -> Self {
        ParseError::Malformed(s.into())
    }
}

/// Reads dims, dtype, grid, codecs and attributes from an array document (`zarr.json` or
/// `.zarray`) and, for v2, its `.zattrs`.
pub(crate) fn parse_array(
    doc: &Value,
    v2_attrs: &Map<String, Value>,
    format: ZarrFormat,
) -> Result<ParsedArray, ParseError> {
    let shape: Vec<u64> = doc
        .get("shape")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .ok_or("shape is missing or malformed")?;
    let ndim = shape.len();
    let (dtype_field, attrs_map) = match format {
        ZarrFormat::V3 => (
            "data_type",
            doc.get("attributes")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        ),
        ZarrFormat::V2 => ("dtype", v2_attrs.clone()),
    };
    let dtype = parse_dtype(doc.get(dtype_field).unwrap_or(&Value::Null), format)
        .map_err(ParseError::Unsupported)?;
    let chunk: Vec<u64> = match format {
        ZarrFormat::V3 => {
            let grid = doc.get("chunk_grid").ok_or("chunk_grid is missing")?;
            let name = grid.get("name").and_then(Value::as_str).unwrap_or("?");
            if name != "regular" {
                return Err(ParseError::Unsupported(format!(
                    "chunk grid `{name}` (only `regular`)"
                )));
            }
            grid.pointer("/configuration/chunk_shape")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .ok_or("regular chunk grid without chunk_shape")?
        }
        ZarrFormat::V2 => doc
            .get("chunks")
            .and_then(|c| serde_json::from_value(c.clone()).ok())
            .ok_or("chunks is missing or malformed")?,
    };
    if chunk.len() != ndim || chunk.contains(&0) {
        return Err(ParseError::Malformed(format!(
            "chunk shape {chunk:?} for shape {shape:?}"
        )));
    }
    // Sizes must fit memory arithmetic: no overflow anywhere later on.
    let bytes = |dims: &[u64]| {
        dims.iter()
            .try_fold(dtype.size() as u64, |acc, &n| acc.checked_mul(n))
            .filter(|&b| usize::try_from(b).is_ok())
    };
    if bytes(&shape).is_none() || bytes(&chunk).is_none() {
        return Err(ParseError::Unsupported(format!(
            "shape {shape:?} with chunks {chunk:?} (too large to address)"
        )));
    }
    let named = |names: Option<&Value>| -> Vec<String> {
        let names: Vec<Option<String>> = names
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().filter(|s| !s.is_empty()).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        (0..ndim)
            .map(|d| {
                names
                    .get(d)
                    .cloned()
                    .flatten()
                    .filter(|_| names.len() == ndim)
                    .unwrap_or_else(|| format!("dim_{d}"))
            })
            .collect()
    };
    let dims = match format {
        ZarrFormat::V3 => named(doc.get("dimension_names")),
        ZarrFormat::V2 => named(attrs_map.get(ARRAY_DIMENSIONS)),
    };
    let attrs = Attributes(
        attrs_map
            .into_iter()
            .filter(|(k, _)| k != ARRAY_DIMENSIONS && k != ZARRS_ATTRIBUTE)
            .map(|(k, v)| (k, AttrValue::json(v)))
            .collect(),
    );
    let fill_is_null = doc.get("fill_value").is_none_or(Value::is_null);
    let (codecs, cost) = match format {
        ZarrFormat::V3 => {
            let list = doc
                .get("codecs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            (
                list.iter().map(describe_codec).collect(),
                CodecCost::of_v3(&list),
            )
        }
        ZarrFormat::V2 => {
            let mut list: Vec<Value> = doc
                .get("filters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(c) = doc.get("compressor").filter(|c| !c.is_null()) {
                list.push(c.clone());
            }
            let transposed = doc.get("order").and_then(Value::as_str) == Some("F");
            let cost = CodecCost {
                stages: list.len() + usize::from(transposed),
                inner: None,
            };
            let mut described: Vec<String> = list.iter().map(describe_codec).collect();
            if transposed {
                described.insert(0, "order(F)".into());
            }
            (described, cost)
        }
    };
    Ok(ParsedArray {
        dtype,
        dims,
        chunk,
        fill_is_null,
        attrs,
        codecs,
        cost,
    })
}

/// `name(key=value, ...)` for a v3 codec (`{"name", "configuration"}` or a bare name) or a
/// numcodecs v2 codec (`{"id", ...}`); nested codec lists (sharding) are described alike.
pub(crate) fn describe_codec(codec: &Value) -> String {
    fn value(v: &Value) -> String {
        match v {
            Value::Array(items)
                if !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.get("name").is_some() || i.get("id").is_some()) =>
            {
                let inner: Vec<String> = items.iter().map(describe_codec).collect();
                format!("[{}]", inner.join(", "))
            }
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    if let Some(name) = codec.as_str() {
        return name.to_string();
    }
    let (name, config): (String, Vec<(&String, &Value)>) = match codec.get("name") {
        Some(name) => (
            name.as_str().unwrap_or("?").to_string(),
            codec
                .get("configuration")
                .and_then(Value::as_object)
                .map(|c| c.iter().collect())
                .unwrap_or_default(),
        ),
        None => (
            codec
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
            codec
                .as_object()
                .map(|c| c.iter().filter(|(k, _)| *k != "id").collect())
                .unwrap_or_default(),
        ),
    };
    if config.is_empty() {
        name
    } else {
        let args: Vec<String> = config
            .iter()
            .map(|(k, v)| format!("{k}={}", value(v)))
            .collect();
        format!("{name}({})", args.join(", "))
    }
}

/// How much memory decoding a codec chain takes, in chunk-sized buffers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CodecCost {
    /// Codecs that allocate a new chunk-sized buffer when decoding (compressors, checksums,
    /// filters, transposes). The `bytes` codec decodes straight into the output.
    pub stages: usize,
    /// Sharded: the inner chunk shape and its chain's cost.
    pub inner: Option<(Vec<u64>, Box<CodecCost>)>,
}

impl CodecCost {
    fn of_v3(codecs: &[Value]) -> CodecCost {
        let mut cost = CodecCost {
            stages: 0,
            inner: None,
        };
        for c in codecs {
            let name = c
                .as_str()
                .or_else(|| c.get("name").and_then(Value::as_str))
                .unwrap_or("");
            match name {
                "bytes" | "endian" => {}
                "sharding_indexed" => {
                    let shape: Option<Vec<u64>> = c
                        .pointer("/configuration/chunk_shape")
                        .and_then(|s| serde_json::from_value(s.clone()).ok());
                    let inner = c
                        .pointer("/configuration/codecs")
                        .and_then(Value::as_array)
                        .map(|l| CodecCost::of_v3(l))
                        .unwrap_or(CodecCost {
                            stages: 1,
                            inner: None,
                        });
                    if let Some(shape) = shape {
                        cost.inner = Some((shape, Box::new(inner)));
                    }
                }
                _ => cost.stages += 1,
            }
        }
        cost
    }

    /// Extra bytes one `read_region` call holds: the encoded chunk (or shard) as fetched, plus
    /// one buffer per decoding stage and one chunk-sized temporary for a chunk that the region
    /// only partly covers (zarrs decodes it whole, then copies the overlap out).
    pub fn read_overhead(&self, chunk_bytes: u64, item: u64) -> u64 {
        match &self.inner {
            None => encoded_bound(chunk_bytes) + chunk_bytes * (self.stages as u64 + 1),
            Some((inner, cost)) => {
                let inner_bytes = inner.iter().product::<u64>() * item;
                let inner_count = chunk_bytes / inner_bytes.max(1) + 1;
                encoded_bound(chunk_bytes)
                    + 16 * inner_count
                    + cost.read_overhead(inner_bytes, item).min(
                        // an unsharded inner chain never needs more than this
                        encoded_bound(inner_bytes) + inner_bytes * (cost.stages as u64 + 1),
                    )
            }
        }
    }
}

/// Upper bound of the encoded size of `raw` bytes for the compressors we write (zstd, gzip and
/// blosc all stay within a fraction of a percent of the raw size on incompressible data).
pub(crate) fn encoded_bound(raw: u64) -> u64 {
    raw + raw / 128 + 4096
}

/// Extra bytes one `write_region` call holds: a copy of the chunk (when the region is not
/// exactly one whole chunk, or an edge chunk must be padded), and its encoded bytes. A shard
/// adds a few inner-chunk temporaries (subset copy, encoded inner chunk and its copy) and, for
/// compressors of unbounded size, a second copy of the encoded inner chunks.
pub(crate) fn write_overhead(chunk_bytes: u64, inner_bytes: Option<u64>) -> u64 {
    match inner_bytes {
        None => chunk_bytes + encoded_bound(chunk_bytes),
        // Sharded: our copy of the shard, zarrs' encoded inner chunks held until the shard is
        // assembled, the assembled shard, and inner-chunk temporaries. Measured: a 33 MB shard
        // (2000 x 64 x 64 float32, zstd) peaks at about 3.7x the shard beyond the caller's block.
        Some(inner) => {
            let count = chunk_bytes / inner.max(1) + 1;
            chunk_bytes + 3 * encoded_bound(chunk_bytes) + 4 * encoded_bound(inner) + 16 * count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_are_described() {
        let v3 = json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2, 2],
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "zstd", "configuration": {"level": 3}}],
            "index_codecs": [{"name": "bytes"}, {"name": "crc32c"}],
        }});
        let d = describe_codec(&v3);
        assert!(
            d.starts_with(
                "sharding_indexed(chunk_shape=[2,2], codecs=[bytes(endian=little), zstd(level=3)]"
            ),
            "{d}"
        );
        let blosc = describe_codec(&json!({"id": "blosc", "cname": "lz4", "clevel": 5}));
        assert!(
            blosc.starts_with("blosc(")
                && blosc.contains("cname=lz4")
                && blosc.contains("clevel=5"),
            "{blosc}"
        );
        assert_eq!(describe_codec(&json!("crc32c")), "crc32c");
    }

    #[test]
    fn costs_count_stages() {
        let c = CodecCost::of_v3(&[json!({"name": "bytes"}), json!({"name": "zstd"})]);
        assert_eq!(c.stages, 1);
        assert!(c.read_overhead(1000, 4) >= 3000);
        let s = CodecCost::of_v3(&[json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": [10], "codecs": [{"name": "bytes"}, {"name": "gzip"}]}})]);
        assert_eq!(s.inner.as_ref().unwrap().0, vec![10]);
        // A shard of 1000 elements: the whole encoded shard plus two inner chunks.
        assert!(s.read_overhead(4000, 4) < 4000 * 2 + 3 * 4096);
    }

    #[test]
    fn one_byte_v2_dtypes_lose_their_byte_order() {
        for (from, to) in [
            ("<u1", "|u1"),
            (">i1", "|i1"),
            ("=b1", "|b1"),
            ("|u1", "|u1"),
            ("<u2", "<u2"),
            (">f8", ">f8"),
        ] {
            let mut doc = json!({"dtype": from});
            normalize_v2_dtype(&mut doc);
            assert_eq!(doc["dtype"], json!(to), "{from}");
        }
    }

    #[test]
    fn dtypes_parse() {
        assert_eq!(
            parse_dtype(&json!(">i2"), ZarrFormat::V2),
            Ok(DataType::Int16)
        );
        assert_eq!(
            parse_dtype(&json!("float64"), ZarrFormat::V3),
            Ok(DataType::Float64)
        );
        assert!(parse_dtype(&json!("<M8[ns]"), ZarrFormat::V2).is_err());
        assert!(parse_dtype(&json!("complex64"), ZarrFormat::V3).is_err());
        for dt in DataType::ALL {
            assert_eq!(
                parse_dtype(&json!(dtype_v2(dt)), ZarrFormat::V2),
                Ok(dt),
                "{dt}"
            );
        }
        assert_eq!(
            fill_json(Scalar::Float(f64::NAN), DataType::Float32),
            Some(json!("NaN"))
        );
        assert_eq!(fill_json(Scalar::Int(-1), DataType::UInt8), None);
        assert_eq!(
            fill_json(Scalar::Int(3), DataType::Float64),
            Some(json!(3.0))
        );
    }
}
