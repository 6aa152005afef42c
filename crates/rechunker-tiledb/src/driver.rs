//! TileDB as a [`Driver`]: dense arrays and groups, many writers, rechunking in place.

use crate::{is_tiledb, Codec, TileDbSource, TileDbTarget, TileDbWriteOptions};
use rechunker_core::driver::{
    refuse_unknown, Driver, DriverError, FormatOptions, InPlaceTarget, OpenedSource, Sniff,
    SourceOptions, TargetOptions,
};
use rechunker_core::DatasetTarget;

/// The TileDB driver.
pub struct TileDbDriver;

const NAME: &str = "TileDB";

/// The typed write options in `options` (`codec`); others are refused. No codec: arrays of a
/// TileDB source are written as they were, tiles aside.
pub fn write_options(
    location: &str,
    options: &FormatOptions,
) -> Result<TileDbWriteOptions, DriverError> {
    refuse_unknown(NAME, location, TileDbDriver.option_names(), options)?;
    let codec = match options.get("codec") {
        Some(c) => c.parse::<Codec>().map_err(DriverError::Invalid)?,
        None => Codec::default(),
    };
    Ok(TileDbWriteOptions {
        codec,
        keep_source: !options.contains_key("codec"),
        ..Default::default()
    })
}

impl Driver for TileDbDriver {
    fn name(&self) -> &'static str {
        NAME
    }
    fn id(&self) -> &'static str {
        "tiledb"
    }
    fn description(&self) -> &'static str {
        "TileDB dense arrays and groups (a TileDB source keeps its arrays; others get one array per variable)"
    }
    fn extensions(&self) -> &'static [&'static str] {
        &["tdb", "tiledb"]
    }
    fn option_names(&self) -> &'static [&'static str] {
        &["codec"]
    }

    fn sniff(&self, location: &str) -> Sniff {
        if is_tiledb(location) {
            Sniff::Yes
        } else {
            Sniff::No
        }
    }

    fn holds_dataset(&self, location: &str) -> Result<bool, DriverError> {
        Ok(is_tiledb(location))
    }

    fn open_source(
        &self,
        location: &str,
        _options: &SourceOptions,
    ) -> Result<OpenedSource, DriverError> {
        let source = TileDbSource::open(location).map_err(DriverError::adapter)?;
        Ok(OpenedSource::plain(Box::new(source)))
    }

    fn create_target(
        &self,
        location: &str,
        options: &TargetOptions,
    ) -> Result<Box<dyn DatasetTarget>, DriverError> {
        let o = write_options(location, &options.options)?;
        Ok(Box::new(
            TileDbTarget::create(location, o).map_err(DriverError::adapter)?,
        ))
    }

    fn concurrent_writers(&self) -> bool {
        true
    }

    /// The copy beside the array and the folder exchange (see [`crate::in_place`]); `codec`
    /// gives every attribute of the copy new filters.
    fn in_place(
        &self,
        location: &str,
        options: &FormatOptions,
    ) -> Result<Box<dyn InPlaceTarget>, DriverError> {
        let o = write_options(location, options)?;
        let codec = (!o.keep_source).then_some(o.codec);
        Ok(Box::new(
            crate::in_place::TileDbInPlace::open(location, codec).map_err(DriverError::adapter)?,
        ))
    }

    /// Also the staging folder an interrupted write leaves.
    fn remove(&self, location: &str) -> Result<(), DriverError> {
        crate::remove(location).map_err(DriverError::adapter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[(&str, &str)]) -> Result<TileDbWriteOptions, DriverError> {
        let map = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        write_options("o.tdb", &map)
    }

    #[test]
    fn tiledb_parses_its_codec_and_refuses_other_options() {
        assert!(parse(&[]).unwrap().keep_source);
        let o = parse(&[("codec", "gzip:6+byteshuffle")]).unwrap();
        assert!(!o.keep_source);
        let err = parse(&[("shards", "4,4")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "--shards does not apply to TileDB targets (o.tdb); TileDB takes --codec"
        );
        assert!(parse(&[("codec", "bogus")]).is_err());
    }
}
