//! HDF5 as a [`Driver`]: local files written by one process.

use crate::{is_hdf5, Hdf5Codec, Hdf5ReadOptions, Hdf5Source, Hdf5Target, Hdf5WriteOptions};
use rechunker_core::driver::{
    extension_of, refuse_unknown, Driver, DriverError, FormatOptions, OpenedSource, Sniff,
    SourceOptions, TargetOptions,
};
use rechunker_core::DatasetTarget;
use std::path::Path;

/// The HDF5 driver.
pub struct Hdf5Driver;

const NAME: &str = "HDF5";
const EXTENSIONS: &[&str] = &["h5", "hdf5", "he5", "hdf"];

/// The typed write options in `options` (`codec`); others are refused.
pub fn write_options(
    location: &str,
    options: &FormatOptions,
) -> Result<Hdf5WriteOptions, DriverError> {
    refuse_unknown(NAME, location, Hdf5Driver.option_names(), options)?;
    // No codec: each dataset of an HDF5 source keeps its filters (zlib:1 + shuffle for
    // sources of other formats).
    let mut o = Hdf5WriteOptions::default();
    if let Some(c) = options.get("codec") {
        let codec: Hdf5Codec = c.parse().map_err(|e| {
            DriverError::Invalid(format!("--codec for the HDF5 file {location}: {e}"))
        })?;
        o.codec = Some(codec);
    }
    Ok(o)
}

impl Driver for Hdf5Driver {
    fn name(&self) -> &'static str {
        NAME
    }
    fn id(&self) -> &'static str {
        "hdf5"
    }
    fn description(&self) -> &'static str {
        "HDF5 datasets in groups, with dimension scales"
    }
    fn extensions(&self) -> &'static [&'static str] {
        EXTENSIONS
    }
    fn option_names(&self) -> &'static [&'static str] {
        &["codec"]
    }

    /// NetCDF-4 files are HDF5 files too: the extension makes one HDF5 for sure.
    fn sniff(&self, location: &str) -> Sniff {
        let p = Path::new(location);
        if location.contains("://") || !is_hdf5(p) {
            Sniff::No
        } else if extension_of(location).is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
            Sniff::Yes
        } else {
            Sniff::Maybe
        }
    }

    fn holds_dataset(&self, location: &str) -> Result<bool, DriverError> {
        let p = Path::new(location.strip_prefix("file://").unwrap_or(location));
        Ok(p.is_file() && is_hdf5(p))
    }

    fn open_source(
        &self,
        location: &str,
        options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let options = Hdf5ReadOptions {
            skip_unsupported: options.skip_unsupported,
        };
        let source = Hdf5Source::open_with(location, &options).map_err(DriverError::adapter)?;
        Ok(OpenedSource::plain(Box::new(source)))
    }

    fn create_target(
        &self,
        location: &str,
        options: &TargetOptions,
    ) -> Result<Box<dyn DatasetTarget>, DriverError> {
        let mut o = write_options(location, &options.options)?;
        if location.contains("://") {
            return Err(DriverError::Invalid(format!(
                "HDF5 is written to local files only, not {location}; write Zarr to object stores"
            )));
        }
        o.resume = options.resume;
        Ok(Box::new(
            Hdf5Target::create(location, o).map_err(DriverError::adapter)?,
        ))
    }

    /// One file, which one process writes.
    fn concurrent_writers(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[(&str, &str)]) -> Result<Hdf5WriteOptions, DriverError> {
        let map = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        write_options("o.h5", &map)
    }

    #[test]
    fn hdf5_parses_its_codec_and_refuses_other_options() {
        assert_eq!(
            parse(&[("codec", "gzip:3")]).unwrap().codec,
            Some(Hdf5Codec::Deflate { level: 3 })
        );
        assert_eq!(parse(&[]).unwrap().codec, None);
        let err = parse(&[("netcdf-format", "classic")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--netcdf-format does not apply to HDF5 targets (o.h5); HDF5 takes --codec"
        );
        let err = parse(&[("codec", "gzip:10")]).unwrap_err().to_string();
        assert!(err.contains("HDF5") && err.contains("gzip:10"), "{err}");
    }
}
