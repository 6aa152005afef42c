//! Bounded decoding: every bytes-to-bytes codec of an array decodes into a buffer capped at the
//! size its output may have, and fails as soon as the data would exceed it, so a decompression
//! bomb (a few KB that inflate to GiBs) cannot break `--max-mem`.
//!
//! zarrs' own decoders size their output from the data: gzip and zlib `read_to_end` into a
//! growing vector, zstd trusts the frame's content size (or decodes a frame without one into a
//! growing vector), blosc allocates the `nbytes` of its header. Here each bytes-to-bytes codec of
//! the chain (and of a shard's inner and index chains) is wrapped in [`Bounded`], which encodes
//! through zarrs' codec unchanged and decodes with a hard cap: the size zarrs expects the codec's
//! output to have (the chunk's element count times the item size for the codec next to `bytes`,
//! the next codec's bound further out).
//!
//! - zstd: one-shot decompression into a buffer of exactly the cap (a frame whose content size
//!   says more fails before anything is decoded; one without a content size fails when the
//!   buffer is full), so there is no second pass for frames with or without a content size;
//! - gzip, zlib: streamed into a buffer of the cap, one byte more is an error;
//! - blosc: the header's `nbytes` is checked against the cap before c-blosc allocates and
//!   decompresses (c-blosc itself checks blocks against `nbytes`);
//! - crc32c and any other codec whose output is never larger than its input (shuffle): zarrs'
//!   decoder, with the output checked against the cap.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Read;
use std::sync::Arc;
use zarrs::array::codec::api::{
    ArrayBytesRaw, BytesRepresentation, BytesToBytesCodecTraits, CodecError, CodecMetadataOptions,
    CodecOptions, CodecTraits, PartialDecoderCapability, PartialEncoderCapability,
    RecommendedConcurrency,
};
use zarrs::array::codec::{
    BloscCodec, CodecChain, GzipCodec, ShardingCodec, ShardingCodecConfiguration, ZlibCodec,
    ZstdCodec,
};
use zarrs::array::{Array, ArrayBuilder, ArrayCreateError};
use zarrs::metadata::{Configuration, ConfigurationSerialize};
use zarrs::plugin::{ExtensionName, ZarrVersion};

/// The marker error a bounded decoder returns (inside `CodecError::IOError`) when the data
/// would exceed its cap; [`exceeded`] finds it again.
#[derive(Debug, thiserror::Error)]
#[error("the data decodes to more than the {limit} bytes expected")]
pub(crate) struct TooLarge {
    pub limit: u64,
}

fn too_large(limit: usize) -> CodecError {
    CodecError::IOError(Arc::new(std::io::Error::other(TooLarge {
        limit: limit as u64,
    })))
}

