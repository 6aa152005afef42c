//! The crate's error type. Every message names the file and, where it applies, the variable.

use rechunker_h5::H5Error;

/// Errors of the NetCDF adapter.
#[derive(Debug, thiserror::Error)]
pub enum NetcdfError {
    /// The file does not exist or cannot be read.
    #[error("{path}: cannot open: {message}")]
    Open { path: String, message: String },

    /// The file has neither a NetCDF-3 nor an HDF5 (NetCDF-4) signature.
    #[error("{path} is not a NetCDF file (it starts with neither the NetCDF-3 `CDF` nor the HDF5 signature); check the path")]
    NotNetcdf { path: String },

    /// The signature is right but libnetcdf cannot read the file.
    #[error("{path}: cannot read it as NetCDF ({message}); the file is probably truncated or damaged: copy it again")]
    Damaged { path: String, message: String },

    /// A variable uses something this adapter cannot read or write.
    #[error("{path}: variable `{variable}`: {what} is not supported yet; pass --skip-unsupported to convert the other variables without it")]
    Unsupported {
        path: String,
        variable: String,
        what: String,
    },

    /// The target format cannot hold what is written.
    #[error("{path}: variable `{variable}`: {what}")]
    Format {
        path: String,
        variable: String,
        what: String,
    },

    /// A libnetcdf call failed.
    #[error("{path}: {}{message}", variable.as_ref().map(|v| format!("variable `{v}`: ")).unwrap_or_default())]
    Library {
        path: String,
        variable: Option<String>,
        message: String,
    },

    /// An HDF5 call (NetCDF-4 chunk I/O) failed.
    #[error(transparent)]
    H5(#[from] H5Error),

    /// The dataset has no variable of that name.
    #[error("{path} has no variable `{variable}`")]
    NoSuchArray { path: String, variable: String },

    /// Files of a multi-file source do not fit together.
    #[error("{path}: {message}")]
    Mismatch { path: String, message: String },

    /// A file of a multi-file source lacks the dimension to concatenate along.
    #[error("{path} has no dimension `{dim}` to concatenate along; check --concat-dim (its dimensions: {found})")]
    MissingConcatDim {
        path: String,
        dim: String,
        found: String,
    },

    /// A variable already exists in the target with other metadata.
    #[error("{path}: variable `{variable}` already exists and differs from the array being written ({message}); remove {path} or choose another target")]
    Exists {
        path: String,
        variable: String,
        message: String,
    },

    /// Renaming or removing files failed.
    #[error("{path}: {message}")]
    Io { path: String, message: String },

    /// A write option (codec, format) is invalid.
    #[error("{0}")]
    Option(String),
}

impl From<NetcdfError> for rechunker_core::Error {
    fn from(e: NetcdfError) -> Self {
        match e {
            NetcdfError::Option(message) => rechunker_core::Error::Invalid(message),
            other => rechunker_core::Error::storage(other),
        }
    }
}

pub(crate) type Result<T, E = NetcdfError> = std::result::Result<T, E>;
