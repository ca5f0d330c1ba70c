//! Errors of the training API (data that does not fit the model, files).

/// What `fit`, `evaluate`, the loaders and weight files report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A runtime error (a tensor read, a failed trace).
    #[error(transparent)]
    Runtime(#[from] tensorjit_runtime::Error),
    /// Inputs that do not fit what was asked (names the call and the operands).
    #[error("{op}: {message}")]
    Invalid { op: &'static str, message: String },
    /// `fit`/`evaluate`/`predict` before `compile`.
    #[error("{0} needs a compiled model: call compile(optimizer, loss, …) first")]
    NotCompiled(&'static str),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// A file whose contents are not in the expected format.
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

impl Error {
    pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { op, message: message.into() }
    }
}

/// Convenience alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reports a programmer error in a layer call at the user's call site, in the runtime's
/// format (`tensorjit: <what>: <message>` and the location).
#[cold]
#[track_caller]
pub(crate) fn raise(what: &str, message: impl std::fmt::Display) -> ! {
    let at = std::panic::Location::caller();
    panic!("tensorjit: {what}: {message}\n  at {}:{}:{}", at.file(), at.line(), at.column())
}
