//! The platform API for people, as opposed to plugins:
//! - `/api/base/…`: base data for staff, within their roles' subtrees, sensitive fields
//!   masked unless the role needs them; CSV imports with progress;
//! - `/api/audit`: the audit log for county admins;
//! - `/api/consents…`: a resident's consents to plugins;
//! - `/api/app/plugins`: what the resident app lists on its home page.
//!
//! The admin token counts as a platform operator: every tenant, sensitive fields masked.
use super::auth::Session;
use super::caller::Caller;
use super::extract::{AppJson, AppPath, AppQuery};
use super::{ApiError, AppState, ErrorBody};
use crate::auth::accounts::{mask_phone, Role};
use crate::auth::audit::{self, Outcome};
use crate::auth::consent;
use crate::auth::sessions::Claims;
use crate::capabilities::base::import::{ImportKind, ImportReport};
use crate::capabilities::base::records::{self, age_on, mask_id_number, today, Organisation, Place, Resident, ResidentFilter};
use crate::capabilities::{self as caps};
use crate::errors::Code;
use crate::packages::listing::Audience;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/base/residents", get(list_residents))
        .route("/api/base/residents/{id}", get(get_resident))
        .route("/api/base/places", get(list_places))
        .route("/api/base/organisations", get(list_organisations))
        .route("/api/base/imports", post(start_import))
        .route("/api/base/imports/{id}", get(import_report))
        .route("/api/audit", get(search_audit))
        .route("/api/consents", get(my_consents))
        .route("/api/consents/{plugin}", get(consent_request).post(give_consent).delete(revoke_consent))
        .route("/api/app/plugins", get(app_plugins))
        .layer(axum::extract::DefaultBodyLimit::max(crate::capabilities::base::import::MAX_IMPORT_BYTES))
}

/// Roles that see base data, and those that need residents' contact details unmasked.
const BASE_ROLES: [Role; 4] = [Role::CountyAdmin, Role::StreetAdmin, Role::CommunityWorker, Role::GridWorker];
const REVEALING_ROLES: [Role; 2] = [Role::CommunityWorker, Role::GridWorker];
const IMPORTING_ROLES: [Role; 3] = [Role::CountyAdmin, Role::StreetAdmin, Role::CommunityWorker];

/// Who is asking for base data.
pub enum Operator {
    /// The admin token.
    Platform,
    Staff(Claims),
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Platform => Ok(Operator::Platform),
            Caller::Staff(claims) => Ok(Operator::Staff(claims)),
            Caller::Resident(_) => Err(ApiError::forbidden(Code::StaffOnly, "this needs a staff account")),
        }
    }
}

impl Operator {
    fn id(&self) -> String {
        match self {
            Operator::Platform => "platform".into(),
            Operator::Staff(claims) => format!("staff:{}", claims.sub),
        }
    }

    /// Tenant nodes the operator's `roles` reach.
    pub(crate) fn reach(&self, state: &AppState, roles: &[Role]) -> Vec<String> {
        let tree = state.platform.tenants();
        match self {
            // The platform operator acts as a county admin everywhere: it reaches every
            // node with the roles a county admin holds, and never the revealing ones.
            Operator::Platform if roles.contains(&Role::CountyAdmin) => tree.subtree_of_all(),
            Operator::Platform => Vec::new(),
            Operator::Staff(claims) => {
                let mut out: Vec<String> = claims.roles.iter().filter(|g| roles.contains(&g.role)).flat_map(|g| tree.subtree(&g.tenant)).collect();
                out.sort();
                out.dedup();
                out
            }
        }
    }

    /// The nodes to read: the reach, or the part of it below `tenant`.
    fn scope(&self, state: &AppState, roles: &[Role], tenant: Option<&str>) -> Result<Vec<String>, ApiError> {
        let reach = self.reach(state, roles);
        if reach.is_empty() {
            return Err(ApiError::forbidden(Code::BaseRoles, "none of your roles gives access to base data"));
        }
        match tenant {
            None => Ok(reach),
            Some(t) if reach.iter().any(|r| r == t) => Ok(state.platform.tenants().subtree(t)),
            Some(t) if state.platform.tenants().get(t).is_none() => Err(ApiError::tenant_unknown(t)),
            Some(t) => Err(ApiError::outside_area(t)),
        }
    }
}

