//! Stores from URIs: local directories (and `file://`) through zarrs_filesystem, with atomic
//! writes; `s3://`, `gs://`, `az://` and `http(s)://` (read-only) as rechunker-store opens them
//! (the same as scratch), driven by its shared tokio runtime behind zarrs' async-to-sync adapter.

use crate::error::{Result, ZarrError};
use rechunker_core::direct_io;
use rechunker_core::rates::KEPT_SAMPLE_BYTES;
use rechunker_store::object_store::ObjectStore;
use rechunker_store::{Location, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs::storage::{
    store_set_partial_many, AsyncReadableStorageTraits, AsyncWritableStorageTraits, Bytes,
    ListableStorageTraits, MaybeBytes, MaybeBytesIterator, OffsetBytesIterator,
    ReadableStorageTraits, ReadableWritableListableStorage, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};
use zarrs_filesystem::FilesystemStore;
use zarrs_object_store::AsyncObjectStore;

/// The storage every array of this crate uses.
pub(crate) type Storage = ReadableWritableListableStorage;

/// A store opened from a URI.
pub(crate) struct OpenedStore {
    pub storage: Storage,
    /// For local stores, the directory (so that opening a missing source fails clearly).
    pub local_root: Option<PathBuf>,
    /// False for `http(s)://`.
    pub writable: bool,
    /// False for `http(s)://`: plain HTTP cannot list, so groups need consolidated metadata.
    pub listable: bool,
    /// For object stores, the storage itself: arrays start fetches of the next task's chunks
    /// through it (see [`ObjectStorage::prefetch`]).
    pub objects: Option<Arc<ObjectStorage>>,
}

struct TokioBlockOn(tokio::runtime::Handle);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

fn store_error(e: StoreError) -> ZarrError {
    ZarrError::Store {
        uri: e.uri().into(),
        message: e.message(),
    }
}

/// Opens the store `uri` names. Nothing is read or written: object store clients connect on
/// their first request, local directories are created on their first write.
pub(crate) fn open_store(uri: &str) -> Result<OpenedStore> {
    if let Location::Local(path) = Location::parse(uri).map_err(store_error)? {
        return open_local(uri, &path);
    }
    let object = rechunker_store::open_object(uri).map_err(store_error)?;
    let handle = rechunker_store::runtime_handle(uri).map_err(store_error)?;
    let store = Arc::new(AsyncObjectStore::new(object.store.clone()));
    let adapter = Arc::new(ObjectStorage {
        sync: AsyncToSyncStorageAdapter::new(store.clone(), TokioBlockOn(handle.clone())),
        store,
        object: object.store,
        handle,
        kept: Mutex::default(),
        prefetched: Mutex::default(),
    });
    Ok(OpenedStore {
        storage: adapter.clone(),
        local_root: None,
        writable: object.writable,
        listable: object.listable,
        objects: Some(adapter),
    })
}

type AsyncStore = AsyncObjectStore<Arc<dyn ObjectStore>>;

/// zarrs' async-to-sync adapter over an object store, except that whole-object reads are one
/// GET (the adapter turns them into a HEAD and a ranged GET).
pub(crate) struct ObjectStorage {
    sync: AsyncToSyncStorageAdapter<AsyncStore, TokioBlockOn>,
    store: Arc<AsyncStore>,
    /// The object store under `store`, for multipart uploads.
    object: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
    /// Objects fetched while [`keeping_reads`], until read once more.
    kept: Mutex<Kept>,
    /// Fetches of the next task's chunks ([`ObjectStorage::prefetch`]), until a thread that
    /// reads them takes them.
    prefetched: Mutex<HashMap<String, Fetch>>,
}

/// Objects the planner's rate probe fetched, kept for the run's first read of each (so that
/// planning adds no bytes through the store), [`KEPT_SAMPLE_BYTES`] at most.
#[derive(Default)]
struct Kept {
    bytes: u64,
    values: HashMap<String, Bytes>,
}

thread_local! {
    static KEEPING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's whole-object reads from object stores kept for one more read
/// (see [`ObjectStorage::kept`]).
pub(crate) fn keeping_reads<T>(f: impl FnOnce() -> T) -> T {
    let outer = KEEPING.replace(true);
    let out = f();
    KEEPING.set(outer);
    out
}

impl ObjectStorage {
    /// Keeps `value`, just fetched as `key`, for one more read while there is room.
    fn keep(&self, key: &str, value: &Bytes) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let len = value.len() as u64;
        if kept.bytes + len <= KEPT_SAMPLE_BYTES && !kept.values.contains_key(key) {
            kept.bytes += len;
            kept.values.insert(key.to_string(), value.clone());
        }
    }

    /// The kept value of `key`, given up.
    fn take_kept(&self, key: &str) -> Option<Bytes> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let value = kept.values.remove(key)?;
        kept.bytes -= value.len() as u64;
        Some(value)
    }

    fn is_kept(&self, key: &str) -> bool {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.values.contains_key(key)
    }
}

