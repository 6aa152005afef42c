//! The error of this crate: a message naming the file and, where it applies, the variable.

/// An HDF5 operation failed. The adapters wrap it in their own error types.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {}{message}", variable.as_ref().map(|v| format!("variable `{v}`: ")).unwrap_or_default())]
pub struct H5Error {
    pub path: String,
    pub variable: Option<String>,
    pub message: String,
}

impl H5Error {
    pub fn file(path: &str, message: impl Into<String>) -> Self {
        H5Error {
            path: path.into(),
            variable: None,
            message: message.into(),
        }
    }

    pub fn variable(path: &str, variable: &str, message: impl Into<String>) -> Self {
        H5Error {
            path: path.into(),
            variable: Some(variable.into()),
            message: message.into(),
        }
    }
}
