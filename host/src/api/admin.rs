//! The operators' JSON API, behind the console (`/console/`). The admin token acts
//! everywhere; staff sessions act within their roles' subtrees (see [`super::console`]).
use super::console::{installation_tenant, Console, ManagedInstallation};
use super::extract::{AppJson, AppPath, AppQuery};
use super::{ApiError, AppState};
use super::{ErrorBody, ErrorDetail};
use crate::auth::accounts::{Account, NewAccount};
use crate::capabilities::CapabilityInfo;
use crate::errors::Code;
use crate::packages::repo::PackageSummary;
use crate::platform::{InstallRequest, UpgradeRequest};
use crate::tenancy::installations::{HistoryEntry, VendorKey};
use crate::tenancy::tree::TenantsDocument;
use crate::tenancy::Installation;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/tenants", get(tenants))
        .route("/keys", get(keys).post(trust_key))
        .route("/capabilities", get(capabilities))
        .route("/packages", get(packages).post(upload).layer(DefaultBodyLimit::max(crate::packages::archive::MAX_PACKAGE_BYTES)))
        .route("/installations", get(installations).post(install))
        .route("/installations/{id}", get(installation).delete(uninstall))
        .route("/installations/{id}/upgrade", post(upgrade))
        .route("/installations/{id}/rollback", post(rollback))
        .route("/installations/{id}/grants", axum::routing::put(set_grants))
        .route("/accounts", get(staff_accounts).post(create_account))
        .merge(super::devices::admin_router())
        .merge(super::help::admin_router())
        .merge(
            Router::new()
                .route("/tenants", post(load_tenants))
                .route("/signing-keys/rotate", post(rotate_signing_key))
                .merge(super::oidc::admin_router())
                .merge(super::devices::platform_router())
                .merge(super::tickets::admin_router())
                .route_layer(middleware::from_fn(super::console::platform_only)),
        )
        .route("/me", get(whoami))
        .layer(middleware::from_fn_with_state(state, super::console::require_operator))
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
    /// The names of the installations' tenants, which may lie above the caller's own area.
    tenant_names: std::collections::BTreeMap<String, String>,
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
#[into_params(parameter_in = Query)]
pub struct CountyFilter {
    /// A county id.
    county: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Purge {
    /// Also delete the installation's data.
    #[serde(default)]
    purge: bool,
}

/// The tenant tree (county, street, community, grid) as far as the caller may see.
#[utoipa::path(get, path = "/admin/tenants", tag = "tenants", responses((status = 200, body = TenantsDocument)))]
async fn tenants(State(state): State<AppState>, console: Console) -> Json<TenantsDocument> {
    let tree = state.platform.tenants();
    let tenants = if console.everywhere { tree.to_specs() } else { console.tops(&tree).iter().filter_map(|t| tree.spec_of(t)).collect() };
    Json(TenantsDocument { tenants })
}

/// Add tenants to the tree or rename them; existing tenants cannot move.
#[utoipa::path(post, path = "/admin/tenants", tag = "tenants", request_body = TenantsDocument,
    responses((status = 200, body = Loaded), (status = 422, body = ErrorBody)))]
async fn load_tenants(State(state): State<AppState>, AppJson(doc): AppJson<TenantsDocument>) -> Result<Json<Loaded>, ApiError> {
    let loaded = state.platform.load_tenants(&doc.tenants).await?;
    Ok(Json(Loaded { loaded }))
}

/// The vendor keys trusted for package signatures.
#[utoipa::path(get, path = "/admin/keys", tag = "keys", params(CountyFilter), responses((status = 200, body = KeyList)))]
async fn keys(State(state): State<AppState>, console: Console, AppQuery(filter): AppQuery<CountyFilter>) -> Result<Json<KeyList>, ApiError> {
    let visible = console.visible_counties(&state.platform.tenants());
    let mut keys = state.platform.vendor_keys(filter.county.as_deref()).await?;
    keys.retain(|k| visible.as_ref().is_none_or(|v| v.contains(&k.county_id)));
    Ok(Json(KeyList { keys }))
}

