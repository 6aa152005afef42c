//! Which adapter reads a source and which writes a target, from a path or URI.

use anyhow::{bail, Context, Result};
use rechunker_core::scratch::{LocalScratch, ScratchIo, ScratchStore};
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
    /// TileDB dense arrays (one array per variable, a group for several).
    Tiledb,
    /// NetCDF-4 (chunked, deflate/zstd + shuffle) or a classic format (see --netcdf-format).
    Netcdf,
    /// HDF5 datasets in groups, with dimension scales.
    Hdf5,
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
    /// The format's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            TargetFormat::Zarr => "Zarr",
            TargetFormat::Tiledb => "TileDB",
            TargetFormat::Netcdf => "NetCDF",
            TargetFormat::Hdf5 => "HDF5",
            TargetFormat::Raw => "raw",
        }
    }

    /// The format a target path asks for by its extension; object stores hold Zarr.
    pub fn from_path(path: &str) -> Option<TargetFormat> {
        let ext = Path::new(path.trim_end_matches('/'))
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("raw") => Some(TargetFormat::Raw),
            Some("zarr") => Some(TargetFormat::Zarr),
            Some("tdb") | Some("tiledb") => Some(TargetFormat::Tiledb),
            Some("nc") | Some("nc4") | Some("cdf") | Some("netcdf") => Some(TargetFormat::Netcdf),
            Some("h5") | Some("hdf5") | Some("he5") | Some("hdf") => Some(TargetFormat::Hdf5),
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
    /// NetCDF flavour: netcdf4 (default), netcdf4-classic, classic, 64bit-offset, cdf5.
    #[serde(default)]
    pub netcdf_format: Option<String>,
    /// Dimensions to write as unlimited (NetCDF), normally the source's.
    #[serde(default)]
    pub unlimited_dims: Vec<String>,
    /// Reopen an unfinished single-file target (NetCDF, HDF5) instead of starting it anew.
    #[serde(default)]
    pub resume: bool,
}

fn looks_like_zarr(p: &Path) -> bool {
    ["zarr.json", ".zgroup", ".zarray", ".zmetadata"]
        .iter()
        .any(|f| p.join(f).is_file())
}

/// A source and what the target may want to keep of it beyond the dataset model.
pub struct OpenedSource {
    pub dataset: Box<dyn DatasetSource>,
    /// Unlimited dimensions of a NetCDF source.
    pub unlimited_dims: Vec<String>,
}

fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

fn hdf5_extension(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("h5" | "hdf5" | "he5" | "hdf")
    )
}

