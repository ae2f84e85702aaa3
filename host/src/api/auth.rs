//! Login, sessions and the current user: `/api/auth/…`, `/api/me`, and the public keys at
//! `/.well-known/jwks.json`.
use super::extract::AppJson;
use super::parse_json as parse;
use super::rate_limit::ClientAddress;
use super::{ApiError, AppState, ErrorBody};
use crate::auth::accounts::Account;
use crate::auth::sessions::{Claims, Tokens};
use crate::auth::AuthError;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/sms/send", post(send_sms_code))
        .route("/api/auth/sms/login", post(login_sms))
        .route("/api/auth/refresh", post(refresh))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
        .route("/.well-known/jwks.json", get(jwks).layer(super::oidc::cross_origin()))
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let retry_after = match e {
            AuthError::TooSoon { seconds } => u32::try_from(seconds).ok(),
            _ => None,
        };
        ApiError { retry_after, ..ApiError::of(e) }
    }
}

/// The signed-in user of a request (`Authorization: Bearer <access token>`).
pub struct Session(pub Claims);

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = super::session_token(&parts.headers).and_then(Result::ok).ok_or(AuthError::BadToken)?;
        Ok(Session(state.auth.verify(token).await?))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLogin {
    phone: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsRequest {
    phone: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsLogin {
    phone: String,
    code: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Leave out (or send no body) to use the app's refresh cookie.
    #[serde(default)]
    refresh_token: Option<String>,
}

impl RefreshRequest {
    /// The refresh token from the body, else from the app's cookie.
    fn token(body: &[u8], headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
        let req: RefreshRequest = if body.is_empty() { RefreshRequest::default() } else { parse(body)? };
        req.refresh_token.or_else(|| super::cookie(headers, super::REFRESH_COOKIE).map(str::to_string)).ok_or_else(|| AuthError::BadRefreshToken.into())
    }
}

/// New tokens in the body (API clients) and as HttpOnly cookies (the resident app, whose
/// scripts never hold a token).
pub struct SignedIn(pub Tokens);

impl axum::response::IntoResponse for SignedIn {
    fn into_response(self) -> axum::response::Response {
        let session = format!("{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}", super::SESSION_COOKIE, self.0.access_token, self.0.expires_in);
        let refresh = format!("{}={}; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age={}", super::REFRESH_COOKIE, self.0.refresh_token, 30 * 24 * 3600);
        let mut response = Json(self.0).into_response();
        for cookie in [session, refresh] {
            if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
                response.headers_mut().append("set-cookie", value);
            }
        }
        response
    }
}

/// Log in with phone and password. Five wrong passwords in a row lock the account for
/// 15 minutes.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = PasswordLogin,
    responses((status = 200, body = Tokens), (status = 401, body = ErrorBody), (status = 423, description = "locked", body = ErrorBody),
        (status = 429, description = "too many attempts from this address or for this phone", body = ErrorBody)))]
async fn login(State(state): State<AppState>, address: ClientAddress, AppJson(req): AppJson<PasswordLogin>) -> Result<SignedIn, ApiError> {
    state.rate_limits.check("login", &address, req.phone.trim())?;
    Ok(SignedIn(state.auth.login_password(req.phone.trim(), &req.password).await?))
}

/// Send a one-time login code by SMS. The answer is the same whether or not the phone has
/// an account.
#[utoipa::path(post, path = "/api/auth/sms/send", tag = "auth", request_body = SmsRequest,
    responses((status = 202, description = "sent if the phone has an account"), (status = 429, body = ErrorBody)))]
async fn send_sms_code(State(state): State<AppState>, address: ClientAddress, AppJson(req): AppJson<SmsRequest>) -> Result<StatusCode, ApiError> {
    state.rate_limits.check("sms-send", &address, req.phone.trim())?;
    state.auth.send_sms_code(req.phone.trim()).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sign in with a code sent by SMS.
#[utoipa::path(post, path = "/api/auth/sms/login", tag = "auth", request_body = SmsLogin,
    responses((status = 200, body = Tokens), (status = 401, body = ErrorBody), (status = 429, description = "too many attempts", body = ErrorBody)))]
async fn login_sms(State(state): State<AppState>, address: ClientAddress, AppJson(req): AppJson<SmsLogin>) -> Result<SignedIn, ApiError> {
    state.rate_limits.check("sms-login", &address, req.phone.trim())?;
    Ok(SignedIn(state.auth.login_sms(req.phone.trim(), &req.code).await?))
}

/// Trade a refresh token for new tokens; each refresh token works once.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Tokens), (status = 401, body = ErrorBody)))]
async fn refresh(State(state): State<AppState>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Result<SignedIn, ApiError> {
    let token = RefreshRequest::token(&body, &headers)?;
    Ok(SignedIn(state.auth.sessions.refresh(&token).await?))
}

/// End the session the refresh token belongs to.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body = RefreshRequest, responses((status = 204, description = "logged out"), (status = 401, description = "no refresh token, or not a valid one", body = ErrorBody)))]
async fn logout(State(state): State<AppState>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Result<axum::response::Response, ApiError> {
    let token = RefreshRequest::token(&body, &headers)?;
    state.auth.sessions.logout(&token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    for clear in [format!("{}=; Path=/; Max-Age=0", super::SESSION_COOKIE), format!("{}=; Path=/api/auth; Max-Age=0", super::REFRESH_COOKIE)] {
        if let Ok(value) = axum::http::HeaderValue::from_str(&clear) {
            response.headers_mut().append("set-cookie", value);
        }
    }
    Ok(response)
}

/// The signed-in person as the app shows them: no account id (plugins and vendors' apps
/// know a person only by a pairwise id) and the phone number masked.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    pub kind: crate::auth::accounts::AccountKind,
    pub display_name: String,
    /// Masked, e.g. `138****0001`.
    pub phone: String,
    /// A resident's community.
    pub tenant_id: Option<String>,
    pub roles: Vec<crate::auth::accounts::RoleGrant>,
}

/// The signed-in person.
#[utoipa::path(get, path = "/api/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = ErrorBody)), security(("session" = [])))]
async fn me(State(state): State<AppState>, Session(claims): Session) -> Result<Json<Me>, ApiError> {
    let account: Account = state.auth.account(&claims.sub).await?.ok_or(AuthError::BadToken)?;
    Ok(Json(Me {
        kind: account.kind,
        display_name: account.display_name,
        phone: crate::auth::accounts::mask_phone(&account.phone),
        tenant_id: account.tenant_id,
        roles: account.roles,
    }))
}

/// The public keys that verify session tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, description = "a JWK set")))]
async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.auth.sessions.keys.jwks())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(login, send_sms_code, login_sms, refresh, logout, me, jwks))]
pub struct AuthApi;
