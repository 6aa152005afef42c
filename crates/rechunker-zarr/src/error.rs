//! The crate's error type. Every message names the store (its URI), and where it applies the
//! store key and the variable, so a user knows which file to look at.

use rechunker_core::Region;

/// Errors of the Zarr adapter.
#[derive(Debug, thiserror::Error)]
pub enum ZarrError {
    /// The URI cannot be turned into a store (unknown scheme, bad bucket, bad credentials setup).
    #[error("{uri}: {message}")]
    Store { uri: String, message: String },

    /// Nothing Zarr at the location.
    #[error("{uri} is not a Zarr store: no zarr.json, .zgroup or .zarray at its root; if a rechunk into it was interrupted, rerun that command with --resume")]
    NoMetadata { uri: String },

    /// A metadata document is missing, malformed or inconsistent.
    #[error("{uri}: metadata `{key}`: {message}")]
    Metadata {
        uri: String,
        key: String,
        message: String,
    },

    /// The array uses something this adapter cannot read or write.
    #[error("{uri}: array `{variable}`: {what} is not supported")]
    Unsupported {
        uri: String,
        variable: String,
        what: String,
    },

    /// An array of a group source that the adapter cannot read; the others can be converted.
    #[error("{uri}: array `{variable}`: {what} is not supported; pass --skip-unsupported to convert the other arrays without it")]
    UnsupportedArray {
        uri: String,
        variable: String,
        what: String,
    },

    /// The array is encoded with a codec zarrs does not have.
    #[error("{uri}: array `{variable}`: codec {codec} is not supported; convert it with zarr-python (numcodecs) to zstd or blosc first")]
    UnsupportedCodec {
        uri: String,
        variable: String,
        codec: String,
    },

    /// Reading a chunk (or shard) failed: unreadable, truncated or corrupt.
    #[error("{uri}: cannot read chunk `{key}` of `{variable}`: {message}")]
    ReadChunk {
        uri: String,
        variable: String,
        key: String,
        message: String,
    },

    /// A chunk decodes to more bytes than its shape holds: a decompression bomb or corruption.
    /// Decoding stops at that size, so this costs no more memory than a good chunk.
    #[error("`{variable}` {what} {key} in {uri} decodes to more than the {limit} bytes its shape holds: the chunk is corrupt or hostile")]
    DecodesTooLarge {
        uri: String,
        variable: String,
        key: String,
        limit: u64,
        /// "chunk", or "an inner chunk of shard".
        what: &'static str,
    },

    /// Writing a chunk (or shard) failed.
    #[error("{uri}: cannot write chunk `{key}` of `{variable}`: {message}")]
    WriteChunk {
        uri: String,
        variable: String,
        key: String,
        message: String,
    },

    /// Reading or writing a store key other than a chunk failed.
    #[error("{uri}: cannot {action} `{key}`: {message}")]
    Io {
        uri: String,
        key: String,
        action: &'static str,
        message: String,
    },

    /// A write region is not a union of whole chunks (or shards).
    #[error("{uri}: array `{variable}`: write {region} is not aligned to whole {unit}")]
    Unaligned {
        uri: String,
        variable: String,
        region: Region,
        unit: &'static str,
    },

    /// A buffer handed to read_region / write_region has the wrong size.
    #[error(
        "{uri}: array `{variable}`: region {region} needs {expected} bytes, the buffer has {found}"
    )]
    BufferSize {
        uri: String,
        variable: String,
        region: Region,
        expected: u64,
        found: u64,
    },

    /// A region reaches beyond the array.
    #[error("{uri}: array `{variable}`: region {region} is outside its shape {shape:?}")]
    OutOfBounds {
        uri: String,
        variable: String,
        region: Region,
        shape: Vec<u64>,
    },

    /// The dataset has no array of that name.
    #[error("{uri} has no array `{variable}`")]
    NoSuchArray { uri: String, variable: String },

    /// An array already exists at the target with other metadata.
    #[error("{uri}: `{key}` already exists and differs from the array being written ({message}); remove the target or choose another one")]
    Exists {
        uri: String,
        key: String,
        message: String,
    },

    /// A write option (codec, shards, format) is invalid.
    #[error("{0}")]
    Option(String),
}

impl From<ZarrError> for rechunker_core::Error {
    fn from(e: ZarrError) -> Self {
        match e {
            ZarrError::Option(message) => rechunker_core::Error::Invalid(message),
            other => rechunker_core::Error::storage(other),
        }
    }
}

pub(crate) type Result<T, E = ZarrError> = std::result::Result<T, E>;
