//! The kinds of failure. Every domain error says which kind it is ([`Classified`]); the HTTP
//! layer answers a kind with one status and code, and the WIT adapters with one
//! `error-code`, each from a single table, so the same failure reads the same to a plugin,
//! to the app and to the console.
use crate::bindings::linli::platform::types;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input is wrong; the message says how.
    Invalid,
    NotFound,
    /// A uniqueness or state check failed; re-read and retry.
    Conflict,
    /// The caller may not do this.
    Denied,
    /// No credentials, or none that are valid.
    Unauthenticated,
    /// The account is locked for a while.
    Locked,
    /// Too many attempts; try again later.
    TooMany,
    /// A quota or a limit of the installation was reached.
    LimitExceeded,
    /// Something the host waited for did not answer in time (a device, a command).
    Timeout,
    /// A backing service (the database, the broker, the SMS gateway) failed; retrying may help.
    Unavailable,
    /// The host's own fault, e.g. its configuration.
    Internal,
}

impl ErrorKind {
    /// The machine-readable code clients see for this kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid-argument",
            Self::NotFound => "not-found",
            Self::Conflict => "conflict",
            Self::Denied => "permission-denied",
            Self::Unauthenticated => "unauthenticated",
            Self::Locked => "locked",
            Self::TooMany => "too-many-requests",
            Self::LimitExceeded => "limit-exceeded",
            Self::Timeout | Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// What a plugin's call answers.
    pub fn wit_code(self) -> types::ErrorCode {
        match self {
            Self::Invalid => types::ErrorCode::InvalidArgument,
            Self::NotFound => types::ErrorCode::NotFound,
            Self::Conflict => types::ErrorCode::Conflict,
            Self::Denied | Self::Unauthenticated | Self::Locked => types::ErrorCode::PermissionDenied,
            Self::TooMany | Self::LimitExceeded => types::ErrorCode::LimitExceeded,
            Self::Timeout | Self::Unavailable => types::ErrorCode::Unavailable,
            Self::Internal => types::ErrorCode::Internal,
        }
    }
}

/// An error that knows its kind.
pub trait Classified: std::error::Error {
    fn kind(&self) -> ErrorKind;

    /// The code clients see: the kind's, unless the error names something more precise
    /// (`bad-credentials`, `untrusted-key`, …).
    fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The WIT error of a domain error: its kind's code and its message.
pub fn to_wit<E: Classified>(e: E) -> types::Error {
    types::Error { code: e.kind().wit_code(), message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind a plugin can meet answers a distinct, documented WIT code, and the HTTP
    /// codes of kinds that differ for people stay apart.
    #[test]
    fn kinds_map_to_codes() {
        assert!(matches!(ErrorKind::Denied.wit_code(), types::ErrorCode::PermissionDenied));
        assert!(matches!(ErrorKind::Timeout.wit_code(), types::ErrorCode::Unavailable));
        assert!(matches!(ErrorKind::LimitExceeded.wit_code(), types::ErrorCode::LimitExceeded));
        assert_ne!(ErrorKind::Denied.code(), ErrorKind::Unauthenticated.code());
        assert_eq!(ErrorKind::Invalid.code(), "invalid-argument");
    }
}
