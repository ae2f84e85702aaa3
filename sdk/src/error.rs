use crate::bindings::linli::platform::types;
use std::fmt;

pub use types::ErrorCode;

/// A typed error, as returned by host calls and by route handlers. A handler's error
/// becomes a JSON response `{"error": {"code", "message"}}` with a matching status.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The HTTP status a route answers with when it fails with this error.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::NotFound => 404,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::ConsentRequired => 403,
            ErrorCode::InvalidArgument => 400,
            ErrorCode::Conflict => 409,
            ErrorCode::LimitExceeded => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The stable wire name of the code, as the host spells it.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            ErrorCode::NotFound => "not-found",
            ErrorCode::PermissionDenied => "permission-denied",
            ErrorCode::ConsentRequired => "consent-required",
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::Conflict => "conflict",
            ErrorCode::LimitExceeded => "limit-exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code_name(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<types::Error> for Error {
    fn from(e: types::Error) -> Self {
        Self { code: e.code, message: e.message }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::invalid(format!("bad JSON: {e}"))
    }
}

impl From<Error> for types::Error {
    fn from(e: Error) -> Self {
        Self { code: e.code, message: e.message }
    }
}
