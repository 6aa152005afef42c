//! Opening an object store from a URL: credentials and endpoints come from the environment (as
//! the cloud CLIs read them), requests are retried with backoff for a bounded time (see
//! [`crate::retry`]), and the store is rooted at the URL's prefix.

use crate::error::StoreError;
use crate::location::Location;
use crate::retry::{client_options, retry_config, Connector};
use crate::runtime::runtime_handle;
use crate::Result;
use object_store::ObjectStore;
use std::sync::Arc;

/// An object store opened from a URL, rooted at its prefix (keys are relative to it).
#[derive(Clone, Debug)]
pub struct ObjectLocation {
    /// The URL as given, for messages.
    pub uri: String,
    pub store: Arc<dyn ObjectStore>,
    /// False for `http(s)://`.
    pub writable: bool,
    /// False for `http(s)://`: plain HTTP cannot list.
    pub listable: bool,
}

static ANONYMOUS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends requests to `s3://`, `gs://` and `az://` unsigned, as to a public bucket (the CLI's
/// `--anon`); the same as `AWS_SKIP_SIGNATURE=true` (S3) or `GOOGLE_SKIP_SIGNATURE=true`.
/// Applies to stores opened afterwards.
pub fn set_anonymous(anonymous: bool) {
    ANONYMOUS.store(anonymous, std::sync::atomic::Ordering::SeqCst);
}

fn anonymous() -> bool {
    ANONYMOUS.load(std::sync::atomic::Ordering::SeqCst)
}

/// The variables that name another S3 server, as the AWS CLI reads them.
const ENDPOINT_VARS: [&str; 3] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"];

/// As the AWS CLI does: `AWS_ENDPOINT_URL(_S3)` points at another S3 server.
fn s3_endpoint() -> Option<String> {
    ENDPOINT_VARS
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Refuses an endpoint variable that is set but not an `http(s)://` URL (an empty one
/// included): the S3 client would otherwise fail deep inside a request.
fn check_endpoint_vars(uri: &str) -> Result<()> {
    for var in ENDPOINT_VARS {
        let Ok(value) = std::env::var(var) else {
            continue;
        };
        let lower = value.to_ascii_lowercase();
        let host = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))
            .unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(StoreError::location(
                uri,
                format!("{var}={value:?} is not the URL of an S3 server; set it like http://127.0.0.1:9000 or https://s3.example.org, or unset it for AWS"),
            ));
        }
    }
    Ok(())
}

/// Opens the object store `uri` names (`s3://`, `gs://`, `az://`, `http(s)://`). Nothing is
/// read or written: clients connect on their first request. A local path is refused here; the
/// caller has its own way with files.
pub fn open_object(uri: &str) -> Result<ObjectLocation> {
    let failed = |e: object_store::Error| StoreError::location(uri, e.to_string());
    let handle = runtime_handle(uri)?;
    // Some clients look for a runtime while they are built.
    let _guard = handle.enter();
    let (store, prefix, writable): (Arc<dyn ObjectStore>, String, bool) =
        match Location::parse(uri)? {
            Location::Local(_) => {
                return Err(StoreError::location(
                    uri,
                    "a local path, not an object store URL",
                ))
            }
            Location::S3 { bucket, prefix } => {
                check_endpoint_vars(uri)?;
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config())
                    .with_http_connector(Connector);
                let endpoint = s3_endpoint();
                // Plain http only when the endpoint says so (a local test server).
                let http = endpoint
                    .as_deref()
                    .is_some_and(|e| e.to_ascii_lowercase().starts_with("http://"));
                if let Some(endpoint) = &endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if anonymous() {
                    builder = builder.with_skip_signature(true);
                }
                let s3 = builder
                    .with_client_options(client_options(http))
                    .with_allow_http(http)
                    .build()
                    .map_err(failed)?;
                (Arc::new(s3), prefix, true)
            }
            Location::Gcs { bucket, prefix } => {
                let mut gcs = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket);
                if anonymous() {
                    gcs = gcs.with_skip_signature(true);
                }
                let gcs = gcs
                    .with_retry(retry_config())
                    .with_http_connector(Connector)
                    .with_client_options(client_options(false))
                    .build()
                    .map_err(failed)?;
                (Arc::new(gcs), prefix, true)
            }
            Location::Azure {
                container,
                account,
                prefix,
            } => {
                let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(retry_config())
                    .with_http_connector(Connector)
                    .with_client_options(client_options(false));
                if let Some(account) = account {
                    builder = builder.with_account(account);
                }
                if anonymous() {
                    builder = builder.with_skip_signature(true);
                }
                (Arc::new(builder.build().map_err(failed)?), prefix, true)
            }
            Location::Http { url } => {
                let plain = url.to_ascii_lowercase().starts_with("http://");
                let http = object_store::http::HttpBuilder::new()
                    .with_url(url)
                    .with_retry(retry_config())
                    .with_http_connector(Connector)
                    .with_client_options(client_options(plain))
                    .build()
                    .map_err(failed)?;
                (Arc::new(http), String::new(), false)
            }
        };
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(
            store,
            object_store::path::Path::from(prefix),
        ))
    };
    Ok(ObjectLocation {
        uri: uri.into(),
        store,
        writable,
        listable: writable,
    })
}
