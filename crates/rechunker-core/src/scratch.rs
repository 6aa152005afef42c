//! The scratch store holds intermediate pieces and the task journal between stages.
//!
//! Every object is written whole and atomically (a reader sees the old object, the new one or
//! none), so a task that dies midway leaves nothing that a resumed run could mistake for done.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::direct_io;
pub use direct_io::BUFFER_BYTES as DIRECT_IO_BUFFER_BYTES;

/// Object storage for scratch data. Keys are `/`-separated relative paths.
pub trait ScratchStore: Send + Sync {
    /// Where the store lives, for messages.
    fn location(&self) -> String;

    /// Stores `data` under `key`, atomically replacing any previous object.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;

    /// Stores `data` under `key` unless an object is already there; returns whether it wrote.
    /// Atomic across processes: of writers racing for one key exactly one gets `true` (and its
    /// bytes are what is stored), every other gets `false`. The store itself must decide (a
    /// hard link, a conditional PUT), never a read followed by a write.
    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool>;

    /// The object under `key`, or `None` if there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Reads the object under `key` into `buf` (replacing its contents, reusing its capacity);
    /// returns false if there is none.
    fn get_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool> {
        match self.get(key)? {
            Some(data) => {
                buf.clear();
                buf.extend_from_slice(&data);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Stores `data` like [`put`](Self::put). A store that would copy the bytes into a
    /// request of its own (an object store) takes the buffer instead, leaving `data` empty, so
    /// no third copy of a piece exists beside its gathered and encoded ones; a local store
    /// writes from it and leaves it for reuse.
    fn put_vec(&self, key: &str, data: &mut Vec<u8>) -> Result<()> {
        self.put(key, data)
    }

    /// Stores the concatenation of `parts` under `key`, like [`put`](Self::put). Local stores
    /// write the parts vectored, so a piece cut from a block needs no gathering copy.
    fn put_parts(&self, key: &str, parts: &[&[u8]]) -> Result<()> {
        self.put(key, &parts.concat())
    }

    /// Reads the object under `key` into `parts`, in order, if it is exactly as long as they
    /// are together (so it can land straight in its place in a block).
    fn get_parts(&self, key: &str, parts: &mut [&mut [u8]]) -> Result<Fetched> {
        let Some(data) = self.get(key)? else {
            return Ok(Fetched::Missing);
        };
        if data.len() != parts.iter().map(|p| p.len()).sum::<usize>() {
            return Ok(Fetched::OtherLength);
        }
        let mut at = 0;
        for part in parts.iter_mut() {
            part.copy_from_slice(&data[at..at + part.len()]);
            at += part.len();
        }
        Ok(Fetched::Read)
    }

    /// Keys directly or indirectly below `prefix` (a `/`-terminated folder), relative to it.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Removes everything below `prefix` ("" for the whole store).
    fn remove_prefix(&self, prefix: &str) -> Result<()>;

    /// Removes the object under `key`, if any.
    fn delete(&self, key: &str) -> Result<()>;

    /// Removes the objects under `keys` (those that exist). Object stores do it in batches
    /// (one request per thousand keys on S3) rather than one round trip per key.
    fn delete_many(&self, keys: &[String]) -> Result<()> {
        keys.iter().try_for_each(|k| self.delete(k))
    }

    /// True when nothing at all is stored here (hidden files included), so rechunk may claim
    /// the place as its own.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.list("")?.is_empty())
    }

    /// Removes the store's own folder once its keys are gone, with any temporary file this
    /// store left there; returns false (and keeps it) if anything else is still inside.
    /// Object stores have no folders.
    fn remove_root_if_empty(&self) -> Result<bool> {
        self.is_empty()
    }
}

/// What [`ScratchStore::get_parts`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetched {
    Missing,
    /// The object exists but is not as long as the parts (e.g. it is compressed).
    OtherLength,
    Read,
}

/// How a local scratch directory moves pieces of a MiB and more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScratchIo {
    /// Past the page cache where the file system allows it (see [`direct_io`]): the CPU cost of
    /// caching bytes that are read once goes, but every byte goes to the disk and back.
    #[default]
    Direct,
    /// Through the page cache: better where RAM holds the whole scratch and the disk is slow.
    Cached,
}

