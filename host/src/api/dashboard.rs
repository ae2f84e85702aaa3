//! `GET /api/dashboard`: the three-level dashboards for staff, within their roles'
//! subtrees (county → street → community → grid).
use super::base::Operator;
use super::extract::AppQuery;
use super::{ApiError, AppState, ErrorBody};
use crate::auth::accounts::Role;
use crate::dashboard::Overview;
use crate::errors::Code;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

const DASHBOARD_ROLES: [Role; 4] = [Role::CountyAdmin, Role::StreetAdmin, Role::CommunityWorker, Role::GridWorker];

pub fn router() -> Router<AppState> {
    Router::new().route("/api/dashboard", get(dashboard))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DashboardQuery {
    /// The node to show (default: the highest one your roles reach).
    tenant: Option<String>,
}

/// Figures of a node and of each of its children: residents and elders, alarms, tickets by
/// status and overdue, plugin figures (time bank, parking, …) and plugin usage.
#[utoipa::path(get, path = "/api/dashboard", tag = "dashboard", params(DashboardQuery),
    responses((status = 200, body = Overview), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
async fn dashboard(State(state): State<AppState>, operator: Operator, AppQuery(q): AppQuery<DashboardQuery>) -> Result<Json<Overview>, ApiError> {
    let reach = operator.reach(&state, &DASHBOARD_ROLES);
    if reach.is_empty() {
        return Err(ApiError::forbidden(Code::DashboardRoles, "the dashboards need a staff role over an area"));
    }
    let tree = state.platform.tenants();
    let reach_set: std::collections::BTreeSet<&str> = reach.iter().map(String::as_str).collect();
    let reached = |id: &str| reach_set.contains(id);
    let mut tops: Vec<&String> = reach.iter().filter(|n| tree.get(n).and_then(|n| n.parent_id.as_deref()).is_none_or(|p| !reached(p))).collect();
    tops.sort_by_key(|n| (tree.ancestors(n).count(), n.to_string()));
    let node = match q.tenant {
        Some(t) if reached(&t) => t,
        Some(t) if tree.get(&t).is_none() => return Err(ApiError::tenant_unknown(&t)),
        Some(t) => return Err(ApiError::outside_area(&t)),
        None => tops.first().map(|t| t.to_string()).ok_or_else(|| ApiError::forbidden(Code::DashboardRoles, "none of your roles is over an area"))?,
    };
    let top = tops.iter().find(|t| tree.is_within(&node, t)).map(|t| t.as_str());
    let overview = crate::dashboard::overview(&state.platform, &node, top).await?;
    overview.map(Json).ok_or_else(|| ApiError::tenant_unknown(&node))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(dashboard))]
pub struct DashboardApi;