/// Trust a vendor's signing key for a county.
#[utoipa::path(post, path = "/admin/keys", tag = "keys", request_body = TrustKey,
    responses((status = 201, body = VendorKey), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn trust_key(State(state): State<AppState>, console: Console, AppJson(req): AppJson<TrustKey>) -> Result<(StatusCode, Json<VendorKey>), ApiError> {
    console.require_county(&req.county)?;
    let key = state.platform.trust_key(&req.county, &req.vendor, &req.public_key).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// The capabilities a plugin may request, with their scopes, for reviewing grants.
#[utoipa::path(get, path = "/admin/capabilities", tag = "packages", responses((status = 200, body = [CapabilityInfo])))]
async fn capabilities() -> Json<&'static [CapabilityInfo]> {
    Json(crate::capabilities::KNOWN)
}

/// The packages uploaded so far.
#[utoipa::path(get, path = "/admin/packages", tag = "packages", responses((status = 200, body = PackageList)))]
async fn packages(State(state): State<AppState>, console: Console) -> Result<Json<PackageList>, ApiError> {
    let visible = console.visible_counties(&state.platform.tenants());
    let mut packages = state.platform.packages().await?;
    packages.retain(|p| visible.as_ref().is_none_or(|v| v.contains(&p.county_id)));
    Ok(Json(PackageList { packages }))
}

/// Upload a signed package (the `.lpkg` file as the body). It is verified whole — hashes,
/// signature by a key the county trusts, capabilities, the component — before it is kept.
#[utoipa::path(post, path = "/admin/packages", tag = "packages", params(CountyFilter),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PackageSummary), (status = 403, description = "signed by a key the county does not trust", body = ErrorBody),
        (status = 409, description = "this version was uploaded with other content", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    console: Console,
    AppQuery(filter): AppQuery<CountyFilter>,
    body: Bytes,
) -> Result<(StatusCode, Json<PackageSummary>), ApiError> {
    let county = filter.county.ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, Code::QueryInvalid, "say which county the package is for: ?county=ID"))?;
    console.require_county(&county)?;
    let summary = state.platform.upload(&county, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

/// Installations in the caller's area: plugin, tenant, version, grants.
#[utoipa::path(get, path = "/admin/installations", tag = "installations", responses((status = 200, body = InstallationList)))]
async fn installations(State(state): State<AppState>, console: Console) -> Result<Json<InstallationList>, ApiError> {
    let tree = state.platform.tenants();
    let mut installations = state.platform.installations().await?;
    installations.retain(|i| console.concerns(&tree, &i.tenant_id));
    let tenant_names = installations.iter().filter_map(|i| tree.get(&i.tenant_id).map(|n| (i.tenant_id.clone(), n.name.clone()))).collect();
    Ok(Json(InstallationList { installations, tenant_names }))
}

/// Install an uploaded package at a tenant node, granting a subset of what it requests.
#[utoipa::path(post, path = "/admin/installations", tag = "installations", request_body = InstallRequest,
    responses((status = 201, body = Installation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn install(State(state): State<AppState>, console: Console, AppJson(req): AppJson<InstallRequest>) -> Result<(StatusCode, Json<Installation>), ApiError> {
    console.require_manages(&req.tenant_id)?;
    let inst = state.platform.install(&req, &console.actor()).await?;
    Ok((StatusCode::CREATED, Json(inst)))
}

/// One installation and what operators did to it, oldest first.
#[utoipa::path(get, path = "/admin/installations/{id}", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    responses((status = 200, body = InstallationDetail), (status = 404, body = ErrorBody)))]
async fn installation(State(state): State<AppState>, console: Console, AppPath(id): AppPath<String>) -> Result<Json<InstallationDetail>, ApiError> {
    console.require_concerns(&state.platform.tenants(), installation_tenant(&id))?;
    let (installation, history) = state.platform.installation(&id).await?;
    Ok(Json(InstallationDetail { installation, history }))
}

/// Move to a newer version; the data is kept.
#[utoipa::path(post, path = "/admin/installations/{id}/upgrade", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    request_body = UpgradeRequest, responses((status = 200, body = Installation), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upgrade(
    State(state): State<AppState>,
    ManagedInstallation { id, console }: ManagedInstallation,
    AppJson(req): AppJson<UpgradeRequest>,
) -> Result<Json<Installation>, ApiError> {
    Ok(Json(state.platform.upgrade(&id, &req, &console.actor()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantsRequest {
    /// The capabilities (and `capability:scope`s) granted from now on, a subset of what
    /// the installed version requests.
    grants: Vec<String>,
}

/// Grant or revoke permissions of an installation; version and data are kept.
#[utoipa::path(put, path = "/admin/installations/{id}/grants", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    request_body = GrantsRequest, responses((status = 200, body = Installation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_grants(
    State(state): State<AppState>,
    ManagedInstallation { id, console }: ManagedInstallation,
    AppJson(req): AppJson<GrantsRequest>,
) -> Result<Json<Installation>, ApiError> {
    Ok(Json(state.platform.set_grants(&id, &req.grants, &console.actor()).await?))
}

/// Go back to the version before the last upgrade; the data is kept.
#[utoipa::path(post, path = "/admin/installations/{id}/rollback", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT")),
    responses((status = 200, body = Installation), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(State(state): State<AppState>, ManagedInstallation { id, console }: ManagedInstallation) -> Result<Json<Installation>, ApiError> {
    Ok(Json(state.platform.rollback(&id, &console.actor()).await?))
}

/// Remove an installation; its data is kept unless `purge=true`.
#[utoipa::path(delete, path = "/admin/installations/{id}", tag = "installations", params(("id" = String, Path, description = "PLUGIN@TENANT"), Purge),
    responses((status = 204, description = "uninstalled"), (status = 404, body = ErrorBody)))]
async fn uninstall(
    State(state): State<AppState>,
    ManagedInstallation { id, console }: ManagedInstallation,
    AppQuery(purge): AppQuery<Purge>,
) -> Result<StatusCode, ApiError> {
    state.platform.uninstall(&id, purge.purge, &console.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a resident or staff account. Staff roles are scoped to tenant nodes.
#[utoipa::path(post, path = "/admin/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_account(State(state): State<AppState>, console: Console, AppJson(new): AppJson<NewAccount>) -> Result<(StatusCode, Json<Account>), ApiError> {
    for node in new.roles.iter().map(|g| g.tenant.as_str()).chain(new.tenant_id.as_deref()) {
        console.require_manages(node)?;
    }
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantFilter {
    /// A tenant node: only what lies in its subtree.
    tenant: Option<String>,
}

/// A staff member as the console lists them (phone masked).
#[derive(Serialize, ToSchema)]
pub struct StaffMember {
    id: String,
    display_name: String,
    phone: String,
    roles: Vec<crate::auth::accounts::RoleGrant>,
}

#[derive(Serialize, ToSchema)]
pub struct StaffList {
    staff: Vec<StaffMember>,
}

/// Staff holding a role in the operator's area (or below `tenant`).
#[utoipa::path(get, path = "/admin/accounts", tag = "accounts", params(TenantFilter), responses((status = 200, body = StaffList), (status = 403, body = ErrorBody)))]
async fn staff_accounts(State(state): State<AppState>, console: Console, AppQuery(filter): AppQuery<TenantFilter>) -> Result<Json<StaffList>, ApiError> {
    let tree = state.platform.tenants();
    let within = match &filter.tenant {
        Some(t) => {
            console.require_sees(t)?;
            Some(t.as_str())
        }
        None => None,
    };
    let staff = crate::auth::accounts::staff(&state.platform.store)
        .await?
        .into_iter()
        .filter(|a| a.roles.iter().any(|g| console.sees(&g.tenant) && within.is_none_or(|w| tree.is_within(&g.tenant, w))))
        .map(|a| StaffMember { phone: crate::auth::accounts::mask_phone(&a.phone), id: a.id, display_name: a.display_name, roles: a.roles })
        .collect();
    Ok(Json(StaffList { staff }))
}

/// What the console shows of the signed-in operator.
#[derive(Serialize, ToSchema)]
pub struct Whoami {
    display_name: String,
    /// True for the admin token.
    platform: bool,
    roles: Vec<crate::auth::accounts::RoleGrant>,
    /// Where the console opens: the highest nodes the operator sees.
    tops: Vec<String>,
    /// What the console offers (the host checks each action again): installing, upgrading
    /// and staff accounts somewhere in the operator's area…
    manages: bool,
    /// …and a county's vendor keys, package uploads and audit log.
    county_admin: bool,
}

/// Who the caller is: the platform operator or a staff member, with their area.
#[utoipa::path(get, path = "/admin/me", tag = "accounts", responses((status = 200, body = Whoami)))]
async fn whoami(State(state): State<AppState>, console: Console) -> Json<Whoami> {
    let tops = console.tops(&state.platform.tenants());
    Json(Whoami {
        display_name: console.display_name(),
        platform: console.everywhere,
        manages: console.manages_any(),
        county_admin: console.holds_any_county(),
        roles: console.claims.map(|c| c.roles).unwrap_or_default(),
        tops,
    })
}

/// The OpenAPI document of the admin API, served at /openapi.json.
#[derive(OpenApi)]
#[openapi(
    info(title = "Linli admin API", description = "County operators' API: tenants, vendor keys, packages, installations. Every call needs `Authorization: Bearer <admin token>` (everywhere) or a staff session (within the roles' subtrees)."),
    paths(tenants, load_tenants, keys, trust_key, capabilities, packages, upload, installations, install, installation, upgrade, set_grants, rollback, uninstall, create_account, staff_accounts, whoami, rotate_signing_key),
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
