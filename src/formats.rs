//! Which adapter reads a source and which writes a target, from a path or URI.

use anyhow::{bail, Context, Result};
use rechunker_core::scratch::{LocalScratch, ScratchStore};
use rechunker_core::{DatasetSource, DatasetTarget};
use rechunker_zarr::{Codec, ShardSpec, ZarrFormat, ZarrWriteOptions};
use std::path::Path;
use std::sync::Arc;

/// Formats `rechunk` can write.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TargetFormat {
    /// Zarr v2 or v3 (see --zarr-format), locally or on an object store.
    Zarr,
    /// rechunker's raw reference format: one uncompressed file per chunk plus JSON.
    Raw,
}

/// True for `scheme://...` URIs (object stores, `file://`).
fn is_uri(path: &str) -> bool {
    path.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

impl TargetFormat {
    /// The format a target path asks for by its extension; object stores hold Zarr.
    pub fn from_path(path: &str) -> Option<TargetFormat> {
        let ext = Path::new(path.trim_end_matches('/'))
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("raw") => Some(TargetFormat::Raw),
            Some("zarr") => Some(TargetFormat::Zarr),
            _ if is_uri(path) && !path.starts_with("file://") => Some(TargetFormat::Zarr),
            _ => None,
        }
    }
}

/// How to write: options of the formats that have any.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct WriteOptions {
    /// Compression, e.g. `zstd:3`, `blosc:lz4:5:shuffle`, `gzip:1`, `none`.
    pub codec: Option<String>,
    /// Zarr format version, 2 or 3.
    pub zarr_format: Option<u8>,
    /// Zarr v3 shard shape, e.g. `time=8760,lat=48,lon=48`.
    pub shards: Option<String>,
}

fn looks_like_zarr(p: &Path) -> bool {
    ["zarr.json", ".zgroup", ".zarray", ".zmetadata"]
        .iter()
        .any(|f| p.join(f).is_file())
}

/// Opens `path` with the adapter that recognizes it.
pub fn open_source(path: &str) -> Result<Box<dyn DatasetSource>> {
    if is_uri(path) {
        return Ok(Box::new(rechunker_zarr::ZarrSource::open(path)?));
    }
    let p = Path::new(path);
    if !p.exists() {
        bail!("source {path} does not exist; check the path");
    }
    if rechunker_raw::is_raw_dataset(p) || rechunker_raw::is_unfinished_raw_dataset(p) {
        return Ok(Box::new(rechunker_raw::RawSource::open(p)?));
    }
    if looks_like_zarr(p) {
        return Ok(Box::new(rechunker_zarr::ZarrSource::open(path)?));
    }
    bail!(
        "cannot read {path}: it is not a dataset in a format this rechunk knows (Zarr v2/v3, raw)"
    )
}

/// Picks the target format from `--format` or the path's extension.
pub fn target_format(path: &str, explicit: Option<TargetFormat>) -> Result<TargetFormat> {
    explicit.or_else(|| TargetFormat::from_path(path)).with_context(|| {
        format!("cannot tell which format to write {path} in; give it a known extension (.zarr, .raw) or pass --format")
    })
}

/// The target dataset at `path` (reopened when resuming). Adapters touch nothing on disk until
/// the first array is created, so this also serves planning.
pub fn create_target(
    path: &str,
    format: TargetFormat,
    options: &WriteOptions,
) -> Result<Box<dyn DatasetTarget>> {
    match format {
        TargetFormat::Raw => {
            if options.codec.as_deref().is_some_and(|c| c != "none")
                || options.shards.is_some()
                || options.zarr_format.is_some()
            {
                bail!("the raw format stores uncompressed, unsharded chunks: --codec, --shards and --zarr-format do not apply to {path}");
            }
            if is_uri(path) {
                bail!("the raw format is written to local paths only, not {path}");
            }
            Ok(Box::new(rechunker_raw::RawTarget::create(path)?))
        }
        TargetFormat::Zarr => {
            let zarr_format = match options.zarr_format {
                None | Some(3) => ZarrFormat::V3,
                Some(2) => ZarrFormat::V2,
                Some(other) => bail!("--zarr-format {other}: use 2 or 3"),
            };
            let codec: Codec = match &options.codec {
                Some(c) => c.parse()?,
                None => Codec::default(),
            };
            let shards: Option<ShardSpec> =
                options.shards.as_deref().map(str::parse).transpose()?;
            let options = ZarrWriteOptions {
                zarr_format,
                codec,
                shards,
            };
            Ok(Box::new(rechunker_zarr::ZarrTarget::create(path, options)?))
        }
    }
}

/// True when something is stored at `path`.
pub fn target_exists(path: &str) -> Result<bool> {
    if is_uri(path) {
        return Ok(rechunker_zarr::exists(path)?);
    }
    Ok(Path::new(path).exists())
}

/// Deletes an existing target for `--overwrite`.
pub fn remove_target(path: &str) -> Result<()> {
    if is_uri(path) {
        return Ok(rechunker_zarr::remove(path)?);
    }
    let p = Path::new(path);
    let result = if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e)
            .with_context(|| format!("cannot remove the existing target {path} for --overwrite")),
    }
}

/// The scratch store at `location`: a local directory or an object-store prefix.
pub fn open_scratch(location: &str) -> Result<Arc<dyn ScratchStore>> {
    if is_uri(location) && !location.starts_with("file://") {
        return Ok(Arc::new(rechunker_zarr::StoreScratch::open(location)?));
    }
    Ok(Arc::new(LocalScratch::open(
        location.trim_start_matches("file://"),
    )?))
}

/// Where scratch goes unless `--scratch` says: beside the target (`DST.rechunk-scratch`).
pub fn default_scratch(dst: &str) -> String {
    format!("{}.rechunk-scratch", dst.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_paths() {
        assert_eq!(
            TargetFormat::from_path("out.zarr/"),
            Some(TargetFormat::Zarr)
        );
        assert_eq!(
            TargetFormat::from_path("s3://bucket/era5"),
            Some(TargetFormat::Zarr)
        );
        assert_eq!(TargetFormat::from_path("a.raw"), Some(TargetFormat::Raw));
        assert_eq!(TargetFormat::from_path("a.nc4x"), None);
        assert_eq!(
            default_scratch("s3://b/x.zarr/"),
            "s3://b/x.zarr.rechunk-scratch"
        );
        assert!(is_uri("file:///tmp/x") && !is_uri("/tmp/x") && !is_uri("C:/x"));
    }
}