/// A resident as staff see them.
#[derive(Serialize, ToSchema)]
pub struct ResidentView {
    pub id: String,
    pub tenant_id: String,
    pub real_name: String,
    /// Masked (`330782********1234`) unless shown in full to a role that needs it.
    pub id_number: String,
    /// Masked (`138****0000`) unless the role needs it.
    pub phone: String,
    pub gender: String,
    pub birth_date: String,
    pub age: u32,
    pub tags: Vec<String>,
    pub address: Option<String>,
    pub household_id: Option<String>,
}

fn view(r: Resident, reveal_phone: bool, reveal_id: bool) -> ResidentView {
    let age = chrono::NaiveDate::parse_from_str(&r.birth_date, "%Y-%m-%d").map(|b| age_on(b, today())).unwrap_or_default();
    ResidentView {
        id_number: if reveal_id { r.id_number.clone() } else { mask_id_number(&r.id_number) },
        phone: if reveal_phone { r.phone.clone() } else { mask_phone(&r.phone) },
        birth_date: if reveal_id { r.birth_date.clone() } else { format!("{}-**-**", r.birth_date.get(..4).unwrap_or("****")) },
        id: r.id,
        tenant_id: r.tenant_id,
        real_name: r.real_name,
        gender: r.gender,
        age,
        tags: r.tags,
        address: r.address,
        household_id: r.household_id,
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResidentQuery {
    /// A node inside your area; all of it when left out.
    tenant: Option<String>,
    /// Tags separated by commas; residents having all of them.
    tags: Option<String>,
    min_age: Option<u32>,
    max_age: Option<u32>,
    name: Option<String>,
    cursor: Option<String>,
    /// 1..=500, default 50.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ResidentList {
    pub items: Vec<ResidentView>,
    pub next_cursor: Option<String>,
    /// Residents in the whole scope (not only this page and filter).
    pub total_in_scope: i64,
}

/// Residents in your area. ID numbers are always masked in lists; phone numbers are shown
/// to community and grid workers, who contact residents.
#[utoipa::path(get, path = "/api/base/residents", tag = "base", params(ResidentQuery),
    responses((status = 200, body = ResidentList), (status = 403, body = ErrorBody)), security(("session" = [])))]
async fn list_residents(State(state): State<AppState>, operator: Operator, AppQuery(q): AppQuery<ResidentQuery>) -> Result<Json<ResidentList>, ApiError> {
    let scope = operator.scope(&state, &BASE_ROLES, q.tenant.as_deref())?;
    let reveal = operator.reach(&state, &REVEALING_ROLES);
    let filter = ResidentFilter {
        tags: q.tags.as_deref().unwrap_or("").split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
        min_age: q.min_age,
        max_age: q.max_age,
        name: q.name.clone(),
    };
    let store = &state.platform.store;
    let page = records::find_residents(store, &state.platform.resident_totals, &scope, &filter, q.cursor.as_deref(), q.limit.unwrap_or(50))
        .await
        .map_err(ApiError::database)?;
    let items = page.items.into_iter().map(|r| {
        let phone = reveal.contains(&r.tenant_id);
        view(r, phone, false)
    });
    Ok(Json(ResidentList { items: items.collect(), next_cursor: page.next_cursor, total_in_scope: page.in_scope }))
}

/// One resident. Community and grid workers of the resident's area see the ID number and
/// phone in full, and that read is written to the audit log.
#[utoipa::path(get, path = "/api/base/residents/{id}", tag = "base", params(("id" = String, Path, description = "resident id")),
    responses((status = 200, body = ResidentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("session" = [])))]