/// The cap of a bounded decoder that `error` reports, if it is one.
pub(crate) fn exceeded(error: &zarrs::array::ArrayError) -> Option<u64> {
    match error {
        zarrs::array::ArrayError::CodecError(CodecError::IOError(io)) => io
            .get_ref()
            .and_then(|e| e.downcast_ref::<TooLarge>())
            .map(|t| t.limit),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Zstd,
    Gzip,
    Zlib,
    Blosc,
    /// Every other codec this build of zarrs has (crc32c, shuffle): their output is never
    /// larger than their input, so zarrs' decoder runs and its output is checked. (A codec
    /// that inflates, were zarrs built with one, would need its own case here.)
    Shrinking,
}

/// A bytes-to-bytes codec of zarrs with a bounded decoder.
#[derive(Debug)]
pub(crate) struct Bounded {
    inner: Arc<dyn BytesToBytesCodecTraits>,
    kind: Kind,
    /// The cap when zarrs cannot bound the codec's output (an unbounded inner representation).
    fallback: u64,
}

impl Bounded {
    fn wrap(inner: Arc<dyn BytesToBytesCodecTraits>, fallback: u64) -> Arc<Self> {
        let any = inner.as_any();
        let kind = if any.is::<ZstdCodec>() {
            Kind::Zstd
        } else if any.is::<GzipCodec>() {
            Kind::Gzip
        } else if any.is::<ZlibCodec>() {
            Kind::Zlib
        } else if any.is::<BloscCodec>() {
            Kind::Blosc
        } else {
            Kind::Shrinking
        };
        Arc::new(Bounded {
            inner,
            kind,
            fallback,
        })
    }

    fn cap(&self, decoded: &BytesRepresentation) -> usize {
        let cap = decoded.size().unwrap_or(self.fallback);
        usize::try_from(cap).unwrap_or(usize::MAX)
    }
}

thread_local! {
    static ZSTD: RefCell<zstd::zstd_safe::DCtx<'static>> = RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// zstd into a buffer of `cap` bytes, in one pass.
pub(crate) fn zstd_decode(src: &[u8], cap: usize) -> Result<Vec<u8>, CodecError> {
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(src) {
        if size > cap as u64 {
            return Err(too_large(cap));
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    let result = ZSTD.with(|dctx| dctx.borrow_mut().decompress(&mut out, src));
    match result {
        Ok(_) => Ok(out),
        Err(code) => {
            let name = zstd::zstd_safe::get_error_name(code);
            if name == "Destination buffer is too small" {
                Err(too_large(cap))
            } else {
                Err(CodecError::Other(format!("zstd: {name}")))
            }
        }
    }
}

/// A deflate stream (gzip or zlib framing) into a buffer of `cap` bytes.
pub(crate) fn inflate(mut reader: impl Read, cap: usize) -> Result<Vec<u8>, CodecError> {
    let mut out: Vec<u8> = Vec::with_capacity(cap);
    (&mut reader)
        .take(cap as u64)
        .read_to_end(&mut out)
        .map_err(|e| CodecError::IOError(Arc::new(e)))?;
    if out.len() == cap {
        // Anything beyond the cap (and the stream's trailer must still check out).
        let mut probe = [0u8; 1];
        let more = reader
            .read(&mut probe)
            .map_err(|e| CodecError::IOError(Arc::new(e)))?;
        if more != 0 {
            return Err(too_large(cap));
        }
    }
    Ok(out)
}

/// The `nbytes` a blosc (1.x) header declares.
pub(crate) fn blosc_nbytes(src: &[u8]) -> Option<u64> {
    let field: [u8; 4] = src.get(4..8)?.try_into().ok()?;
    Some(u64::from(u32::from_le_bytes(field)))
}

impl ExtensionName for Bounded {
    fn name(&self, version: ZarrVersion) -> Option<Cow<'static, str>> {
        self.inner.name(version)
    }
}

impl CodecTraits for Bounded {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn configuration(
        &self,
        version: ZarrVersion,
        options: &CodecMetadataOptions,
    ) -> Option<Configuration> {
        self.inner.configuration(version, options)
    }

    fn partial_decoder_capability(&self) -> PartialDecoderCapability {
        match self.kind {
            Kind::Shrinking => self.inner.partial_decoder_capability(),
            // Partial decoding goes through `decode` (zarrs' default partial decoder).
            _ => PartialDecoderCapability {
                partial_read: false,
                partial_decode: false,
            },
        }
    }

    fn partial_encoder_capability(&self) -> PartialEncoderCapability {
        self.inner.partial_encoder_capability()
    }
}

impl BytesToBytesCodecTraits for Bounded {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn BytesToBytesCodecTraits> {
        self
    }

    fn recommended_concurrency(
        &self,
        decoded_representation: &BytesRepresentation,
    ) -> Result<RecommendedConcurrency, CodecError> {
        self.inner.recommended_concurrency(decoded_representation)
    }

    fn encoded_representation(
        &self,
        decoded_representation: &BytesRepresentation,
    ) -> BytesRepresentation {
        self.inner.encoded_representation(decoded_representation)
    }

    fn encode<'a>(
        &self,
        decoded_value: ArrayBytesRaw<'a>,
        options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        self.inner.encode(decoded_value, options)
    }

    fn decode<'a>(
        &self,
        encoded_value: ArrayBytesRaw<'a>,
        decoded_representation: &BytesRepresentation,
        options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        let cap = self.cap(decoded_representation);
        match self.kind {
            Kind::Zstd => zstd_decode(&encoded_value, cap).map(Cow::Owned),
            Kind::Gzip => {
                inflate(flate2::read::GzDecoder::new(&encoded_value[..]), cap).map(Cow::Owned)
            }
            Kind::Zlib => {
                inflate(flate2::read::ZlibDecoder::new(&encoded_value[..]), cap).map(Cow::Owned)
            }
            Kind::Blosc => {
                if blosc_nbytes(&encoded_value).is_some_and(|n| n > cap as u64) {
                    return Err(too_large(cap));
                }
                self.inner
                    .decode(encoded_value, decoded_representation, options)
            }
            Kind::Shrinking => {
                let input = encoded_value.len();
                let out = self
                    .inner
                    .decode(encoded_value, decoded_representation, options)?;
                // Only a codec that grew the data can have gone past the cap (a larger input
                // is left to the codecs further in, which report it against their own caps).
                if out.len() > cap && out.len() > input {
                    return Err(too_large(cap));
                }
                Ok(out)
            }
        }
    }
}

/// `chain` with every bytes-to-bytes codec bounded, recursively through sharding (inner and
/// index chains). `fallback` caps codecs whose output zarrs cannot bound.
pub(crate) fn bound_chain(chain: &CodecChain, fallback: u64) -> Result<CodecChain, String> {
    let a2b = chain.array_to_bytes_codec();
    let a2b: Arc<dyn zarrs::array::codec::api::ArrayToBytesCodecTraits> =
        if a2b.as_any().is::<ShardingCodec>() {
            let config = a2b
                .configuration(ZarrVersion::V3, &CodecMetadataOptions::default())
                .ok_or("a sharding codec without configuration")?;
            let ShardingCodecConfiguration::V1(config) =
                ShardingCodecConfiguration::try_from_configuration(config)
                    .map_err(|e| format!("sharding configuration: {e}"))?
            else {
                return Err("an unknown sharding configuration".into());
            };
            let inner = CodecChain::from_metadata(&config.codecs).map_err(|e| e.to_string())?;
            let index =
                CodecChain::from_metadata(&config.index_codecs).map_err(|e| e.to_string())?;
            Arc::new(ShardingCodec::new(
                config.chunk_shape,
                Arc::new(bound_chain(&inner, fallback)?),
                Arc::new(bound_chain(&index, fallback)?),
                config.index_location,
            ))
        } else {
            a2b.clone()
        };
    let b2b = chain
        .bytes_to_bytes_codecs()
        .iter()
        .map(|c| Bounded::wrap(c.clone(), fallback) as Arc<dyn BytesToBytesCodecTraits>)
        .collect();
    Ok(CodecChain::new(
        chain.array_to_array_codecs().to_vec(),
        a2b,
        b2b,
    ))
}

/// `array` again, on the same storage and path, with its codec chain bounded.
pub(crate) fn bound_array<S: ?Sized>(
    array: &Array<S>,
    storage: Arc<S>,
    path: &str,
    fallback: u64,
) -> Result<Array<S>, String> {
    let chain = bound_chain(&array.codecs(), fallback)?;
    let mut builder = ArrayBuilder::from_array(array);
    builder
        .fill_value(array.fill_value().clone())
        .array_to_array_codecs(chain.array_to_array_codecs().to_vec())
        .array_to_bytes_codec(chain.array_to_bytes_codec().clone())
        .bytes_to_bytes_codecs(chain.bytes_to_bytes_codecs().to_vec());
    builder
        .build(storage, path)
        .map_err(|e: ArrayCreateError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_too_large(e: &CodecError) -> bool {
        matches!(e, CodecError::IOError(io) if io.get_ref().is_some_and(|e| e.is::<TooLarge>()))
    }

    #[test]
    fn zstd_is_capped_with_and_without_content_size() {
        let data = vec![7u8; 100_000];
        let framed = zstd::bulk::compress(&data, 3).unwrap();
        assert_eq!(zstd_decode(&framed, 100_000).unwrap(), data);
        assert!(is_too_large(&zstd_decode(&framed, 99_999).unwrap_err()));
        // Streamed: no content size in the frame.
        let mut streamed = Vec::new();
        {
            let mut enc = zstd::stream::write::Encoder::new(&mut streamed, 3).unwrap();
            enc.include_contentsize(false).unwrap();
            std::io::Write::write_all(&mut enc, &data).unwrap();
            enc.finish().unwrap();
        }
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&streamed).unwrap(),
            None
        );
        assert_eq!(zstd_decode(&streamed, 100_000).unwrap(), data);
        assert!(is_too_large(&zstd_decode(&streamed, 4096).unwrap_err()));
        // Garbage is corrupt, not too large.
        assert!(!is_too_large(
            &zstd_decode(b"not zstd at all", 100).unwrap_err()
        ));
    }

    #[test]
    fn deflate_is_capped() {
        let data = vec![1u8; 50_000];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &data).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            inflate(flate2::read::GzDecoder::new(&gz[..]), 50_000).unwrap(),
            data
        );
        assert!(is_too_large(
            &inflate(flate2::read::GzDecoder::new(&gz[..]), 49_999).unwrap_err()
        ));
        let mut bad = gz.clone();
        let n = bad.len();
        bad[n - 8] ^= 0xff; // CRC
        assert!(inflate(flate2::read::GzDecoder::new(&bad[..]), 50_000).is_err());
    }
}
