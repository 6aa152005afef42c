//! Stores from URIs: local directories (and `file://`) through zarrs_filesystem, with atomic
//! writes; `s3://`, `gs://`, `az://` and `http(s)://` (read-only) through object_store, driven
//! by one shared tokio runtime behind zarrs' async-to-sync adapter.

use crate::error::{Result, ZarrError};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs::storage::{
    store_set_partial_many, AsyncReadableStorageTraits, Bytes, ListableStorageTraits, MaybeBytes,
    MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits,
    ReadableWritableListableStorage, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes,
    StorePrefix, WritableStorageTraits,
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
}

/// Retries: a few quick ones, so that a dead endpoint fails within seconds.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(15),
    }
}

fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(300))
        .with_allow_http(allow_http)
}

/// The one tokio runtime all object stores share. Its workers drive connections; the callers
/// (the executor's threads) block on their own requests.
fn runtime() -> std::result::Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 4);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("rechunker-zarr-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

struct TokioBlockOn(tokio::runtime::Handle);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

/// Splits `scheme://bucket/prefix` into bucket and prefix (without surrounding slashes).
fn bucket_and_prefix<'a>(uri: &str, rest: &'a str) -> Result<(&'a str, &'a str)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(ZarrError::Store {
            uri: uri.into(),
            message: "the URI names no bucket or container".into(),
        });
    }
    Ok((bucket, prefix.trim_matches('/')))
}

/// Opens the store `uri` names. Nothing is read or written: object store clients connect on
/// their first request, local directories are created on their first write.
pub(crate) fn open_store(uri: &str) -> Result<OpenedStore> {
    let store_error = |message: String| ZarrError::Store {
        uri: uri.into(),
        message,
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return open_local(uri, Path::new(uri));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "file" {
        // file:///abs/path or file://localhost/abs/path
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        return open_local(uri, Path::new(path));
    }
    let rt = runtime().map_err(store_error)?;
    let _guard = rt.enter();
    let (object, prefix, writable): (Arc<dyn ObjectStore>, &str, bool) = match scheme.as_str() {
        "s3" | "s3a" => {
            let (bucket, prefix) = bucket_and_prefix(uri, rest)?;
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry_config());
            // As the AWS CLI does: AWS_ENDPOINT_URL(_S3) points at another S3 server, plain
            // http allowed when that is what it says.
            let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
            let http = endpoint
                .as_deref()
                .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            builder = builder
                .with_client_options(client_options(http))
                .with_allow_http(http);
            let s3 = builder.build().map_err(|e| store_error(e.to_string()))?;
            (Arc::new(s3), prefix, true)
        }
        "gs" | "gcs" => {
            let (bucket, prefix) = bucket_and_prefix(uri, rest)?;
            let gcs = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(retry_config())
                .with_client_options(client_options(false))
                .build()
                .map_err(|e| store_error(e.to_string()))?;
            (Arc::new(gcs), prefix, true)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let (container, prefix) = bucket_and_prefix(uri, rest)?;
            // abfs://container@account.dfs.core.windows.net/path
            let (container, account) = match container.split_once('@') {
                Some((c, host)) => (c, host.split('.').next()),
                None => (container, None),
            };
            let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_retry(retry_config())
                .with_client_options(client_options(false));
            if let Some(account) = account {
                builder = builder.with_account(account);
            }
            let az = builder.build().map_err(|e| store_error(e.to_string()))?;
            (Arc::new(az), prefix, true)
        }
        "http" | "https" => {
            let url = uri.trim_end_matches('/');
            let http = object_store::http::HttpBuilder::new()
                .with_url(url)
                .with_retry(retry_config())
                .with_client_options(client_options(scheme == "http"))
                .build()
                .map_err(|e| store_error(e.to_string()))?;
            (Arc::new(http), "", false)
        }
        other => {
            return Err(store_error(format!(
                "unknown scheme `{other}://`; use a local path, file://, s3://, gs://, az:// or http(s)://"
            )))
        }
    };
    let object: Arc<dyn ObjectStore> = if prefix.is_empty() {
        object
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(
            object,
            object_store::path::Path::from(prefix),
        ))
    };
    let store = Arc::new(AsyncObjectStore::new(object));
    let adapter = ObjectStorage {
        sync: AsyncToSyncStorageAdapter::new(store.clone(), TokioBlockOn(rt.handle().clone())),
        store,
        handle: rt.handle().clone(),
    };
    Ok(OpenedStore {
        storage: Arc::new(adapter),
        local_root: None,
        writable,
        listable: writable,
    })
}

type AsyncStore = AsyncObjectStore<Arc<dyn ObjectStore>>;

/// zarrs' async-to-sync adapter over an object store, except that whole-object reads are one
/// GET (the adapter turns them into a HEAD and a ranged GET).
struct ObjectStorage {
    sync: AsyncToSyncStorageAdapter<AsyncStore, TokioBlockOn>,
    store: Arc<AsyncStore>,
    handle: tokio::runtime::Handle,
}

impl ReadableStorageTraits for ObjectStorage {
    fn get(&self, key: &StoreKey) -> std::result::Result<MaybeBytes, StorageError> {
        self.handle.block_on(self.store.get(key))
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

impl WritableStorageTraits for ObjectStorage {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        // One PUT: the object appears whole or not at all.
        self.sync.set(key, value)
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
            sequence: AtomicU64::new(0),
        }),
        local_root: Some(path.to_path_buf()),
        writable: true,
        listable: true,
    })
}

/// A local directory store whose writes are atomic: each value goes to a hidden temporary file
/// beside its key and is renamed into place, so a crash leaves the old value or the new one,
/// never a part (zarrs' `FilesystemStore` truncates and rewrites in place). Reads, listing and
/// erasing are `FilesystemStore`'s.
struct LocalStore {
    inner: FilesystemStore,
    sequence: AtomicU64,
}

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
        let parent = path
            .parent()
            .ok_or_else(|| StorageError::Other(format!("key `{key}` has no parent directory")))?;
        std::fs::create_dir_all(parent)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let written = std::fs::write(&tmp, &value).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
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