/// Opens `path` with the adapter that recognizes it. A glob (`archive/*.nc`) is many NetCDF
/// files concatenated along `concat_dim`. With `skip_unsupported`, NetCDF variables, HDF5
/// datasets and Zarr arrays rechunk cannot carry (char, strings, enums, compounds, codecs
/// zarrs lacks) are left out, each with a warning line, instead of failing the open.
pub fn open_source(
    path: &str,
    concat_dim: Option<&str>,
    skip_unsupported: bool,
) -> Result<OpenedSource> {
    let netcdf_options = rechunker_netcdf::NetcdfReadOptions { skip_unsupported };
    let hdf5_options = rechunker_hdf5::Hdf5ReadOptions { skip_unsupported };
    let zarr_options = rechunker_zarr::ZarrReadOptions { skip_unsupported };
    let plain = |dataset: Box<dyn DatasetSource>| OpenedSource {
        dataset,
        unlimited_dims: Vec::new(),
    };
    if has_glob(path) && !is_uri(path) {
        let files: Vec<std::path::PathBuf> = glob::glob(path)
            .with_context(|| format!("`{path}` is not a valid file pattern"))?
            .filter_map(std::result::Result::ok)
            .collect();
        if files.is_empty() {
            bail!("no file matches {path}; check the pattern (quote it so the shell does not expand it)");
        }
        let Some(dim) = concat_dim else {
            bail!("{path} matches {} files: say which dimension joins them with --concat-dim, e.g. --concat-dim time", files.len());
        };
        let source = rechunker_netcdf::NetcdfSource::open_many_with(&files, dim, &netcdf_options)?;
        let unlimited_dims = source.unlimited_dims().to_vec();
        return Ok(OpenedSource {
            dataset: Box::new(source),
            unlimited_dims,
        });
    }
    if concat_dim.is_some() {
        bail!("--concat-dim joins many files: give a pattern such as 'archive/*.nc' (quoted) as the source");
    }
    if is_uri(path) {
        return Ok(plain(Box::new(rechunker_zarr::ZarrSource::open_with(
            path,
            &zarr_options,
        )?)));
    }
    let p = Path::new(path);
    if !p.exists() {
        bail!("source {path} does not exist; check the path");
    }
    if rechunker_raw::is_raw_dataset(p) || rechunker_raw::is_unfinished_raw_dataset(p) {
        return Ok(plain(Box::new(rechunker_raw::RawSource::open(p)?)));
    }
    if looks_like_zarr(p) {
        return Ok(plain(Box::new(rechunker_zarr::ZarrSource::open_with(
            path,
            &zarr_options,
        )?)));
    }
    if rechunker_tiledb::is_tiledb(path) {
        return Ok(plain(Box::new(rechunker_tiledb::TileDbSource::open(path)?)));
    }
    if p.is_file() {
        // NetCDF-4 files are HDF5 files too: the extension decides, else NetCDF first.
        if hdf5_extension(p) && rechunker_hdf5::is_hdf5(p) {
            return Ok(plain(Box::new(rechunker_hdf5::Hdf5Source::open_with(
                p,
                &hdf5_options,
            )?)));
        }
        if rechunker_netcdf::is_netcdf(p) || !rechunker_hdf5::is_hdf5(p) {
            let source = rechunker_netcdf::NetcdfSource::open_with(p, &netcdf_options)?;
            let unlimited_dims = source.unlimited_dims().to_vec();
            return Ok(OpenedSource {
                dataset: Box::new(source),
                unlimited_dims,
            });
        }
        return Ok(plain(Box::new(rechunker_hdf5::Hdf5Source::open_with(
            p,
            &hdf5_options,
        )?)));
    }
    bail!("cannot read {path}: it is not a dataset in a format this rechunk knows (Zarr v2/v3, NetCDF, HDF5, TileDB, raw)")
}

