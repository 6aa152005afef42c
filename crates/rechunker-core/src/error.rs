//! The core's error type. Adapters keep their own error enums and hand them over boxed; their
//! messages already name the file and the variable.

use crate::planner::PlanError;
use crate::region::Region;

/// An adapter's error, boxed so the core stays format-agnostic.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing an array failed inside an adapter.
    #[error(transparent)]
    Storage(BoxError),

    /// Reading the source failed inside its adapter: the data is damaged, hostile or out of
    /// reach. Unlike a failed write, rerunning helps only once the source itself is fixed.
    #[error(transparent)]
    SourceRead(BoxError),

    /// The request cannot be planned as given (budget too small, chunk spec wrong, ...).
    #[error(transparent)]
    Plan(#[from] PlanError),

    /// Something the user asked for does not fit the data; the message says what to change.
    #[error("{0}")]
    Invalid(String),

    /// The scratch store failed or holds something it should not.
    #[error("scratch {location}: {message}")]
    Scratch { location: String, message: String },

    /// A scratch piece was missing or damaged (checksum). The task of `stage` that wrote it is
    /// no longer journaled as finished, so running that stage again recomputes it.
    #[error("scratch piece {location} {what}; it will be recomputed by stage {stage} task {task}: rerun (with --resume) to continue")]
    LostPiece {
        location: String,
        what: String,
        stage: usize,
        task: u64,
    },

    /// One task of a stage failed; the stage stopped there.
    #[error("`{variable}` stage {stage} task {task} (region {region}) failed: {source}")]
    Task {
        variable: String,
        stage: usize,
        task: u64,
        region: Region,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps an adapter's error.
    pub fn storage(error: impl Into<BoxError>) -> Self {
        Error::Storage(error.into())
    }

    pub fn scratch(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Scratch {
            location: location.into(),
            message: message.into(),
        }
    }

    /// The same error marked as the source's: a storage error becomes [`Error::SourceRead`].
    pub fn from_source(self) -> Self {
        match self {
            Error::Storage(e) => Error::SourceRead(e),
            other => other,
        }
    }

    /// The innermost error, skipping task context (for tests and exit codes).
    pub fn root(&self) -> &Error {
        match self {
            Error::Task { source, .. } => source.root(),
            other => other,
        }
    }
}
