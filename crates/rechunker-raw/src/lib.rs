//! The reference format of rechunker: a directory with one raw C-order file per chunk and a JSON
//! header. It has no codec and no native library, so the core can be tested, benchmarked and
//! demonstrated on its own; it is also a handy debug dump of any other format.
//!
//! Layout of a dataset at `DIR`:
//! ```text
//! DIR/raw.json            the dataset: arrays and attributes; written last, marks it complete
//! DIR/NAME/array.json     one array's metadata, written when the array is created
//! DIR/NAME/I.J.K          chunk (I, J, K): its elements in C order, little-endian, edge
//!                         chunks clipped to the array; a missing file reads as the fill value
//! ```

pub mod driver;

use rechunker_core::layout::{buffer_len, byte_offset, copy_box, copy_box_at, fill_elements};
use rechunker_core::{
    ArrayMeta, ChunkedArray, ChunkedArrayMut, DatasetMeta, DatasetSource, DatasetTarget, Region,
};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The name of the file that makes a directory a (complete) raw dataset.
pub const DATASET_FILE: &str = "raw.json";
const ARRAY_FILE: &str = "array.json";
const FORMAT: &str = "rechunker-raw";

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("{path} is not a raw dataset (no {DATASET_FILE}); if a rechunk into it was interrupted, rerun that command with --resume")]
    NotRaw { path: PathBuf },
    #[error("{path}: malformed metadata: {message}")]
    BadMeta { path: PathBuf, message: String },
    #[error("{path}: chunk of `{variable}` has {found} bytes where {expected} were expected; the file is truncated or corrupt")]
    BadChunk {
        path: PathBuf,
        variable: String,
        found: u64,
        expected: u64,
    },
    #[error("`{variable}` in {path}: write {region} is not aligned to whole chunks")]
    Unaligned {
        path: PathBuf,
        variable: String,
        region: Region,
    },
    #[error("{path} has no array `{variable}`")]
    NoSuchArray { path: PathBuf, variable: String },
    #[error("{path}: cannot describe the metadata as JSON: {source}")]
    Serialize {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// `value` as the pretty JSON of metadata file `path`; an error (never an empty file) when it
/// cannot be serialized.
fn metadata_json(path: &Path, value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|source| RawError::Serialize {
        path: path.to_path_buf(),
        source,
    })
}

impl From<RawError> for rechunker_core::Error {
    fn from(e: RawError) -> Self {
        rechunker_core::Error::storage(e)
    }
}

type Result<T, E = RawError> = std::result::Result<T, E>;

fn io<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(std::io::Error) -> RawError + 'a {
    move |source| RawError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

#[derive(Serialize, Deserialize)]
struct DatasetFile {
    format: String,
    version: u32,
    #[serde(flatten)]
    dataset: DatasetMeta,
}

#[derive(Serialize, Deserialize)]
struct ArrayFile {
    format: String,
    version: u32,
    #[serde(flatten)]
    array: ArrayMeta,
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see a part.
fn write_atomic(path: &Path, bytes: &[u8], sequence: &AtomicU64) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = sequence.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(io(&tmp, "cannot create"))?;
    file.write_all(bytes).map_err(io(&tmp, "cannot write"))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        RawError::Io {
            path: path.to_path_buf(),
            action: "cannot rename into place",
            source: e,
        }
    })
}

/// True when `file` is a JSON document of the raw format (its `format` is ours), so that a
/// folder of someone else's holding a `raw.json` or `array.json` is never taken for one.
fn is_raw_document(file: &Path) -> bool {
    #[derive(Deserialize)]
    struct Header {
        format: String,
    }
    fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Header>(&bytes).ok())
        .is_some_and(|h| h.format == FORMAT)
}

/// True when `path` is a complete raw dataset.
pub fn is_raw_dataset(path: &Path) -> bool {
    is_raw_document(&path.join(DATASET_FILE))
}

/// True when `path` looks like a raw dataset whose writing never finished (arrays, no header).
pub fn is_unfinished_raw_dataset(path: &Path) -> bool {
    !is_raw_dataset(path)
        && fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .any(|e| is_raw_document(&e.path().join(ARRAY_FILE)))
            })
            .unwrap_or(false)
}

/// One array of a raw dataset.
pub struct RawArray {
    dir: PathBuf,
    meta: ArrayMeta,
    sequence: AtomicU64,
}