async fn get_resident(State(state): State<AppState>, operator: Operator, AppPath(id): AppPath<String>) -> Result<Json<ResidentView>, ApiError> {
    let store = &state.platform.store;
    let resident = records::resident(store, &id)
        .await
        .map_err(ApiError::database)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, Code::ResidentUnknown, format!("no resident `{id}`")))?;
    let scope = operator.scope(&state, &BASE_ROLES, None)?;
    if !scope.contains(&resident.tenant_id) {
        return Err(
            ApiError::forbidden(Code::OutsideArea, format!("resident `{id}` lives outside the area of your roles")).with("node", resident.tenant_id.clone())
        );
    }
    let reveal = operator.reach(&state, &REVEALING_ROLES).contains(&resident.tenant_id);
    if reveal {
        let read = audit::Read {
            actor: operator.id(),
            tenant_id: &resident.tenant_id,
            subject: format!("resident:{}", resident.id),
            fields: &["id-number", "phone", "birth-date"],
            outcome: Outcome::Allowed,
            request_id: "",
        };
        audit::record(store, read).await.map_err(ApiError::database)?;
    }
    Ok(Json(view(resident, reveal, reveal)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    tenant: Option<String>,
}

/// Places (地) in a tenant.
#[utoipa::path(get, path = "/api/base/places", tag = "base", params(TenantQuery), responses((status = 200, body = Vec<Place>)), security(("session" = [])))]
async fn list_places(State(state): State<AppState>, operator: Operator, AppQuery(q): AppQuery<TenantQuery>) -> Result<Json<Vec<Place>>, ApiError> {
    let scope = operator.scope(&state, &BASE_ROLES, q.tenant.as_deref())?;
    Ok(Json(records::places(&state.platform.store, &scope).await.map_err(ApiError::database)?))
}

/// Organisations (组织) in a tenant.
#[utoipa::path(get, path = "/api/base/organisations", tag = "base", params(TenantQuery), responses((status = 200, body = Vec<Organisation>)), security(("session" = [])))]
async fn list_organisations(
    State(state): State<AppState>,
    operator: Operator,
    AppQuery(q): AppQuery<TenantQuery>,
) -> Result<Json<Vec<Organisation>>, ApiError> {
    let scope = operator.scope(&state, &BASE_ROLES, q.tenant.as_deref())?;
    Ok(Json(records::organisations(&state.platform.store, &scope).await.map_err(ApiError::database)?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// residents | places | organisations
    kind: String,
    /// Where the import is made; every row's grid must be inside it.
    tenant: String,
}

/// Import a CSV file (UTF-8; Chinese or English headers). Checked in full first: a file
/// with any problem is rejected with every problem listed (row, column, why) and nothing
/// is written. Answers at once; poll the report for progress.
#[utoipa::path(post, path = "/api/base/imports", tag = "base", params(ImportQuery), request_body(content = String, content_type = "text/csv"),
    responses((status = 202, body = ImportReport), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("session" = [])))]
async fn start_import(
    State(state): State<AppState>,
    operator: Operator,
    AppQuery(q): AppQuery<ImportQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let kind = ImportKind::parse(&q.kind).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::ImportKindUnknown,
            format!("`{}` is not an import kind (residents, places, organisations)", q.kind),
        )
        .with("kind", q.kind.clone())
    })?;
    operator.scope(&state, &IMPORTING_ROLES, Some(&q.tenant))?;
    let platform = &state.platform;
    let report = state.imports.start(platform.store.clone(), platform.tenants(), kind, &q.tenant, body.to_vec(), &operator.id()).await.map_err(import_error)?;
    Ok((StatusCode::ACCEPTED, Json(report)))
}

fn import_error(e: crate::capabilities::base::import::ImportError) -> ApiError {
    use crate::capabilities::base::import::ImportError as E;
    match e {
        E::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Code::InvalidArgument, m),
        E::Database(e) => ApiError::database(e),
    }
}

/// The progress and problems of a base-data import.
#[utoipa::path(get, path = "/api/base/imports/{id}", tag = "base", params(("id" = String, Path, description = "import id")), responses((status = 200, body = ImportReport), (status = 404, body = ErrorBody)), security(("session" = [])))]
async fn import_report(State(state): State<AppState>, operator: Operator, AppPath(id): AppPath<String>) -> Result<Json<ImportReport>, ApiError> {
    let report = state.imports.report(&state.platform.store, &id).await.map_err(import_error)?;
    let report = report.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, Code::ImportUnknown, format!("no import `{id}`")))?;
    operator.scope(&state, &IMPORTING_ROLES, Some(&report.tenant_id))?;
    Ok(Json(report))
}

