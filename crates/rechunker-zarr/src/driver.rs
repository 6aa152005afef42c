//! Zarr as a [`Driver`]: v2 or v3, local or on object stores, many writers at once.

use crate::{
    looks_like_zarr, remove, Codec, ShardSpec, ZarrFormat, ZarrReadOptions, ZarrSource, ZarrTarget,
    ZarrWriteOptions,
};
use rechunker_core::driver::{
    refuse_unknown, remove_local, Driver, DriverError, FormatOptions, OpenedSource, Sniff,
    SourceOptions, TargetOptions,
};
use rechunker_core::DatasetTarget;
use std::path::Path;

/// The Zarr driver.
pub struct ZarrDriver;

const NAME: &str = "Zarr";

/// Files at the root of a local Zarr group or array, v2 or v3.
fn has_zarr_metadata(p: &Path) -> bool {
    ["zarr.json", ".zgroup", ".zarray", ".zmetadata"]
        .iter()
        .any(|f| p.join(f).is_file())
}

/// The typed write options in `options` (`codec`, `zarr-format`, `shards`); others are
/// refused. Unset: each array keeps its Zarr source's version and encoding.
pub fn write_options(
    location: &str,
    options: &FormatOptions,
) -> Result<ZarrWriteOptions, DriverError> {
    refuse_unknown(NAME, location, ZarrDriver.option_names(), options)?;
    let zarr_format = options
        .get("zarr-format")
        .map(|v| {
            v.parse::<ZarrFormat>()
                .map_err(|_| DriverError::Invalid(format!("--zarr-format {v}: use 2 or 3")))
        })
        .transpose()?;
    let codec = options
        .get("codec")
        .map(|c| c.parse::<Codec>().map_err(DriverError::adapter))
        .transpose()?;
    let shards = options
        .get("shards")
        .map(|s| s.parse::<ShardSpec>().map_err(DriverError::adapter))
        .transpose()?;
    Ok(ZarrWriteOptions {
        zarr_format,
        codec,
        shards,
    })
}

impl Driver for ZarrDriver {
    fn name(&self) -> &'static str {
        NAME
    }
    fn id(&self) -> &'static str {
        "zarr"
    }
    fn description(&self) -> &'static str {
        "Zarr v2 or v3 (see --zarr-format), locally or on an object store"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["zarr"]
    }
    fn option_names(&self) -> &'static [&'static str] {
        &["codec", "zarr-format", "shards"]
    }

    /// Every URI is Zarr's (object stores hold Zarr); a local folder with Zarr metadata too.
    fn sniff(&self, location: &str) -> Sniff {
        if rechunker_store::is_uri(location) || has_zarr_metadata(Path::new(location)) {
            Sniff::Yes
        } else {
            Sniff::No
        }
    }

    fn holds_dataset(&self, location: &str) -> Result<bool, DriverError> {
        if rechunker_store::is_object_store(location) {
            return looks_like_zarr(location).map_err(DriverError::adapter);
        }
        let p = Path::new(location.strip_prefix("file://").unwrap_or(location));
        Ok(p.is_dir() && has_zarr_metadata(p))
    }

    fn open_source(
        &self,
        location: &str,
        options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let options = ZarrReadOptions {
            skip_unsupported: options.skip_unsupported,
        };
        let source = ZarrSource::open_with(location, &options).map_err(DriverError::adapter)?;
        Ok(OpenedSource::plain(Box::new(source)))
    }

    fn create_target(
        &self,
        location: &str,
        options: &TargetOptions,
    ) -> Result<Box<dyn DatasetTarget>, DriverError> {
        let o = write_options(location, &options.options)?;
        Ok(Box::new(
            ZarrTarget::create(location, o).map_err(DriverError::adapter)?,
        ))
    }

    fn concurrent_writers(&self) -> bool {
        true
    }

    fn object_stores(&self) -> bool {
        true
    }

    fn remove(&self, location: &str) -> Result<(), DriverError> {
        if rechunker_store::is_uri(location) {
            return remove(location).map_err(DriverError::adapter);
        }
        remove_local(Path::new(location))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[(&str, &str)]) -> Result<ZarrWriteOptions, DriverError> {
        let map = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        write_options("o.zarr", &map)
    }

    #[test]
    fn zarr_parses_its_options_and_refuses_others() {
        let o = parse(&[("zarr-format", "2"), ("codec", "zstd:3")]).unwrap();
        assert_eq!(o.zarr_format, Some(ZarrFormat::V2));
        assert!(o.codec.is_some() && o.shards.is_none());
        assert!(parse(&[("shards", "4,4")]).unwrap().shards.is_some());
        let o = parse(&[]).unwrap();
        assert!(o.zarr_format.is_none() && o.codec.is_none());
        let err = parse(&[("netcdf-format", "classic")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--netcdf-format does not apply to Zarr targets (o.zarr); Zarr takes --codec, --zarr-format, --shards"
        );
        let err = parse(&[("zarr-format", "4")]).unwrap_err().to_string();
        assert_eq!(err, "--zarr-format 4: use 2 or 3");
        assert!(parse(&[("codec", "nonsense")]).is_err());
    }
}
