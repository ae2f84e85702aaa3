//! Work orders for people (`/api/tickets…`) and the inbox (`/api/inbox…`).
//!
//! - Residents report problems in their community, follow their own tickets, comment, and
//!   close a resolved ticket with a rating.
//! - Staff see the tickets their roles reach; community workers and admins dispatch,
//!   assignees accept and resolve, street and county admins supervise (督办).
//! - The admin token acts as a county admin everywhere.
use super::auth::Session;
use super::base::Operator;
use super::caller::Caller;
use super::extract::{AppJson, AppPath, AppQuery, OptionalJson};
use super::{ApiError, AppState, ErrorBody};
use crate::auth::accounts::Role;
use crate::capabilities::notify::Notification;
use crate::capabilities::tickets::{photos, Action, Actor, Category, NewTicket, Source, Status, Step, Ticket, TicketError, TicketFilter};
use crate::errors::Code;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tickets", get(list).post(create))
        .route("/api/tickets/categories", get(categories))
        .route("/api/tickets/{id}", get(detail))
        .route("/api/tickets/{id}/photos", post(add_photo).layer(axum::extract::DefaultBodyLimit::max(photos::MAX_PHOTO_BYTES + 1024)))
        .route("/api/tickets/{id}/photos/{n}", get(photo))
        .route("/api/tickets/{id}/{action}", post(act))
        .route("/api/inbox", get(inbox))
        .route("/api/inbox/{id}/read", post(mark_read))
}

/// Operators manage the category library.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/ticket-categories", post(put_category))
}

/// Add or change a ticket category and its time limit.
#[utoipa::path(post, path = "/admin/ticket-categories", tag = "tickets", request_body = Category, responses((status = 200, body = Category), (status = 422, body = ErrorBody)))]
async fn put_category(State(state): State<AppState>, AppJson(category): AppJson<Category>) -> Result<Json<Category>, ApiError> {
    state.platform.tickets.set_category(&category).await?;
    Ok(Json(category))
}

/// Roles that see and handle the tickets of their area.
const HANDLING: [Role; 4] = [Role::GridWorker, Role::CommunityWorker, Role::StreetAdmin, Role::CountyAdmin];
/// Roles that dispatch.
const DISPATCHING: [Role; 3] = [Role::CommunityWorker, Role::StreetAdmin, Role::CountyAdmin];
/// Roles that supervise.
const SUPERVISING: [Role; 2] = [Role::StreetAdmin, Role::CountyAdmin];

impl Caller {
    fn actor(&self) -> Actor {
        match self {
            Caller::Platform => Actor { name: "平台管理员".into(), account: None },
            Caller::Staff(c) | Caller::Resident(c) => Actor { name: c.name.clone(), account: Some(c.sub.clone()) },
        }
    }

    fn account(&self) -> Option<&str> {
        match self {
            Caller::Platform => None,
            Caller::Staff(c) | Caller::Resident(c) => Some(&c.sub),
        }
    }

    /// Nodes whose tickets `roles` let the caller handle.
    fn reach(&self, state: &AppState, roles: &[Role]) -> Vec<String> {
        match self {
            Caller::Platform => Operator::Platform.reach(state, &[Role::CountyAdmin]),
            Caller::Staff(c) => Operator::Staff(c.clone()).reach(state, roles),
            Caller::Resident(_) => Vec::new(),
        }
    }

    fn reaches(&self, state: &AppState, roles: &[Role], ticket: &Ticket) -> bool {
        self.reach(state, roles).contains(&ticket.tenant_id)
    }

    fn may_see(&self, state: &AppState, ticket: &Ticket) -> bool {
        let own = self.account().is_some_and(|a| ticket.reporter_account.as_deref() == Some(a) || ticket.assignee_account.as_deref() == Some(a));
        own || self.reaches(state, &HANDLING, ticket)
    }

    /// Ticket `id` if the caller may see it; `not-found` otherwise, as if it did not exist.
    async fn visible_ticket(&self, state: &AppState, id: &str) -> Result<Ticket, ApiError> {
        let ticket = state.platform.tickets.get(id).await?;
        if !self.may_see(state, &ticket) {
            return Err(TicketError::NotFound(format!("ticket `{id}`")).into());
        }
        Ok(ticket)
    }
}

