//! What a format adapter tells the rest of rechunker: how to recognize its datasets, open one,
//! create a target from one generic option map, and what a job may ask of its targets. The
//! core defines the trait and knows no format; each adapter crate implements it in its
//! `driver.rs`, and the `rechunk` package lists the drivers in one table.

use crate::array::{DatasetSource, DatasetTarget};
use crate::error::BoxError;
use crate::meta::ArrayMeta;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Format-specific options by name, as the command line spells them without the dashes:
/// `codec`, `zarr-format`, `shards`, `netcdf-format`, `fragments`. Each driver takes the ones
/// it knows and refuses the rest.
pub type FormatOptions = BTreeMap<String, String>;

/// How sure a driver is that a location holds one of its datasets. The table picks the
/// highest; ties go to the driver listed first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sniff {
    /// Not this format.
    No,
    /// Not recognizably any format, but this driver's error explains the file best.
    Fallback,
    /// Possibly this format (e.g. the file's structure fits, its name does not say).
    Maybe,
    /// This format.
    Yes,
}

/// How to open a source.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// Leave out variables the adapter cannot carry, each with a warning, instead of failing.
    pub skip_unsupported: bool,
}

/// An opened source. Everything a target may keep of it is in its metadata (unlimited
/// dimensions too: [`ArrayMeta::unlimited_dims`]).
pub struct OpenedSource {
    pub dataset: Box<dyn DatasetSource>,
}

impl OpenedSource {
    pub fn plain(dataset: Box<dyn DatasetSource>) -> Self {
        OpenedSource { dataset }
    }
}

/// How to create (or, resuming, reopen) a target.
#[derive(Clone, Debug, Default)]
pub struct TargetOptions {
    /// The format-specific options the user gave.
    pub options: FormatOptions,
    /// Reopen an unfinished target instead of starting it anew.
    pub resume: bool,
}

/// A driver's refusal, or its adapter's error.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// An option this format does not have.
    #[error(
        "--{option} does not apply to {format} targets ({location}); {format} takes {accepts}"
    )]
    UnknownOption {
        format: &'static str,
        option: String,
        location: String,
        /// What the format takes, e.g. `--codec, --zarr-format`, or `no options`.
        accepts: String,
    },
    /// An option value or a location this format cannot take; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The adapter failed.
    #[error(transparent)]
    Adapter(BoxError),
}

impl DriverError {
    /// Wraps an adapter's error.
    pub fn adapter(error: impl Into<BoxError>) -> Self {
        DriverError::Adapter(error.into())
    }
}

/// Refuses every option in `options` not in `known`, naming `format`, the option and what
/// `format` takes: what each driver calls before parsing its own options.
pub fn refuse_unknown(
    format: &'static str,
    location: &str,
    known: &[&str],
    options: &FormatOptions,
) -> Result<(), DriverError> {
    let Some(option) = options.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    let accepts = if known.is_empty() {
        "no options".to_string()
    } else {
        known
            .iter()
            .map(|k| format!("--{k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(DriverError::UnknownOption {
        format,
        option: option.clone(),
        location: location.to_string(),
        accepts,
    })
}

/// A format: one per adapter crate.
pub trait Driver: Send + Sync {
    /// The format's name, for messages (`NetCDF`).
    fn name(&self) -> &'static str;
    /// Its `--format` value and plan-file name (`netcdf`).
    fn id(&self) -> &'static str;
    /// One line for `--help`.
    fn description(&self) -> &'static str;
    /// Extensions (lowercase, no dot) that make a target path this format.
    fn extensions(&self) -> &'static [&'static str];
    /// The option names of [`FormatOptions`] this driver takes.
    fn option_names(&self) -> &'static [&'static str];

    /// Whether `location` (an existing local path or a URI) holds a source of this format.
    fn sniff(&self, location: &str) -> Sniff;
    /// Whether `location` holds a dataset of this format, or an unfinished one this format
    /// recognizes: what `--overwrite` may replace.
    fn holds_dataset(&self, location: &str) -> Result<bool, DriverError>;
    /// Opens the source at `location`.
    fn open_source(
        &self,
        location: &str,
        options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError>;
    /// The target at `location`. Adapters touch nothing on disk until the first array is
    /// created, so this also serves planning.
    fn create_target(
        &self,
        location: &str,
        options: &TargetOptions,
    ) -> Result<Box<dyn DatasetTarget>, DriverError>;

    /// Whether many processes may write one target at once (a job shards its stages).
    fn concurrent_writers(&self) -> bool;
    /// Whether targets may live on object stores (`s3://...`); such URIs are this format's.
    fn object_stores(&self) -> bool {
        false
    }
    /// What `rechunk in-place` needs of this format to rechunk the dataset at the local path
    /// `location` where it is, with the format options given (e.g. a new codec). Formats that
    /// cannot refuse (the default).
    fn in_place(
        &self,
        location: &str,
        options: &FormatOptions,
    ) -> Result<Box<dyn InPlaceTarget>, DriverError> {
        let _ = options;
        Err(DriverError::Invalid(format!(
            "{location} is a {} dataset, which cannot be rechunked in place; rechunk it into a new dataset instead",
            self.name()
        )))
    }
    /// Whether a source may be many files joined along a dimension (`archive/*.nc`).
    fn concatenates(&self) -> bool {
        false
    }
    /// Opens `files` joined along `dim`, for drivers that [`concatenate`](Self::concatenates).
    fn open_many(
        &self,
        files: &[PathBuf],
        dim: &str,
        options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let _ = (files, dim, options);
        Err(DriverError::Invalid(format!(
            "{} sources are single datasets, not many files joined along a dimension",
            self.name()
        )))
    }
    /// Deletes the dataset at `location` for `--overwrite` (a missing one is no error).
    fn remove(&self, location: &str) -> Result<(), DriverError> {
        remove_local(Path::new(
            location.strip_prefix("file://").unwrap_or(location),
        ))
    }
}

