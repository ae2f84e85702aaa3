//! The WIT adapter of `tickets` for plugins: tickets of the installation's area.
use super::{Action, Actor, NewTicket, Source, Status, Ticket, TicketError, TicketFilter, Tickets};
use crate::bindings::linli::platform::{tickets as wit, types};
use crate::capabilities::{Capability, CapabilityInfo, Deadline, Grant, RequestContext};
use crate::tenancy::SharedTree;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

pub const INFO: CapabilityInfo = CapabilityInfo {
    name: "tickets",
    interface: "linli:platform/tickets",
    summary_zh: "工单：创建、查看、备注和办结辖区内的工单；替登录居民报事（附照片），由她评价",
    summary_en: "Work orders: create, read, comment on and resolve tickets within the installation's area; report one for the signed-in resident (with photos), who rates it",
    always_granted: false,
    scopes: &[],
};

pub struct TicketsGrant {
    tickets: Arc<Tickets>,
    tree: SharedTree,
    plugin_id: String,
    installation_id: String,
    tenant_id: String,
}

impl TicketsGrant {
    fn actor(&self) -> Actor {
        Actor { name: format!("plugin:{}", self.plugin_id), account: None }
    }

    /// A new ticket of this installation, reported by `resident` (account, name) when given.
    async fn create(&self, ticket: wit::NewTicket, resident: Option<(String, String)>) -> Result<Ticket, TicketError> {
        let tenant = ticket.tenant.unwrap_or_else(|| self.tenant_id.clone());
        if !self.tree.snapshot().is_within(&tenant, &self.tenant_id) {
            return Err(TicketError::Invalid(format!("tenant `{tenant}` is not within this installation's area")));
        }
        let actor = match &resident {
            Some((account, name)) => Actor { name: format!("{name}（经 plugin:{}）", self.plugin_id), account: Some(account.clone()) },
            None => self.actor(),
        };
        let new = NewTicket {
            tenant_id: tenant,
            category: ticket.category,
            title: ticket.title,
            description: ticket.description,
            location: ticket.location,
            source: Source::Plugin,
            reporter_account: resident.map(|(account, _)| account),
            installation_id: Some(self.installation_id.clone()),
            alarm_id: ticket.alarm,
        };
        self.tickets.create(&new, &actor).await
    }

    /// A ticket this installation created, or `not-found`.
    async fn created_here(&self, id: &str) -> Result<Ticket, TicketError> {
        let ticket = self.own(id).await?;
        if ticket.installation_id.as_deref() != Some(self.installation_id.as_str()) {
            return Err(TicketError::NotFound(format!("ticket `{id}` of this installation")));
        }
        Ok(ticket)
    }

    /// A ticket of this installation's area, or `not-found`.
    async fn own(&self, id: &str) -> Result<Ticket, TicketError> {
        let ticket = self.tickets.get(id).await?;
        if self.tree.snapshot().is_within(&ticket.tenant_id, &self.tenant_id) {
            Ok(ticket)
        } else {
            Err(TicketError::NotFound(format!("ticket `{id}`")))
        }
    }
}

pub struct TicketsState {
    grant: Option<Arc<TicketsGrant>>,
    deadline: Deadline,
    /// The signed-in resident of the request (account id, name), for `report` and `rate`.
    resident: Option<(String, String)>,
}

impl TicketsState {
    pub fn new(grant: Option<Arc<TicketsGrant>>, deadline: Deadline, resident: Option<(String, String)>) -> Self {
        Self { grant, deadline, resident }
    }

    fn resident(&self, call: &str) -> Result<(String, String), types::Error> {
        self.resident.clone().ok_or_else(|| types::Error {
            code: types::ErrorCode::PermissionDenied,
            message: format!("tickets.{call} acts for the signed-in resident, and this request has none"),
        })
    }

    async fn with<T, F>(&self, op: impl FnOnce(Arc<TicketsGrant>) -> F) -> Result<T, types::Error>
    where
        F: std::future::Future<Output = Result<T, TicketError>>,
    {
        crate::capabilities::call(&self.grant, self.deadline, INFO.name, op).await
    }
}

impl From<Ticket> for wit::Ticket {
    fn from(t: Ticket) -> Self {
        Self {
            id: t.id,
            category: t.category,
            title: t.title,
            description: t.description,
            status: t.status.as_str().to_string(),
            tenant: t.tenant_id,
            level: t.level_tenant_id,
            location: t.location,
            assignee: t.assignee_name,
            due_at: u64::try_from(t.due_at).unwrap_or_default(),
            escalations: u32::try_from(t.escalations).unwrap_or_default(),
            supervised: t.supervised,
            rating: t.rating.and_then(|r| u8::try_from(r).ok()),
            alarm: t.alarm_id,
            created_at: u64::try_from(t.created_at).unwrap_or_default(),
        }
    }
}

/// The WIT adapter the registry links (see `capabilities::Capability`).
pub struct Adapter;

impl Capability for Adapter {
    const INFO: CapabilityInfo = INFO;
    type Configured = TicketsGrant;
    type State = TicketsState;