/// The work order categories and their time limits.
#[utoipa::path(get, path = "/api/tickets/categories", tag = "tickets", responses((status = 200, body = Vec<Category>)), security(("session" = []), ("admin_token" = [])))]
async fn categories(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Category>>, ApiError> {
    Ok(Json(state.platform.tickets.categories().await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicketRequest {
    category: String,
    title: String,
    #[serde(default)]
    description: String,
    /// Where: an address or place name.
    #[serde(default)]
    location: String,
    /// The grid or community (staff and operators; a resident's is their community).
    #[serde(default)]
    tenant: Option<String>,
}

/// Report a problem (resident) or open a ticket (staff).
#[utoipa::path(post, path = "/api/tickets", tag = "tickets", request_body = NewTicketRequest,
    responses((status = 201, body = Ticket), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)), security(("session" = []), ("admin_token" = [])))]
async fn create(State(state): State<AppState>, caller: Caller, AppJson(request): AppJson<NewTicketRequest>) -> Result<Response, ApiError> {
    let (tenant, source, reporter) = match &caller {
        Caller::Resident(c) => {
            let community = super::caller::community_of(c)?;
            (community, Source::Resident, Some(c.sub.clone()))
        }
        Caller::Staff(_) | Caller::Platform => {
            let tenant = request
                .tenant
                .clone()
                .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Code::InvalidArgument, "name the `tenant` the ticket is about"))?;
            if !caller.reach(&state, &HANDLING).contains(&tenant) {
                return Err(ApiError::outside_area(&tenant));
            }
            (tenant, Source::Staff, None)
        }
    };
    let new = NewTicket {
        tenant_id: tenant,
        category: request.category,
        title: request.title,
        description: request.description,
        location: request.location,
        source,
        reporter_account: reporter,
        installation_id: None,
        alarm_id: None,
    };
    let ticket = state.platform.tickets.create(&new, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(ticket)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    status: Option<String>,
    /// `reported` (mine), `assigned` (to me) or absent (everything my roles reach).
    mine: Option<String>,
    tenant: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketList {
    tickets: Vec<Ticket>,
}

/// Work orders the caller may see: by status, tenant, or reported by / assigned to the caller.
#[utoipa::path(get, path = "/api/tickets", tag = "tickets", params(ListQuery), responses((status = 200, body = TicketList)), security(("session" = []), ("admin_token" = [])))]
async fn list(State(state): State<AppState>, caller: Caller, AppQuery(q): AppQuery<ListQuery>) -> Result<Json<TicketList>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, Code::QueryInvalid, format!("status `{s}` is not open, dispatched, accepted, resolved or closed"))
        })?),
    };
    let mut filter = TicketFilter { status, limit: q.limit.unwrap_or(100), ..Default::default() };
    match (q.mine.as_deref(), &caller) {
        (Some("reported"), _) | (_, Caller::Resident(_)) => {
            filter.reporter_account = Some(caller.account().ok_or_else(|| ApiError::forbidden(Code::StaffOnly, "the operator reports nothing"))?.to_string())
        }
        (Some("assigned"), _) => {
            filter.assignee_account =
                Some(caller.account().ok_or_else(|| ApiError::forbidden(Code::StaffOnly, "nothing is assigned to the operator"))?.to_string())
        }
        (Some(other), _) => return Err(ApiError::new(StatusCode::BAD_REQUEST, Code::QueryInvalid, format!("mine=`{other}` is not reported or assigned"))),
        (None, _) => {
            let reach = caller.reach(&state, &HANDLING);
            if reach.is_empty() {
                return Err(ApiError::forbidden(Code::TicketRoles, "none of your roles handles tickets"));
            }
            filter.tenants = Some(match &q.tenant {
                Some(t) if reach.contains(t) => state.platform.tenants().subtree(t),
                Some(t) => return Err(ApiError::outside_area(t)),
                None => reach,
            });
        }
    }
    Ok(Json(TicketList { tickets: state.platform.tickets.list(&filter).await? }))
}

