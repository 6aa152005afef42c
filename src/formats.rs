//! The formats `rechunk` reads and writes: one driver per adapter crate, listed in [`DRIVERS`].
//! Adding a format means one new crate and one line in that table; nothing else here matches
//! on formats.

use anyhow::{bail, Context, Result};
use rechunker_core::driver::{extension_of, Driver, FormatOptions, SourceOptions, TargetOptions};
use rechunker_core::scratch::{LocalScratch, ScratchIo, ScratchStore};
use rechunker_core::DatasetTarget;
use std::path::Path;
use std::sync::Arc;

pub use rechunker_core::driver::OpenedSource;

/// The formats, one driver per adapter crate. A source belongs to the driver surest of it;
/// ties go to the one listed first (a NetCDF-4 file named `.h5` is HDF5).
static DRIVERS: [TargetFormat; 5] = [
    TargetFormat(&rechunker_raw::driver::RawDriver),
    TargetFormat(&rechunker_zarr::driver::ZarrDriver),
    TargetFormat(&rechunker_tiledb::driver::TileDbDriver),
    TargetFormat(&rechunker_hdf5::driver::Hdf5Driver),
    TargetFormat(&rechunker_netcdf::driver::NetcdfDriver),
];

/// A format `rechunk` reads and writes: a handle on its driver, named by the driver's id on
/// the command line (`--format netcdf`) and in plan files.
#[derive(Clone, Copy)]
pub struct TargetFormat(&'static dyn Driver);

impl TargetFormat {
    /// Every format, in the table's order.
    pub fn all() -> &'static [TargetFormat] {
        &DRIVERS
    }

    /// The format whose driver has the id `id` (`zarr`, `netcdf`, ...).
    pub fn by_id(id: &str) -> Option<TargetFormat> {
        DRIVERS.iter().copied().find(|f| f.0.id() == id)
    }

    /// The format's driver.
    pub fn driver(self) -> &'static dyn Driver {
        self.0
    }

    /// The format's name, for messages.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The format a target path asks for by its extension; object stores hold the format that
    /// writes to them.
    pub fn from_path(path: &str) -> Option<TargetFormat> {
        if let Some(ext) = extension_of(path) {
            if let Some(f) = DRIVERS
                .iter()
                .find(|f| f.0.extensions().contains(&ext.as_str()))
            {
                return Some(*f);
            }
        }
        if is_uri(path) && !path.starts_with("file://") {
            return DRIVERS.iter().copied().find(|f| f.0.object_stores());
        }
        None
    }
}

impl PartialEq for TargetFormat {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}

impl Eq for TargetFormat {}

impl std::fmt::Debug for TargetFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.id())
    }
}

impl clap::ValueEnum for TargetFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &DRIVERS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.0.id()).help(self.0.description()))
    }
}

impl serde::Serialize for TargetFormat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.id())
    }
}

impl<'de> serde::Deserialize<'de> for TargetFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        TargetFormat::by_id(&id).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown target format `{id}`; use {}", ids()))
        })
    }
}

/// The formats' ids, for messages: `raw, zarr, ...`.
fn ids() -> String {
    DRIVERS
        .iter()
        .map(|f| f.0.id())
        .collect::<Vec<_>>()
        .join(", ")
}

/// True for `scheme://...` URIs (object stores, `file://`).
fn is_uri(path: &str) -> bool {
    rechunker_store::is_uri(path)
}

/// How to write: the format-specific options by name (`codec`, `zarr-format`, `shards`,
/// `netcdf-format`), which the target's driver parses and checks, and what the run adds.
/// Unknown fields are refused, so a plan file written before the option map (with `codec`
/// and `zarr_format` fields) cannot lose its options silently.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteOptions {
    /// Options as the command line names them, without the dashes.
    #[serde(default)]
    pub options: FormatOptions,
    /// The unlimited dimensions of plan files written before the arrays' metadata carried
    /// them (`ArrayMeta::unlimited_dims`); read, moved there when the plan file loads, never
    /// written.
    #[serde(default, rename = "unlimited_dims", skip_serializing)]
    pub(crate) legacy_unlimited_dims: Vec<String>,
    /// Reopen an unfinished single-file target (NetCDF, HDF5) instead of starting it anew.
    #[serde(default)]
    pub resume: bool,
}

