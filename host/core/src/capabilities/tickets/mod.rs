//! Work orders (工单): one intake and dispatch (一号受理、一体派单), handling and feedback,
//! supervision (督办) and escalation up the tenant tree when overdue. `Tickets` is the
//! host-wide service used by the API (residents, staff), by alarm rules and by plugins
//! through `linli:platform/tickets`. Every change is one transaction: the ticket, a step
//! of its trace, the `ticket.changed` event and the inbox notifications.
mod adapter;
mod model;
pub mod photos;

pub use adapter::{Adapter, TicketsGrant, TicketsState, INFO};
pub use model::{
    format_time as model_time, Action, Category, NewTicket, Priority, Source, Status, Step, Ticket, TicketError, TicketFilter, EMERGENCY_CATEGORY,
};

use super::events::Outbox;
use super::notify::{staff_with_role_above, Notifier};
use crate::store::{now_millis, Store};
use crate::tenancy::SharedTree;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketsConfig {
    /// How often overdue tickets are looked for.
    pub sweep_seconds: u64,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self { sweep_seconds: 30 }
    }
}

/// Roles told when a ticket lands at their level (created there, or escalated to it).
const RESPONSIBLE_ROLES: &[&str] = &["grid-worker", "community-worker", "street-admin", "county-admin"];

pub struct Tickets {
    pub store: Store,
    outbox: Arc<Outbox>,
    tree: SharedTree,
    pub config: TicketsConfig,
}

/// Who acts on a ticket.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Shown in the trace.
    pub name: String,
    pub account: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self { name: "system".into(), account: None }
    }
}

impl Tickets {
    pub fn new(store: Store, outbox: Arc<Outbox>, tree: SharedTree, config: TicketsConfig) -> Self {
        Self { store, outbox, tree, config }
    }

    pub async fn categories(&self) -> Result<Vec<Category>, TicketError> {
        Ok(model::categories(&self.store).await?)
    }

    /// Add or change a category (time limit in minutes; 0 = overdue at once).
    pub async fn set_category(&self, category: &Category) -> Result<(), TicketError> {
        let valid_id = (2..=48).contains(&category.id.len()) && category.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_id || category.name.trim().is_empty() || !(0..=525_600).contains(&category.time_limit_minutes) {
            return Err(TicketError::Invalid("a category needs an id (2–48 of a-z, 0-9, -), a name and a time limit of 0–525600 minutes".into()));
        }
        sqlx::query(
            "INSERT INTO ticket_categories (id, name, time_limit_minutes, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_limit_minutes = excluded.time_limit_minutes",
        )
        .bind(&category.id)
        .bind(category.name.trim())
        .bind(category.time_limit_minutes)
        .bind(now_millis())
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Create a ticket inside the caller's transaction (an alarm's, say).
    pub async fn create_in(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>, new: &NewTicket, actor: &Actor) -> Result<Ticket, TicketError> {
        let tree = self.tree.snapshot();
        if tree.get(&new.tenant_id).is_none() {
            return Err(TicketError::Invalid(format!("tenant `{}` does not exist", new.tenant_id)));
        }
        new.validate()?;
        let category = model::category(&mut **tx, &new.category).await?.ok_or_else(|| TicketError::CategoryUnknown(new.category.clone()))?;
        let alarm_severity: Option<String> = match &new.alarm_id {
            Some(alarm) => sqlx::query_scalar("SELECT severity FROM alarms WHERE id = $1").bind(alarm).fetch_optional(&mut **tx).await?,
            None => None,
        };
        let now = now_millis();
        let ticket = Ticket {
            priority: Priority::of(&category.id, alarm_severity.as_deref()),
            alarm_severity,
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: new.tenant_id.clone(),
            level_tenant_id: new.tenant_id.clone(),
            category: category.id.clone(),
            category_name: category.name.clone(),
            title: new.title.trim().to_string(),
            description: new.description.trim().to_string(),
            location: new.location.trim().to_string(),
            source: new.source,
            reporter_account: new.reporter_account.clone(),
            installation_id: new.installation_id.clone(),
            alarm_id: new.alarm_id.clone(),
            status: Status::Open,
            assignee_account: None,
            assignee_name: None,
            due_at: now.saturating_add(category.time_limit_ms()),
            escalations: 0,
            supervised: false,
            rating: None,
            feedback: None,
            created_at: now,
            updated_at: now,
        };
        model::insert(&mut **tx, &self.store.vault, &ticket).await?;
        model::add_step(tx, &self.store.vault, &ticket.id, &actor.name, "created", &ticket.description).await?;
        self.outbox.publish_in(tx, "ticket.changed", &ticket.tenant_id, &ticket.id, &ticket.event("created")).await?;
        self.tell_level(tx, &ticket, &format!("新工单：{}", ticket.title), &format!("{}（{}），请及时派单处理。", ticket.location, ticket.category_name))
            .await?;
        Ok(ticket)
    }

