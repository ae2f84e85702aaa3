//! Who is calling, read once: the platform operator (the admin token), or a staff member or
//! a resident (a session). The other extractors — `base::Operator` (staff or the operator),
//! the console's middleware built on it, `auth::Session` (a session only) — start from here
//! or from the session, so the admin token is compared in one place.
use super::auth::Session;
use super::{ApiError, AppState};
use crate::auth::accounts::AccountKind;
use crate::auth::sessions::Claims;
use crate::errors::Code;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub enum Caller {
    Platform,
    Staff(Claims),
    Resident(Claims),
}

/// A resident's community: where her reports and calls for help go.
pub fn community_of(claims: &Claims) -> Result<String, ApiError> {
    claims.tenant.clone().ok_or_else(|| ApiError::forbidden(Code::NoCommunity, "your account has no community; ask your community to link it"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(Ok(token)) = super::bearer_token(&parts.headers) {
            if state.is_admin_token(token) {
                return Ok(Caller::Platform);
            }
        }
        let Session(claims) = Session::from_request_parts(parts, state).await?;
        Ok(match claims.kind {
            AccountKind::Staff => Caller::Staff(claims),
            AccountKind::Resident => Caller::Resident(claims),
        })
    }
}