#[derive(Serialize, ToSchema)]
pub struct TicketDetail {
    ticket: Ticket,
    /// Every step, oldest first.
    steps: Vec<Step>,
    /// The name of the node responsible now (`ticket.level_tenant_id`), for people.
    level_name: String,
    /// The caller reported it (and so may rate it once it is resolved).
    yours: bool,
    /// The numbers of its photos (`GET /api/tickets/{id}/photos/{n}`).
    photos: Vec<i64>,
}

/// One work order with its steps.
#[utoipa::path(get, path = "/api/tickets/{id}", tag = "tickets", params(("id" = String, Path, description = "ticket id")), responses((status = 200, body = TicketDetail), (status = 404, body = ErrorBody)), security(("session" = []), ("admin_token" = [])))]
async fn detail(State(state): State<AppState>, caller: Caller, AppPath(id): AppPath<String>) -> Result<Json<TicketDetail>, ApiError> {
    let ticket = caller.visible_ticket(&state, &id).await?;
    let steps = state.platform.tickets.steps(&id).await?;
    let level_name = state.platform.tenants().get(&ticket.level_tenant_id).map_or_else(|| ticket.level_tenant_id.clone(), |n| n.name.clone());
    let yours = caller.account().is_some() && caller.account() == ticket.reporter_account.as_deref();
    let photos = state.platform.tickets.photo_numbers(&id).await?;
    Ok(Json(TicketDetail { ticket, steps, level_name, yours, photos }))
}

#[derive(Serialize, ToSchema)]
pub struct AddedPhoto {
    /// The photo's number within the ticket.
    n: i64,
}

/// Add a photo to a ticket the caller may see (the reporter, its handlers): the image as the
/// body, a JPEG, PNG or WebP of at most 2 MiB; at most 4 per ticket.
#[utoipa::path(post, path = "/api/tickets/{id}/photos", tag = "tickets", params(("id" = String, Path, description = "ticket id")),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 201, body = AddedPhoto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the ticket is closed or has 4 photos"), (status = 422, body = ErrorBody)),
    security(("session" = []), ("admin_token" = [])))]
async fn add_photo(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<AddedPhoto>), ApiError> {
    let ticket = caller.visible_ticket(&state, &id).await?;
    if ticket.status == Status::Closed {
        return Err(TicketError::State { action: "add a photo to", status: Status::Closed }.into());
    }
    let who = caller.account().map_or_else(|| "operator".to_string(), str::to_string);
    let n = state.platform.tickets.add_photo(&id, &body, &who).await?;
    Ok((StatusCode::CREATED, Json(AddedPhoto { n })))
}

/// One photo of a ticket the caller may see, as the image.
#[utoipa::path(get, path = "/api/tickets/{id}/photos/{n}", tag = "tickets", params(("id" = String, Path, description = "ticket id"), ("n" = i64, Path, description = "the photo's number")),
    responses((status = 200, description = "the image", content_type = "image/jpeg"), (status = 404, body = ErrorBody)), security(("session" = []), ("admin_token" = [])))]
async fn photo(State(state): State<AppState>, caller: Caller, AppPath((id, n)): AppPath<(String, i64)>) -> Result<Response, ApiError> {
    caller.visible_ticket(&state, &id).await?;
    let photo = state.platform.tickets.photo(&id, n).await?;
    // `nosniff` and the rest come from the security-headers layer, as for every API answer;
    // the policy here adds `sandbox`: opened on its own, the image is never a document that
    // could run anything.
    let headers = [
        (axum::http::header::CONTENT_TYPE, photo.content_type),
        (axum::http::header::CACHE_CONTROL, "private, max-age=3600".to_string()),
        (axum::http::header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'; sandbox".to_string()),
    ];
    Ok((headers, photo.bytes).into_response())
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ActRequest {
    /// dispatch: the staff account to assign …
    #[serde(default)]
    assignee: Option<String>,
    /// … or the department (an organisation id of the base data).
    #[serde(default)]
    department: Option<String>,
    /// comment, resolve, supervise.
    #[serde(default)]
    note: Option<String>,
    /// close (by the reporter): 1–5.
    #[serde(default)]
    rating: Option<i64>,
    #[serde(default)]
    feedback: Option<String>,
}

/// `dispatch`, `accept`, `comment`, `resolve`, `close` or `supervise`.
#[utoipa::path(post, path = "/api/tickets/{id}/{action}", tag = "tickets", params(("id" = String, Path, description = "ticket id"), ("action" = String, Path, description = "dispatch, accept, comment, resolve, close or supervise")), request_body = ActRequest,
    responses((status = 200, body = Ticket), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "not allowed from the ticket's status")),
    security(("session" = []), ("admin_token" = [])))]
