//! HTTP: `/p/…` and `/t/{tenant}/p/…` to plugins, `/admin/…` for operators, health and
//! metrics. Errors are one enum mapped to status codes in one place.
pub mod admin;
pub mod auth;
pub mod base;
pub mod caller;
pub mod console;
pub mod dashboard;
pub mod devices;
pub mod extract;
pub mod help;
mod home;
pub(crate) mod oidc;
pub mod page_policy;
mod plugins;
pub mod rate_limit;
mod security_headers;
pub mod tickets;

use crate::errors::{Classified, Code, ErrorKind, Params};
use crate::platform::{Platform, PlatformError};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub platform: Arc<Platform>,
    pub auth: Arc<crate::auth::Auth>,
    /// The SHA-256 of the admin token: the token itself is not kept.
    pub admin_token_sha256: [u8; 32],
    pub imports: Arc<crate::capabilities::base::import::Imports>,
    pub oidc: Arc<crate::oidc::Provider>,
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// The host is reached over HTTPS (`public_url`): responses carry HSTS.
    pub https: bool,
}

/// The OpenAPI document of the platform's own API (admin and auth), at /openapi.json.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = admin::AdminApi::openapi();
    doc.merge(auth::AuthApi::openapi());
    doc.merge(base::BaseApi::openapi());
    doc.merge(oidc::OidcApi::openapi());
    doc.merge(devices::DevicesApi::openapi());
    doc.merge(tickets::TicketsApi::openapi());
    doc.merge(dashboard::DashboardApi::openapi());
    doc.merge(help::HelpApi::openapi());
    declare_common_answers(&mut doc);
    doc
}

/// What the extractors and the admin middleware answer, declared once for every operation
/// they guard rather than on each handler: who may call (`/admin`: the admin token or a staff
/// session; operations that declare `session`: a session; the rest: anyone), 401 and 403
/// where credentials are needed, 400 where parameters or a body are read. The server is the
/// host that served the document.
fn declare_common_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Server};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build()
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.responses.insert("Unauthenticated".into(), RefOr::T(error("No credentials, or a token or session that is not valid (any more).")));
    components.responses.insert("PermissionDenied".into(), RefOr::T(error("The caller's roles do not reach this operation or this tenant.")));
    components.responses.insert("InvalidArgument".into(), RefOr::T(error("A parameter or the body is missing or not valid; the message says which.")));
    doc.servers = Some(vec![Server::new("/")]);
    // Operations say who may call them; nothing is inherited from the document.
    doc.security = None;
    for (path, item) in doc.paths.paths.iter_mut() {
        let admin = path.starts_with("/admin/");
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let answers = &mut operation.responses.responses;
            let mut declare = |status: &str, name: &str| {
                answers.entry(status.to_string()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            };
            if operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) || operation.request_body.is_some() {
                declare("400", "InvalidArgument");
            }
            if admin {
                operation.security =
                    Some(vec![SecurityRequirement::new("admin_token", Vec::<String>::new()), SecurityRequirement::new("session", Vec::<String>::new())]);
                declare("401", "Unauthenticated");
                declare("403", "PermissionDenied");
            } else if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                declare("401", "Unauthenticated");
            } else {
                operation.security = Some(Vec::new());
            }
        }
    }
}

/// A JSON body, with parse errors reported in the API's error format (400).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, Code::BodyInvalid, format!("the request body is not valid: {e}")))
}

/// The token of an `Authorization: Bearer …` header: `None` without the header,
/// `Some(Err)` when it is there but not a bearer token.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get("authorization")?;
    Some(value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or(()))
}

pub const SESSION_COOKIE: &str = "linli_session";
pub const REFRESH_COOKIE: &str = "linli_refresh";