impl RawArray {
    fn chunk_path(&self, index: &[u64]) -> PathBuf {
        if index.is_empty() {
            return self.dir.join("0");
        }
        let key: Vec<String> = index.iter().map(u64::to_string).collect();
        self.dir.join(key.join("."))
    }

    fn item(&self) -> usize {
        self.meta.item_size()
    }

    /// Reads chunk `index` (of `chunk` region) into `out`, or fills it when the chunk is absent.
    fn read_chunk(&self, index: &[u64], chunk: &Region, out: &mut [u8]) -> Result<()> {
        let path = self.chunk_path(index);
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fill_elements(out, &self.meta.fill_bytes());
                return Ok(());
            }
            Err(e) => {
                return Err(RawError::Io {
                    path,
                    action: "cannot open chunk",
                    source: e,
                })
            }
        };
        let expected = chunk.num_elements() * self.item() as u64;
        let found = file
            .metadata()
            .map_err(io(&path, "cannot stat chunk"))?
            .len();
        if found != expected {
            return Err(RawError::BadChunk {
                path,
                variable: self.meta.name.clone(),
                found,
                expected,
            });
        }
        file.read_exact(out)
            .map_err(io(&path, "cannot read chunk"))?;
        if cfg!(target_endian = "big") {
            swap_bytes(out, self.item());
        }
        Ok(())
    }
}

impl RawArray {
    /// Reads just the bytes of chunk `index` that span `overlap` (from its first to its last
    /// element) into `out`, which it resizes; fills when the chunk is absent.
    fn read_span(
        &self,
        index: &[u64],
        chunk: &Region,
        overlap: &Region,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let item = self.item();
        let offset = overlap.offset_in(chunk);
        let first = byte_offset(&chunk.shape, &offset, item);
        let last: Vec<u64> = offset
            .iter()
            .zip(&overlap.shape)
            .map(|(o, n)| o + n - 1)
            .collect();
        let end = byte_offset(&chunk.shape, &last, item) + item;
        out.resize(end - first, 0);
        let path = self.chunk_path(index);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fill_elements(out, &self.meta.fill_bytes());
                return Ok(());
            }
            Err(e) => {
                return Err(RawError::Io {
                    path,
                    action: "cannot open chunk",
                    source: e,
                })
            }
        };
        let expected = chunk.num_elements() * item as u64;
        let found = file
            .metadata()
            .map_err(io(&path, "cannot stat chunk"))?
            .len();
        if found != expected {
            return Err(RawError::BadChunk {
                path,
                variable: self.meta.name.clone(),
                found,
                expected,
            });
        }
        file.read_exact_at(out, first as u64)
            .map_err(io(&path, "cannot read chunk"))?;
        if cfg!(target_endian = "big") {
            swap_bytes(out, item);
        }
        Ok(())
    }
}

fn swap_bytes(buf: &mut [u8], item: usize) {
    if item > 1 {
        buf.chunks_exact_mut(item).for_each(<[u8]>::reverse);
    }
}

impl ChunkedArray for RawArray {
    fn meta(&self) -> &ArrayMeta {
        &self.meta
    }

    fn read_region(&self, region: &Region, out: &mut [u8]) -> rechunker_core::Result<()> {
        let grid = &self.meta.grid;
        let item = self.item();
        let ranges = grid.chunks_overlapping(region);
        let counts: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
        let mut buffer = Vec::new();
        for rel in rechunker_core::region::indices(&counts) {
            let index: Vec<u64> = rel.iter().zip(&ranges).map(|(i, r)| r.start + i).collect();
            let chunk = grid.chunk_region(&index);
            if chunk == *region {
                self.read_chunk(&index, &chunk, out)?;
                continue;
            }
            let Some(overlap) = chunk.intersect(region) else {
                continue;
            };
            // Only the contiguous span the overlap touches: a band of a big chunk costs a band.
            self.read_span(&index, &chunk, &overlap, &mut buffer)?;
            copy_box_at(
                &buffer,
                &chunk.shape,
                0,
                out,
                &region.shape,
                byte_offset(&region.shape, &overlap.offset_in(region), item),
                &overlap.shape,
                item,
            );
        }
        Ok(())
    }

    fn read_overhead(&self) -> u64 {
        self.meta.max_chunk_bytes()
    }
}

