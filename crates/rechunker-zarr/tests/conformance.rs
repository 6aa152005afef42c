//! The adapter conformance suite on Zarr: v3, v3 sharded and v2, on the local disk.

use rechunker_core::conformance::{Capabilities, Factory, LocalFactory};
use rechunker_core::conformance_tests;
use rechunker_core::{DatasetSource, DatasetTarget};
use rechunker_zarr::{ShardSpec, ZarrFormat, ZarrSource, ZarrTarget, ZarrWriteOptions};
use std::path::Path;

fn factory_with(options: ZarrWriteOptions) -> impl Factory {
    let dir = tempfile::tempdir().unwrap();
    LocalFactory::new(
        dir.path(),
        move |p: &Path| {
            let uri = p.display().to_string();
            Ok(Box::new(ZarrTarget::create(&uri, options.clone())?) as Box<dyn DatasetTarget>)
        },
        |p: &Path| {
            let uri = p.display().to_string();
            Ok(Box::new(ZarrSource::open(&uri)?) as Box<dyn DatasetSource>)
        },
    )
    .owning(dir)
}

fn options(format: ZarrFormat, shards: Option<&str>) -> ZarrWriteOptions {
    with_codec(format, "zstd:1", shards)
}

fn with_codec(format: ZarrFormat, codec: &str, shards: Option<&str>) -> ZarrWriteOptions {
    ZarrWriteOptions {
        zarr_format: Some(format),
        codec: Some(codec.parse().unwrap()),
        shards: shards.map(|s| s.parse::<ShardSpec>().unwrap()),
    }
}

/// Zarr keeps any JSON attribute and every type.
fn capabilities() -> Capabilities {
    Capabilities::everything()
}

mod v3 {
    use super::*;

    fn factory() -> impl Factory {
        factory_with(options(ZarrFormat::V3, None))
    }

    conformance_tests!(factory, capabilities);
}

mod v3_sharded {
    use super::*;

    /// Shards of two chunks along one dimension of the suite's arrays (by dimension name).
    fn factory() -> impl Factory {
        let shards = "y=6,grid_d0=8,shared_d1=12,first_d0=10,f_float32_d1=6,big_d0=1024";
        factory_with(options(ZarrFormat::V3, Some(shards)))
    }

    conformance_tests!(factory, capabilities);
}

/// v2 keeps a fill value as xarray reads it: the `_FillValue` marker (src/cf_fill.rs).
fn v2_capabilities() -> Capabilities {
    Capabilities {
        fill_needs_marker: true,
        // A char array's marker is text, one character (cf_fill::char_marker): its byte is the
        // fill value, which reads back as that marker.
        ..capabilities()
    }
}

mod v2 {
    use super::*;

    fn capabilities() -> Capabilities {
        v2_capabilities()
    }

    fn factory() -> impl Factory {
        factory_with(options(ZarrFormat::V2, None))
    }

    conformance_tests!(factory, capabilities);
}

/// Every other codec (the modules above write zstd) through the data cases: every dtype,
/// partial edge chunks and regions crossing chunks, in v3, v3 sharded and v2.
macro_rules! codec_cases {
    ($($module:ident: $format:ident, $codec:literal, $shards:expr;)*) => {
        $(
            mod $module {
                use super::*;

                fn factory() -> impl Factory {
                    factory_with(with_codec(ZarrFormat::$format, $codec, $shards))
                }

                fn capabilities() -> Capabilities {
                    if ZarrFormat::$format == ZarrFormat::V2 {
                        super::v2_capabilities()
                    } else {
                        super::capabilities()
                    }
                }

                conformance_tests!(@cases factory, capabilities;
                    round_trip_every_dtype, partial_edge_chunks, regions_crossing_chunks);
            }
        )*
    };
}

codec_cases! {
    v3_blosc: V3, "blosc:lz4:5:shuffle", None;
    v3_gzip: V3, "gzip:1", None;
    v3_none: V3, "none", None;
    v3_sharded_blosc: V3, "blosc:zstd:3:bitshuffle", Some("4,8,5");
    v2_blosc: V2, "blosc:zstd:3:bitshuffle", None;
    v2_gzip: V2, "gzip:1", None;
    v2_none: V2, "none", None;
}

#[path = "../../rechunker-store/test-support/moto.rs"]
mod moto;

/// The suite on S3 (moto from the workspace venv, started here, as tests/s3.rs does), all cases
/// in one test against one server.
mod s3 {
    use super::moto::Moto;
    use super::*;
    use rechunker_core::conformance::CASES;

    struct S3Factory {
        moto: Moto,
        options: ZarrWriteOptions,
    }

    impl S3Factory {
        fn uri(name: &str) -> String {
            format!("s3://conformance/{name}/data.zarr")
        }
    }

    impl Factory for S3Factory {
        fn create(&self, name: &str) -> rechunker_core::Result<Box<dyn DatasetTarget>> {
            let target = ZarrTarget::create(&Self::uri(name), self.options.clone())?;
            Ok(Box::new(target))
        }

        fn open(&self, name: &str) -> rechunker_core::Result<Box<dyn DatasetSource>> {
            Ok(Box::new(ZarrSource::open(&Self::uri(name))?))
        }

        fn stored(&self, name: &str) -> Option<Vec<String>> {
            let listing = self
                .moto
                .http("GET", &format!("/conformance?list-type=2&prefix={name}/"));
            assert!(listing.contains("ListBucketResult"), "{listing}");
            let mut keys: Vec<String> = listing
                .split("<Key>")
                .skip(1)
                .filter_map(|k| k.split_once("</Key>").map(|(k, _)| k.to_string()))
                .collect();
            keys.sort();
            Some(keys)
        }
    }

    #[test]
    fn every_case_on_s3() {
        let moto = Moto::start();
        moto.use_for_s3();
        moto.create_bucket("conformance");
        let factory = S3Factory {
            moto,
            options: options(ZarrFormat::V3, None),
        };
        for (name, case) in CASES {
            eprintln!("conformance on S3: {name}");
            case(&factory, &capabilities());
        }
    }
}
