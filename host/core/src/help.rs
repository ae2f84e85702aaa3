//! 一键求助: a resident presses one button and her community hears at once. The host opens an
//! urgent ticket (`emergency`, 15 minutes) for the grid she lives in, texts her emergency
//! contacts, and tells her the duty line (值班电话) to call: the one set nearest above her
//! home, so a county sets one for all and a street or community may set its own.
//!
//! A second press while her call is still open does not open another ticket or text her
//! family again: she is shown the call already made.
use crate::capabilities::base::contacts;
use crate::capabilities::base::records::Resident;
use crate::capabilities::identity::base_record;
use crate::capabilities::notify::Notifier;
use crate::capabilities::tickets::{Actor, NewTicket, Source, Ticket, TicketError, Tickets, EMERGENCY_CATEGORY};
use crate::errors::{Classified, Code, ErrorKind, Params};
use crate::store::{now_millis, Store};
use crate::tenancy::{TenantKind, TenantTree};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A press within this long of an open call shows that call instead of making another.
const REPEAT_WINDOW_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum HelpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Tickets(#[from] TicketError),
    #[error(transparent)]
    Contacts(#[from] contacts::ContactsError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Classified for HelpError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::Invalid,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Tickets(e) => e.kind(),
            Self::Contacts(e) => e.kind(),
            Self::Database(_) => ErrorKind::Unavailable,
        }
    }

    fn code(&self) -> Code {
        match self {
            Self::Tickets(e) => e.code(),
            Self::Contacts(e) => e.code(),
            other => other.kind().code(),
        }
    }

    fn params(&self) -> Params {
        match self {
            Self::Tickets(e) => e.params(),
            Self::Contacts(e) => e.params(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DutyLine {
    /// The node that set it (a county, street or community).
    pub tenant_id: String,
    pub tenant_name: String,
    pub phone: String,
}

/// What the resident is told after pressing.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HelpAnswer {
    pub ticket: Ticket,
    /// The number to call; none when no node above her has set one.
    pub duty_line: Option<DutyLine>,
    /// Names of the contacts texted now (none on a repeated press).
    pub texted: Vec<String>,
    /// Contacts the gateway could not reach.
    pub not_texted: Vec<String>,
    /// She had already called for help and the call is still open.
    pub repeated: bool,
}

/// Who is pressing.
pub struct Caller<'a> {
    pub account_id: &'a str,
    pub display_name: &'a str,
    /// Her community.
    pub community: &'a str,
}

/// A duty line as people dial it: digits, `-` and spaces, a leading `+`, 3–20 digits
/// (`110`-style short numbers and landlines with an area code).
pub fn valid_duty_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let body = phone.strip_prefix('+').unwrap_or(phone);
    (3..=20).contains(&digits) && body.chars().all(|c| c.is_ascii_digit() || c == '-' || c == ' ') && phone.chars().count() <= 24
}

