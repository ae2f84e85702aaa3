//! Who operates the admin API (`/admin/…`, used by the console at `/console/`), and over
//! which part of the tenant tree:
//! - the admin token: the platform operator, everywhere, including platform-wide settings
//!   (tenant tree, signing keys, OIDC clients, devices and alarm rules, event deliveries);
//! - a staff session: county and street admins manage their subtree (install, upgrade,
//!   roll back, uninstall, staff accounts); county admins also hold the county's vendor
//!   keys and package uploads; community workers see their subtree.
use super::base::Operator;
use super::extract::AppPath;
use super::{ApiError, AppState};
use crate::auth::accounts::Role;
use crate::auth::sessions::Claims;
use crate::errors::Code;
use crate::tenancy::tree::{TenantKind, TenantTree};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::Arc;

const MANAGING_ROLES: [Role; 2] = [Role::CountyAdmin, Role::StreetAdmin];
const VIEWING_ROLES: [Role; 3] = [Role::CountyAdmin, Role::StreetAdmin, Role::CommunityWorker];

#[derive(Clone)]
pub struct Console {
    /// The platform operator (admin token): every node and the platform-wide settings.
    pub everywhere: bool,
    /// Nodes where the operator may change installations and accounts.
    manage: Arc<BTreeSet<String>>,
    /// Nodes the operator sees.
    view: Arc<BTreeSet<String>>,
    /// Counties where the operator is county admin.
    counties: Arc<BTreeSet<String>>,
    pub claims: Option<Claims>,
}

fn subtrees(tree: &TenantTree, claims: &Claims, roles: &[Role]) -> BTreeSet<String> {
    claims.roles.iter().filter(|g| roles.contains(&g.role)).flat_map(|g| tree.subtree(&g.tenant)).collect()
}

impl Console {
    fn platform() -> Self {
        Self { everywhere: true, manage: Arc::default(), view: Arc::default(), counties: Arc::default(), claims: None }
    }

    fn staff(tree: &TenantTree, claims: Claims) -> Self {
        let counties = claims
            .roles
            .iter()
            .filter(|g| g.role == Role::CountyAdmin && tree.get(&g.tenant).is_some_and(|n| n.kind == TenantKind::County))
            .map(|g| g.tenant.clone())
            .collect();
        Self {
            everywhere: false,
            manage: Arc::new(subtrees(tree, &claims, &MANAGING_ROLES)),
            view: Arc::new(subtrees(tree, &claims, &VIEWING_ROLES)),
            counties: Arc::new(counties),
            claims: Some(claims),
        }
    }

    /// Who did it, for histories: `platform`, or the staff member's name and account.
    pub fn actor(&self) -> String {
        match &self.claims {
            Some(c) => format!("{} (staff:{})", c.name, c.sub),
            None => "platform".into(),
        }
    }

    pub fn display_name(&self) -> String {
        self.claims.as_ref().map_or_else(|| "平台管理员".to_string(), |c| c.name.clone())
    }

    pub fn sees(&self, node: &str) -> bool {
        self.everywhere || self.view.contains(node)
    }

    /// Sees `node` or something below it: e.g. a county-wide installation concerns a
    /// community worker, whose community it serves.
    pub fn concerns(&self, tree: &TenantTree, node: &str) -> bool {
        self.sees(node) || self.view.iter().any(|v| tree.is_within(v, node))
    }

    pub fn manages(&self, node: &str) -> bool {
        self.everywhere || self.manage.contains(node)
    }

    /// County admin of `county` (vendor keys, package uploads).
    pub fn holds_county(&self, county: &str) -> bool {
        self.everywhere || self.counties.contains(county)
    }

    /// Counties any visible node belongs to: whose package catalogue the operator sees.
    pub fn visible_counties(&self, tree: &TenantTree) -> Option<BTreeSet<String>> {
        if self.everywhere {
            return None;
        }
        Some(self.view.iter().filter_map(|n| tree.county_of(n)).map(|c| c.id.clone()).collect())
    }

    /// The highest visible nodes: where the console opens.
    pub fn tops(&self, tree: &TenantTree) -> Vec<String> {
        if self.everywhere {
            return tree.roots().iter().map(|n| n.id.clone()).collect();
        }
        let mut tops: Vec<String> = self.view.iter().filter(|n| !tree.ancestors(n).skip(1).any(|a| self.view.contains(&a.id))).cloned().collect();
        tops.sort();
        tops
    }