impl WriteOptions {
    /// These options with `name` set to `value` when there is one.
    pub fn with(mut self, name: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.options.insert(name.to_string(), v.to_string());
        }
        self
    }
}

fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Opens `path` with the driver that recognizes it. A glob (`archive/*.nc`) is many files
/// concatenated along `concat_dim`. With `skip_unsupported`, variables rechunk cannot carry
/// (char, strings, enums, compounds, codecs zarrs lacks) are left out, each with a warning
/// line, instead of failing the open.
pub fn open_source(
    path: &str,
    concat_dim: Option<&str>,
    skip_unsupported: bool,
) -> Result<OpenedSource> {
    let options = SourceOptions { skip_unsupported };
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
        let Some(format) = DRIVERS.iter().find(|f| f.0.concatenates()) else {
            bail!("no format joins many files into one source; give one dataset as the source");
        };
        return Ok(format.0.open_many(&files, dim, &options)?);
    }
    if concat_dim.is_some() {
        bail!("--concat-dim joins many files: give a pattern such as 'archive/*.nc' (quoted) as the source");
    }
    if !is_uri(path) && !Path::new(path).exists() {
        return Err(crate::api::SourceNotFound(path.to_string()).into());
    }
    Ok(format_of(path)?.0.open_source(path, &options)?)
}

