//! 一键求助 and what it needs (`core::help`):
//! - `POST /api/help`: the resident calls for help (an urgent ticket, texts to her contacts,
//!   the duty line to call); `GET /api/help`: what pressing will do, for the confirmation;
//! - `GET`/`PUT /api/me/contacts`: her emergency contacts, kept with her base record;
//! - `GET /admin/duty-lines`, `PUT /admin/duty-lines/{tenant}`: the duty lines (值班电话),
//!   set by the admins who manage a node.
use super::caller::{community_of, Caller};
use super::console::{Console, ManagedNode};
use super::extract::AppJson;
use super::{ApiError, AppState, ErrorBody};
use crate::auth::sessions::Claims;
use crate::capabilities::base::contacts::{self, EmergencyContact};
use crate::errors::Code;
use crate::help::{self, DutyLine, HelpAnswer, HelpPlan};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/help", get(prepare).post(call)).route("/api/me/contacts", get(my_contacts).put(set_my_contacts))
}

/// Behind the console's middleware.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/duty-lines", get(duty_lines)).route("/duty-lines/{tenant}", put(set_duty_line))
}

/// A resident with a community: who may call for help and keep contacts.
fn resident(caller: Caller) -> Result<(Claims, String), ApiError> {
    match caller {
        Caller::Resident(claims) => {
            let community = community_of(&claims)?;
            Ok((claims, community))
        }
        _ => Err(ApiError::forbidden(Code::ResidentsOnly, "help calls and emergency contacts are for residents")),
    }
}

/// What pressing 一键求助 will do: the duty line and the contacts to be texted.
#[utoipa::path(get, path = "/api/help", tag = "help", responses((status = 200, body = HelpPlan), (status = 403, body = ErrorBody)), security(("session" = [])))]
async fn prepare(State(state): State<AppState>, caller: Caller) -> Result<Json<HelpPlan>, ApiError> {
    let (claims, community) = resident(caller)?;
    let who = help::Caller { account_id: &claims.sub, display_name: &claims.name, community: &community };
    Ok(Json(help::plan(&state.platform.store, &state.platform.tenants(), &who).await?))
}

/// 一键求助: open an urgent ticket for her grid, text her emergency contacts, answer the duty
/// line to call. Pressing again while her call is open answers that call (`repeated`).
#[utoipa::path(post, path = "/api/help", tag = "help", responses((status = 201, body = HelpAnswer), (status = 200, body = HelpAnswer, description = "her call is already open"), (status = 403, body = ErrorBody)), security(("session" = [])))]
async fn call(State(state): State<AppState>, caller: Caller) -> Result<(StatusCode, Json<HelpAnswer>), ApiError> {
    let (claims, community) = resident(caller)?;
    let platform = &state.platform;
    let who = help::Caller { account_id: &claims.sub, display_name: &claims.name, community: &community };
    let answer = help::call_for_help(&platform.store, &platform.tenants(), &platform.tickets, &platform.notifier, &who).await?;
    let status = if answer.repeated { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(answer)))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactList {
    /// At most 5; each an 11-digit mobile number, once.
    contacts: Vec<EmergencyContact>,
}

/// The base record of the signed-in resident, or a 409 telling her how to get one.
async fn own_record(state: &AppState, claims: &Claims, community: &str) -> Result<String, ApiError> {
    let record = help::home_record(&state.platform.store, &state.platform.tenants(), &claims.sub, community).await.map_err(ApiError::database)?;
    record.map(|r| r.id).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            Code::NoBaseRecord,
            "your community has no record of you yet (by your phone number); the community office can add it, then you can keep emergency contacts",
        )
    })
}

/// The signed-in resident's emergency contacts.
#[utoipa::path(get, path = "/api/me/contacts", tag = "help", responses((status = 200, body = ContactList), (status = 409, body = ErrorBody, description = "no base record of her yet")), security(("session" = [])))]
async fn my_contacts(State(state): State<AppState>, caller: Caller) -> Result<Json<ContactList>, ApiError> {
    let (claims, community) = resident(caller)?;
    let record = own_record(&state, &claims, &community).await?;
    Ok(Json(ContactList { contacts: contacts::contacts(&state.platform.store, &record).await? }))
}

/// Replace the signed-in resident's emergency contacts.
#[utoipa::path(put, path = "/api/me/contacts", tag = "help", request_body = ContactList,
    responses((status = 200, body = ContactList), (status = 422, body = ErrorBody), (status = 409, body = ErrorBody, description = "no base record of her yet")), security(("session" = [])))]
async fn set_my_contacts(State(state): State<AppState>, caller: Caller, AppJson(list): AppJson<ContactList>) -> Result<Json<ContactList>, ApiError> {
    let (claims, community) = resident(caller)?;
    let record = own_record(&state, &claims, &community).await?;
    let saved = contacts::set_contacts(&state.platform.store, &record, &list.contacts, &format!("account:{}", claims.sub)).await?;
    Ok(Json(ContactList { contacts: saved }))
}

#[derive(Serialize, ToSchema)]
pub struct DutyLines {
    lines: Vec<DutyLine>,
}

/// The duty lines set at the nodes the operator sees.
#[utoipa::path(get, path = "/admin/duty-lines", tag = "help", responses((status = 200, body = DutyLines)), security(("admin_token" = []), ("session" = [])))]
async fn duty_lines(State(state): State<AppState>, console: Console) -> Result<Json<DutyLines>, ApiError> {
    let tree = state.platform.tenants();
    let seen: Vec<String> = tree.subtree_of_all().into_iter().filter(|n| console.sees(n)).collect();
    Ok(Json(DutyLines { lines: help::duty_lines(&state.platform.store, &tree, &seen).await? }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetDutyLine {
    /// The number to call, e.g. `0571-88886666`; empty or absent removes the line (calls
    /// then go to the line set above).
    #[serde(default)]
    phone: Option<String>,
}

/// Set or remove the duty line of a node the operator manages.
#[utoipa::path(put, path = "/admin/duty-lines/{tenant}", tag = "help", params(("tenant" = String, Path, description = "a county, street or community")), request_body = SetDutyLine,
    responses((status = 200, body = DutyLines, description = "the node's line, none when removed"), (status = 422, body = ErrorBody)), security(("admin_token" = []), ("session" = [])))]
async fn set_duty_line(State(state): State<AppState>, node: ManagedNode, AppJson(body): AppJson<SetDutyLine>) -> Result<Json<DutyLines>, ApiError> {
    let line = help::set_duty_line(&state.platform.store, &state.platform.tenants(), &node.id, body.phone.as_deref(), &node.console.actor()).await?;
    Ok(Json(DutyLines { lines: line.into_iter().collect() }))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(prepare, call, my_contacts, set_my_contacts, duty_lines, set_duty_line))]
pub struct HelpApi;