/// Picks the target format from `--format` or the path's extension.
pub fn target_format(path: &str, explicit: Option<TargetFormat>) -> Result<TargetFormat> {
    explicit.or_else(|| TargetFormat::from_path(path)).with_context(|| {
        format!("cannot tell which format to write {path} in; give it a known extension (.zarr, .nc, .h5, .tdb, .raw) or pass --format")
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
        TargetFormat::Netcdf | TargetFormat::Hdf5 if is_uri(path) => {
            bail!("NetCDF and HDF5 are written to local files only, not {path}; write Zarr to object stores")
        }
        TargetFormat::Netcdf => {
            if options.shards.is_some() || options.zarr_format.is_some() {
                bail!(
                    "--shards and --zarr-format are Zarr options, not for the NetCDF file {path}"
                );
            }
            let mut o = rechunker_netcdf::NetcdfWriteOptions {
                unlimited_dims: options.unlimited_dims.clone(),
                resume: options.resume,
                ..Default::default()
            };
            // Neither set: each variable of a NetCDF source keeps its filters, and the file
            // its flavour (netcdf4 with zlib:1 + shuffle for sources of other formats).
            if let Some(f) = &options.netcdf_format {
                o.format = Some(f.parse()?);
            }
            if let Some(c) = &options.codec {
                o.codec = Some(c.parse()?);
            }
            Ok(Box::new(rechunker_netcdf::NetcdfTarget::create(path, o)?))
        }
        TargetFormat::Hdf5 => {
            if options.shards.is_some()
                || options.zarr_format.is_some()
                || options.netcdf_format.is_some()
            {
                bail!("--shards, --zarr-format and --netcdf-format do not apply to the HDF5 file {path}");
            }
            // No codec: each dataset of an HDF5 source keeps its filters (gzip:1 + shuffle for
            // sources of other formats).
            let mut o = rechunker_hdf5::Hdf5WriteOptions {
                resume: options.resume,
                ..Default::default()
            };
            if let Some(c) = &options.codec {
                o.codec = Some(c.parse()?);
            }
            Ok(Box::new(rechunker_hdf5::Hdf5Target::create(path, o)?))
        }
        TargetFormat::Tiledb => {
            if options.shards.is_some() || options.zarr_format.is_some() {
                bail!("--shards and --zarr-format are Zarr options; TileDB tiles are the chunks of {path}");
            }
            let codec = match &options.codec {
                Some(c) => c.parse().map_err(|e: String| anyhow::anyhow!(e))?,
                None => rechunker_tiledb::Codec::default(),
            };
            let options = rechunker_tiledb::TileDbWriteOptions {
                codec,
                ..Default::default()
            };
            Ok(Box::new(rechunker_tiledb::TileDbTarget::create(
                path, options,
            )?))
        }
        TargetFormat::Zarr => {
            // Unset: each array keeps its Zarr source's version and encoding (v3 and zstd:3
            // for sources of other formats).
            let zarr_format = match options.zarr_format {
                None => None,
                Some(3) => Some(ZarrFormat::V3),
                Some(2) => Some(ZarrFormat::V2),
                Some(other) => bail!("--zarr-format {other}: use 2 or 3"),
            };
            let codec: Option<Codec> = options.codec.as_deref().map(str::parse).transpose()?;
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

/// True when `path` holds a dataset of `format` (or, for formats whose unfinished form is
/// recognizable, an unfinished one): what `--overwrite` may replace.
pub fn is_dataset_of(path: &str, format: TargetFormat) -> Result<bool> {
    if is_object_store(path) {
        return Ok(format == TargetFormat::Zarr && rechunker_zarr::looks_like_zarr(path)?);
    }
    let p = Path::new(path.strip_prefix("file://").unwrap_or(path));
    Ok(match format {
        TargetFormat::Zarr => p.is_dir() && looks_like_zarr(p),
        TargetFormat::Netcdf => p.is_file() && rechunker_netcdf::is_netcdf(p),
        TargetFormat::Hdf5 => p.is_file() && rechunker_hdf5::is_hdf5(p),
        TargetFormat::Tiledb => rechunker_tiledb::is_tiledb(path),
        TargetFormat::Raw => {
            rechunker_raw::is_raw_dataset(p) || rechunker_raw::is_unfinished_raw_dataset(p)
        }
    })
}

/// Deletes an existing target for `--overwrite`, once [`crate::ownership::check_replaceable`]
/// has shown it is one.
pub fn remove_target(path: &str) -> Result<()> {
    if is_uri(path) {
        return Ok(rechunker_zarr::remove(path)?);
    }
    if TargetFormat::from_path(path) == Some(TargetFormat::Tiledb)
        || rechunker_tiledb::is_tiledb(path)
    {
        // Also the staging folder an interrupted TileDB write leaves.
        return Ok(rechunker_tiledb::remove(path)?);
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

/// Whether `location` is on an object store rather than a local (or mounted) file system.
pub fn is_object_store(location: &str) -> bool {
    is_uri(location) && !location.starts_with("file://")
}

/// The scratch store at `location`: a local directory (whose large pieces move as `io` says)
/// or an object-store prefix.
pub fn open_scratch(location: &str, io: ScratchIo) -> Result<Arc<dyn ScratchStore>> {
    if is_object_store(location) {
        return Ok(Arc::new(rechunker_zarr::StoreScratch::open(location)?));
    }
    Ok(Arc::new(
        LocalScratch::open(location.trim_start_matches("file://"))?.with_io(io),
    ))
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