    pub async fn create(&self, new: &NewTicket, actor: &Actor) -> Result<Ticket, TicketError> {
        let mut tx = self.store.begin_write().await?;
        let ticket = self.create_in(&mut tx, new, actor).await?;
        tx.commit().await?;
        self.outbox.wake.notify_one();
        Ok(ticket)
    }

    /// Create `new` unless its reporter already has a ticket of the same category, still
    /// open, created within `window_ms`: then that one is answered (`false`). Calls of one
    /// reporter are taken one at a time — a row lock on the account on PostgreSQL, the write
    /// lock on SQLite — so two presses at the same moment open one ticket.
    pub async fn create_unless_open(&self, new: &NewTicket, actor: &Actor, window_ms: i64) -> Result<(Ticket, bool), TicketError> {
        let reporter = new.reporter_account.as_deref().ok_or_else(|| TicketError::Invalid("the ticket needs its reporter".into()))?;
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE accounts SET failed_logins = failed_logins WHERE id = $1").bind(reporter).execute(&mut *tx).await?;
        let open: Option<String> = sqlx::query_scalar(
            "SELECT id FROM tickets WHERE reporter_account = $1 AND category_id = $2 AND status NOT IN ('resolved', 'closed') AND created_at > $3
               ORDER BY created_at DESC LIMIT 1",
        )
        .bind(reporter)
        .bind(&new.category)
        .bind(now_millis() - window_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = open {
            tx.rollback().await?;
            return Ok((self.get(&id).await?, false));
        }
        let ticket = self.create_in(&mut tx, new, actor).await?;
        tx.commit().await?;
        self.outbox.wake.notify_one();
        Ok((ticket, true))
    }

    /// Inbox messages to the staff responsible at the ticket's current level.
    async fn tell_level(&self, conn: &mut sqlx::AnyConnection, ticket: &Ticket, title: &str, body: &str) -> Result<(), sqlx::Error> {
        let tree = self.tree.snapshot();
        let mut told = Vec::new();
        for role in RESPONSIBLE_ROLES {
            // Only roles held exactly at this level or the nearest above it: a county admin
            // hears of grid tickets only when they escalate that far.
            for account in staff_with_role_above(&mut *conn, &tree, role, &ticket.level_tenant_id).await? {
                if !told.contains(&account) {
                    Notifier::inbox_in(
                        &mut *conn,
                        &self.store.vault,
                        &account,
                        title,
                        body,
                        Some(&format!("/app/#/ticket/{}", ticket.id)),
                        &format!("ticket:{}", ticket.id),
                    )
                    .await?;
                    told.push(account);
                }
            }
            if !told.is_empty() {
                break;
            }
        }
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Ticket, TicketError> {
        model::get(&self.store.pool, &self.store.vault, id).await?.ok_or_else(|| TicketError::NotFound(format!("ticket `{id}`")))
    }

    pub async fn steps(&self, id: &str) -> Result<Vec<Step>, TicketError> {
        Ok(model::steps(&self.store, id).await?)
    }

    pub async fn list(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, TicketError> {
        Ok(model::list(&self.store, filter).await?)
    }

    /// Apply one action, checking that it is allowed from the ticket's status.
    pub async fn act(&self, id: &str, actor: &Actor, action: &Action) -> Result<Ticket, TicketError> {
        let mut tx = self.store.begin_write().await?;
        let mut ticket = model::get(&mut *tx, &self.store.vault, id).await?.ok_or_else(|| TicketError::NotFound(format!("ticket `{id}`")))?;
        let before = ticket.clone();
        let (verb, mut note) = ticket.apply(action, actor, now_millis())?;
        match action {
            Action::Dispatch { assignee_account } => {
                let name: Option<String> = sqlx::query_scalar("SELECT display_name FROM accounts WHERE id = $1 AND kind = 'staff'")
                    .bind(assignee_account)
                    .fetch_optional(&mut *tx)
                    .await?;
                let name = name.ok_or_else(|| TicketError::Invalid(format!("`{assignee_account}` is not a staff account")))?;
                note = format!("派给 {name}");
                ticket.assignee_name = Some(name);
            }
            Action::DispatchToDepartment { organisation } => {
                let found: Option<(String, String)> =
                    sqlx::query_as("SELECT name, tenant_id FROM base_organisations WHERE id = $1").bind(organisation).fetch_optional(&mut *tx).await?;
                let (name, node) = found.ok_or_else(|| TicketError::Invalid(format!("organisation `{organisation}` does not exist in the base data")))?;
                // A community's company or a county's centre serves the places below it: not
                // a ticket of another community or county.
                let tree = self.tree.snapshot();
                if !tree.is_within(&ticket.tenant_id, &node) && !tree.is_within(&node, &ticket.tenant_id) {
                    return Err(TicketError::Invalid(format!("organisation `{organisation}` ({name}) does not serve the ticket's place")));
                }
                note = format!("派往部门：{name}");
                ticket.assignee_name = Some(name);
            }
            _ => {}
        }
        if !model::update(&mut *tx, &ticket, before.updated_at).await? {
            return Err(TicketError::Changed(id.to_string()));
        }
        model::add_step(&mut tx, &self.store.vault, id, &actor.name, verb, &note).await?;
        self.outbox.publish_in(&mut tx, "ticket.changed", &ticket.tenant_id, &ticket.id, &ticket.event(verb)).await?;
        let link = format!("/app/#/ticket/{}", ticket.id);
        let source = format!("ticket:{}", ticket.id);
        match action {
            Action::Dispatch { assignee_account } => {
                let body = format!("{}（{}），请在{}前处理。", ticket.location, ticket.category_name, model::format_time(ticket.due_at));
                Notifier::inbox_in(&mut tx, &self.store.vault, assignee_account, &format!("派单：{}", ticket.title), &body, Some(&link), &source).await?;
            }
            Action::Resolve { .. } => {
                if let Some(reporter) = &ticket.reporter_account {
                    let body = format!("处理结果：{note}。请对本次服务进行评价。");
                    Notifier::inbox_in(&mut tx, &self.store.vault, reporter, &format!("您反映的问题已处理：{}", ticket.title), &body, Some(&link), &source)
                        .await?;
                }
            }
            Action::Supervise { .. } => {
                if let Some(assignee) = &ticket.assignee_account {
                    Notifier::inbox_in(&mut tx, &self.store.vault, assignee, &format!("督办：{}", ticket.title), &note, Some(&link), &source).await?;
                }
            }
            _ => {}
        }
        tx.commit().await?;
        self.outbox.wake.notify_one();
        Ok(ticket)
    }

    /// Move every overdue, unresolved ticket one level up the tenant tree and restart its
    /// clock. Returns how many escalated.
    pub async fn escalate_overdue(&self) -> Result<usize, TicketError> {
        let now = now_millis();
        let overdue = model::overdue(&self.store, now).await?;
        let tree = self.tree.snapshot();
        let mut escalated = 0;
        for ticket in overdue {
            let mut tx = self.store.begin_write().await?;
            let Some(category) = model::category(&mut *tx, &ticket.category).await? else { continue };
            let parent = tree.get(&ticket.level_tenant_id).and_then(|n| n.parent_id.clone());
            let mut next = ticket.clone();
            next.level_tenant_id = parent.clone().unwrap_or_else(|| ticket.level_tenant_id.clone());
            next.escalations += 1;
            next.supervised = next.supervised || parent.is_none();
            next.due_at = now.saturating_add(category.time_limit_ms());
            next.updated_at = now;
            if !model::update(&mut *tx, &next, ticket.updated_at).await? {
                continue;
            }
            let level_name = tree.get(&next.level_tenant_id).map(|n| n.name.clone()).unwrap_or_else(|| next.level_tenant_id.clone());
            let note = match &parent {
                Some(_) => format!("超时未办结，升级至{level_name}"),
                None => format!("超时未办结，已在最高层级（{level_name}），列入督办"),
            };
            model::add_step(&mut tx, &self.store.vault, &next.id, "system", "escalated", &note).await?;
            self.outbox.publish_in(&mut tx, "ticket.changed", &next.tenant_id, &next.id, &next.event("escalated")).await?;
            self.tell_level(&mut tx, &next, &format!("工单超时升级：{}", next.title), &format!("{}（{}）{}。", next.location, next.category_name, note))
                .await?;
            tx.commit().await?;
            escalated += 1;
        }
        if escalated > 0 {
            self.outbox.wake.notify_one();
        }
        Ok(escalated)
    }
}

/// Escalates overdue tickets every `sweep_seconds` until `stopped` resolves.
pub async fn run_escalation(tickets: Arc<Tickets>, stopped: impl std::future::Future<Output = ()>) {
    let every = Duration::from_secs(tickets.config.sweep_seconds.max(1));
    let sweep = async {
        loop {
            tokio::time::sleep(every).await;
            match tickets.escalate_overdue().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tickets = n, "overdue tickets escalated"),
                Err(e) => tracing::warn!("ticket escalation: {e}"),
            }
        }
    };
    tokio::select! {
        _ = stopped => {}
        _ = sweep => {}
    }
}
