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
        // A char variable's `_FillValue` is text, one character (src/target.rs, marker_bytes).
        // A bool variable written with no `_FillValue` gets libnetcdf's default byte fill
        // (NC_FILL_BYTE, -127): the source reports it as `true` and reads every nonzero byte as
        // true (src/source.rs, NetcdfArray::read), so unwritten elements read as that fill.
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

/// The other formats and codecs through the data cases: every dtype the format has, partial
/// edge chunks, regions crossing chunks, concurrent reads.
macro_rules! format_cases {
    ($($module:ident: $format:ident, $codec:expr, $classic_types:expr;)*) => {
        $(
            mod $module {
                use super::*;

                fn factory() -> impl Factory {
                    factory_with(NetcdfWriteOptions {
                        format: Some(NetcdfFormat::$format),
                        codec: Some($codec),
                        ..Default::default()
                    })
                }

                fn capabilities() -> Capabilities {
                    let mut caps = super::capabilities();
                    if $classic_types {
                        // The classic data model: bytes, chars, 16/32-bit integers, floats
                        // (booleans are stored as bytes).
                        caps.dtypes = vec![
                            DataType::Bool,
                            DataType::Int8,
                            DataType::Int16,
                            DataType::Int32,
                            DataType::Float32,
                            DataType::Float64,
                            DataType::Char,
                        ];
                    }
                    caps
                }

                conformance_tests!(@cases factory, capabilities;
                    round_trip_every_dtype, partial_edge_chunks, regions_crossing_chunks,
                    concurrent_reads);
            }
        )*
    };
}

format_cases! {
    netcdf4_zstd: Netcdf4, NcCodec::Zstd { level: 3 }, false;
    netcdf4_no_codec: Netcdf4, NcCodec::None, false;
    netcdf4_classic: Netcdf4Classic, NcCodec::default(), true;
    classic: Classic, NcCodec::None, true;
    offset64: Offset64, NcCodec::None, true;
}