type Fetch = tokio::task::JoinHandle<std::result::Result<MaybeBytes, StorageError>>;

impl ObjectStorage {
    /// Starts fetching `keys` for whichever thread reads them (the caller bounds how many);
    /// keys kept or already being fetched are skipped. Returns the fetches started.
    pub(crate) fn prefetch(&self, keys: impl IntoIterator<Item = String>) -> usize {
        let mut prefetched = self.prefetched.lock().unwrap_or_else(|e| e.into_inner());
        let mut started = 0;
        for key in keys {
            if self.is_kept(&key) || prefetched.contains_key(&key) {
                continue;
            }
            let Ok(store_key) = StoreKey::new(key.clone()) else {
                continue;
            };
            let store = self.store.clone();
            let fetch = self
                .handle
                .spawn(async move { store.get(&store_key).await });
            prefetched.insert(key, fetch);
            started += 1;
        }
        started
    }

    /// The prefetch of `key`, given up by the prefetcher.
    fn take_prefetched(&self, key: &str) -> Option<Fetch> {
        let mut prefetched = self.prefetched.lock().unwrap_or_else(|e| e.into_inner());
        prefetched.remove(key)
    }
}

impl Drop for ObjectStorage {
    fn drop(&mut self) {
        let prefetched = self.prefetched.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, fetch) in prefetched.drain() {
            fetch.abort();
        }
    }
}

/// A thread's reads ahead (see [`reads_ahead`]): the keys still to fetch, in the order they
/// will be read, and the fetches in flight.
struct Ahead {
    window: usize,
    keys: VecDeque<String>,
    pending: HashMap<String, Fetch>,
}

