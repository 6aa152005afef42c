//! NetCDF as a [`Driver`]: local files, one writer, many files joined along a dimension.

use crate::{
    is_netcdf, NcCodec, NetcdfReadOptions, NetcdfSource, NetcdfTarget, NetcdfWriteOptions,
};
use rechunker_core::driver::{
    refuse_unknown, Driver, DriverError, FormatOptions, OpenedSource, Sniff, SourceOptions,
    TargetOptions,
};
use rechunker_core::DatasetTarget;
use std::path::{Path, PathBuf};

/// The NetCDF driver.
pub struct NetcdfDriver;

const NAME: &str = "NetCDF";

fn local(location: &str) -> &Path {
    Path::new(location.strip_prefix("file://").unwrap_or(location))
}

fn read_options(options: &SourceOptions) -> NetcdfReadOptions {
    NetcdfReadOptions {
        skip_unsupported: options.skip_unsupported,
    }
}

fn opened(source: NetcdfSource) -> OpenedSource {
    OpenedSource::plain(Box::new(source))
}

/// The typed write options in `options` (`codec`, `netcdf-format`); others are refused.
pub fn write_options(
    location: &str,
    options: &FormatOptions,
) -> Result<NetcdfWriteOptions, DriverError> {
    refuse_unknown(NAME, location, NetcdfDriver.option_names(), options)?;
    let mut o = NetcdfWriteOptions::default();
    // Neither set: each variable of a NetCDF source keeps its filters, and the file its
    // flavour (netcdf4 with zlib:1 + shuffle for sources of other formats).
    if let Some(f) = options.get("netcdf-format") {
        o.format = Some(f.parse().map_err(DriverError::adapter)?);
    }
    if let Some(c) = options.get("codec") {
        let codec: NcCodec = c.parse().map_err(|e| {
            DriverError::Invalid(format!("--codec for the NetCDF file {location}: {e}"))
        })?;
        o.codec = Some(codec);
    }
    Ok(o)
}

impl Driver for NetcdfDriver {
    fn name(&self) -> &'static str {
        NAME
    }
    fn id(&self) -> &'static str {
        "netcdf"
    }
    fn description(&self) -> &'static str {
        "NetCDF-4 (chunked, deflate/zstd + shuffle) or a classic format (see --netcdf-format)"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["nc", "nc4", "cdf", "netcdf"]
    }
    fn option_names(&self) -> &'static [&'static str] {
        &["codec", "netcdf-format"]
    }

    /// A file of no known format is NetCDF's to explain (truncated, not NetCDF).
    fn sniff(&self, location: &str) -> Sniff {
        let p = Path::new(location);
        if location.contains("://") || !p.is_file() {
            Sniff::No
        } else if is_netcdf(p) {
            Sniff::Yes
        } else {
            Sniff::Fallback
        }
    }

    fn holds_dataset(&self, location: &str) -> Result<bool, DriverError> {
        let p = local(location);
        Ok(p.is_file() && is_netcdf(p))
    }

    fn open_source(
        &self,
        location: &str,
        options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let source = NetcdfSource::open_with(location, &read_options(options))
            .map_err(DriverError::adapter)?;
        Ok(opened(source))
    }

    fn create_target(
        &self,
        location: &str,
        options: &TargetOptions,
    ) -> Result<Box<dyn DatasetTarget>, DriverError> {
        let mut o = write_options(location, &options.options)?;
        if location.contains("://") {
            return Err(DriverError::Invalid(format!(
                "NetCDF is written to local files only, not {location}; write Zarr to object stores"
            )));
        }
        o.resume = options.resume;
        Ok(Box::new(
            NetcdfTarget::create(location, o).map_err(DriverError::adapter)?,
        ))
    }

    /// One file, which one process writes.
    fn concurrent_writers(&self) -> bool {
        false
    }

    fn concatenates(&self) -> bool {
        true
    }

    fn open_many(
        &self,
        files: &[PathBuf],
        dim: &str,
        options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let source = NetcdfSource::open_many_with(files, dim, &read_options(options))
            .map_err(DriverError::adapter)?;
        Ok(opened(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetcdfFormat;

    fn parse(options: &[(&str, &str)]) -> Result<NetcdfWriteOptions, DriverError> {
        let map = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        write_options("o.nc", &map)
    }

    #[test]
    fn netcdf_parses_its_options_and_refuses_others() {
        let o = parse(&[("codec", "zstd:5"), ("netcdf-format", "classic")]).unwrap();
        assert_eq!(o.codec, Some(NcCodec::Zstd { level: 5 }));
        assert_eq!(o.format, Some(NetcdfFormat::Classic));
        assert!(parse(&[]).unwrap().keeps_source());
        let err = parse(&[("shards", "4,4")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "--shards does not apply to NetCDF targets (o.nc); NetCDF takes --codec, --netcdf-format"
        );
        let err = parse(&[("codec", "blosc")]).unwrap_err().to_string();
        assert!(err.contains("NetCDF") && err.contains("`blosc`"), "{err}");
        assert!(parse(&[("netcdf-format", "netcdf5")]).is_err());
    }

    #[test]
    fn netcdf_targets_are_local_files_written_by_one_process() {
        let err = NetcdfDriver
            .create_target("s3://bucket/o.nc", &TargetOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("local files only"), "{err}");
        assert!(!NetcdfDriver.concurrent_writers() && NetcdfDriver.concatenates());
    }
}