impl std::str::FromStr for ScratchIo {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "direct" => Ok(ScratchIo::Direct),
            "cached" => Ok(ScratchIo::Cached),
            other => Err(format!(
                "unknown scratch I/O `{other}`; use direct or cached"
            )),
        }
    }
}

/// A scratch store in a local directory. Pieces of a MiB and more bypass the page cache where
/// the file system allows it, unless [`ScratchIo::Cached`] is asked for; each worker thread then
/// holds one [`DIRECT_IO_BUFFER_BYTES`] transfer buffer.
pub struct LocalScratch {
    root: PathBuf,
    /// What direct I/O needs here, if it works here.
    direct_io: Option<direct_io::Alignment>,
}

impl LocalScratch {
    /// Opens (creating if needed) the directory `root`, checking that it is writable.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let mut store = LocalScratch {
            root,
            direct_io: None,
        };
        fs::create_dir_all(&store.root)
            .map_err(|e| store.io_error("cannot create the scratch directory", e))?;
        let probe = store
            .root
            .join(format!(".write-test-{}", std::process::id()));
        fs::write(&probe, b"")
            .map_err(|e| store.io_error("cannot write to the scratch directory", e))?;
        let _ = fs::remove_file(probe);
        store.direct_io = direct_io::probe(&store.root);
        tracing::debug!(root = %store.root.display(), direct_io = ?store.direct_io, "scratch opened");
        Ok(store)
    }

    /// The same store with large pieces moved as `io` says.
    pub fn with_io(mut self, io: ScratchIo) -> Self {
        if io == ScratchIo::Cached {
            self.direct_io = None;
        }
        self
    }

    /// Whether large pieces bypass the page cache here.
    pub fn direct_io(&self) -> bool {
        self.direct_io.is_some()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::scratch(
            self.root.display().to_string(),
            format!("{what}: {e}; choose a writable place with --scratch DIR"),
        )
    }

    /// The file of `key`. Keys are rechunk's own (`plan.json`, `arrays/0/...`); one that could
    /// leave the root is refused rather than followed.
    fn path(&self, key: &str) -> Result<PathBuf> {
        match crate::names::key_path(key) {
            Some(rel) => Ok(self.root.join(rel)),
            None => Err(Error::scratch(
                self.root.display().to_string(),
                format!("`{key}` is not a scratch key (it could name a file outside the scratch folder)"),
            )),
        }
    }

    /// The folder of a `/`-terminated key prefix, or the root for "".
    fn prefix_path(&self, prefix: &str) -> Result<PathBuf> {
        match prefix.trim_end_matches('/') {
            "" => Ok(self.root.clone()),
            folder => self.path(folder),
        }
    }

    /// Writes the concatenation of `parts` to a unique temporary file beside `path`, ready to
    /// be renamed into place.
    fn write_temp(&self, path: &Path, parts: &[&[u8]]) -> Result<PathBuf> {
        let parent = path.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent).map_err(|e| self.io_error("cannot create a folder", e))?;
        let n = TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let written = match self.direct_io {
            Some(align) if total as u64 >= direct_io::MIN_BYTES => {
                direct_io::write_new(&tmp, parts, align)
            }
            _ => fs::File::create(&tmp).and_then(|mut f| write_all_vectored(&mut f, parts)),
        };
        written.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io_error("cannot write a file", e)
        })?;
        Ok(tmp)
    }

    fn rename_into_place(&self, tmp: &Path, path: &Path) -> Result<()> {
        fs::rename(tmp, path).map_err(|e| {
            let _ = fs::remove_file(tmp);
            self.io_error("cannot rename a file into place", e)
        })
    }
}

