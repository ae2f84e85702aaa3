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
    /// The code clients see for this kind when nothing more precise is said.
    pub fn code(self) -> Code {
        match self {
            Self::Invalid => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::Conflict => Code::Conflict,
            Self::Denied => Code::PermissionDenied,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::Locked => Code::Locked,
            Self::TooMany => Code::TooManyRequests,
            Self::LimitExceeded => Code::LimitExceeded,
            Self::Timeout | Self::Unavailable => Code::Unavailable,
            Self::Internal => Code::Internal,
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

/// Declares the codes: one list gives the enum, its text and `Code::ALL`.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal),+ $(,)?) => {
        /// What went wrong, as clients see it (`{"error": {"code", "message", "params"}}`).
        /// The English message is for logs, plugins and API clients; the web apps word each
        /// code in the person's language from one catalogue per language
        /// (`host/src/web/app/messages/`), filling in the error's `params`. A test checks
        /// that both catalogues word every code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant),+
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text),+
                }
            }
        }
    };
}

codes! {
    // The kinds' own codes.
    InvalidArgument = "invalid-argument",
    NotFound = "not-found",
    Conflict = "conflict",
    PermissionDenied = "permission-denied",
    Unauthenticated = "unauthenticated",
    /// Param `minutes`.
    Locked = "locked",
    TooManyRequests = "too-many-requests",
    LimitExceeded = "limit-exceeded",
    Unavailable = "unavailable",
    Internal = "internal",
    // Signing in.
    BadCredentials = "bad-credentials",
    BadCode = "bad-code",
    BadRefreshToken = "bad-refresh-token",
    /// Param `seconds`.
    TooSoon = "too-soon",
    /// Param `seconds`.
    RateLimited = "rate-limited",
    // The request itself.
    BodyInvalid = "body-invalid",
    QueryInvalid = "query-invalid",
    PathInvalid = "path-invalid",
    MethodNotAllowed = "method-not-allowed",
    // Who may do what, where.
    /// Param `node`: a node of the county's tree outside the caller's roles.
    OutsideArea = "outside-area",
    /// Param `tenant`.
    TenantUnknown = "tenant-unknown",
    StaffOnly = "staff-only",
    ResidentsOnly = "residents-only",
    /// A resident account that no community has linked yet.
    NoCommunity = "no-community",
    /// Param `node`: changing it needs a county or street admin role there.
    NeedsManager = "needs-manager",
    /// Param `node`: the county whose admin role this needs.
    NeedsCountyAdmin = "needs-county-admin",
    NeedsAdminToken = "needs-admin-token",
    ConsoleRoles = "console-roles",
    DashboardRoles = "dashboard-roles",
    BaseRoles = "base-roles",
    TicketRoles = "ticket-roles",
    /// Param `action`.
    TicketActionDenied = "ticket-action-denied",
    // Plugins and their packages.
    InvalidPackage = "invalid-package",
    UntrustedKey = "untrusted-key",
    /// Param `plugin`.
    NotInstalled = "not-installed",
    /// A plugin route reached without a community (no resident session, path or header).
    TenantRequired = "tenant-required",
    Busy = "busy",
    DeadlineExceeded = "deadline-exceeded",
    MemoryLimit = "memory-limit",
    PluginTrap = "plugin-trap",
    BadPluginResponse = "bad-plugin-response",
    // Base data.
    NoBaseRecord = "no-base-record",
    ResidentUnknown = "resident-unknown",
    /// Param `kind`.
    ImportKindUnknown = "import-kind-unknown",
    ImportUnknown = "import-unknown",
    /// Param `max`.
    ContactsTooMany = "contacts-too-many",
    /// Param `max`.
    ContactNameLength = "contact-name-length",
    /// Param `max`.
    ContactRelationLength = "contact-relation-length",
    /// Param `phone`.
    ContactPhoneInvalid = "contact-phone-invalid",
    /// Param `phone`.
    ContactRepeated = "contact-repeated",
    // Tickets.
    /// Param `category`.
    CategoryUnknown = "category-unknown",
    TicketTitleLength = "ticket-title-length",
    TicketTextTooLong = "ticket-text-too-long",
    TicketNoteLength = "ticket-note-length",
    TicketRatingRange = "ticket-rating-range",
    /// Param `status`: the action does not apply to a ticket in this status.
    TicketState = "ticket-state",
    TicketOnlyAssignee = "ticket-only-assignee",
    TicketChanged = "ticket-changed",
    PhotoType = "photo-type",
    /// Param `mib`.
    PhotoTooLarge = "photo-too-large",
    /// Param `max`.
    PhotosFull = "photos-full",
}

/// The values a code's sentence needs, by name.
pub type Params = Vec<(&'static str, String)>;

/// An error that knows its kind.
pub trait Classified: std::error::Error {
    fn kind(&self) -> ErrorKind;

    /// The code clients see: the kind's, unless the error names something more precise
    /// (`bad-credentials`, `outside-area`, …).
    fn code(&self) -> Code {
        self.kind().code()
    }

    /// The values the code's sentence names (`phone`, `max`, …).
    fn params(&self) -> Params {
        Vec::new()
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
        assert_eq!(ErrorKind::Invalid.code().as_str(), "invalid-argument");
    }

    #[test]
    fn codes_are_distinct_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{text}");
        }
    }
}