/// Set (or, with `None`, remove) the duty line of `tenant_id`.
pub async fn set_duty_line(store: &Store, tree: &TenantTree, tenant_id: &str, phone: Option<&str>, by: &str) -> Result<Option<DutyLine>, HelpError> {
    let node = tree.get(tenant_id).ok_or_else(|| HelpError::NotFound(format!("no tenant `{tenant_id}`")))?;
    let phone = phone.map(str::trim).filter(|p| !p.is_empty());
    if let Some(p) = phone {
        if !valid_duty_phone(p) {
            return Err(HelpError::Invalid(format!("`{p}` is not a phone number (digits, `-`, spaces)")));
        }
    }
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM duty_lines WHERE tenant_id = $1").bind(tenant_id).execute(&mut *tx).await?;
    if let Some(p) = phone {
        sqlx::query("INSERT INTO duty_lines (tenant_id, phone, updated_by, updated_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant_id)
            .bind(p)
            .bind(by)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(phone.map(|p| DutyLine { tenant_id: tenant_id.into(), tenant_name: node.name.clone(), phone: p.into() }))
}

/// The duty lines set at `nodes`.
pub async fn duty_lines(store: &Store, tree: &TenantTree, nodes: &[String]) -> Result<Vec<DutyLine>, HelpError> {
    let rows = sqlx::query("SELECT tenant_id, phone FROM duty_lines ORDER BY tenant_id").fetch_all(&store.pool).await?;
    let mut out = Vec::new();
    for row in rows {
        let tenant_id: String = row.try_get(0)?;
        if nodes.contains(&tenant_id) {
            let tenant_name = tree.get(&tenant_id).map_or_else(|| tenant_id.clone(), |n| n.name.clone());
            out.push(DutyLine { tenant_id, tenant_name, phone: row.try_get(1)? });
        }
    }
    Ok(out)
}

/// The duty line nearest above `tenant_id` (itself first).
pub async fn duty_line_for(store: &Store, tree: &TenantTree, tenant_id: &str) -> Result<Option<DutyLine>, HelpError> {
    for node in tree.ancestors(tenant_id) {
        let phone: Option<String> = sqlx::query_scalar("SELECT phone FROM duty_lines WHERE tenant_id = $1").bind(&node.id).fetch_optional(&store.pool).await?;
        if let Some(phone) = phone {
            return Ok(Some(DutyLine { tenant_id: node.id.clone(), tenant_name: node.name.clone(), phone }));
        }
    }
    Ok(None)
}

/// The text her contacts get.
pub fn contact_text(name: &str, place: &str, duty_line: Option<&DutyLine>) -> String {
    let call = duty_line.map(|d| format!("社区值班电话{}。", d.phone)).unwrap_or_default();
    format!("【邻里】{name}（{place}）刚刚在邻里应用中按下了一键求助，社区已接到紧急工单。请尽快与她联系。{call}")
}

/// What pressing will do for her: where the call goes, the line to ring, who is texted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HelpPlan {
    /// Her grid when her community has a record of where she lives, else her community.
    pub tenant_id: String,
    pub duty_line: Option<DutyLine>,
    pub contacts: Vec<contacts::EmergencyContact>,
    /// Her community has a base record of her (without one, nobody can be texted).
    pub has_record: bool,
    #[serde(skip)]
    record: Option<Resident>,
}

/// The base record of a resident in her own community, or none. Only such a record says
/// where she lives: her call goes to her community's staff, who need an address they can
/// reach, and the contacts she keeps (`GET/PUT /api/me/contacts`) are the ones texted.
pub async fn home_record(store: &Store, tree: &TenantTree, account_id: &str, community: &str) -> Result<Option<Resident>, sqlx::Error> {
    let home = tree.subtree(community);
    let (_, record) = base_record(store, account_id, &home).await?;
    Ok(record.filter(|r| home.contains(&r.tenant_id)))
}

/// The plan for `caller`, the same for the confirmation screen and the call itself.
pub async fn plan(store: &Store, tree: &TenantTree, caller: &Caller<'_>) -> Result<HelpPlan, HelpError> {
    if tree.get(caller.community).is_none() {
        return Err(HelpError::NotFound(format!("no community `{}`", caller.community)));
    }
    let record = home_record(store, tree, caller.account_id, caller.community).await?;
    let tenant_id = record.as_ref().map_or_else(|| caller.community.to_string(), |r| r.tenant_id.clone());
    let duty_line = duty_line_for(store, tree, &tenant_id).await?;
    let contacts = match &record {
        Some(r) => contacts::contacts(store, &r.id).await?,
        None => vec![],
    };
    Ok(HelpPlan { tenant_id, duty_line, contacts, has_record: record.is_some(), record })
}

/// Press the button.
pub async fn call_for_help(store: &Store, tree: &TenantTree, tickets: &Tickets, notifier: &Notifier, caller: &Caller<'_>) -> Result<HelpAnswer, HelpError> {
    let HelpPlan { tenant_id: tenant, duty_line, contacts: people, record, .. } = plan(store, tree, caller).await?;

    let name = record.as_ref().map_or(caller.display_name, |r| r.real_name.as_str()).to_string();
    let community = tree.ancestors(&tenant).find(|n| n.kind == TenantKind::Community).map(|n| n.name.clone()).unwrap_or_default();
    let place = format!("{community}{}", record.as_ref().and_then(|r| r.address.clone()).unwrap_or_default());
    let description = if record.is_some() {
        format!("{name}在应用中按下了一键求助，请立即联系并上门。同时短信通知她的紧急联系人（{}位）。", people.len())
    } else {
        format!("{name}在应用中按下了一键求助，请立即联系并上门。社区基础数据中还没有她的档案，住址不详，请电话联系。")
    };
    let new = NewTicket {
        tenant_id: tenant,
        category: EMERGENCY_CATEGORY.into(),
        title: format!("一键求助：{name}").chars().take(100).collect(),
        description,
        location: place.clone(),
        source: Source::Resident,
        reporter_account: Some(caller.account_id.to_string()),
        installation_id: None,
        alarm_id: None,
    };
    let actor = Actor { name: caller.display_name.to_string(), account: Some(caller.account_id.to_string()) };
    let (ticket, created) = tickets.create_unless_open(&new, &actor, REPEAT_WINDOW_MS).await?;
    if !created {
        return Ok(HelpAnswer { ticket, duty_line, texted: vec![], not_texted: vec![], repeated: true });
    }

    // The ticket is the call; a text that fails is reported to her, not a reason to undo it.
    let text = contact_text(&name, &place, duty_line.as_ref());
    let (mut texted, mut not_texted) = (Vec::new(), Vec::new());
    for person in &people {
        match notifier.sms(&person.phone, &text) {
            Ok(()) => texted.push(person.name.clone()),
            Err(e) => {
                tracing::warn!(ticket = %ticket.id, "一键求助: a text to a contact failed: {e}");
                not_texted.push(person.name.clone());
            }
        }
    }
    Ok(HelpAnswer { ticket, duty_line, texted, not_texted, repeated: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duty_lines_are_numbers_people_dial() {
        for ok in ["0571-88886666", "12345", "+86 571 8888 6666", "110"] {
            assert!(valid_duty_phone(ok), "{ok}");
        }
        for bad in ["", "12", "call 0571", "0571-8888<script>", "1".repeat(30).as_str(), "++86 571"] {
            assert!(!valid_duty_phone(bad), "{bad}");
        }
    }

    #[test]
    fn the_contact_text_names_her_home_and_the_line() {
        let line = DutyLine { tenant_id: "xingfu".into(), tenant_name: "幸福社区".into(), phone: "0571-88886666".into() };
        let text = contact_text("王秀英", "幸福社区3栋2单元501", Some(&line));
        assert!(text.contains("王秀英") && text.contains("3栋2单元501") && text.contains("0571-88886666"), "{text}");
        assert!(!contact_text("王秀英", "幸福社区", None).contains("值班电话"));
    }
}