/// Numbers the temporary files of this process. One counter for every [`LocalScratch`]: two
/// stores open on one folder (or two threads racing `put_if_absent` through them) must never
/// pick the same temporary name, or one would remove or overwrite the other's file.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// True for the name of a temporary file [`LocalScratch`] writes before renaming it into place
/// (`.NAME.PID.SEQ.tmp`): one a killed process left behind, and this store may delete.
pub fn is_own_temp_file(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let mut parts = inner.rsplitn(3, '.');
    let numeric =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    numeric(parts.next()) && numeric(parts.next()) && parts.next().is_some_and(|n| !n.is_empty())
}

/// Removes, below `root`, the temporary files of [`is_own_temp_file`]'s form that a killed
/// writer left (the atomic writes of local targets and scratch use it), so a finished target
/// holds only its data. Links are not followed.
pub fn remove_own_temp_files(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            remove_own_temp_files(&entry.path());
        } else if kind.is_file() && is_own_temp_file(&entry.file_name().to_string_lossy()) {
            tracing::debug!(file = %entry.path().display(), "removing a temporary file a killed run left");
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes every byte of `parts` in order, at most `IOV_MAX`-ish slices per system call.
fn write_all_vectored(f: &mut fs::File, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::IoSlice;
    let parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    for group in parts.chunks(512) {
        let mut slices: Vec<IoSlice<'_>> = group.iter().map(|p| IoSlice::new(p)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match f.write_vectored(rest) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

impl ScratchStore for LocalScratch {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.put_parts(key, &[data])
    }

    fn put_parts(&self, key: &str, parts: &[&[u8]]) -> Result<()> {
        let path = self.path(key)?;
        let tmp = self.write_temp(&path, parts)?;
        self.rename_into_place(&tmp, &path)
    }

    fn get_parts(&self, key: &str, parts: &mut [&mut [u8]]) -> Result<Fetched> {
        use std::io::Read;
        let failed = |e| self.io_error(&format!("cannot read `{key}`"), e);
        let mut file = match fs::File::open(self.path(key)?) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Fetched::Missing),
            Err(e) => return Err(failed(e)),
        };
        let size = file.metadata().map_err(failed)?.len();
        if size != parts.iter().map(|p| p.len() as u64).sum::<u64>() {
            return Ok(Fetched::OtherLength);
        }
        if let Some(align) = self.direct_io.filter(|_| size >= direct_io::MIN_BYTES) {
            direct_io::read_into(&self.path(key)?, &file, size, parts, align).map_err(failed)?;
            return Ok(Fetched::Read);
        }
        for part in parts.iter_mut() {
            file.read_exact(part).map_err(failed)?;
        }
        Ok(Fetched::Read)
    }

    fn put_if_absent(&self, key: &str, data: &[u8]) -> Result<bool> {
        let path = self.path(key)?;
        let tmp = self.write_temp(&path, &[data])?;
        // A hard link fails if the target exists: an atomic create-if-absent with full content.
        let result = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.io_error("cannot link a file into place", e)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)?) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(&format!("cannot read `{key}`"), e)),
        }
    }

    fn get_into(&self, key: &str, buf: &mut Vec<u8>) -> Result<bool> {
        use std::io::Read;
        let mut file = match fs::File::open(self.path(key)?) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io_error(&format!("cannot read `{key}`"), e)),
        };
        let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
        buf.clear();
        buf.reserve_exact(size);
        file.read_to_end(buf)
            .map_err(|e| self.io_error(&format!("cannot read `{key}`"), e))?;
        Ok(true)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if entry.file_type()?.is_dir() {
                    walk(&entry.path(), &key, out)?;
                } else {
                    out.push(key);
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.prefix_path(prefix)?, "", &mut out)
            .map_err(|e| self.io_error("cannot list", e))?;
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<()> {
        match fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(self.io_error(&format!("cannot delete `{key}`"), e))
            }
            _ => Ok(()),
        }
    }

    fn is_empty(&self) -> Result<bool> {
        match fs::read_dir(&self.root) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            // A folder that is not there holds nothing (released, or never made).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(self.io_error("cannot list", e)),
        }
    }

    fn remove_root_if_empty(&self) -> Result<bool> {
        let entries = fs::read_dir(&self.root).map_err(|e| self.io_error("cannot list", e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && is_own_temp_file(&name.to_string_lossy()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        match fs::remove_dir(&self.root) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(true),
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => Ok(false),
            Err(e) => Err(self.io_error("cannot remove the scratch folder", e)),
        }
    }

    fn remove_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.prefix_path(prefix)?;
        match fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io_error("cannot remove scratch data", e)),
        }
    }
}