/// The value of cookie `name`, unless a browser says another site — or a page in an opaque
/// origin, as every plugin page is — made the request (`Sec-Fetch-Site`, `Origin: null`).
/// Such a request never acts with the person's cookies, whatever the browser sent: plugin
/// pages reach the host only through the app's bridge. Top-level navigations keep them (a
/// shared link, a vendor's site sending someone to `/oidc/authorize`); SameSite=Lax
/// already keeps them off other sites' POSTs.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    if from_another_site(headers) {
        return None;
    }
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn from_another_site(headers: &axum::http::HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let other_site = matches!(header("sec-fetch-site"), Some("cross-site" | "same-site")) || header("origin") == Some("null");
    let top_level_navigation = header("sec-fetch-mode") == Some("navigate") && header("sec-fetch-dest") == Some("document");
    other_site && !top_level_navigation
}

/// The session token of a request: the bearer token (API clients), else the app's
/// HttpOnly session cookie (the resident app and the plugin pages it opens).
pub(crate) fn session_token(headers: &axum::http::HeaderMap) -> Option<Result<&str, ()>> {
    bearer_token(headers).or_else(|| cookie(headers, SESSION_COOKIE).map(Ok))
}

/// Text made safe for HTML content and double-quoted attributes.
pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

impl AppState {
    /// `presented` is the admin token (compared without an early exit).
    pub fn is_admin_token(&self, presented: &str) -> bool {
        use sha2::Digest;
        crate::store::vault::constant_time_eq(&sha2::Sha256::digest(presented.as_bytes()), &self.admin_token_sha256)
    }
}

pub fn router(state: AppState) -> Router {
    let https = state.https;
    Router::new()
        .route("/", get(home::index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { Json(openapi()) }))
        .nest("/admin", admin::router(state.clone()))
        .merge(auth::router())
        .merge(base::router())
        .merge(devices::router())
        .merge(tickets::router())
        .merge(help::router())
        .merge(dashboard::router())
        .merge(oidc::router())
        .merge(crate::web::router())
        .merge(plugins::router())
        .layer(axum::middleware::map_response(log_server_errors))
        .layer(axum::middleware::map_response(move |response: Response| async move { security_headers::fill_in(response, https) }))
        .with_state(state)
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match sqlx::query("SELECT 1").execute(&state.platform.store.pool).await {
        Ok(_) => "ready".into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, format!("database not reachable: {e}")).into_response(),
    }
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let mut response = state.platform.metrics.render().into_response();
    response.headers_mut().insert("content-type", HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}

/// The error body every API answers with.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `not-found`, `invalid-argument`, `outside-area`,
    /// `contact-phone-invalid`, … (the list: `errors::Code`). The web apps word each code in
    /// the person's language from their message catalogues.
    pub code: String,
    /// In English, for developers and logs: what went wrong and, where it helps, what to do.
    pub message: String,
    /// The values the code's sentence names (`{"phone": "0571-8888"}`); absent when none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub params: std::collections::BTreeMap<String, String>,
}

/// `{"error": {"code", "message", "params"}}` with a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub params: Params,
    pub retry_after: Option<u32>,
    /// What to log of a failure of the host or a backend (a domain error of kind
    /// `unavailable` or `internal`, a database error): logged once by `log_server_errors`,
    /// and it may say more than the caller is told. A plugin's own failures are the
    /// runtime's to log.
    log: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), params: Vec::new(), retry_after: None, log: None }
    }

    /// The caller's roles do not allow this; `code` says which rule refused.
    pub fn forbidden(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// A value the code's sentence names.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.params.push((name, value.into()));
        self
    }

    /// `node` lies outside the area of the caller's roles.
    pub fn outside_area(node: &str) -> Self {
        Self::forbidden(Code::OutsideArea, format!("`{node}` is outside the area of your roles")).with("node", node)
    }

    /// No node of the county's tree is called `tenant`.
    pub fn tenant_unknown(tenant: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::TenantUnknown, format!("tenant `{tenant}` does not exist")).with("tenant", tenant)
    }

    /// The database failed: the caller is asked to retry, the log gets the cause.
    pub fn database(e: sqlx::Error) -> Self {
        Self {
            log: Some(format!("database: {e}")),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, "the database is not reachable; retry later")
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let params = self.params.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
        let body = ErrorBody { error: ErrorDetail { code: self.code.as_str().to_string(), message: self.message, params } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(cause) = self.log {
            ServerError::attach(&mut response, cause);
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}

/// The one table of HTTP answers to the kinds of failure (`errors::ErrorKind`).
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid | ErrorKind::LimitExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Denied => StatusCode::FORBIDDEN,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Locked => StatusCode::LOCKED,
        ErrorKind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// A domain error, answered by its kind and code.
    pub fn of<E: Classified>(e: E) -> Self {
        let status = http_status(e.kind());
        let message = e.to_string();
        Self { log: status.is_server_error().then(|| message.clone()), params: e.params(), ..ApiError::new(status, e.code(), message) }
    }
}

macro_rules! answered_by_kind {
    ($($error:ty),+ $(,)?) => {
        $(impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                ApiError::of(e)
            }
        })+
    };
}