async fn act(
    State(state): State<AppState>,
    caller: Caller,
    AppPath((id, action)): AppPath<(String, String)>,
    OptionalJson(request): OptionalJson<ActRequest>,
) -> Result<Json<Ticket>, ApiError> {
    let ticket = caller.visible_ticket(&state, &id).await?;
    let note = || request.note.clone().unwrap_or_default();
    let is_reporter = caller.account().is_some() && caller.account() == ticket.reporter_account.as_deref();
    let is_assignee = caller.account().is_some() && caller.account() == ticket.assignee_account.as_deref();
    let handles = caller.reaches(&state, &HANDLING, &ticket);
    let action = match action.as_str() {
        "dispatch" if caller.reaches(&state, &DISPATCHING, &ticket) => match (&request.assignee, &request.department) {
            (Some(account), None) => Action::Dispatch { assignee_account: account.clone() },
            (None, Some(organisation)) => Action::DispatchToDepartment { organisation: organisation.clone() },
            _ => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Code::InvalidArgument,
                    "name either the `assignee` (a staff account) or the `department` (an organisation)",
                ))
            }
        },
        "accept" if is_assignee || (ticket.assignee_account.is_none() && handles) => Action::Accept,
        "comment" if is_reporter || is_assignee || handles => Action::Comment { note: note() },
        "resolve" if is_assignee || handles => Action::Resolve { note: note() },
        "close" if is_reporter => Action::Close { rating: request.rating, feedback: request.feedback.clone() },
        "close" if handles => Action::Close { rating: None, feedback: None },
        "supervise" if caller.reaches(&state, &SUPERVISING, &ticket) => Action::Supervise { note: note() },
        "dispatch" | "accept" | "comment" | "resolve" | "close" | "supervise" => {
            return Err(ApiError::forbidden(Code::TicketActionDenied, format!("you may not {action} this ticket")).with("action", action.clone()))
        }
        other => return Err(ApiError::new(StatusCode::NOT_FOUND, Code::NotFound, format!("`{other}` is not an action on tickets"))),
    };
    Ok(Json(state.platform.tickets.act(&id, &caller.actor(), &action).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Inbox {
    items: Vec<Notification>,
    unread: i64,
}

/// The signed-in person's notifications and how many are unread.
#[utoipa::path(get, path = "/api/inbox", tag = "tickets", responses((status = 200, body = Inbox)), security(("session" = [])))]
async fn inbox(State(state): State<AppState>, Session(claims): Session) -> Result<Json<Inbox>, ApiError> {
    let (items, unread) = state.platform.notifier.inbox(&claims.sub, 100).await?;
    Ok(Json(Inbox { items, unread }))
}

/// Mark a notification as read.
#[utoipa::path(post, path = "/api/inbox/{id}/read", tag = "tickets", params(("id" = String, Path, description = "message id")), responses((status = 204), (status = 404, body = ErrorBody)), security(("session" = [])))]
async fn mark_read(State(state): State<AppState>, Session(claims): Session, AppPath(id): AppPath<String>) -> Result<StatusCode, ApiError> {
    state.platform.notifier.mark_read(&claims.sub, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(categories, put_category, create, list, detail, add_photo, photo, act, inbox, mark_read))]
pub struct TicketsApi;