/// How scratch pieces are compressed. Scratch data lives minutes, so speed beats ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScratchCodec {
    None,
    #[default]
    Lz4,
}

impl std::str::FromStr for ScratchCodec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(ScratchCodec::None),
            "lz4" => Ok(ScratchCodec::Lz4),
            other => Err(format!("unknown scratch codec `{other}`; use lz4 or none")),
        }
    }
}

/// How a piece's payload is stored: the codec byte of its trailer.
mod stored {
    /// The raw bytes.
    pub const RAW: u8 = 0;
    /// One lz4 block of the raw bytes (pieces of earlier versions, still read).
    pub const LZ4: u8 = 1;
    /// The element size (one byte), then blocks of [`super::SHUFFLE_BLOCK`] raw bytes, each
    /// byte-shuffled (unless elements are single bytes) and stored as a little-endian `u32`
    /// length and an lz4 block.
    pub const LZ4_BLOCKS: u8 = 2;
}

/// Raw bytes per lz4 block of a piece: small enough to stay in a core's cache between the
/// shuffle and the compression.
const SHUFFLE_BLOCK: usize = 128 << 10;

/// `RCP3`: the CRC covers the piece's key (pieces of `RCP2` did not; they read as lost).
const MAGIC: &[u8; 4] = b"RCP3";
const TRAILER: usize = 4 + 1 + 8 + 4;
/// Bytes of a piece's trailer (magic, codec, raw length, CRC-32 of the key and the payload).
pub const PIECE_TRAILER: usize = TRAILER;

/// The CRC of a piece, started with its key: a piece stored under another key (two pieces of
/// one size swapped, or one copied over another) fails its check like a damaged one.
fn piece_crc(key: &str) -> crc32fast::Hasher {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&(key.len() as u64).to_le_bytes());
    crc.update(key.as_bytes());
    crc
}

/// Frames `raw`, of `item`-byte elements, as the scratch piece stored under `key`: the
/// payload, then a trailer (magic, codec, raw length, CRC-32 of `key` and the payload). The
/// payload comes first so that an uncompressed piece starts at the beginning of its file, where
/// direct I/O can move it in place (see [`raw_piece_trailer`]). lz4 compresses elements of
/// several bytes byte-shuffled, as blosc does: the high bytes of neighbouring numbers repeat
/// where their whole values do not. Falls back to storing raw bytes when compression does not
/// pay.
pub fn encode_piece(key: &str, raw: &[u8], codec: ScratchCodec, item: usize) -> Vec<u8> {
    let mut out = Vec::new();
    encode_piece_into(key, raw, codec, item, &mut out);
    out
}

/// [`encode_piece`] into a reused buffer (its capacity is kept, so no fresh pages per piece).
/// The buffer never grows beyond the raw piece and its trailer, as the plan counts it.
pub fn encode_piece_into(
    key: &str,
    raw: &[u8],
    codec: ScratchCodec,
    item: usize,
    out: &mut Vec<u8>,
) {
    out.clear();
    // Exact growth (no amortized doubling): the plan accounts for one raw piece.
    out.reserve_exact(raw.len() + TRAILER);
    let compressed = codec == ScratchCodec::Lz4 && compress_blocks(raw, item, out);
    if !compressed {
        out.clear();
        out.extend_from_slice(raw);
    }
    let mut crc = piece_crc(key);
    crc.update(out);
    let used = if compressed {
        stored::LZ4_BLOCKS
    } else {
        stored::RAW
    };
    let trailer = trailer(used, raw.len(), crc.finalize());
    out.extend_from_slice(&trailer);
}

