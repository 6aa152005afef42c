//! The raw reference format as a [`Driver`]: local folders of uncompressed chunks.

use crate::{is_raw_dataset, is_unfinished_raw_dataset, RawSource, RawTarget};
use rechunker_core::driver::{
    refuse_unknown, Driver, DriverError, OpenedSource, Sniff, SourceOptions, TargetOptions,
};
use rechunker_core::DatasetTarget;
use std::path::Path;

/// The raw format's driver.
pub struct RawDriver;

const NAME: &str = "raw";

fn local(location: &str) -> &Path {
    Path::new(location.strip_prefix("file://").unwrap_or(location))
}

impl Driver for RawDriver {
    fn name(&self) -> &'static str {
        NAME
    }
    fn id(&self) -> &'static str {
        "raw"
    }
    fn description(&self) -> &'static str {
        "rechunker's raw reference format: one uncompressed file per chunk plus JSON"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["raw"]
    }
    fn option_names(&self) -> &'static [&'static str] {
        &[]
    }

    fn sniff(&self, location: &str) -> Sniff {
        if location.contains("://") {
            return Sniff::No;
        }
        let p = Path::new(location);
        if is_raw_dataset(p) || is_unfinished_raw_dataset(p) {
            Sniff::Yes
        } else {
            Sniff::No
        }
    }

    fn holds_dataset(&self, location: &str) -> Result<bool, DriverError> {
        let p = local(location);
        Ok(is_raw_dataset(p) || is_unfinished_raw_dataset(p))
    }

    fn open_source(
        &self,
        location: &str,
        _options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let source = RawSource::open(location).map_err(DriverError::adapter)?;
        Ok(OpenedSource::plain(Box::new(source)))
    }

    fn create_target(
        &self,
        location: &str,
        options: &TargetOptions,
    ) -> Result<Box<dyn DatasetTarget>, DriverError> {
        let mut rest = options.options.clone();
        if let Some(codec) = rest.remove("codec") {
            if codec != "none" {
                return Err(DriverError::Invalid(format!(
                    "the raw format stores uncompressed chunks: --codec {codec} does not apply to {location} (only --codec none)"
                )));
            }
        }
        refuse_unknown(NAME, location, self.option_names(), &rest)?;
        if location.contains("://") {
            return Err(DriverError::Invalid(format!(
                "the raw format is written to local paths only, not {location}"
            )));
        }
        Ok(Box::new(
            RawTarget::create(location).map_err(DriverError::adapter)?,
        ))
    }

    fn concurrent_writers(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(options: &[(&str, &str)]) -> Result<Box<dyn DatasetTarget>, DriverError> {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("o.raw").display().to_string();
        let options = TargetOptions {
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        RawDriver.create_target(&location, &options)
    }

    #[test]
    fn raw_takes_no_options_but_codec_none() {
        assert!(target(&[]).is_ok());
        assert!(target(&[("codec", "none")]).is_ok());
        let err = target(&[("codec", "zstd:3")]).err().unwrap().to_string();
        assert!(
            err.contains("--codec zstd:3") && err.contains("uncompressed"),
            "{err}"
        );
        let err = target(&[("shards", "4")]).err().unwrap().to_string();
        assert!(
            err.contains("--shards") && err.contains("raw takes no options"),
            "{err}"
        );
    }
}
