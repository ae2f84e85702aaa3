//! Accounts, login and sessions. Residents and staff log in here once; the host's session
//! serves every plugin route and, through the OpenID Connect provider, vendors' web apps.
pub mod accounts;
pub mod audit;
pub mod consent;
pub mod keys;

pub mod sessions;
pub mod sms;

use crate::store::Store;
use crate::tenancy::TenantTree;
use accounts::{Account, NewAccount};
use sessions::{Claims, Sessions, Tokens};
use sms::{Sms, SmsGateway};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("wrong phone number or password")]
    BadCredentials,
    #[error("too many failed logins; try again in {minutes} minutes or log in with an SMS code")]
    Locked { minutes: i64 },
    #[error("the SMS code is wrong, used or expired; ask for a new one")]
    BadCode,
    #[error("a code was sent recently; ask again in {seconds} seconds")]
    TooSoon { seconds: i64 },
    #[error("missing, malformed, expired or foreign access token")]
    BadToken,
    #[error("the refresh token is not valid (used, revoked or expired); log in again")]
    BadRefreshToken,
    #[error("{0}")]
    Internal(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl crate::errors::Classified for AuthError {
    fn kind(&self) -> crate::errors::ErrorKind {
        use crate::errors::ErrorKind as K;
        match self {
            Self::Invalid(_) => K::Invalid,
            Self::Conflict(_) => K::Conflict,
            Self::BadCredentials | Self::BadCode | Self::BadToken | Self::BadRefreshToken => K::Unauthenticated,
            Self::Locked { .. } => K::Locked,
            Self::TooSoon { .. } => K::TooMany,
            Self::Internal(_) | Self::Database(_) => K::Unavailable,
        }
    }

    /// Sign-in failures name what to do next: another password, a new code, a new login.
    fn code(&self) -> crate::errors::Code {
        use crate::errors::Code;
        match self {
            Self::BadCredentials => Code::BadCredentials,
            Self::BadCode => Code::BadCode,
            Self::BadRefreshToken => Code::BadRefreshToken,
            Self::TooSoon { .. } => Code::TooSoon,
            other => other.kind().code(),
        }
    }

    fn params(&self) -> crate::errors::Params {
        match self {
            Self::Locked { minutes } => vec![("minutes", minutes.to_string())],
            Self::TooSoon { seconds } => vec![("seconds", seconds.to_string())],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct AuthSettings {
    pub access_seconds: i64,
    pub refresh_seconds: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self { access_seconds: 15 * 60, refresh_seconds: 30 * 24 * 3600 }
    }
}

pub struct Auth {
    pub store: Store,
    pub sessions: Sessions,
    sms: Sms,
}

impl Auth {
    pub async fn new(store: Store, issuer: String, settings: AuthSettings, gateway: Arc<dyn SmsGateway>) -> Result<Self, AuthError> {
        let sessions = Sessions::new(store.clone(), issuer, settings.access_seconds, settings.refresh_seconds).await?;
        let sms = Sms::new(store.clone(), gateway);
        Ok(Self { store, sessions, sms })
    }

    pub async fn create_account(&self, tree: &TenantTree, new: &NewAccount) -> Result<Account, AuthError> {
        accounts::create(&self.store, tree, new).await
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>, AuthError> {
        accounts::get(&self.store, id).await
    }

    pub async fn login_password(&self, phone: &str, password: &str) -> Result<Tokens, AuthError> {
        let id = accounts::check_password(&self.store, phone, password).await?;
        let account = accounts::get(&self.store, &id).await?.ok_or(AuthError::BadCredentials)?;
        self.sessions.issue(&account).await
    }

    /// Codes go only to phones with an account, but the answer is the same either way, so
    /// the endpoint does not tell who has one.
    pub async fn send_sms_code(&self, phone: &str) -> Result<(), AuthError> {
        if !accounts::is_valid_phone(phone) {
            return Err(AuthError::Invalid(format!("`{phone}` is not an 11-digit mobile number")));
        }
        match accounts::id_by_phone(&self.store, phone).await? {
            Some(_) => self.sms.send_code(phone).await,
            None => Ok(()),
        }
    }

    pub async fn login_sms(&self, phone: &str, code: &str) -> Result<Tokens, AuthError> {
        self.sms.check_code(phone, code).await?;
        let id = accounts::id_by_phone(&self.store, phone).await?.ok_or(AuthError::BadCode)?;
        let account = accounts::get(&self.store, &id).await?.ok_or(AuthError::BadCode)?;
        self.sessions.issue(&account).await
    }

    pub async fn verify(&self, access_token: &str) -> Result<Claims, AuthError> {
        self.sessions.verify(access_token).await
    }
}
