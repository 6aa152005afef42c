//! The crate's error type. Every message names the file and, where it applies, the dataset.

use rechunker_h5::H5Error;

/// Errors of the HDF5 adapter.
#[derive(Debug, thiserror::Error)]
pub enum Hdf5Error {
    /// The file does not exist or cannot be read.
    #[error("{path}: cannot open: {message}")]
    Open { path: String, message: String },

    /// The file is not HDF5 (or is truncated so badly that its signature is gone).
    #[error("{path} is not an HDF5 file (no HDF5 signature); check the path, or that the file was copied completely")]
    NotHdf5 { path: String },

    /// A dataset uses something this adapter cannot read or write; `what` says what and that
    /// it is not supported (e.g. "strings are not supported").
    #[error(
        "{path}: dataset `{variable}`: {what}; pass --skip-unsupported to convert the other datasets without it"
    )]
    Unsupported {
        path: String,
        variable: String,
        what: String,
    },

    /// A library call failed; the message names the file and dataset.
    #[error(transparent)]
    H5(#[from] H5Error),

    /// The dataset has no array of that name.
    #[error("{path} has no dataset `{variable}`")]
    NoSuchArray { path: String, variable: String },

    /// A dataset already exists in the target with other metadata.
    #[error("{path}: dataset `{variable}` already exists and differs from the array being written ({message}); remove {path} or choose another target")]
    Exists {
        path: String,
        variable: String,
        message: String,
    },

    /// Renaming or removing files failed.
    #[error("{path}: {message}")]
    Io { path: String, message: String },

    /// A write option (codec) is invalid.
    #[error("{0}")]
    Option(String),
}

impl From<Hdf5Error> for rechunker_core::Error {
    fn from(e: Hdf5Error) -> Self {
        match e {
            Hdf5Error::Option(message) => rechunker_core::Error::Invalid(message),
            other => rechunker_core::Error::storage(other),
        }
    }
}

pub(crate) type Result<T, E = Hdf5Error> = std::result::Result<T, E>;
