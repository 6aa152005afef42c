//! What a location string names: a local path, a bucket (or container) and a prefix in an
//! object store, or a read-only HTTP(S) URL.

use crate::error::StoreError;
use crate::Result;
use std::path::PathBuf;

/// A parsed location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local (or mounted) path, written plainly or as `file:///path`.
    Local(PathBuf),
    /// `s3://bucket/prefix` (also `s3a://`).
    S3 { bucket: String, prefix: String },
    /// `gs://bucket/prefix` (also `gcs://`).
    Gcs { bucket: String, prefix: String },
    /// `az://container/prefix` (also `azure://`, and `abfs(s)://container@account.dfs.core.windows.net/prefix`).
    Azure {
        container: String,
        account: Option<String>,
        prefix: String,
    },
    /// `http(s)://host/path`: read-only, and not listable.
    Http { url: String },
}

/// True when `location` is written as a URL (`scheme://...`) rather than a plain path.
pub fn is_uri(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// True when `location` is on an object store (or a web server) rather than a local (or
/// mounted) file system. Only a lowercase `file://` is a local path here, as callers strip
/// exactly that prefix; [`crate::ObjectScratch::open`] refuses any other spelling of it.
pub fn is_object_store(location: &str) -> bool {
    is_uri(location) && !location.starts_with("file://")
}

/// Splits `bucket/prefix` into the bucket and the prefix (without surrounding slashes).
fn bucket_and_prefix(uri: &str, rest: &str) -> Result<(String, String)> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::location(
            uri,
            "the URI names no bucket or container",
        ));
    }
    Ok((bucket.into(), prefix.trim_matches('/').into()))
}

impl Location {
    /// Parses `uri`. Nothing is opened or checked beyond its spelling.
    pub fn parse(uri: &str) -> Result<Location> {
        let Some((scheme, rest)) = uri.split_once("://").filter(|_| is_uri(uri)) else {
            if uri.is_empty() {
                return Err(StoreError::location(uri, "empty path"));
            }
            return Ok(Location::Local(PathBuf::from(uri)));
        };
        Ok(match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:///abs/path or file://localhost/abs/path
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if path.is_empty() {
                    return Err(StoreError::location(uri, "empty path"));
                }
                Location::Local(PathBuf::from(path))
            }
            "s3" | "s3a" => {
                let (bucket, prefix) = bucket_and_prefix(uri, rest)?;
                Location::S3 { bucket, prefix }
            }
            "gs" | "gcs" => {
                let (bucket, prefix) = bucket_and_prefix(uri, rest)?;
                Location::Gcs { bucket, prefix }
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let (container, prefix) = bucket_and_prefix(uri, rest)?;
                // abfs://container@account.dfs.core.windows.net/path
                let (container, account) = match container.split_once('@') {
                    Some((c, host)) => (c.to_string(), host.split('.').next().map(String::from)),
                    None => (container, None),
                };
                Location::Azure {
                    container,
                    account,
                    prefix,
                }
            }
            "http" | "https" => Location::Http {
                url: uri.trim_end_matches('/').into(),
            },
            other => {
                return Err(StoreError::location(
                    uri,
                    format!("unknown scheme `{other}://`; use a local path, file://, s3://, gs://, az:// or http(s)://"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/x/y.zarr/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "x/y.zarr".into()
            }
        );
        assert_eq!(
            Location::parse("GS://b").unwrap(),
            Location::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("abfss://c@acct.dfs.core.windows.net/p").unwrap(),
            Location::Azure {
                container: "c".into(),
                account: Some("acct".into()),
                prefix: "p".into()
            }
        );
        assert_eq!(
            Location::parse("file://localhost/tmp/x").unwrap(),
            Location::Local("/tmp/x".into())
        );
        assert_eq!(
            Location::parse("out.zarr").unwrap(),
            Location::Local("out.zarr".into())
        );
        assert_eq!(
            Location::parse("https://h/d.zarr/").unwrap(),
            Location::Http {
                url: "https://h/d.zarr".into()
            }
        );
        let e = Location::parse("ftp://h/x").unwrap_err().to_string();
        assert!(
            e.contains("ftp://h/x") && e.contains("unknown scheme"),
            "{e}"
        );
        let e = Location::parse("s3:///x").unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn object_stores_are_told_from_paths() {
        assert!(is_object_store("s3://b/x") && is_object_store("https://h/x"));
        assert!(!is_object_store("file:///tmp/x"));
        assert!(!is_object_store("/tmp/x") && !is_object_store("C:/x"));
        assert!(is_uri("file:///tmp/x") && !is_uri("/tmp/x") && !is_uri("a/b://c"));
    }
}
