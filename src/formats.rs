//! Which adapter reads a source and which writes a target.

use anyhow::{bail, Context, Result};
use rechunker_core::{DatasetSource, DatasetTarget};
use std::path::Path;

/// Formats `rechunk` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetFormat {
    /// rechunker's raw reference format: one uncompressed file per chunk plus JSON.
    Raw,
}

impl TargetFormat {
    /// The format a target path asks for by its extension.
    pub fn from_path(path: &str) -> Option<TargetFormat> {
        let ext = Path::new(path.trim_end_matches('/'))
            .extension()?
            .to_str()?
            .to_ascii_lowercase();
        match ext.as_str() {
            "raw" => Some(TargetFormat::Raw),
            _ => None,
        }
    }
}

/// Opens `path` with the adapter that recognizes it.
pub fn open_source(path: &str) -> Result<Box<dyn DatasetSource>> {
    let p = Path::new(path);
    if !p.exists() {
        bail!("source {path} does not exist; check the path");
    }
    if rechunker_raw::is_raw_dataset(p) || rechunker_raw::is_unfinished_raw_dataset(p) {
        return Ok(Box::new(rechunker_raw::RawSource::open(p)?));
    }
    bail!("cannot read {path}: it is not a dataset in a format this rechunk knows (raw datasets have a raw.json)")
}

/// Picks the target format from `--format` or the path's extension.
pub fn target_format(path: &str, explicit: Option<TargetFormat>) -> Result<TargetFormat> {
    explicit.or_else(|| TargetFormat::from_path(path)).with_context(|| {
        format!("cannot tell which format to write {path} in; give it a known extension (.raw) or pass --format")
    })
}

/// The target dataset at `path` (reopened when resuming). Adapters touch nothing on disk until
/// the first array is created, so this also serves planning.
pub fn create_target(path: &str, format: TargetFormat) -> Result<Box<dyn DatasetTarget>> {
    match format {
        TargetFormat::Raw => Ok(Box::new(rechunker_raw::RawTarget::create(path)?)),
    }
}

/// Deletes an existing target for `--overwrite`.
pub fn remove_target(path: &str) -> Result<()> {
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
