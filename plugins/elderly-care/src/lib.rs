//! 智慧养老 (elderly care): staff build an archive of elders over 60 who live alone (tag
//! 独居老人) from the community base data, record their (or their guardian's) consent and
//! their care contacts, and keep service records. The host's device alarms drive the care:
//!
//! - a water meter idle for the configured window (a host alarm rule, e.g. 12 hours) at
//!   a consented elder's home → the contacts get a text and the grid workers an inbox
//!   message → if nobody acknowledges within `ack_seconds`, a visit ticket → a volunteer's
//!   visit is recorded against the ticket, which resolves it;
//! - a fall button or a smoke alarm → a ticket at once, and the same notifications, with
//!   the location.
//!
//! Every event handler is idempotent (alerts are keyed by alarm id), since events arrive
//! at least once.
use linli_sdk::devices::AlarmEvent;
use linli_sdk::identity::User;
use linli_sdk::prelude::*;
use linli_sdk::tickets::{NewTicket, TicketEvent};

pub const MIN_AGE: u32 = 60;
pub const LIVES_ALONE: &str = "独居老人";
const STAFF_ROLES: &[&str] = &["grid-worker", "community-worker", "street-admin", "county-admin"];
const RECORD_KINDS: &[&str] = &["visit", "call", "meal", "health", "other"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub relation: String,
    pub phone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    /// Who signed: `本人` or a guardian's name.
    pub given_by: String,
    pub recorded_by: String,
    pub at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Elder {
    /// The base-data resident id.
    pub id: String,
    pub name: String,
    pub age: u32,
    pub tenant: String,
    pub address: String,
    pub tags: Vec<String>,
    pub consent: Option<Consent>,
    pub contacts: Vec<Contact>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertStatus {
    /// Contacts told; waiting for someone to acknowledge.
    Notified,
    Acknowledged,
    /// Nobody answered in time, or an emergency: a ticket is open.
    Ticketed,
    Resolved,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// The host alarm's id.
    pub id: String,
    pub elder: Option<String>,
    pub elder_name: Option<String>,
    /// `water-idle`, `fall` or `smoke`.
    pub kind: String,
    pub device: String,
    pub location: String,
    pub tenant: String,
    pub status: AlertStatus,
    pub raised_at: u64,
    pub notified_at: u64,
    pub acknowledged_by: Option<String>,
    pub ticket: Option<String>,
    /// What happened, in order.
    pub history: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub id: String,
    pub elder: String,
    pub kind: String,
    pub note: String,
    pub by: String,
    pub at: u64,
    pub ticket: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// How long contacts have to acknowledge an idle-water alert before a ticket opens.
    pub ack_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { ack_seconds: 1800 }
    }
}

fn elders() -> Collection<Elder> {
    Collection::new("elders")
}
fn alerts() -> Collection<Alert> {
    Collection::new("alerts")
}
fn records() -> Collection<ServiceRecord> {
    Collection::new("records")
}
fn settings() -> Result<Settings, Error> {
    Ok(Collection::<Settings>::new("settings").get("settings")?.map(|v| v.value).unwrap_or_default())
}

/// What kind of care alert a device type's alarm is.
pub fn alert_kind(device_type: &str) -> Option<&'static str> {
    match device_type {
        "water-meter" => Some("water-idle"),
        "fall-button" => Some("fall"),
        "smoke-detector" => Some("smoke"),
        _ => None,
    }
}

/// Emergencies get a ticket at once; an idle meter first asks the family.
pub fn is_emergency(kind: &str) -> bool {
    kind != "water-idle"
}

/// The contact text for an alert.
pub fn sms_text(alert: &Alert) -> String {
    let who = alert.elder_name.as_deref().unwrap_or("老人");
    match alert.kind.as_str() {
        "water-idle" => format!("【邻里·智慧养老】{who}家（{}）长时间未用水，请尽快联系老人确认平安，并在应用中点击“已确认”。", alert.location),
        "fall" => format!("【邻里·智慧养老】{who}在{}按下了跌倒求助按钮，社区已派人上门，请尽快联系。", alert.location),
        _ => format!("【邻里·智慧养老】{}发生烟雾报警，社区已派人处置，请尽快联系{who}。", alert.location),
    }
}