impl ChunkedArrayMut for RawArray {
    fn write_region(&self, region: &Region, data: &[u8]) -> rechunker_core::Result<()> {
        let grid = &self.meta.grid;
        if !grid.is_aligned(region) {
            return Err(RawError::Unaligned {
                path: self.dir.clone(),
                variable: self.meta.name.clone(),
                region: region.clone(),
            }
            .into());
        }
        let item = self.item();
        let ranges = grid.chunks_overlapping(region);
        let counts: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
        let mut buffer = Vec::new();
        for rel in rechunker_core::region::indices(&counts) {
            let index: Vec<u64> = rel.iter().zip(&ranges).map(|(i, r)| r.start + i).collect();
            let chunk = grid.chunk_region(&index);
            let bytes: &[u8] = if chunk == *region && cfg!(target_endian = "little") {
                data
            } else {
                buffer.resize(buffer_len(&chunk.shape, item).unwrap_or(0), 0);
                copy_box(
                    data,
                    &region.shape,
                    &chunk.offset_in(region),
                    &mut buffer,
                    &chunk.shape,
                    &vec![0; chunk.ndim()],
                    &chunk.shape,
                    item,
                );
                if cfg!(target_endian = "big") {
                    swap_bytes(&mut buffer, item);
                }
                &buffer
            };
            write_atomic(&self.chunk_path(&index), bytes, &self.sequence)?;
        }
        Ok(())
    }

    fn write_overhead(&self) -> u64 {
        self.meta.max_chunk_bytes()
    }
}

/// Where array `name` lives: its name as escaped path components (see
/// [`rechunker_core::names`]), so no name from a source can place files outside `root`.
fn array_dir(root: &Path, name: &str) -> PathBuf {
    root.join(rechunker_core::names::relative_path(name))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).map_err(io(path, "cannot read"))?;
    serde_json::from_str(&text).map_err(|e| RawError::BadMeta {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A complete raw dataset opened for reading.
pub struct RawSource {
    path: PathBuf,
    location: String,
    meta: DatasetMeta,
}

impl RawSource {
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let file = path.join(DATASET_FILE);
        if !file.is_file() {
            return Err(RawError::NotRaw { path });
        }
        let parsed: DatasetFile = read_json(&file)?;
        if parsed.format != FORMAT {
            return Err(RawError::BadMeta {
                path: file,
                message: format!("format is `{}`, not `{FORMAT}`", parsed.format),
            });
        }
        Ok(RawSource {
            location: path.display().to_string(),
            path,
            meta: parsed.dataset,
        })
    }

    /// Opens one array directly, with its concrete type.
    pub fn array(&self, name: &str) -> Result<RawArray> {
        let meta = self
            .meta
            .array(name)
            .ok_or_else(|| RawError::NoSuchArray {
                path: self.path.clone(),
                variable: name.into(),
            })?
            .clone();
        Ok(RawArray {
            dir: array_dir(&self.path, name),
            meta,
            sequence: AtomicU64::new(0),
        })
    }
}

impl DatasetSource for RawSource {
    fn location(&self) -> &str {
        &self.location
    }

    fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    fn open_array(&self, name: &str) -> rechunker_core::Result<Arc<dyn ChunkedArray>> {
        Ok(Arc::new(self.array(name)?))
    }
}

/// A raw dataset being written. It becomes readable only when [`DatasetTarget::finalize`] writes
/// its `raw.json`.
pub struct RawTarget {
    path: PathBuf,
    location: String,
    sequence: AtomicU64,
}

impl RawTarget {
    /// A target at `path`. Nothing is touched on disk until the first array is created, so
    /// the same object can be used just to plan.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        Ok(RawTarget {
            location: path.display().to_string(),
            path,
            sequence: AtomicU64::new(0),
        })
    }

    /// Creates one array and returns it with its concrete type.
    pub fn array(&self, meta: &ArrayMeta) -> Result<RawArray> {
        let dir = array_dir(&self.path, &meta.name);
        fs::create_dir_all(&dir).map_err(io(&dir, "cannot create the array directory"))?;
        let mut meta = meta.clone();
        meta.codecs.clear();
        let file = ArrayFile {
            format: FORMAT.into(),
            version: 1,
            array: meta.clone(),
        };
        let path = dir.join(ARRAY_FILE);
        let json = metadata_json(&path, &file)?;
        write_atomic(&path, &json, &self.sequence)?;
        Ok(RawArray {
            dir,
            meta,
            sequence: AtomicU64::new(0),
        })
    }
}

impl DatasetTarget for RawTarget {
    fn location(&self) -> &str {
        &self.location
    }