/// Search the audit log of sensitive reads in your county (county admins).
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(audit::Search),
    responses((status = 200, body = Vec<audit::Entry>), (status = 403, body = ErrorBody)), security(("session" = [])))]
async fn search_audit(
    State(state): State<AppState>,
    operator: Operator,
    AppQuery(search): AppQuery<audit::Search>,
) -> Result<Json<Vec<audit::Entry>>, ApiError> {
    let scope = operator.scope(&state, &[Role::CountyAdmin], None)?;
    let mut entries = audit::search(&state.platform.store, &scope, &search).await.map_err(ApiError::database)?;
    name_parties(&state, &mut entries).await?;
    Ok(Json(entries))
}

/// The people of the log by name: accounts and staff by their display name, residents by
/// their masked real name (`王*英`); plugins and client apps the console names itself.
async fn name_parties(state: &AppState, entries: &mut [audit::Entry]) -> Result<(), ApiError> {
    let store = &state.platform.store;
    let mut names: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    for party in entries.iter().flat_map(|e| [e.actor.clone(), e.subject.clone()]) {
        if names.contains_key(&party) {
            continue;
        }
        let name = match party.split_once(':') {
            Some(("account" | "staff", id)) => crate::auth::accounts::get(store, id).await.map_err(ApiError::of)?.map(|a| a.display_name),
            Some(("resident", id)) => records::resident(store, id).await.map_err(ApiError::database)?.map(|r| records::mask_name(&r.real_name)),
            _ => None,
        };
        names.insert(party, name);
    }
    for entry in entries.iter_mut() {
        entry.actor_name = names.get(&entry.actor).cloned().flatten();
        entry.subject_name = names.get(&entry.subject).cloned().flatten();
    }
    Ok(())
}

