//! Errors of the crate. Messages name elements of the ViewDefinition (`select[1].column[0]`),
//! FHIRPath expressions and positions in them, or input positions (`resource #3`) — never a
//! value read from a resource, since resources are health records.

use std::path::PathBuf;

/// Everything that can go wrong while reading a ViewDefinition or flattening resources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ViewDefinition is malformed or breaks a rule of the specification. `element` is the
    /// path of the offending element inside the view, e.g. `select[1].column[0]`.
    #[error("invalid ViewDefinition: {element}: {message}")]
    InvalidView {
        /// Path of the offending element in the view.
        element: String,
        /// The rule broken, in words.
        message: String,
    },

    /// A FHIRPath expression does not parse, or uses something this crate does not support.
    /// `position` is the 0-based character offset in `expression`.
    #[error("FHIRPath syntax error at position {position} of `{expression}`: {message}")]
    Syntax {
        /// The expression as written in the view.
        expression: String,
        /// 0-based character offset of the error in `expression`.
        position: usize,
        /// What the parser expected or refused.
        message: String,
    },

    /// Evaluating a FHIRPath expression failed (e.g. comparing two collections of several
    /// items). `position` is the 0-based character offset of the failing operator or function.
    #[error("FHIRPath evaluation error at position {position} of `{expression}`: {message}")]
    FhirPath {
        /// The expression as written in the view.
        expression: String,
        /// 0-based character offset of the failing operator or function in `expression`.
        position: usize,
        /// What failed, in words (never the values involved).
        message: String,
    },

    /// Flattening a resource broke a rule of the view (e.g. a column without
    /// `collection: true` produced several values). `element` locates the rule in the view.
    #[error("{element}: {message}")]
    Evaluation {
        /// Path of the view element whose rule was broken.
        element: String,
        /// The rule broken, in words.
        message: String,
    },

    /// An error while flattening one resource of a batch; `index` is its 0-based position in
    /// the input (the resource's id is deliberately not reported: it may identify a person).
    #[error("resource #{index}: {error}")]
    InResource {
        /// 0-based position of the resource in the input.
        index: usize,
        /// What went wrong with it.
        error: Box<Error>,
    },

    /// The conformance suite could not be read (the test files themselves, not a view).
    #[error("conformance suite {}: {message}", path.display())]
    Suite {
        /// The suite directory or test file that could not be read.
        path: PathBuf,
        /// What could not be read or parsed.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid_view(element: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidView {
            element: element.into(),
            message: message.into(),
        }
    }

    pub(crate) fn evaluation(element: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Evaluation {
            element: element.into(),
            message: message.into(),
        }
    }
}

impl agora_core::HasKind for Error {
    fn kind(&self) -> agora_core::ErrorKind {
        match self {
            Error::Suite { .. } => agora_core::ErrorKind::Internal,
            Error::InvalidView { .. }
            | Error::Syntax { .. }
            | Error::FhirPath { .. }
            | Error::Evaluation { .. }
            | Error::InResource { .. } => agora_core::ErrorKind::InvalidInput,
        }
    }
}