    fn configure(grant: &Grant<'_>) -> TicketsGrant {
        TicketsGrant {
            tickets: grant.tickets.clone(),
            tree: grant.tree.clone(),
            plugin_id: grant.plugin_id.to_string(),
            installation_id: crate::tenancy::Installation::new_id(grant.plugin_id, grant.tenant_id),
            tenant_id: grant.tenant_id.to_string(),
        }
    }

    fn prepare(configured: Option<Arc<TicketsGrant>>, request: &RequestContext) -> TicketsState {
        let resident =
            request.user.as_ref().filter(|u| u.kind == crate::auth::accounts::AccountKind::Resident).map(|u| (u.account_id.clone(), u.display_name.clone()));
        TicketsState::new(configured, request.deadline, resident)
    }

    fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, project: fn(&mut T) -> &mut TicketsState) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, HasSelf<TicketsState>>(linker, project)
    }
}

impl wit::Host for TicketsState {
    async fn categories(&mut self) -> Result<Vec<wit::Category>, types::Error> {
        let categories = self.with(|g| async move { g.tickets.categories().await }).await?;
        Ok(categories
            .into_iter()
            .map(|c| wit::Category { id: c.id, name: c.name, time_limit_minutes: u32::try_from(c.time_limit_minutes).unwrap_or(u32::MAX) })
            .collect())
    }

    async fn create(&mut self, ticket: wit::NewTicket) -> Result<wit::Ticket, types::Error> {
        self.with(|g| async move { g.create(ticket, None).await }).await.map(Into::into)
    }

    async fn report(&mut self, ticket: wit::NewTicket) -> Result<wit::Ticket, types::Error> {
        let resident = self.resident("report")?;
        self.with(|g| async move { g.create(ticket, Some(resident)).await }).await.map(Into::into)
    }

    async fn add_photo(&mut self, id: String, image: Vec<u8>) -> Result<u32, types::Error> {
        self.with(|g| async move {
            let ticket = g.created_here(&id).await?;
            if ticket.status == Status::Closed {
                return Err(TicketError::State { action: "add a photo to", status: Status::Closed });
            }
            let n = g.tickets.add_photo(&id, &image, &g.actor().name).await?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn rate(&mut self, id: String, rating: u8, feedback: Option<String>) -> Result<wit::Ticket, types::Error> {
        let (account, name) = self.resident("rate")?;
        // Only through the plugin she reported it with: another plugin she opens cannot close her tickets.
        let ticket = self.with(|g| async move { g.created_here(&id).await }).await?;
        if ticket.reporter_account.as_deref() != Some(account.as_str()) {
            return Err(types::Error { code: types::ErrorCode::PermissionDenied, message: "only the resident who reported a ticket rates it".into() });
        }
        let action = Action::Close { rating: Some(i64::from(rating)), feedback };
        self.with(|g| async move { g.tickets.act(&ticket.id, &Actor { name, account: Some(account) }, &action).await }).await.map(Into::into)
    }

    async fn dispatch_to_organisation(&mut self, id: String, organisation: String) -> Result<wit::Ticket, types::Error> {
        self.with(|g| async move {
            g.created_here(&id).await?;
            g.tickets.act(&id, &g.actor(), &Action::DispatchToDepartment { organisation }).await
        })
        .await
        .map(Into::into)
    }

    async fn get(&mut self, id: String) -> Result<wit::Ticket, types::Error> {
        self.with(|g| async move { g.own(&id).await }).await.map(Into::into)
    }

    async fn steps(&mut self, id: String) -> Result<Vec<wit::Step>, types::Error> {
        let steps = self
            .with(|g| async move {
                g.own(&id).await?;
                g.tickets.steps(&id).await
            })
            .await?;
        Ok(steps.into_iter().map(|s| wit::Step { at: u64::try_from(s.at).unwrap_or_default(), actor: s.actor, action: s.action, note: s.note }).collect())
    }

    async fn list_created(&mut self, status: Option<String>, limit: u32) -> Result<Vec<wit::Ticket>, types::Error> {
        self.with(|g| async move {
            let status = match status.as_deref() {
                None => None,
                Some(s) => {
                    Some(Status::parse(s).ok_or_else(|| TicketError::Invalid(format!("status `{s}` is not open, dispatched, accepted, resolved or closed")))?)
                }
            };
            g.tickets.list(&TicketFilter { installation_id: Some(g.installation_id.clone()), status, limit, ..Default::default() }).await
        })
        .await
        .map(|list| list.into_iter().map(Into::into).collect())
    }

    async fn comment(&mut self, id: String, note: String) -> Result<wit::Ticket, types::Error> {
        self.with(|g| async move {
            g.own(&id).await?;
            g.tickets.act(&id, &g.actor(), &Action::Comment { note }).await
        })
        .await
        .map(Into::into)
    }

    async fn resolve(&mut self, id: String, note: String) -> Result<wit::Ticket, types::Error> {
        self.with(|g| async move {
            g.own(&id).await?;
            g.tickets.act(&id, &g.actor(), &Action::Resolve { note }).await
        })
        .await
        .map(Into::into)
    }
}