/// What a plugin asks of a resident, for the consent screen.
#[derive(Serialize, ToSchema)]
pub struct ConsentRequest {
    pub plugin_id: String,
    pub plugin_name: String,
    pub vendor: String,
    /// Why, in the vendor's words (from the manifest).
    pub reason: String,
    /// The plugin's name and the reason in English, when the manifest gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_name_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_en: Option<String>,
    pub fields: Vec<ConsentField>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsentField {
    pub name: String,
    pub label_zh: String,
    pub label_en: String,
    pub consented: bool,
}

fn resident(claims: &Claims) -> Result<&str, ApiError> {
    claims.tenant.as_deref().ok_or_else(|| ApiError::forbidden(Code::ResidentsOnly, "consents are given by residents"))
}

/// The fields the plugin serving the resident's community may ask for (granted by the
/// county), and which of them the resident has consented to.
#[utoipa::path(get, path = "/api/consents/{plugin}", tag = "consent", params(("plugin" = String, Path, description = "plugin id, e.g. legal-aid")), responses((status = 200, body = ConsentRequest), (status = 404, body = ErrorBody)), security(("session" = [])))]
async fn consent_request(State(state): State<AppState>, Session(claims): Session, AppPath(plugin): AppPath<String>) -> Result<Json<ConsentRequest>, ApiError> {
    let community = resident(&claims)?;
    let loaded = state.platform.serving(community).into_iter().find(|p| p.manifest.id == plugin).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, Code::NotInstalled, format!("`{plugin}` is not installed for your community")).with("plugin", plugin.clone())
    })?;
    let consented = consent::granted(&state.platform.store, &claims.sub, &plugin).await.map_err(ApiError::database)?;
    let info = caps::identity::INFO;
    let fields = loaded
        .installation
        .grants
        .iter()
        .filter_map(|g| g.strip_prefix("identity:"))
        .filter_map(|name| info.scopes.iter().find(|s| s.name == name))
        .map(|s| ConsentField {
            name: s.name.into(),
            label_zh: s.summary_zh.into(),
            label_en: s.summary_en.into(),
            consented: consented.iter().any(|c| c == s.name),
        })
        .collect();
    let english = loaded.manifest.translations.get("en");
    Ok(Json(ConsentRequest {
        plugin_id: plugin,
        plugin_name: loaded.manifest.name.clone(),
        vendor: loaded.manifest.vendor.clone(),
        reason: loaded.manifest.reason_for("identity").unwrap_or_default().to_string(),
        plugin_name_en: english.and_then(|t| t.name.clone()),
        reason_en: english.and_then(|t| t.reasons.get("identity").cloned()),
        fields,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveConsent {
    /// Profile fields, e.g. `["id-number"]`.
    fields: Vec<String>,
    /// Where the person was asked: `app` (the app's consent page, the default) or
    /// `plugin-page` (the app's consent screen, opened by the plugin's page through the
    /// bridge). Kept in the audit log.
    #[serde(default)]
    via: Option<ConsentChannel>,
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentChannel {
    App,
    PluginPage,
}

/// A consent given or withdrawn, in the audit log: the plugin (or web app) it concerns is
/// the actor, the person the subject.
async fn record_consent(state: &AppState, claims: &Claims, subject: &str, fields: &[String], outcome: Outcome, via: &str) -> Result<(), ApiError> {
    let actor = match subject.strip_prefix("oidc:") {
        Some(client) => format!("oidc:{client}"),
        None => format!("plugin:{subject}"),
    };
    audit::record_consent(&state.platform.store, actor, claims.tenant.as_deref().unwrap_or_default(), &claims.sub, fields, outcome, via)
        .await
        .map_err(ApiError::database)
}

/// Consent to give the plugin these fields. Only fields the county granted it can be
/// consented to.
#[utoipa::path(post, path = "/api/consents/{plugin}", tag = "consent", params(("plugin" = String, Path, description = "plugin id, e.g. legal-aid")), request_body = GiveConsent,
    responses((status = 204, description = "recorded"), (status = 422, body = ErrorBody)), security(("session" = [])))]
async fn give_consent(
    State(state): State<AppState>,
    Session(claims): Session,
    AppPath(plugin): AppPath<String>,
    AppJson(req): AppJson<GiveConsent>,
) -> Result<StatusCode, ApiError> {
    let Json(request) = consent_request(State(state.clone()), Session(claims.clone()), AppPath(plugin.clone())).await?;
    if let Some(unknown) = req.fields.iter().find(|f| !request.fields.iter().any(|k| &k.name == *f)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::InvalidArgument,
            format!("`{plugin}` may not ask for `{unknown}`; nothing was recorded"),
        ));
    }
    let via = match req.via.unwrap_or(ConsentChannel::App) {
        ConsentChannel::App => "app",
        ConsentChannel::PluginPage => "plugin-page",
    };
    // Recorded first: a consent that cannot be audited is not given.
    record_consent(&state, &claims, &plugin, &req.fields, Outcome::ConsentGiven, via).await?;
    consent::give(&state.platform.store, &claims.sub, &plugin, &req.fields).await.map_err(ApiError::database)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

/// Withdraw every consent given to the plugin (or to a vendor's web app, `oidc:<client
/// id>`); its next request for a field needs a new one. A web app's sign-ins end too.
#[utoipa::path(delete, path = "/api/consents/{plugin}", tag = "consent", params(("plugin" = String, Path, description = "plugin id, e.g. legal-aid")), responses((status = 200, body = Revoked)), security(("session" = [])))]
async fn revoke_consent(State(state): State<AppState>, Session(claims): Session, AppPath(plugin): AppPath<String>) -> Result<Json<Revoked>, ApiError> {
    let revoked = consent::revoke(&state.platform.store, &claims.sub, &plugin).await.map_err(ApiError::database)?;
    if !revoked.is_empty() {
        record_consent(&state, &claims, &plugin, &revoked, Outcome::ConsentWithdrawn, "app").await?;
    }
    if let Some(client_id) = plugin.strip_prefix("oidc:") {
        state.oidc.revoke_sessions(&claims.sub, client_id).await?;
    }
    Ok(Json(Revoked { revoked: u64::try_from(revoked.len()).unwrap_or(u64::MAX) }))
}

/// The signed-in resident's consents to plugins and vendors' apps.
#[utoipa::path(get, path = "/api/consents", tag = "consent", responses((status = 200, body = Vec<consent::Consent>)), security(("session" = [])))]
async fn my_consents(State(state): State<AppState>, Session(claims): Session) -> Result<Json<Vec<consent::Consent>>, ApiError> {
    let mut consents = consent::list(&state.platform.store, &claims.sub).await.map_err(ApiError::database)?;
    let serving = claims.tenant.as_deref().map(|t| state.platform.serving(t)).unwrap_or_default();
    let mut labels: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    for consent in &mut consents {
        if !labels.contains_key(&consent.subject) {
            let label = match consent.subject.strip_prefix("oidc:") {
                Some(client) => state.oidc.client(client).await?.map(|c| c.name),
                None => serving.iter().find(|p| p.manifest.id == consent.subject).map(|p| p.manifest.name.clone()),
            };
            labels.insert(consent.subject.clone(), label);
        }
        consent.label = labels.get(&consent.subject).cloned().flatten();
    }
    Ok(Json(consents))
}

/// A plugin as the resident app lists it.
#[derive(Serialize, ToSchema)]
pub struct AppPlugin {
    pub plugin_id: String,
    pub name: String,
    pub description: String,
    /// The tenant node the plugin serves this user at (their community, or a role's node).
    pub tenant_id: String,
    pub tenant_name: String,
    /// The page to open, when the plugin has one.
    pub url: Option<String>,
    /// The name and description in English, when the manifest gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description_en: Option<String>,
    /// The group the home lists it under (`care`, `life`, `affairs`, `neighbours`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The app's icon for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// The kinds of 报事报修 it takes (`[[app.reports]]`): the report form opens its page with
    /// `?report=ID` for them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<AppReport>,
}

/// A kind of report a plugin takes, as the app's report form lists it.
#[derive(Serialize, ToSchema)]
pub struct AppReport {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// The host category it stands in for, where it serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The plugins serving the signed-in user: a resident's community, or the nodes of a staff
/// member's roles. Plugins for staff are listed to staff only; plugins for nobody (demos,
/// pages reached from another plugin) are not listed.
#[utoipa::path(get, path = "/api/app/plugins", tag = "app", responses((status = 200, body = Vec<AppPlugin>), (status = 401, body = ErrorBody)), security(("session" = [])))]
async fn app_plugins(State(state): State<AppState>, Session(claims): Session) -> Result<Json<Vec<AppPlugin>>, ApiError> {
    let tree = state.platform.tenants();
    let mut nodes: Vec<String> = claims.tenant.iter().cloned().collect();
    nodes.extend(claims.roles.iter().map(|g| g.tenant.clone()));
    nodes.sort();
    nodes.dedup();
    let mut out = Vec::new();
    for node in nodes {
        let tenant_name = tree.get(&node).map(|n| n.name.clone()).unwrap_or_default();
        let mut serving = state.platform.serving(&node);
        serving.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id));
        for plugin in serving {
            let listed = match plugin.manifest.app.audience {
                Audience::Residents => true,
                Audience::Staff => !claims.roles.is_empty(),
                Audience::Nobody => false,
            };
            if !listed {
                continue;
            }
            let english = plugin.manifest.translations.get("en");
            let prefix = &plugin.installation.route_prefix;
            let url = plugin.manifest.ui_entry.as_ref().map(|entry| format!("/t/{node}/p/{prefix}/{entry}"));
            out.push(AppPlugin {
                plugin_id: plugin.manifest.id.clone(),
                name: plugin.manifest.name.clone(),
                description: plugin.manifest.description.clone(),
                tenant_id: node.clone(),
                tenant_name: tenant_name.clone(),
                url,
                name_en: english.and_then(|t| t.name.clone()),
                description_en: english.and_then(|t| t.description.clone()),
                category: plugin.manifest.app.category.clone(),
                icon: plugin.manifest.app.icon.clone(),
                reports: plugin
                    .manifest
                    .app
                    .reports
                    .iter()
                    .map(|r| AppReport {
                        id: r.id.clone(),
                        name: r.name.clone(),
                        name_en: english.and_then(|t| t.reports.get(&r.id).cloned()),
                        replaces: r.replaces.clone(),
                    })
                    .collect(),
            });
        }
    }
    Ok(Json(out))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_residents,
    get_resident,
    list_places,
    list_organisations,
    start_import,
    import_report,
    search_audit,
    consent_request,
    give_consent,
    revoke_consent,
    my_consents,
    app_plugins
))]
pub struct BaseApi;