fn require_staff() -> Result<User, Error> {
    let user = identity::require_user()?;
    if STAFF_ROLES.iter().any(|r| identity::has_role(&user, r)) {
        Ok(user)
    } else {
        Err(Error::new(ErrorCode::PermissionDenied, "仅限社区工作人员 (community staff only)"))
    }
}

fn require_helper() -> Result<User, Error> {
    let user = identity::require_user()?;
    if identity::has_role(&user, "volunteer") || STAFF_ROLES.iter().any(|r| identity::has_role(&user, r)) {
        Ok(user)
    } else {
        Err(Error::new(ErrorCode::PermissionDenied, "仅限工作人员和志愿者 (staff and volunteers only)"))
    }
}

fn elder(id: &str) -> Result<Elder, Error> {
    elders().get(id)?.map(|v| v.value).ok_or_else(|| Error::not_found(format!("没有这位老人的档案 (no elder `{id}`)")))
}

/// Build (or refresh) the archive from the base data: residents aged 60 or more tagged 独居老人
/// in the installation's area. Consent and contacts already recorded are kept.
fn sync_archive() -> Result<serde_json::Value, Error> {
    let query = base::ResidentQuery { tenant: None, tags: vec![LIVES_ALONE.to_string()], min_age: Some(MIN_AGE), max_age: None };
    let found = base::all_residents(&query)?;
    let (mut added, mut updated) = (0, 0);
    for r in &found {
        let existing = elders().get(&r.id)?;
        let fresh = Elder {
            id: r.id.clone(),
            name: r.name.clone(),
            age: r.age,
            tenant: r.tenant.clone(),
            address: r.address.clone().unwrap_or_default(),
            tags: r.tags.clone(),
            consent: existing.as_ref().and_then(|e| e.value.consent.clone()),
            contacts: existing.as_ref().map(|e| e.value.contacts.clone()).unwrap_or_default(),
        };
        match existing {
            Some(_) => updated += 1,
            None => added += 1,
        }
        elders().put(&r.id, &fresh)?;
    }
    Ok(json!({ "found": found.len(), "added": added, "updated": updated }))
}

/// The consented elder living at `location` in `tenant` (devices at a house carry its address).
fn elder_at(location: &str, tenant: &str) -> Result<Option<Elder>, Error> {
    Ok(elders()
        .list_all("")?
        .into_iter()
        .map(|v| v.value)
        .find(|e| e.consent.is_some() && e.tenant == tenant && !e.address.is_empty() && e.address == location))
}

fn notify_people(alert: &Alert, elder: Option<&Elder>) -> Result<(), Error> {
    if let Some(elder) = elder {
        for contact in &elder.contacts {
            notify::sms(&contact.phone, &sms_text(alert))?;
        }
    }
    let title = match alert.kind.as_str() {
        "water-idle" => "独居老人用水异常",
        "fall" => "跌倒求助",
        _ => "烟雾报警",
    };
    let body = format!(
        "{}（{}）。{}",
        alert.location,
        alert.elder_name.as_deref().unwrap_or("未建档"),
        if is_emergency(&alert.kind) { "已派工单，请立即处置。" } else { "已短信通知家属，等待确认。" }
    );
    notify::staff("grid-worker", &alert.tenant, title, &body, Some("/app/"))?;
    Ok(())
}

fn open_ticket(alert: &Alert, why: &str) -> Result<String, Error> {
    let (category, title) = match alert.kind.as_str() {
        "water-idle" => ("elderly-care", format!("上门探访：{}家长时间未用水", alert.elder_name.as_deref().unwrap_or("老人"))),
        "fall" => ("emergency", format!("跌倒求助：{}", alert.location)),
        _ => ("emergency", format!("烟雾报警：{}", alert.location)),
    };
    let ticket = tickets::create(&NewTicket {
        category: category.to_string(),
        title: title.chars().take(100).collect(),
        description: format!("{why}。地点：{}。", alert.location),
        tenant: Some(alert.tenant.clone()),
        location: alert.location.clone(),
        alarm: Some(alert.id.clone()),
    })?;
    Ok(ticket.id)
}