/// The format of the dataset at `path`: the driver surest of it.
pub fn format_of(path: &str) -> Result<TargetFormat> {
    let mut best: Option<(rechunker_core::driver::Sniff, TargetFormat)> = None;
    for format in &DRIVERS {
        // Ties keep the first, so nothing after a `Yes` can win: stop there. This also spares
        // the later drivers' probes, which for a URL are requests of their own (TileDB's S3
        // client retries a throttled store for minutes, whatever --retry-timeout says).
        if best.is_some_and(|(b, _)| b == rechunker_core::driver::Sniff::Yes) {
            break;
        }
        let sniff = format.0.sniff(path);
        if sniff > rechunker_core::driver::Sniff::No && best.is_none_or(|(b, _)| sniff > b) {
            best = Some((sniff, *format));
        }
    }
    match best {
        Some((_, format)) => Ok(format),
        None => bail!(
            "cannot read {path}: it is not a dataset in a format this rechunk knows ({})",
            DRIVERS
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Picks the target format from `--format` or the path's extension.
pub fn target_format(path: &str, explicit: Option<TargetFormat>) -> Result<TargetFormat> {
    explicit.or_else(|| TargetFormat::from_path(path)).with_context(|| {
        let extensions: Vec<String> = DRIVERS
            .iter()
            .filter_map(|f| f.0.extensions().first())
            .map(|e| format!(".{e}"))
            .collect();
        format!("cannot tell which format to write {path} in; give it a known extension ({}) or pass --format", extensions.join(", "))
    })
}

/// The target dataset at `path` (reopened when resuming), its options parsed and checked by
/// `format`'s driver. Adapters touch nothing on disk until the first array is created, so
/// this also serves planning.
pub fn create_target(
    path: &str,
    format: TargetFormat,
    options: &WriteOptions,
) -> Result<Box<dyn DatasetTarget>> {
    let options = TargetOptions {
        options: options.options.clone(),
        resume: options.resume,
    };
    Ok(format.0.create_target(path, &options)?)
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
    if is_object_store(path) && !format.0.object_stores() {
        return Ok(false);
    }
    Ok(format.0.holds_dataset(path)?)
}

/// Deletes an existing target for `--overwrite`, once [`crate::ownership::check_replaceable`]
/// has shown it is one: by the driver its path names, else the one that recognizes it
/// (TileDB also removes the staging folder an interrupted write leaves).
pub fn remove_target(path: &str) -> Result<()> {
    let format = TargetFormat::from_path(path).or_else(|| {
        DRIVERS
            .iter()
            .copied()
            .find(|f| f.0.holds_dataset(path).unwrap_or(false))
    });
    match format {
        Some(f) => Ok(f.0.remove(path)?),
        None => Ok(rechunker_core::driver::remove_local(Path::new(path))?),
    }
}

/// Whether `location` is on an object store rather than a local (or mounted) file system.
pub fn is_object_store(location: &str) -> bool {
    rechunker_store::is_object_store(location)
}

/// The scratch store at `location`: a local directory (whose large pieces move as `io` says)
/// or an object-store prefix.
pub fn open_scratch(location: &str, io: ScratchIo) -> Result<Arc<dyn ScratchStore>> {
    if is_object_store(location) {
        return Ok(Arc::new(rechunker_store::ObjectScratch::open(location)?));
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
        let id = |p: &str| TargetFormat::from_path(p).map(|f| f.driver().id());
        assert_eq!(id("out.zarr/"), Some("zarr"));
        assert_eq!(id("s3://bucket/era5"), Some("zarr"));
        assert_eq!(id("a.raw"), Some("raw"));
        assert_eq!(id("a.NC4"), Some("netcdf"));
        assert_eq!(id("a.he5"), Some("hdf5"));
        assert_eq!(id("a.tiledb"), Some("tiledb"));
        assert_eq!(id("a.nc4x"), None);
        assert_eq!(
            default_scratch("s3://b/x.zarr/"),
            "s3://b/x.zarr.rechunk-scratch"
        );
        assert!(is_uri("file:///tmp/x") && !is_uri("/tmp/x") && !is_uri("C:/x"));
    }

    #[test]
    fn the_table_has_one_driver_per_format_and_ids_round_trip() {
        let mut ids: Vec<&str> = TargetFormat::all()
            .iter()
            .map(|f| f.driver().id())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TargetFormat::all().len());
        for f in TargetFormat::all() {
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(serde_json::from_str::<TargetFormat>(&json).unwrap(), *f);
        }
        let err = serde_json::from_str::<TargetFormat>("\"gif\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown target format `gif`"),
            "{err}"
        );
    }

    #[test]
    fn write_options_keep_their_map_and_refuse_the_old_fields() {
        let options = WriteOptions::default()
            .with("codec", Some("zstd:3"))
            .with("zarr-format", Some(2))
            .with("shards", None::<String>);
        let json = serde_json::to_string(&options).unwrap();
        let back: WriteOptions = serde_json::from_str(&json).unwrap();
        assert_eq!(back.options, options.options);
        assert_eq!(back.options.len(), 2);
        let old = r#"{"codec": "zstd:3", "zarr_format": 2, "unlimited_dims": [], "resume": false}"#;
        let err = serde_json::from_str::<WriteOptions>(old).unwrap_err();
        assert!(err.to_string().contains("unknown field `codec`"), "{err}");
    }

    #[test]
    fn each_driver_refuses_the_options_of_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        for (file, option, value) in [
            ("o.zarr", "netcdf-format", "classic"),
            ("o.nc", "shards", "4,4"),
            ("o.nc", "zarr-format", "2"),
            ("o.h5", "netcdf-format", "classic"),
            ("o.tdb", "zarr-format", "3"),
            ("o.raw", "shards", "4,4"),
        ] {
            let path = dir.path().join(file).display().to_string();
            let format = target_format(&path, None).unwrap();
            let options = WriteOptions::default().with(option, Some(value));
            let err = create_target(&path, format, &options)
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains(&format!("--{option}")) && err.contains(format.name()),
                "{file} --{option}: {err}"
            );
        }
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
