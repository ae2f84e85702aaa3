//! The operators' JSON API. Until staff accounts exist (identity issue), it is guarded by
//! one bearer token from the configuration.
use super::{ApiError, AppState};
use super::{ErrorBody, ErrorDetail};
use super::parse_json as parse;
use crate::auth::accounts::{Account, NewAccount};
use crate::capabilities::CapabilityInfo;
use crate::packages::repo::PackageSummary;
use crate::platform::{InstallRequest, UpgradeRequest};
use crate::tenancy::installations::{HistoryEntry, VendorKey};
use crate::tenancy::tree::TenantsDocument;
use crate::tenancy::Installation;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/tenants", get(tenants).post(load_tenants))
        .route("/keys", get(keys).post(trust_key))
        .route("/capabilities", get(capabilities))
        .route("/packages", get(packages).post(upload).layer(DefaultBodyLimit::max(crate::packages::archive::MAX_PACKAGE_BYTES)))
        .route("/installations", get(installations).post(install))
        .route("/installations/{id}", get(installation).delete(uninstall))
        .route("/installations/{id}/upgrade", post(upgrade))
        .route("/installations/{id}/rollback", post(rollback))
        .route("/accounts", post(create_account))
        .route("/signing-keys/rotate", post(rotate_signing_key))
        .merge(super::oidc::admin_router())
        .merge(super::devices::admin_router())
        .merge(super::tickets::admin_router())
        .layer(middleware::from_fn_with_state(state, require_token))
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = super::bearer_token(request.headers()).and_then(Result::ok).unwrap_or_default();
    if !super::constant_time_eq(presented.as_bytes(), state.admin_token.as_bytes()) {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "the admin API needs `Authorization: Bearer <admin token>`").into_response();
    }
    next.run(request).await
}



#[derive(Serialize, ToSchema)]
pub struct Loaded {
    /// Tenant nodes created or renamed.
    loaded: usize,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    keys: Vec<VendorKey>,
}

#[derive(Serialize, ToSchema)]
pub struct PackageList {
    packages: Vec<PackageSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct InstallationList {
    installations: Vec<Installation>,
}

#[derive(Serialize, ToSchema)]
pub struct InstallationDetail {
    installation: Installation,
    /// What operators did to it, oldest first.
    history: Vec<HistoryEntry>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustKey {
    /// The county (a tenant of kind county) that trusts the key.
    county: String,
    /// The vendor name the key signs for; it must match `vendor` in the manifests.
    vendor: String,
    /// `ed25519:BASE64`, the content of the vendor's `.pub` file.
    public_key: String,
}

#[derive(Deserialize, IntoParams)]
pub struct CountyFilter {
    /// A county id.
    county: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct Purge {
    /// Also delete the installation's data.
    #[serde(default)]
    purge: bool,
}

#[utoipa::path(get, path = "/admin/tenants", tag = "tenants", responses((status = 200, body = TenantsDocument)))]
async fn tenants(State(state): State<AppState>) -> Json<TenantsDocument> {
    Json(TenantsDocument { tenants: state.platform.tenants().to_specs() })
}

/// Add tenants to the tree or rename them; existing tenants cannot move.
#[utoipa::path(post, path = "/admin/tenants", tag = "tenants", request_body = TenantsDocument,
    responses((status = 200, body = Loaded), (status = 422, body = ErrorBody)))]
async fn load_tenants(State(state): State<AppState>, body: Bytes) -> Result<Json<Loaded>, ApiError> {
    let doc: TenantsDocument = parse(&body)?;
    let loaded = state.platform.load_tenants(&doc.tenants).await?;
    Ok(Json(Loaded { loaded }))
}

#[utoipa::path(get, path = "/admin/keys", tag = "keys", params(CountyFilter), responses((status = 200, body = KeyList)))]
async fn keys(State(state): State<AppState>, Query(filter): Query<CountyFilter>) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList { keys: state.platform.vendor_keys(filter.county.as_deref()).await? }))
}