fn on_alarm_raised(event: &events::Event) -> Result<(), Error> {
    let alarm: AlarmEvent = events::payload(event)?;
    let Some(kind) = alert_kind(&alarm.device_type) else { return Ok(()) };
    if alerts().get(&alarm.id)?.is_some() {
        return Ok(()); // delivered again: already handled
    }
    let elder = elder_at(&alarm.location.label, &alarm.location.tenant)?;
    if kind == "water-idle" && elder.is_none() {
        return Ok(()); // only consented elders' meters are watched
    }
    let mut alert = Alert {
        id: alarm.id.clone(),
        elder: elder.as_ref().map(|e| e.id.clone()),
        elder_name: elder.as_ref().map(|e| e.name.clone()),
        kind: kind.to_string(),
        device: alarm.device_id.clone(),
        location: alarm.location.label.clone(),
        tenant: alarm.location.tenant.clone(),
        status: AlertStatus::Notified,
        raised_at: event.at,
        notified_at: event.at,
        acknowledged_by: None,
        ticket: None,
        history: vec![format!("{}：{}", alarm.rule_name, alarm.location.label)],
    };
    if is_emergency(kind) {
        alert.ticket = Some(open_ticket(&alert, &alarm.rule_name)?);
        alert.status = AlertStatus::Ticketed;
        alert.history.push("紧急情况，已立即派单".into());
    }
    notify_people(&alert, elder.as_ref())?;
    alert.history.push(if elder.as_ref().is_some_and(|e| !e.contacts.is_empty()) {
        "已短信通知紧急联系人".into()
    } else {
        "已通知网格员".into()
    });
    alerts().insert(&alert.id, &alert).map(|_| ()).or_else(|e| if e.code == ErrorCode::Conflict { Ok(()) } else { Err(e) })
}

fn on_alarm_cleared(event: &events::Event) -> Result<(), Error> {
    let alarm: AlarmEvent = events::payload(event)?;
    if alerts().get(&alarm.id)?.is_none() {
        return Ok(());
    }
    alerts().modify(&alarm.id, |a: &mut Alert| {
        if matches!(a.status, AlertStatus::Notified | AlertStatus::Acknowledged) {
            a.status = AlertStatus::Resolved;
            a.history.push("设备恢复正常（如已恢复用水）".into());
        }
    })?;
    Ok(())
}

/// Alerts nobody acknowledged in time become visit tickets.
fn check_alerts(now: u64) -> Result<(), Error> {
    let wait_ms = settings()?.ack_seconds.saturating_mul(1000);
    for doc in alerts().query_all("status", &AlertStatus::Notified)? {
        let alert = doc.value;
        if now.saturating_sub(alert.notified_at) < wait_ms || alert.ticket.is_some() {
            continue;
        }
        let ticket = open_ticket(&alert, &format!("已通知家属 {} 分钟无人确认", wait_ms / 60_000))?;
        alerts().modify(&alert.id, |a: &mut Alert| {
            a.status = AlertStatus::Ticketed;
            a.ticket = Some(ticket.clone());
            a.history.push("家属未在规定时间内确认，已派工单上门探访".into());
        })?;
        notify::staff(
            "grid-worker",
            &alert.tenant,
            "独居老人未确认平安，已派工单",
            &format!("{}（{}）", alert.location, alert.elder_name.as_deref().unwrap_or("")),
            Some("/app/"),
        )?;
    }
    Ok(())
}