/// What a format supplies to rechunk one dataset where it is. The workflow (journal, resume,
/// copy through the planner and executor, verification, the order of the exchange and the
/// clean-up, what a rerun does) is the library's (`rechunker::in_place`); only what is the
/// format's is here: the copy target beside the dataset and the crash-safe exchange.
pub trait InPlaceTarget: Send + Sync {
    /// The dataset as the copy reads it.
    fn source(&self) -> Arc<dyn DatasetSource>;
    /// The codec the copy is written with, as the journal records it (a rerun with another
    /// one is refused); `None` keeps each array's own.
    fn codec(&self) -> Option<String>;
    /// Checks, before anything is written, that the copy can hold the planned `arrays`.
    fn check_arrays(&self, arrays: &[ArrayMeta]) -> Result<(), DriverError>;
    /// The writer of the copy at `copy`; it continues an unfinished copy found there.
    fn copy_target(&self, copy: &Path) -> Result<Box<dyn DatasetTarget>, DriverError>;
    /// The finished copy at `copy`, read with the source's variable names.
    fn open_copy(&self, copy: &Path) -> Result<Box<dyn DatasetSource>, DriverError>;
    /// Checks that the file system of `dataset` can do [`exchange`](Self::exchange), leaving
    /// nothing behind: called before anything is written.
    fn check_exchange(&self, dataset: &Path) -> Result<(), DriverError>;
    /// Exchanges the dataset at `dataset` with the copy at `copy` in one atomic step, so that
    /// at every instant `dataset` is complete, the old one or the new one.
    fn exchange(&self, dataset: &Path, copy: &Path) -> std::io::Result<()>;
    /// Deletes the old dataset, at `old` after the exchange, never following a link inside
    /// it; calls `first_deleted` once part of it is gone (a test hook kills the process
    /// there). Nothing at `old` is fine.
    fn delete_old(&self, old: &Path, first_deleted: &mut dyn FnMut()) -> Result<(), DriverError>;
}

/// Deletes the file or folder at `path`; nothing there is fine.
pub fn remove_local(path: &Path) -> Result<(), DriverError> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DriverError::Invalid(format!(
            "cannot remove the existing target {} for --overwrite: {e}",
            path.display()
        ))),
    }
}

/// The lowercase extension of `location`, ignoring a trailing `/`.
pub fn extension_of(location: &str) -> Option<String> {
    Path::new(location.trim_end_matches('/'))
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_options_are_refused_with_what_the_format_takes() {
        let mut options = FormatOptions::new();
        options.insert("codec".into(), "zstd:3".into());
        assert!(refuse_unknown("Zarr", "o.zarr", &["codec", "shards"], &options).is_ok());
        options.insert("netcdf-format".into(), "classic".into());
        let err = refuse_unknown("Zarr", "o.zarr", &["codec", "shards"], &options)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--netcdf-format does not apply to Zarr targets (o.zarr); Zarr takes --codec, --shards"
        );
        let err = refuse_unknown("raw", "o.raw", &[], &options)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("raw takes no options"), "{err}");
    }

    #[test]
    fn sniff_ranks_certainty() {
        assert!(Sniff::Yes > Sniff::Maybe && Sniff::Maybe > Sniff::Fallback);
        assert!(Sniff::Fallback > Sniff::No);
        assert_eq!(extension_of("a/B.ZARR/").as_deref(), Some("zarr"));
    }
}