/// Appends `raw` to `out` as a [`stored::LZ4_BLOCKS`] payload, or returns false (leaving
/// `out` to be cleared) as soon as it would not save a sixteenth of the raw size.
fn compress_blocks(raw: &[u8], item: usize, out: &mut Vec<u8>) -> bool {
    let item = if (1..=u8::MAX as usize).contains(&item) {
        item
    } else {
        1
    };
    let limit = raw.len() - raw.len() / 16;
    let block_bytes = SHUFFLE_BLOCK.min(raw.len());
    let mut shuffled = vec![0u8; if item > 1 { block_bytes } else { 0 }];
    let mut compressed = vec![0u8; lz4_flex::block::get_maximum_output_size(block_bytes)];
    out.push(item as u8);
    for block in raw.chunks(SHUFFLE_BLOCK) {
        let input = if item > 1 {
            let shuffled = &mut shuffled[..block.len()];
            shuffle(block, item, shuffled);
            &*shuffled
        } else {
            block
        };
        let Ok(n) = lz4_flex::block::compress_into(input, &mut compressed) else {
            return false;
        };
        if out.len() + 4 + n >= limit {
            return false;
        }
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&compressed[..n]);
    }
    true
}

/// Decodes a [`stored::LZ4_BLOCKS`] payload into `out`, of the piece's raw length.
fn decompress_blocks(payload: &[u8], out: &mut [u8]) -> std::result::Result<(), String> {
    let Some((&item, mut rest)) = payload.split_first() else {
        return Err("empty payload".into());
    };
    let item = item as usize;
    if item == 0 {
        return Err("element size 0".into());
    }
    let mut unshuffled = vec![
        0u8;
        if item > 1 {
            SHUFFLE_BLOCK.min(out.len())
        } else {
            0
        }
    ];
    for block in out.chunks_mut(SHUFFLE_BLOCK) {
        let Some((len, after)) = rest.split_first_chunk::<4>() else {
            return Err("a block is missing".into());
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > after.len() {
            return Err("a block runs past the payload".into());
        }
        let into = if item > 1 {
            &mut unshuffled[..block.len()]
        } else {
            &mut *block
        };
        match lz4_flex::block::decompress_into(&after[..len], into) {
            Ok(n) if n == into.len() => {}
            Ok(n) => {
                return Err(format!(
                    "a block decompressed to {n} bytes where {} were expected",
                    into.len()
                ))
            }
            Err(e) => return Err(format!("cannot decompress: {e}")),
        }
        if item > 1 {
            unshuffle(&unshuffled[..block.len()], item, block);
        }
        rest = &after[len..];
    }
    if !rest.is_empty() {
        return Err("bytes after the last block".into());
    }
    Ok(())
}

/// Writes the `item`-byte elements of `src` to `dst` byte-shuffled: the first byte of every
/// element, then the second, and so on; bytes after the last whole element stay as they are.
fn shuffle(src: &[u8], item: usize, dst: &mut [u8]) {
    let n = src.len() / item;
    for b in 0..item {
        let plane = &mut dst[b * n..(b + 1) * n];
        for (d, element) in plane.iter_mut().zip(src.chunks_exact(item)) {
            *d = element[b];
        }
    }
    dst[n * item..].copy_from_slice(&src[n * item..]);
}

/// Undoes [`shuffle`].
fn unshuffle(src: &[u8], item: usize, dst: &mut [u8]) {
    let n = src.len() / item;
    for b in 0..item {
        let plane = &src[b * n..(b + 1) * n];
        for (&byte, element) in plane.iter().zip(dst.chunks_exact_mut(item)) {
            element[b] = byte;
        }
    }
    dst[n * item..].copy_from_slice(&src[n * item..]);
}

fn trailer(codec: u8, raw_len: usize, crc: u32) -> [u8; TRAILER] {
    let mut t = [0u8; TRAILER];
    t[..4].copy_from_slice(MAGIC);
    t[4] = codec;
    t[5..13].copy_from_slice(&(raw_len as u64).to_le_bytes());
    t[13..17].copy_from_slice(&crc.to_le_bytes());
    t
}

/// The trailer of an uncompressed piece whose payload is the concatenation of `runs`: stored
/// after them with [`ScratchStore::put_parts`], the payload is never gathered into one buffer.
/// The result is the same file as [`encode_piece`] of the concatenation with no compression.
pub fn raw_piece_trailer(key: &str, runs: &[&[u8]]) -> [u8; PIECE_TRAILER] {
    let mut crc = piece_crc(key);
    runs.iter().for_each(|r| crc.update(r));
    let len: usize = runs.iter().map(|r| r.len()).sum();
    trailer(stored::RAW, len, crc.finalize())
}

/// Checks an uncompressed piece read with [`ScratchStore::get_parts`] as `runs` + `trailer`.
pub fn check_raw_piece(
    key: &str,
    runs: &[&mut [u8]],
    trailer: &[u8],
) -> std::result::Result<(), String> {
    let len: usize = runs.iter().map(|r| r.len()).sum();
    if trailer.len() != TRAILER || &trailer[..4] != MAGIC {
        return Err("not a scratch piece (bad trailer)".into());
    }
    if trailer[4] != stored::RAW {
        return Err("compressed where an uncompressed piece of this length was expected".into());
    }
    if trailer[5..13] != (len as u64).to_le_bytes() {
        return Err("holds another number of bytes than expected".into());
    }
    let mut crc = piece_crc(key);
    runs.iter().for_each(|r| crc.update(r));
    if trailer[13..17] != crc.finalize().to_le_bytes() {
        return Err("checksum mismatch: the piece is corrupt".into());
    }
    Ok(())
}

/// Checks and decodes the scratch piece stored under `key` into `out`, which must have the
/// piece's raw length.
pub fn decode_piece(key: &str, data: &[u8], out: &mut [u8]) -> std::result::Result<(), String> {
    let Some((payload, trailer)) = data.split_last_chunk::<TRAILER>() else {
        return Err("not a scratch piece (too short)".into());
    };
    if &trailer[..4] != MAGIC {
        return Err("not a scratch piece (bad trailer)".into());
    }
    let raw_len = u64::from_le_bytes(trailer[5..13].try_into().unwrap_or_default());
    if raw_len != out.len() as u64 {
        return Err(format!(
            "holds {raw_len} bytes where {} were expected",
            out.len()
        ));
    }
    let crc = u32::from_le_bytes(trailer[13..17].try_into().unwrap_or_default());
    let mut computed = piece_crc(key);
    computed.update(payload);
    if computed.finalize() != crc {
        return Err("checksum mismatch: the piece is corrupt".into());
    }
    match trailer[4] {
        stored::RAW if payload.len() == out.len() => {
            out.copy_from_slice(payload);
            Ok(())
        }
        stored::LZ4_BLOCKS => decompress_blocks(payload, out),
        stored::LZ4 => match lz4_flex::block::decompress_into(payload, out) {
            Ok(n) if n == out.len() => Ok(()),
            Ok(n) => Err(format!(
                "decompressed to {n} bytes where {} were expected",
                out.len()
            )),
            Err(e) => Err(format!("cannot decompress: {e}")),
        },
        _ => Err("unknown codec or wrong length".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_round_trip_and_detect_corruption() {
        let raw: Vec<u8> = (0..10_000u32).flat_map(|i| (i / 7).to_ne_bytes()).collect();
        for (codec, item) in [
            (ScratchCodec::None, 4),
            (ScratchCodec::Lz4, 1),
            (ScratchCodec::Lz4, 4),
        ] {
            let enc = encode_piece("p/0/1", &raw, codec, item);
            let mut out = vec![0u8; raw.len()];
            decode_piece("p/0/1", &enc, &mut out).unwrap();
            assert_eq!(out, raw);
            let mut bad = enc.clone();
            let middle = bad.len() / 2;
            bad[middle] ^= 1;
            assert!(decode_piece("p/0/1", &bad, &mut out)
                .unwrap_err()
                .contains("checksum"));
            // The same bytes under another key are not that key's piece.
            assert!(decode_piece("p/0/2", &enc, &mut out)
                .unwrap_err()
                .contains("checksum"));
        }
        assert!(encode_piece("p", &raw, ScratchCodec::Lz4, 1).len() < raw.len());
    }

    /// Floats that vary smoothly, as measured fields do, over several shuffle blocks with a
    /// partial last one and, for 3-byte elements, a partial last element in every block: they
    /// round-trip, and shuffled they compress where plain lz4 barely does.
    #[test]
    fn shuffled_pieces_round_trip_and_compress_floats() {
        let floats: Vec<u8> = (0..200_001u32)
            .flat_map(|i| (280.0f32 + (i as f32 * 0.001).sin() * 20.0).to_le_bytes())
            .collect();
        for item in [2, 3, 4, 8] {
            let enc = encode_piece("p/1", &floats, ScratchCodec::Lz4, item);
            let mut out = vec![0u8; floats.len()];
            decode_piece("p/1", &enc, &mut out).unwrap();
            assert!(out == floats, "element size {item}");
        }
        let plain = encode_piece("p", &floats, ScratchCodec::Lz4, 1).len();
        let shuffled = encode_piece("p", &floats, ScratchCodec::Lz4, 4).len();
        assert!(
            shuffled * 3 < plain * 2,
            "{shuffled} bytes shuffled, {plain} plain, of {}",
            floats.len()
        );

        // Damage behind a valid checksum (as if written so) is an error or other values,
        // never a panic.
        let enc = encode_piece("p/1", &floats, ScratchCodec::Lz4, 4);
        let payload_len = enc.len() - TRAILER;
        let mut out = vec![0u8; floats.len()];
        for at in [0, 1, 2, 5, payload_len / 2, payload_len - 1] {
            let mut bad = enc.clone();
            bad[at] ^= 0x40;
            let mut crc = piece_crc("p/1");
            crc.update(&bad[..payload_len]);
            let sealed = trailer(stored::LZ4_BLOCKS, floats.len(), crc.finalize());
            bad[payload_len..].copy_from_slice(&sealed);
            let _ = decode_piece("p/1", &bad, &mut out);
        }
    }

    #[test]
    fn local_store_basics() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalScratch::open(dir.path().join("s")).unwrap();
        s.put("a/b/c", b"xyz").unwrap();
        assert_eq!(s.get("a/b/c").unwrap().unwrap(), b"xyz");
        assert!(s.get("a/nothing").unwrap().is_none());
        assert!(s.put_if_absent("a/j", b"1").unwrap());
        assert!(!s.put_if_absent("a/j", b"2").unwrap());
        let mut keys = s.list("a/").unwrap();
        keys.sort();
        assert_eq!(keys, ["b/c", "j"]);
        s.remove_prefix("a").unwrap();
        assert!(s.list("a/").unwrap().is_empty());

        // Large pieces read back the same whichever way they move, and either way reads what
        // the other wrote.
        let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
        let cached = LocalScratch::open(dir.path().join("s"))
            .unwrap()
            .with_io(ScratchIo::Cached);
        assert!(!cached.direct_io());
        for (writer, reader) in [(&s, &cached), (&cached, &s)] {
            writer.put_parts("big", &[&big[..5], &big[5..]]).unwrap();
            let mut back = vec![0u8; big.len()];
            let (x, y) = back.split_at_mut(1 << 20);
            assert_eq!(reader.get_parts("big", &mut [x, y]).unwrap(), Fetched::Read);
            assert!(back == big);
        }
    }
}
