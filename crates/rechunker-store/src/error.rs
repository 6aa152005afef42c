//! The crate's error type: every message names the location it is about.

/// Errors opening or using an object store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The location cannot be turned into a store (unknown scheme, no bucket, bad configuration).
    #[error("{uri}: {message}")]
    Location { uri: String, message: String },

    /// The store answered a request with an error.
    #[error("{uri}: {what}: {source}")]
    Request {
        uri: String,
        what: String,
        #[source]
        source: object_store::Error,
    },
}

impl StoreError {
    pub(crate) fn location(uri: &str, message: impl Into<String>) -> Self {
        StoreError::Location {
            uri: uri.into(),
            message: message.into(),
        }
    }

    /// The location the error is about.
    pub fn uri(&self) -> &str {
        match self {
            StoreError::Location { uri, .. } | StoreError::Request { uri, .. } => uri,
        }
    }

    /// The message without the location (for error types that add it themselves).
    pub fn message(&self) -> String {
        match self {
            StoreError::Location { message, .. } => message.clone(),
            StoreError::Request { what, source, .. } => format!("{what}: {source}"),
        }
    }
}
