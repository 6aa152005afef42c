//! The crate's error type. Every message names the array or group (its URI) and, where it
//! applies, the attribute or variable, so a user knows what to look at.

use rechunker_core::Region;

/// Errors of the TileDB adapter.
#[derive(Debug, thiserror::Error)]
pub enum TileDbError {
    /// libtiledb refused a call; `message` is the library's own explanation.
    #[error("{uri}: {action}{}: {message}", variable.as_ref().map(|v| format!(" of `{v}`")).unwrap_or_default())]
    Library {
        uri: String,
        variable: Option<String>,
        action: String,
        message: String,
    },

    /// Nothing TileDB at the location.
    #[error("{uri} is not a TileDB array or group{}", if *.exists { "" } else { " (it does not exist)" })]
    NotTileDb { uri: String, exists: bool },

    /// The array uses something this adapter cannot read or write.
    #[error("{uri}: {what} is not supported")]
    Unsupported { uri: String, what: String },

    /// Requested tile extents that a dimension's domain cannot hold.
    #[error("{uri}: tiles of {extent} along `{dim}` do not fit its {domain} ({message}); choose a tile length for which the domain, rounded up to whole tiles, still fits its type")]
    Tiles {
        uri: String,
        dim: String,
        extent: u64,
        /// e.g. `uint8 domain [0, 249]`
        domain: String,
        message: String,
    },

    /// A write region is not a union of whole tiles.
    #[error("{uri}: `{variable}`: write {region} is not aligned to whole tiles")]
    Unaligned {
        uri: String,
        variable: String,
        region: Region,
    },

    /// A buffer handed to read_region / write_region has the wrong size.
    #[error("{uri}: `{variable}`: region {region} needs {expected} bytes, the buffer has {found}")]
    BufferSize {
        uri: String,
        variable: String,
        region: Region,
        expected: u64,
        found: u64,
    },

    /// A region reaches beyond the array.
    #[error("{uri}: `{variable}`: region {region} is outside its shape {shape:?}")]
    OutOfBounds {
        uri: String,
        variable: String,
        region: Region,
        shape: Vec<u64>,
    },

    /// The dataset has no variable of that name.
    #[error("{uri} has no variable `{variable}`")]
    NoSuchVariable { uri: String, variable: String },

    /// Something is in the way of a write, or differs from what a resumed run expects.
    #[error("{uri}: {message}")]
    Exists { uri: String, message: String },

    /// A file-system operation (staging folders, journal, renames) failed.
    #[error("{path}: cannot {action}: {message}")]
    Io {
        path: String,
        action: String,
        message: String,
    },

    /// A write option (codec) is invalid.
    #[error("{0}")]
    Option(String),

    /// The core (planner, executor) failed during an in-place rechunk.
    #[error(transparent)]
    Core(#[from] rechunker_core::Error),
}

impl TileDbError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, action: &str, e: std::io::Error) -> Self {
        TileDbError::Io {
            path: path.as_ref().display().to_string(),
            action: action.into(),
            message: e.to_string(),
        }
    }

    pub(crate) fn unsupported(uri: &str, what: impl Into<String>) -> Self {
        TileDbError::Unsupported {
            uri: uri.into(),
            what: what.into(),
        }
    }
}

impl From<TileDbError> for rechunker_core::Error {
    fn from(e: TileDbError) -> Self {
        match e {
            TileDbError::Option(message) => rechunker_core::Error::Invalid(message),
            TileDbError::Core(inner) => inner,
            other => rechunker_core::Error::storage(other),
        }
    }
}

pub type Result<T, E = TileDbError> = std::result::Result<T, E>;

/// Adds the URI, the action and the variable to a library error.
pub(crate) trait Context<T> {
    fn at(self, uri: &str, action: &str) -> Result<T>;
    fn at_var(self, uri: &str, action: &str, variable: &str) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, crate::ffi::LibError> {
    fn at(self, uri: &str, action: &str) -> Result<T> {
        self.map_err(|e| TileDbError::Library {
            uri: uri.into(),
            variable: None,
            action: action.into(),
            message: e.0,
        })
    }

    fn at_var(self, uri: &str, action: &str, variable: &str) -> Result<T> {
        self.map_err(|e| TileDbError::Library {
            uri: uri.into(),
            variable: Some(variable.into()),
            action: action.into(),
            message: e.0,
        })
    }
}