fn on_ticket_changed(event: &events::Event) -> Result<(), Error> {
    let ticket: TicketEvent = events::payload(event)?;
    let Some(alarm) = ticket.alarm_id else { return Ok(()) };
    if alerts().get(&alarm)?.is_none() {
        return Ok(());
    }
    if matches!(ticket.change.as_str(), "resolved" | "closed" | "dispatched" | "escalated") {
        alerts().modify(&alarm, |a: &mut Alert| {
            let line = format!(
                "工单{}",
                match ticket.change.as_str() {
                    "resolved" => "已办结",
                    "closed" => "已关闭",
                    "dispatched" => "已派给处理人",
                    _ => "超时升级",
                }
            );
            if a.history.last() != Some(&line) {
                a.history.push(line);
            }
            if matches!(ticket.change.as_str(), "resolved" | "closed") {
                a.status = AlertStatus::Resolved;
            }
        })?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct DemoSeed {
    /// Elders (by name) whose consent and contact the demo records.
    consent: Vec<String>,
    contact: Contact,
    ack_seconds: u64,
}

/// The demo's care set-up, idempotent: the archive, consent and a contact for the named
/// elders, and the acknowledgement window.
fn demo_seed(seed: &DemoSeed) -> Result<serde_json::Value, Error> {
    let synced = sync_archive()?;
    let mut consented = 0;
    for doc in elders().list_all("")? {
        if !seed.consent.contains(&doc.value.name) {
            continue;
        }
        elders().modify(&doc.key, |e: &mut Elder| {
            if e.consent.is_none() {
                e.consent = Some(Consent { given_by: "本人（演示数据）".into(), recorded_by: "演示".into(), at: now_ms() });
            }
            if e.contacts.is_empty() {
                e.contacts.push(seed.contact.clone());
            }
        })?;
        consented += 1;
    }
    Collection::<Settings>::new("settings").put("settings", &Settings { ack_seconds: seed.ack_seconds.clamp(1, 86_400) })?;
    Ok(json!({ "archive": synced, "consented": consented }))
}

#[derive(Deserialize)]
struct ConsentRequest {
    given_by: String,
}

#[derive(Deserialize)]
struct RecordRequest {
    elder: String,
    kind: String,
    note: String,
    #[serde(default)]
    ticket: Option<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

struct ElderlyCare;

impl Plugin for ElderlyCare {
    fn router() -> Router {
        Router::new()
            .get("/elders", |_, _| {
                require_helper()?;
                let mut list: Vec<Elder> = elders().list_all("")?.into_iter().map(|v| v.value).collect();
                list.sort_by(|a, b| a.address.cmp(&b.address).then(a.name.cmp(&b.name)));
                Ok(Response::json(200, &list))
            })
            .post("/elders/sync", |_, _| {
                require_staff()?;
                Ok(Response::json(200, &sync_archive()?))
            })
            .get("/elders/:id", |_, params| {
                require_helper()?;
                let elder = elder(params.require("id")?)?;
                let service = records().query_all("elder", &elder.id)?.into_iter().map(|v| v.value).collect::<Vec<_>>();
                let care = alerts().query_all("elder", &elder.id)?.into_iter().map(|v| v.value).collect::<Vec<_>>();
                Ok(Response::json(200, &json!({ "elder": elder, "records": service, "alerts": care })))
            })
            .post("/elders/:id/consent", |req, params| {
                let staff = require_staff()?;
                let body: ConsentRequest = req.json()?;
                if body.given_by.trim().is_empty() {
                    return Err(Error::invalid("请填写签署人 (who gave consent)"));
                }
                let id = params.require("id")?;
                elder(id)?;
                let updated = elders().modify(id, |e: &mut Elder| {
                    e.consent = Some(Consent { given_by: body.given_by.trim().to_string(), recorded_by: staff.display_name.clone(), at: now_ms() });
                })?;
                Ok(Response::json(200, &updated.value))
            })
            .post("/elders/:id/contacts", |req, params| {
                require_staff()?;
                let contact: Contact = req.json()?;
                let digits = contact.phone.chars().filter(char::is_ascii_digit).count();
                if contact.name.trim().is_empty() || !(5..=15).contains(&digits) {
                    return Err(Error::invalid("联系人需要姓名和有效电话 (a contact needs a name and a phone number)"));
                }
                let id = params.require("id")?;
                elder(id)?;
                let updated = elders().modify(id, |e: &mut Elder| {
                    e.contacts.retain(|c| c.phone != contact.phone);
                    e.contacts.push(contact.clone());
                })?;
                Ok(Response::json(200, &updated.value))
            })
            .get("/alerts", |_, _| {
                require_helper()?;
                let mut list: Vec<Alert> = alerts().list_all("")?.into_iter().map(|v| v.value).collect();
                list.sort_by_key(|alarm| std::cmp::Reverse(alarm.raised_at));
                Ok(Response::json(200, &list))
            })
            .post("/alerts/:id/acknowledge", |_, params| {
                let user = require_helper()?;
                let id = params.require("id")?;
                let current = alerts().get(id)?.ok_or_else(|| Error::not_found(format!("no alert `{id}`")))?.value;
                if current.status != AlertStatus::Notified {
                    return Err(Error::conflict(format!(
                        "这条提醒已经{} (already handled)",
                        match current.status {
                            AlertStatus::Acknowledged => "确认",
                            AlertStatus::Ticketed => "派单",
                            _ => "处理",
                        }
                    )));
                }
                // The host alarm too, so the console shows someone took care of it.
                if let Err(e) = devices::acknowledge(id) {
                    if e.code != ErrorCode::Conflict {
                        return Err(e);
                    }
                }
                let updated = alerts().modify(id, |a: &mut Alert| {
                    a.status = AlertStatus::Acknowledged;
                    a.acknowledged_by = Some(user.display_name.clone());
                    a.history.push(format!("{} 已确认老人平安", user.display_name));
                })?;
                Ok(Response::json(200, &updated.value))
            })
            .post("/records", |req, _| {
                let user = require_helper()?;
                let body: RecordRequest = req.json()?;
                if !RECORD_KINDS.contains(&body.kind.as_str()) || body.note.trim().is_empty() {
                    return Err(Error::invalid(format!("服务记录需要类型（{}）和内容 (kind and note)", RECORD_KINDS.join("/"))));
                }
                elder(&body.elder)?;
                let at = now_ms();
                let record = ServiceRecord {
                    id: format!("{at:016}-{}", user.id.chars().take(8).collect::<String>()),
                    elder: body.elder.clone(),
                    kind: body.kind.clone(),
                    note: body.note.trim().to_string(),
                    by: user.display_name.clone(),
                    at,
                    ticket: body.ticket.clone(),
                };
                if let Some(ticket) = &body.ticket {
                    tickets::resolve(ticket, &format!("{}：{}", user.display_name, record.note))?;
                }
                records().insert(&record.id, &record)?;
                Ok(Response::json(201, &record))
            })
            .post("/demo/seed", |req, _| {
                let user = identity::require_user()?;
                if !identity::has_role(&user, "county-admin") {
                    return Err(Error::new(ErrorCode::PermissionDenied, "demo data is loaded by a county admin"));
                }
                Ok(Response::json(200, &demo_seed(&req.json()?)?))
            })
            .get("/settings", |_, _| {
                require_staff()?;
                Ok(Response::json(200, &settings()?))
            })
            .put("/settings", |req, _| {
                require_staff()?;
                let new: Settings = req.json()?;
                if new.ack_seconds == 0 || new.ack_seconds > 86_400 {
                    return Err(Error::invalid("ack_seconds is 1–86400"));
                }
                Collection::<Settings>::new("settings").put("settings", &new)?;
                Ok(Response::json(200, &new))
            })
            .get("/stats", |_, _| {
                let all: Vec<Elder> = elders().list_all("")?.into_iter().map(|v| v.value).collect();
                let care: Vec<Alert> = alerts().list_all("")?.into_iter().map(|v| v.value).collect();
                Ok(Response::json(
                    200,
                    &json!({
                        "elders": all.len(),
                        "consented": all.iter().filter(|e| e.consent.is_some()).count(),
                        "alerts_open": care.iter().filter(|a| a.status != AlertStatus::Resolved && a.status != AlertStatus::Acknowledged).count(),
                        "alerts_total": care.len(),
                        "records": records().list_all("")?.len(),
                    }),
                ))
            })
    }

    fn on_event(event: events::Event) -> Result<(), Error> {
        match event.kind.as_str() {
            "alarm.raised" => on_alarm_raised(&event),
            "alarm.cleared" => on_alarm_cleared(&event),
            "ticket.changed" => on_ticket_changed(&event),
            "schedule" => check_alerts(event.at),
            _ => Ok(()),
        }
    }
}

linli_sdk::export!(ElderlyCare);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_map_to_care_alerts() {
        assert_eq!(alert_kind("water-meter"), Some("water-idle"));
        assert_eq!(alert_kind("fall-button"), Some("fall"));
        assert_eq!(alert_kind("parking-sensor"), None);
        assert!(!is_emergency("water-idle"));
        assert!(is_emergency("fall") && is_emergency("smoke"));
    }

    #[test]
    fn contact_texts_name_the_place() {
        let alert = Alert {
            id: "a".into(),
            elder: Some("e".into()),
            elder_name: Some("王阿姨".into()),
            kind: "water-idle".into(),
            device: "wm".into(),
            location: "3栋2单元401".into(),
            tenant: "xingfu-g1".into(),
            status: AlertStatus::Notified,
            raised_at: 0,
            notified_at: 0,
            acknowledged_by: None,
            ticket: None,
            history: vec![],
        };
        let text = sms_text(&alert);
        assert!(text.contains("王阿姨") && text.contains("3栋2单元401") && text.contains("未用水"), "{text}");
    }
}