/// Trust a vendor's signing key for a county.
#[utoipa::path(post, path = "/admin/keys", tag = "keys", request_body = TrustKey,
    responses((status = 201, body = VendorKey), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn trust_key(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<VendorKey>), ApiError> {
    let req: TrustKey = parse(&body)?;
    let key = state.platform.trust_key(&req.county, &req.vendor, &req.public_key).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

#[utoipa::path(get, path = "/admin/capabilities", tag = "packages", responses((status = 200, body = [CapabilityInfo])))]
async fn capabilities() -> Json<&'static [CapabilityInfo]> {
    Json(crate::capabilities::KNOWN)
}

#[utoipa::path(get, path = "/admin/packages", tag = "packages", responses((status = 200, body = PackageList)))]
async fn packages(State(state): State<AppState>) -> Result<Json<PackageList>, ApiError> {
    Ok(Json(PackageList { packages: state.platform.packages().await? }))
}

/// Upload a signed package (the `.lpkg` file as the body). It is verified whole — hashes,
/// signature by a key the county trusts, capabilities, the component — before it is kept.
#[utoipa::path(post, path = "/admin/packages", tag = "packages", params(CountyFilter),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PackageSummary), (status = 403, description = "signed by a key the county does not trust", body = ErrorBody),
        (status = 409, description = "this version was uploaded with other content", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload(State(state): State<AppState>, Query(filter): Query<CountyFilter>, body: Bytes) -> Result<(StatusCode, Json<PackageSummary>), ApiError> {
    let county = filter
        .county
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid-argument", "say which county the package is for: ?county=ID"))?;
    let summary = state.platform.upload(&county, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

#[utoipa::path(get, path = "/admin/installations", tag = "installations", responses((status = 200, body = InstallationList)))]
async fn installations(State(state): State<AppState>) -> Result<Json<InstallationList>, ApiError> {
    Ok(Json(InstallationList { installations: state.platform.installations().await? }))
}

/// Install an uploaded package at a tenant node, granting a subset of what it requests.
#[utoipa::path(post, path = "/admin/installations", tag = "installations", request_body = InstallRequest,
    responses((status = 201, body = Installation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn install(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Installation>), ApiError> {
    let req: InstallRequest = parse(&body)?;
    let inst = state.platform.install(&req).await?;
    Ok((StatusCode::CREATED, Json(inst)))
}

#[utoipa::path(get, path = "/admin/installations/{id}", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    responses((status = 200, body = InstallationDetail), (status = 404, body = ErrorBody)))]
async fn installation(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<InstallationDetail>, ApiError> {
    let (installation, history) = state.platform.installation(&id).await?;
    Ok(Json(InstallationDetail { installation, history }))
}

/// Move to a newer version; the data is kept.
#[utoipa::path(post, path = "/admin/installations/{id}/upgrade", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    request_body = UpgradeRequest, responses((status = 200, body = Installation), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upgrade(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Result<Json<Installation>, ApiError> {
    let req: UpgradeRequest = parse(&body)?;
    Ok(Json(state.platform.upgrade(&id, &req).await?))
}

/// Go back to the version before the last upgrade; the data is kept.
#[utoipa::path(post, path = "/admin/installations/{id}/rollback", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    responses((status = 200, body = Installation), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Installation>, ApiError> {
    Ok(Json(state.platform.rollback(&id).await?))
}

/// Remove an installation; its data is kept unless `purge=true`.
#[utoipa::path(delete, path = "/admin/installations/{id}", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT"), Purge),
    responses((status = 204, description = "uninstalled"), (status = 404, body = ErrorBody)))]
async fn uninstall(State(state): State<AppState>, Path(id): Path<String>, Query(purge): Query<Purge>) -> Result<StatusCode, ApiError> {
    state.platform.uninstall(&id, purge.purge).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a resident or staff account. Staff roles are scoped to tenant nodes.
#[utoipa::path(post, path = "/admin/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_account(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Account>), ApiError> {
    let new: NewAccount = parse(&body)?;
    let account = state.auth.create_account(&state.platform.tenants(), &new).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

#[derive(Serialize, ToSchema)]
pub struct Rotated {
    /// The id of the new signing key.
    kid: String,
}

/// Start signing sessions with a new key; tokens signed with the old one stay valid
/// until they expire.
#[utoipa::path(post, path = "/admin/signing-keys/rotate", tag = "accounts", responses((status = 200, body = Rotated)))]
async fn rotate_signing_key(State(state): State<AppState>) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(Rotated { kid: state.auth.sessions.keys.rotate().await? }))
}

/// The OpenAPI document of the admin API, served at /openapi.json.
#[derive(OpenApi)]
#[openapi(
    info(title = "Linli admin API", description = "County operators' API: tenants, vendor keys, packages, installations. Every call needs `Authorization: Bearer <admin token>`."),
    paths(tenants, load_tenants, keys, trust_key, capabilities, packages, upload, installations, install, installation, upgrade, rollback, uninstall, create_account, rotate_signing_key),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerToken),
    security(("admin_token" = [])),
)]
pub struct AdminApi;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("admin_token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("session", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()));
    }
}