    pub fn require_sees(&self, node: &str) -> Result<(), ApiError> {
        if self.sees(node) {
            Ok(())
        } else {
            Err(ApiError::outside_area(node))
        }
    }

    pub fn require_concerns(&self, tree: &TenantTree, node: &str) -> Result<(), ApiError> {
        if self.concerns(tree, node) {
            Ok(())
        } else {
            Err(ApiError::outside_area(node))
        }
    }

    pub fn require_manages(&self, node: &str) -> Result<(), ApiError> {
        if self.manages(node) {
            Ok(())
        } else {
            Err(ApiError::forbidden(Code::NeedsManager, format!("changing `{node}` needs a county or street admin role there")).with("node", node))
        }
    }

    pub fn require_county(&self, county: &str) -> Result<(), ApiError> {
        if self.holds_county(county) {
            Ok(())
        } else {
            Err(ApiError::forbidden(Code::NeedsCountyAdmin, format!("this needs the county admin role of `{county}`")).with("node", county))
        }
    }

    /// Whether the operator may change anything (install, upgrade, staff accounts) somewhere.
    pub fn manages_any(&self) -> bool {
        self.everywhere || !self.manage.is_empty()
    }

    /// Whether the operator holds a county's vendor keys, package uploads and audit log.
    pub fn holds_any_county(&self) -> bool {
        self.everywhere || !self.counties.is_empty()
    }

    pub fn require_platform(&self) -> Result<(), ApiError> {
        if self.everywhere {
            Ok(())
        } else {
            Err(ApiError::forbidden(Code::NeedsAdminToken, "a platform-wide setting: it needs the admin token"))
        }
    }
}

/// The middleware of `/admin`: resolves the operator once and hands it to the handlers.
pub async fn require_operator(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let console = match Operator::from_request_parts(&mut parts, &state).await {
        Ok(Operator::Platform) => Console::platform(),
        Ok(Operator::Staff(claims)) => Console::staff(&state.platform.tenants(), claims),
        Err(mut e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                e.message = "the admin API needs `Authorization: Bearer <admin token>` or a staff session".into();
            }
            return e.into_response();
        }
    };
    if !console.everywhere && console.view.is_empty() {
        return ApiError::forbidden(Code::ConsoleRoles, "the console needs a county admin, street admin or community worker role").into_response();
    }
    parts.extensions.insert(console);
    next.run(Request::from_parts(parts, body)).await
}

/// For routers of platform-wide settings, behind [`require_operator`].
pub async fn platform_only(request: Request, next: Next) -> Response {
    match request.extensions().get::<Console>().map(Console::require_platform) {
        Some(Ok(())) => next.run(request).await,
        Some(Err(e)) => e.into_response(),
        None => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "the console middleware did not run for this route").into_response(),
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Console>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "the console middleware did not run for this route"))
    }
}

/// The tenant of an installation id (`PLUGIN@TENANT`).
pub fn installation_tenant(id: &str) -> &str {
    id.split_once('@').map_or("", |(_, tenant)| tenant)
}

/// The operator and the id in the path, once the operator is found to manage the node
/// `tenant_of(id)`: before a body is read.
async fn managed_path(parts: &mut Parts, state: &AppState, tenant_of: fn(&str) -> &str) -> Result<(String, Console), ApiError> {
    let console = Console::from_request_parts(parts, state).await?;
    let AppPath(id) = AppPath::<String>::from_request_parts(parts, state).await?;
    console.require_manages(tenant_of(&id))?;
    Ok((id, console))
}

/// The tenant node of the path (`/…/{tenant}`) with its operator, who manages it.
pub struct ManagedNode {
    pub id: String,
    pub console: Console,
}

impl FromRequestParts<AppState> for ManagedNode {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (id, console) = managed_path(parts, state, |id| id).await?;
        Ok(Self { id, console })
    }
}

/// The installation of the path (`/installations/{id}/…`) with its operator, who manages
/// the installation's tenant.
pub struct ManagedInstallation {
    pub id: String,
    pub console: Console,
}

impl FromRequestParts<AppState> for ManagedInstallation {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (id, console) = managed_path(parts, state, installation_tenant).await?;
        Ok(Self { id, console })
    }
}