    fn create_array(&self, meta: &ArrayMeta) -> rechunker_core::Result<Arc<dyn ChunkedArrayMut>> {
        Ok(Arc::new(self.array(meta)?))
    }

    fn write_overhead(&self, meta: &ArrayMeta) -> u64 {
        meta.max_chunk_bytes()
    }

    fn finalize(&self, meta: &DatasetMeta) -> rechunker_core::Result<()> {
        rechunker_core::scratch::remove_own_temp_files(&self.path);
        let mut meta = meta.clone();
        meta.arrays.iter_mut().for_each(|a| a.codecs.clear());
        let file = DatasetFile {
            format: FORMAT.into(),
            version: 1,
            dataset: meta,
        };
        fs::create_dir_all(&self.path)
            .map_err(io(&self.path, "cannot create the target directory"))?;
        let path = self.path.join(DATASET_FILE);
        let json = metadata_json(&path, &file)?;
        Ok(write_atomic(&path, &json, &self.sequence)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rechunker_core::{ChunkGrid, DataType, Scalar};

    #[test]
    fn metadata_that_cannot_be_serialized_is_an_error_not_an_empty_file() {
        // JSON object keys must be strings: serde_json refuses a map keyed by pairs.
        let unserializable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let path = Path::new("t/.rechunker-raw.json");
        match metadata_json(path, &unserializable) {
            Err(RawError::Serialize { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected a serialization error, got {other:?}"),
        }
        let fine = metadata_json(path, &[1, 2]).unwrap();
        assert!(!fine.is_empty());
    }

    fn meta(name: &str, shape: &[u64], chunks: &[u64]) -> ArrayMeta {
        ArrayMeta {
            name: name.into(),
            dims: (0..shape.len()).map(|d| format!("d{d}")).collect(),
            dtype: DataType::Int16,
            grid: ChunkGrid::regular(shape, chunks),
            fill_value: Some(Scalar::Int(-9)),
            attrs: Default::default(),
            codecs: vec![],
            encoding: None,
            unlimited_dims: Vec::new(),
        }
    }

    #[test]
    fn write_then_read_any_region() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.raw");
        let target = RawTarget::create(&path).unwrap();
        let m = meta("v", &[5, 7], &[2, 3]);
        let array = target.array(&m).unwrap();
        let values: Vec<i16> = (0..35).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
        // Leave the last chunk column unwritten: it must read as the fill value.
        let written = Region::new(vec![0, 0], vec![5, 6]);
        let mut part = vec![0u8; 5 * 6 * 2];
        copy_box(
            &bytes,
            &[5, 7],
            &[0, 0],
            &mut part,
            &[5, 6],
            &[0, 0],
            &[5, 6],
            2,
        );
        array.write_region(&written, &part).unwrap();
        assert!(
            RawSource::open(&path).is_err(),
            "not complete before finalize"
        );
        target
            .finalize(&DatasetMeta {
                arrays: vec![m],
                attrs: Default::default(),
            })
            .unwrap();

        let source = RawSource::open(&path).unwrap();
        let a = source.array("v").unwrap();
        let r = Region::new(vec![1, 2], vec![3, 5]);
        let mut out = vec![0u8; 30];
        a.read_region(&r, &mut out).unwrap();
        let got: Vec<i16> = out
            .chunks(2)
            .map(|c| i16::from_ne_bytes([c[0], c[1]]))
            .collect();
        let want: Vec<i16> = (1..4)
            .flat_map(|i| (2..7).map(move |j| if j == 6 { -9 } else { i * 7 + j }))
            .collect();
        assert_eq!(got, want);
        let unaligned = array_write_err(&source, "v");
        assert!(unaligned.contains("not aligned"), "{unaligned}");
    }

    fn array_write_err(source: &RawSource, name: &str) -> String {
        let a = source.array(name).unwrap();
        a.write_region(&Region::new(vec![1, 0], vec![1, 3]), &[0; 6])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn truncated_chunk_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = RawTarget::create(dir.path()).unwrap();
        let m = meta("v", &[4], &[2]);
        let a = target.array(&m).unwrap();
        a.write_region(&Region::new(vec![0], vec![4]), &[1; 8])
            .unwrap();
        fs::write(dir.path().join("v/1"), [0u8; 3]).unwrap();
        let e = a
            .read_region(&Region::new(vec![0], vec![4]), &mut [0; 8])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("v/1") && e.contains("`v`") && e.contains("truncated"),
            "{e}"
        );
    }
}