answered_by_kind!(
    crate::capabilities::devices::DeviceError,
    PlatformError,
    crate::capabilities::tickets::TicketError,
    crate::capabilities::notify::NotifyError,
    crate::capabilities::base::contacts::ContactsError,
    crate::help::HelpError,
    crate::oidc::OidcError,
);

/// What a failed request logs. A server error carries its message to the logging middleware
/// (`log_server_errors`) in the response's extensions; the conversions log nothing.
#[derive(Clone)]
pub(crate) struct ServerError(String);

impl ServerError {
    /// Hand `cause` to the logging middleware with a response that is not an `ApiError`
    /// (the OAuth endpoints' errors, the sign-in pages).
    pub(crate) fn attach(response: &mut Response, cause: String) {
        response.extensions_mut().insert(Self(cause));
    }
}

/// Log every server error once, where the response leaves: the host's faults and failing
/// backends, not a device that did not answer in time (504).
async fn log_server_errors(response: Response) -> Response {
    if let Some(ServerError(message)) = response.extensions().get::<ServerError>() {
        if response.status() != StatusCode::GATEWAY_TIMEOUT {
            tracing::error!(status = response.status().as_u16(), "{message}");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", axum::http::HeaderValue::from_static("linli_session=abc"));
        for (name, value) in pairs {
            headers.insert(*name, axum::http::HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn cookies_act_only_for_the_hosts_own_pages_and_top_level_navigations() {
        let session = |pairs: &[(&'static str, &'static str)]| super::cookie(&request(pairs), super::SESSION_COOKIE).is_some();
        assert!(session(&[]), "clients that send no fetch metadata");
        assert!(session(&[("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")]), "the app's fetch");
        assert!(session(&[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "document")]), "a shared link");
        assert!(
            !session(&[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty"), ("origin", "null")]),
            "a sandboxed page's fetch"
        );
        assert!(!session(&[("origin", "null")]), "an opaque origin without fetch metadata");
        assert!(!session(&[("sec-fetch-site", "same-site"), ("sec-fetch-mode", "no-cors"), ("sec-fetch-dest", "image")]), "another site's image");
        assert!(
            !session(&[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "iframe")]),
            "a frame navigated by a sandboxed page"
        );
    }

    /// Clients generated from /openapi.json (and the API fuzzer) need every `{name}` in a
    /// path declared as a path parameter of each of its operations.
    #[test]
    fn every_path_parameter_is_declared() {
        let doc = serde_json::to_value(super::openapi()).expect("the document serialises");
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() > 40, "{} paths", paths.len());
        let mut missing = Vec::new();
        for (path, operations) in paths {
            let names: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            for (method, operation) in operations.as_object().into_iter().flatten() {
                let declared: Vec<&str> =
                    operation["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect();
                missing.extend(names.iter().filter(|n| !declared.contains(n)).map(|n| format!("{method} {path}: {n}")));
            }
        }
        assert!(missing.is_empty(), "undeclared path parameters: {missing:#?}");
    }
}