thread_local! {
    static AHEAD: RefCell<Option<Ahead>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's whole-object reads of `keys` (in that order) from an object
/// store fetched [`rechunker_store::io_window`] at a time ahead of the one being decoded.
/// Reads of other keys, and of local stores, are as usual; fetches left over are cancelled.
pub(crate) fn reads_ahead<T>(keys: Vec<String>, f: impl FnOnce() -> T) -> T {
    let outer = AHEAD.with(|a| {
        a.borrow_mut().replace(Ahead {
            window: rechunker_store::io_window(),
            keys: keys.into(),
            pending: HashMap::new(),
        })
    });
    let out = f();
    if let Some(mine) = AHEAD.with(|a| std::mem::replace(&mut *a.borrow_mut(), outer)) {
        for fetch in mine.pending.into_values() {
            fetch.abort();
        }
    }
    out
}

impl ObjectStorage {
    /// The fetch of `key` if this thread reads ahead and `key` is on its list (topping the
    /// window up first), or if it was prefetched.
    fn fetched(&self, key: &StoreKey) -> Option<Fetch> {
        let name = key.as_str();
        let ahead = AHEAD.with(|a| {
            let mut a = a.borrow_mut();
            let ahead = a.as_mut()?;
            if !ahead.pending.contains_key(name) && !ahead.keys.iter().any(|k| k == name) {
                return None;
            }
            while ahead.pending.len() < ahead.window.max(1) {
                let Some(next) = ahead.keys.pop_front() else {
                    break;
                };
                // A kept object is read from memory: no fetch. A prefetched one joins the
                // window, which so holds what this thread has coming, prefetched or not.
                if self.is_kept(&next) {
                    continue;
                }
                let fetch = match self.take_prefetched(&next) {
                    Some(fetch) => fetch,
                    None => {
                        let Ok(store_key) = StoreKey::new(next.clone()) else {
                            continue;
                        };
                        let store = self.store.clone();
                        self.handle
                            .spawn(async move { store.get(&store_key).await })
                    }
                };
                ahead.pending.insert(next, fetch);
            }
            ahead.keys.retain(|k| k != name);
            ahead.pending.remove(name)
        });
        ahead.or_else(|| self.take_prefetched(name))
    }
}

impl ReadableStorageTraits for ObjectStorage {
    fn get(&self, key: &StoreKey) -> std::result::Result<MaybeBytes, StorageError> {
        if let Some(value) = self.take_kept(key.as_str()) {
            // Read: off this thread's list of reads ahead, if it is there.
            AHEAD.with(|a| {
                if let Some(ahead) = a.borrow_mut().as_mut() {
                    ahead.keys.retain(|k| k != key.as_str());
                    if let Some(fetch) = ahead.pending.remove(key.as_str()) {
                        fetch.abort();
                    }
                }
            });
            return Ok(Some(value));
        }
        let got = match self.fetched(key) {
            Some(fetch) => self
                .handle
                .block_on(fetch)
                .unwrap_or_else(|e| Err(StorageError::Other(format!("the read was lost: {e}")))),
            None => self.handle.block_on(self.store.get(key)),
        };
        if let (Ok(Some(value)), true) = (&got, KEEPING.get()) {
            self.keep(key.as_str(), value);
        }
        got
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        self.sync.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        self.sync.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.sync.supports_get_partial()
    }
}

impl ListableStorageTraits for ObjectStorage {
    fn list(&self) -> std::result::Result<StoreKeys, StorageError> {
        self.sync.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> std::result::Result<StoreKeys, StorageError> {
        self.sync.list_prefix(prefix)
    }

    fn list_dir(
        &self,
        prefix: &StorePrefix,
    ) -> std::result::Result<StoreKeysPrefixes, StorageError> {
        self.sync.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> std::result::Result<u64, StorageError> {
        self.sync.size_prefix(prefix)
    }
}

/// A thread's writes in flight (see [`writes_behind`]): the key and the request of each, oldest
/// first.
#[derive(Default)]
struct Behind {
    pending: VecDeque<(String, WriteRequest)>,
    /// The first write that failed.
    failed: Option<(String, StorageError)>,
}

type WriteRequest = tokio::task::JoinHandle<std::result::Result<(), StorageError>>;

thread_local! {
    static BEHIND: RefCell<Option<Behind>> = const { RefCell::new(None) };
}

/// Hands the write of `value` to `key` to this thread's writes in flight when [`writes_behind`]
/// opened them: first waits for the oldest while `window` or more are in flight, then starts
/// `spawn(value)`, and returns `None`. Returns the value back when no window is open: the
/// caller writes it now. Fails with the first earlier write that failed.
fn write_behind(
    handle: &tokio::runtime::Handle,
    key: &StoreKey,
    window: usize,
    value: Bytes,
    spawn: impl FnOnce(Bytes) -> WriteRequest,
) -> std::result::Result<Option<Bytes>, StorageError> {
    BEHIND.with(|b| {
        let mut b = b.borrow_mut();
        let Some(behind) = b.as_mut() else {
            return Ok(Some(value));
        };
        if let Some((k, e)) = &behind.failed {
            return Err(StorageError::Other(format!(
                "an earlier write (`{k}`) failed: {e}"
            )));
        }
        while behind.pending.len() >= window.max(1) {
            let Some((k, request)) = behind.pending.pop_front() else {
                break;
            };
            if let Err((k, e)) = join(handle, k, request) {
                let message = format!("writing `{k}` failed: {e}");
                behind.failed = Some((k, e));
                return Err(StorageError::Other(message));
            }
        }
        behind
            .pending
            .push_back((key.as_str().to_string(), spawn(value)));
        Ok(None)
    })
}

/// Waits for `request`, a write of `key`.
fn join(
    handle: &tokio::runtime::Handle,
    key: String,
    request: tokio::task::JoinHandle<std::result::Result<(), StorageError>>,
) -> std::result::Result<(), (String, StorageError)> {
    match handle.block_on(request) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err((key, e)),
        Err(e) => Err((key, StorageError::Other(format!("the write was lost: {e}")))),
    }
}

/// Runs `f` with this thread's whole-object writes issued in the background, so that the thread
/// encodes the next chunk while the last ones travel: [`rechunker_store::io_window`] at a time
/// to object stores, [`LOCAL_WRITES_IN_FLIGHT`] to local directories. Returns once every write
/// has landed, with the key and error of the first that failed. The caller reports its region
/// written only after this returns, so the journal never runs ahead of the store.
pub(crate) fn writes_behind<T>(
    f: impl FnOnce() -> T,
) -> (T, std::result::Result<(), (String, StorageError)>) {
    let outer = BEHIND.with(|b| b.borrow_mut().replace(Behind::default()));
    let out = f();
    let mine = BEHIND.with(|b| std::mem::replace(&mut *b.borrow_mut(), outer));
    let mut result = Ok(());
    if let Some(mine) = mine {
        if let Some(failed) = mine.failed {
            result = Err(failed);
        }
        let handle = rechunker_store::runtime_handle("").ok();
        for (key, request) in mine.pending {
            let joined = match &handle {
                Some(h) => join(h, key, request),
                None => Ok(()),
            };
            if let (Err(e), Ok(())) = (joined, &result) {
                result = Err(e);
            }
        }
    }
    (out, result)
}

/// Objects of this size and more (large shards) are uploaded in parts sent side by side.
const MULTIPART_MIN_BYTES: usize = 32 << 20;
/// Bytes per part of a multipart upload (S3 wants at least 5 MiB in every part but the last).
const MULTIPART_PART_BYTES: usize = 16 << 20;

/// Uploads `value` as the object `key` of `object` in parts of [`MULTIPART_PART_BYTES`], all
/// in flight at once, so that one large object is not bound to one connection's throughput.
/// The parts are slices of `value` (no copies). The object appears whole when the upload
/// completes; an upload that fails is aborted, leaving nothing.
async fn put_in_parts(
    object: Arc<dyn ObjectStore>,
    key: StoreKey,
    value: Bytes,
) -> std::result::Result<(), StorageError> {
    use rechunker_store::object_store::{path::Path as ObjectPath, ObjectStoreExt, PutPayload};
    let failed = |e: rechunker_store::object_store::Error| StorageError::Other(e.to_string());
    let path = ObjectPath::from(key.as_str());
    let mut upload = object.put_multipart(&path).await.map_err(failed)?;
    let parts: Vec<_> = (0..value.len())
        .step_by(MULTIPART_PART_BYTES)
        .map(|at| {
            let end = (at + MULTIPART_PART_BYTES).min(value.len());
            tokio::spawn(upload.put_part(PutPayload::from(value.slice(at..end))))
        })
        .collect();
    let mut sent = Ok(());
    for part in parts {
        let result = match part.await {
            Ok(result) => result.map_err(failed),
            Err(e) => Err(StorageError::Other(format!(
                "a part's upload was lost: {e}"
            ))),
        };
        if sent.is_ok() {
            sent = result;
        }
    }
    match sent {
        Ok(()) => upload.complete().await.map(|_| ()).map_err(failed),
        Err(e) => {
            let _ = upload.abort().await;
            Err(e)
        }
    }
}

impl WritableStorageTraits for ObjectStorage {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        // One PUT, or one multipart upload: the object appears whole or not at all.
        let window = rechunker_store::io_window();
        let now = write_behind(&self.handle, key, window, value, |value| {
            let (store, object, key) = (self.store.clone(), self.object.clone(), key.clone());
            self.handle.spawn(async move {
                if value.len() >= MULTIPART_MIN_BYTES {
                    put_in_parts(object, key, value).await
                } else {
                    store.set(&key, value).await
                }
            })
        })?;
        match now {
            Some(value) if value.len() >= MULTIPART_MIN_BYTES => self
                .handle
                .block_on(put_in_parts(self.object.clone(), key.clone(), value)),
            Some(value) => self.sync.set(key, value),
            None => Ok(()),
        }
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> std::result::Result<(), StorageError> {
        self.sync.set_partial_many(key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        self.sync.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> std::result::Result<(), StorageError> {
        self.sync.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

fn open_local(uri: &str, path: &Path) -> Result<OpenedStore> {
    if path.as_os_str().is_empty() {
        return Err(ZarrError::Store {
            uri: uri.into(),
            message: "empty path".into(),
        });
    }
    let inner = FilesystemStore::new(path).map_err(|e| ZarrError::Store {
        uri: uri.into(),
        message: e.to_string(),
    })?;
    Ok(OpenedStore {
        storage: Arc::new(LocalStore {
            inner,
            root: path.to_path_buf(),
            direct_io: OnceLock::new(),
        }),
        local_root: Some(path.to_path_buf()),
        objects: None,
        writable: true,
        listable: true,
    })
}

/// A local directory store whose writes are atomic: each value goes to a hidden temporary file
/// beside its key and is renamed into place, so a crash leaves the old value or the new one,
/// never a part (zarrs' `FilesystemStore` truncates and rewrites in place). Reads, listing and
/// erasing are `FilesystemStore`'s.
///
/// Values of [`direct_io::MIN_BYTES`] and more (target chunks and shards) are written past the
/// page cache where the file system allows it: this process never reads them again, and
/// filling fresh page-cache pages cost a quarter of a blosc-lz4 run's CPU (docs/design.md,
/// "Writing target chunks").
struct LocalStore {
    inner: FilesystemStore,
    root: PathBuf,
    /// What direct I/O needs under `root`, probed at the first large write (never on a store
    /// only read: the probe writes a file).
    direct_io: OnceLock<Option<direct_io::Alignment>>,
}

/// Set to `cached` to write large values through the page cache (to measure the difference).
const TARGET_IO_ENV: &str = "RECHUNKER_TARGET_IO";

impl LocalStore {
    /// How a value of `len` bytes is written: `Some` for past the page cache.
    fn direct_io_for(&self, len: usize) -> Option<direct_io::Alignment> {
        if (len as u64) < direct_io::MIN_BYTES {
            return None;
        }
        *self.direct_io.get_or_init(|| {
            if std::env::var(TARGET_IO_ENV).is_ok_and(|v| v == "cached") {
                return None;
            }
            let found = direct_io::probe(&self.root);
            tracing::debug!(root = %self.root.display(), direct_io = ?found, "large values of this store");
            found
        })
    }
}

/// Writes to a local store a thread keeps in flight inside [`writes_behind`]: enough for the
/// thread to encode the next chunk while the disk takes the last. Each holds an encoded chunk
/// and a direct-I/O transfer buffer, counted in the budget ([`write_window_bytes`]).
pub(crate) const LOCAL_WRITES_IN_FLIGHT: usize = 2;

/// The memory a thread's writes in flight hold when it writes units (chunks or shards) of
/// `unit_bytes` decoded: encoded units, and on local stores the transfer buffer of each large
/// write.
pub(crate) fn write_window_bytes(unit_bytes: u64, remote: bool) -> u64 {
    let encoded = crate::meta::encoded_bound(unit_bytes);
    if remote {
        rechunker_store::io_window() as u64 * encoded
    } else {
        // Only values of direct_io::MIN_BYTES and more pass through a transfer buffer.
        let transfer = if encoded >= direct_io::MIN_BYTES {
            direct_io::BUFFER_BYTES as u64
        } else {
            0
        };
        LOCAL_WRITES_IN_FLIGHT as u64 * (encoded + transfer)
    }
}

/// Writes `value` as the file `path`, whole or not at all: to a temporary file beside it, then
/// renamed; past the page cache when `direct` says how.
fn write_atomically(
    path: &Path,
    value: &[u8],
    direct: Option<direct_io::Alignment>,
) -> std::result::Result<(), StorageError> {
    let parent = path.parent().ok_or_else(|| {
        StorageError::Other(format!("`{}` has no parent directory", path.display()))
    })?;
    std::fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = match direct {
        Some(align) => direct_io::write_new(&tmp, &[value], align),
        None => std::fs::write(&tmp, value),
    }
    .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(())
}

/// Numbers this process's temporary files: one counter for every [`LocalStore`], so two stores
/// open on one directory never pick the same temporary name.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl ReadableStorageTraits for LocalStore {
    fn get(&self, key: &StoreKey) -> std::result::Result<MaybeBytes, StorageError> {
        self.inner.get(key)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for LocalStore {
    fn list(&self) -> std::result::Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> std::result::Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(
        &self,
        prefix: &StorePrefix,
    ) -> std::result::Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> std::result::Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

impl WritableStorageTraits for LocalStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        let path = self.inner.key_to_fspath(key);
        let direct = self.direct_io_for(value.len());
        let Ok(handle) = rechunker_store::runtime_handle("") else {
            return write_atomically(&path, &value, direct);
        };
        let behind = path.clone();
        let now = write_behind(&handle, key, LOCAL_WRITES_IN_FLIGHT, value, |value| {
            handle.spawn_blocking(move || write_atomically(&behind, &value, direct))
        })?;
        match now {
            Some(value) => write_atomically(&path, &value, direct),
            None => Ok(()),
        }
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> std::result::Result<(), StorageError> {
        // Never used by this crate (chunks are written whole); kept atomic all the same.
        store_set_partial_many(self, key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> std::result::Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of the temporary (dot) files in `dir`.
    fn temporary_files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    /// A store in `dir`.
    fn local_store(dir: &Path) -> LocalStore {
        LocalStore {
            inner: FilesystemStore::new(dir).unwrap(),
            root: dir.to_path_buf(),
            direct_io: OnceLock::new(),
        }
    }

    #[test]
    fn large_values_go_past_the_page_cache_and_read_back_the_same() {
        // Beside the sources, on the disk of the checkout (`/tmp` may be a tmpfs, where direct
        // I/O does not work).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let store = local_store(dir.path());
        // Lengths around the threshold and the alignment, and an unaligned start in memory.
        let data: Vec<u8> = (0..(3 << 20) + 4096 + 17)
            .map(|i: u32| (i % 251) as u8)
            .collect();
        for (n, len) in [(1 << 20) - 1, 1 << 20, (1 << 20) + 511, data.len() - 1]
            .into_iter()
            .enumerate()
        {
            let key = StoreKey::new(format!("c/{n}")).unwrap();
            let value = Bytes::copy_from_slice(&data[1..1 + len]);
            store.set(&key, value.clone()).unwrap();
            assert_eq!(store.get(&key).unwrap().unwrap(), value, "length {len}");
        }
        assert!(
            store.direct_io.get().copied().flatten().is_some(),
            "direct I/O should work on {} (an ext4 or xfs disk)",
            dir.path().display()
        );
        let left = temporary_files(&dir.path().join("c"));
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[test]
    fn writes_behind_land_before_it_returns_and_a_failed_one_is_named() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let store = local_store(dir.path());
        let values: Vec<Bytes> = (0..6u8)
            .map(|n| Bytes::from(vec![n; (1 << 20) + 4096 * n as usize]))
            .collect();
        let (sent, landed) = writes_behind(|| {
            values.iter().enumerate().try_for_each(|(n, v)| {
                store.set(&StoreKey::new(format!("c/{n}")).unwrap(), v.clone())
            })
        });
        sent.unwrap();
        landed.unwrap();
        for (n, v) in values.iter().enumerate() {
            let key = StoreKey::new(format!("c/{n}")).unwrap();
            assert_eq!(store.get(&key).unwrap().unwrap(), *v, "chunk {n}");
        }

        // `d` is a file, so no chunk can be written below it: the write fails in the
        // background and is reported by key once the window closes, whichever call sees it.
        std::fs::write(dir.path().join("d"), b"not a directory").unwrap();
        let (sent, landed) = writes_behind(|| {
            store.set(&StoreKey::new("c/ok").unwrap(), values[0].clone())?;
            store.set(&StoreKey::new("d/0").unwrap(), values[1].clone())?;
            store.set(&StoreKey::new("c/after").unwrap(), values[2].clone())
        });
        let failed = match (sent, landed) {
            (Err(e), _) => e.to_string(),
            (Ok(()), Err((key, _))) => key,
            (Ok(()), Ok(())) => panic!("the write below a file was reported as landed"),
        };
        assert!(failed.contains("d/0"), "{failed}");
        assert_eq!(
            std::fs::read(dir.path().join("d")).unwrap(),
            b"not a directory"
        );
        let left = temporary_files(&dir.path().join("c"));
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}
