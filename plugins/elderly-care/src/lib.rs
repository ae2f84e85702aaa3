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
//! The elder has a page of her own (`/mine`: her alerts and what was done, her service
//! records and next visit, her emergency contacts, the people following her) once she lets
//! the plugin know which base record she is (`identity:resident-record`, with her consent).
//! She invites her family with a one-time code; whoever enters it follows her alerts (an
//! inbox message on every alert, the alerts on their page, and they may answer "she is
//! fine"). Emergency contacts are the host's (`base:contacts`), the same she keeps in the
//! app and 一键求助 texts.
//!
//! Every event handler is idempotent (alerts are keyed by alarm id), since events arrive
//! at least once.
use linli_sdk::base::EmergencyContact;
use linli_sdk::devices::AlarmEvent;
use linli_sdk::identity::User;
use linli_sdk::prelude::*;
use linli_sdk::tickets::{NewTicket, TicketEvent};

pub const MIN_AGE: u32 = 60;
pub const LIVES_ALONE: &str = "独居老人";
const STAFF_ROLES: &[&str] = &["grid-worker", "community-worker", "street-admin", "county-admin"];
const RECORD_KINDS: &[&str] = &["visit", "call", "meal", "health", "other"];

/// An invitation code is this many digits, valid this long, and a person may get this many
/// wrong before waiting an hour: guessing one of 10⁸ codes is hopeless.
const INVITE_DIGITS: u32 = 8;
const INVITE_MS: u64 = 24 * 3_600_000;
const MAX_WRONG_CODES: u32 = 5;

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
    /// Contacts kept here before they moved to the host's base data (`base:contacts`); moved
    /// over at the next archive sync once the county grants that, then empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<EmergencyContact>,
    /// The next planned visit (`YYYY-MM-DD`), set with a service record.
    #[serde(default)]
    pub next_visit: Option<String>,
}

/// Someone following an elder's alerts: her family, with her consent (her invitation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Follower {
    pub elder: String,
    pub elder_name: String,
    /// The follower's user id (pairwise, from `identity`).
    pub user: String,
    pub name: String,
    pub since: u64,
}

/// A one-time code the elder gives her family.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invite {
    pub code: String,
    pub elder: String,
    /// Her user id, to tell her who accepted.
    pub by: String,
    pub expires_at: u64,
}

/// Wrong codes a person entered in the current hour.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Attempts {
    window_start: u64,
    wrong: u32,
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
fn followers() -> Collection<Follower> {
    Collection::new("family")
}
fn invites() -> Collection<Invite> {
    Collection::new("invites")
}
fn attempts() -> Collection<Attempts> {
    Collection::new("attempts")
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
/// in the installation's area. Consent and plans already recorded are kept; contacts kept
/// here by an earlier version move to the host.
fn sync_archive() -> Result<serde_json::Value, Error> {
    let query = base::ResidentQuery { tenant: None, tags: vec![LIVES_ALONE.to_string()], min_age: Some(MIN_AGE), max_age: None };
    let found = base::all_residents(&query)?;
    let (mut added, mut updated) = (0, 0);
    for r in &found {
        let existing = elders().get(&r.id)?.map(|v| v.value);
        // Contacts an earlier version kept here stay here until the county grants
        // `base:contacts`; then they move to the host, unless she already keeps some there.
        let mut kept = vec![];
        if let Some(old) = existing.as_ref().filter(|e| !e.contacts.is_empty()) {
            match base::emergency_contacts(&r.id) {
                Ok(list) if list.is_empty() => base::set_emergency_contacts(&r.id, &old.contacts)?,
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::PermissionDenied => kept = old.contacts.clone(),
                Err(e) => return Err(e),
            }
        }
        let fresh = Elder {
            id: r.id.clone(),
            name: r.name.clone(),
            age: r.age,
            tenant: r.tenant.clone(),
            address: r.address.clone().unwrap_or_default(),
            tags: r.tags.clone(),
            consent: existing.as_ref().and_then(|e| e.consent.clone()),
            contacts: kept,
            next_visit: existing.as_ref().and_then(|e| e.next_visit.clone()),
        };
        match existing {
            Some(_) => updated += 1,
            None => added += 1,
        }
        elders().put(&r.id, &fresh)?;
    }
    Ok(json!({ "found": found.len(), "added": added, "updated": updated }))
}

/// The elder's emergency contacts. When the host's cannot be read (the county did not grant
/// `base:contacts`), those an earlier version kept here, and a log line: an alarm still
/// reaches her family if it can, and the grid workers always.
fn contacts_of(elder: &Elder) -> Vec<EmergencyContact> {
    match base::emergency_contacts(&elder.id) {
        Ok(list) => list,
        Err(e) => {
            log::warn(&format!("contacts of {} not read: {}", elder.id, e.message));
            elder.contacts.clone()
        }
    }
}

/// The consented elder living at `location` in `tenant` (devices at a house carry its address).
fn elder_at(location: &str, tenant: &str) -> Result<Option<Elder>, Error> {
    Ok(elders()
        .list_all("")?
        .into_iter()
        .map(|v| v.value)
        .find(|e| e.consent.is_some() && e.tenant == tenant && !e.address.is_empty() && e.address == location))
}

/// Who hears of an alert: her contacts by text, her followers in their inbox, the grid
/// workers in theirs. Returns how many contacts were texted.
fn notify_people(alert: &Alert, elder: Option<&Elder>) -> Result<usize, Error> {
    let mut texted = 0;
    if let Some(elder) = elder {
        for contact in contacts_of(elder) {
            notify::sms(&contact.phone, &sms_text(alert))?;
            texted += 1;
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
    if let Some(elder) = elder {
        let text = family_text(alert);
        for follower in followers().query_all("elder", &elder.id)? {
            notify::user(&follower.value.user, &format!("{}：{}", title, elder.name), &text, None)?;
        }
    }
    Ok(texted)
}

/// What her family reads in the app.
pub fn family_text(alert: &Alert) -> String {
    let who = alert.elder_name.as_deref().unwrap_or("老人");
    match alert.kind.as_str() {
        "water-idle" => format!("{who}家长时间未用水。请联系她确认平安，然后在“智慧养老”中点击“她很平安”。"),
        "fall" => format!("{who}按下了跌倒求助按钮，社区已派人上门。"),
        _ => format!("{who}家烟雾报警，社区已派人处置。"),
    }
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
    let texted = notify_people(&alert, elder.as_ref())?;
    alert.history.push(if texted > 0 { "已短信通知紧急联系人".into() } else { "已通知网格员".into() });
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
    contact: EmergencyContact,
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
        })?;
        if base::emergency_contacts(&doc.key)?.is_empty() {
            base::set_emergency_contacts(&doc.key, std::slice::from_ref(&seed.contact))?;
        }
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
    /// The next planned visit, `YYYY-MM-DD`.
    #[serde(default)]
    next_visit: Option<String>,
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let number = |p: &str, len: usize, range: std::ops::RangeInclusive<u32>| p.len() == len && p.parse::<u32>().is_ok_and(|n| range.contains(&n));
    parts.len() == 3 && number(parts[0], 4, 2000..=2100) && number(parts[1], 2, 1..=12) && number(parts[2], 2, 1..=31)
}

#[derive(Deserialize)]
struct ContactsRequest {
    contacts: Vec<EmergencyContact>,
}

#[derive(Deserialize)]
struct JoinRequest {
    code: String,
}

/// The signed-in resident's archive entry: `Ok(None)` when she has no base record or is not
/// in the archive. Asks the host which record she is (her consent; `consent-required` until
/// she gives it).
fn own_elder() -> Result<Option<Elder>, Error> {
    let Some(record) = identity::resident_record()? else { return Ok(None) };
    Ok(elders().get(&record)?.map(|v| v.value))
}

fn require_own_elder() -> Result<(User, Elder), Error> {
    let user = identity::require_user()?;
    let elder = own_elder()?.ok_or_else(|| Error::not_found("您不在养老服务档案中 (you are not in the care archive)"))?;
    Ok((user, elder))
}

fn follows(user: &str, elder: &str) -> Result<bool, Error> {
    Ok(followers().get(&format!("{elder}:{user}"))?.is_some())
}

fn alerts_of(elder: &str, limit: usize) -> Result<Vec<Alert>, Error> {
    let mut list: Vec<Alert> = alerts().query_all("elder", &elder.to_string())?.into_iter().map(|v| v.value).collect();
    list.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
    list.truncate(limit);
    Ok(list)
}

/// A random code of `INVITE_DIGITS` digits from the host's WASI random source.
fn new_code() -> Result<String, Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Error::new(ErrorCode::Internal, format!("no random source: {e}")))?;
    let n = u64::from_le_bytes(bytes) % 10u64.pow(INVITE_DIGITS);
    Ok(format!("{n:0width$}", width = INVITE_DIGITS as usize))
}

/// Her page: who she is in the archive, her alerts and what was done, her service records,
/// the next visit, her contacts, her followers and the open invitation.
fn my_page() -> Result<serde_json::Value, Error> {
    let user = identity::require_user()?;
    let Some(elder) = own_elder()? else {
        return Ok(json!({ "elder": null }));
    };
    let mut service: Vec<ServiceRecord> = records().query_all("elder", &elder.id)?.into_iter().map(|v| v.value).collect();
    service.sort_by_key(|r| std::cmp::Reverse(r.at));
    let family: Vec<serde_json::Value> =
        followers().query_all("elder", &elder.id)?.into_iter().map(|f| json!({ "user": f.value.user, "name": f.value.name, "since": f.value.since })).collect();
    let invite = invites().query_all("elder", &elder.id)?.into_iter().map(|v| v.value).find(|i| i.by == user.id && i.expires_at > now_ms());
    // Her page works without contacts when the county did not grant `base:contacts`.
    let (contacts, contacts_available) = match base::emergency_contacts(&elder.id) {
        Ok(list) => (list, true),
        Err(e) if e.code == ErrorCode::PermissionDenied => (vec![], false),
        Err(e) => return Err(e),
    };
    Ok(json!({
        "elder": { "id": elder.id, "name": elder.name, "address": elder.address, "consent": elder.consent, "next_visit": elder.next_visit },
        "alerts": alerts_of(&elder.id, 20)?,
        "records": service,
        "contacts": contacts,
        "contacts_available": contacts_available,
        "followers": family,
        "invite": invite.map(|i| json!({ "code": i.code, "expires_at": i.expires_at })),
    }))
}

/// The elders the signed-in person follows, each with her recent alerts.
fn family_page() -> Result<serde_json::Value, Error> {
    let user = identity::require_user()?;
    let mut out = Vec::new();
    for f in followers().query_all("user", &user.id)? {
        out.push(json!({ "elder": f.value.elder, "name": f.value.elder_name, "since": f.value.since, "alerts": alerts_of(&f.value.elder, 10)? }));
    }
    Ok(json!({ "following": out }))
}

/// Enter a code: follow the elder who made it. Wrong codes count against the person.
fn join_family(code: &str) -> Result<serde_json::Value, Error> {
    let user = identity::require_user()?;
    let now = now_ms();
    let mut tries = attempts().get(&user.id)?.map(|v| v.value).unwrap_or_default();
    if now.saturating_sub(tries.window_start) > 3_600_000 {
        tries = Attempts { window_start: now, wrong: 0 };
    }
    if tries.wrong >= MAX_WRONG_CODES {
        return Err(Error::new(ErrorCode::LimitExceeded, "输错次数过多，请一小时后再试 (too many wrong codes; try again in an hour)"));
    }
    let code = code.trim();
    let invite = invites().get(code)?.map(|v| v.value).filter(|i| i.expires_at > now && code.len() == INVITE_DIGITS as usize);
    let Some(invite) = invite else {
        tries.wrong += 1;
        attempts().put(&user.id, &tries)?;
        return Err(Error::not_found("邀请码不正确或已过期 (the code is wrong or has expired)"));
    };
    if invite.by == user.id {
        return Err(Error::invalid("这是您自己的邀请码，请交给家人输入 (give the code to your family)"));
    }
    let elder = elder(&invite.elder)?;
    let follower = Follower { elder: elder.id.clone(), elder_name: elder.name.clone(), user: user.id.clone(), name: user.display_name.clone(), since: now };
    followers().put(&format!("{}:{}", elder.id, user.id), &follower)?;
    invites().delete(code)?;
    notify::user(&invite.by, "家人已关注您的提醒", &format!("{}已通过邀请码关注您的养老提醒。如不认识此人，请在“智慧养老”中移除。", user.display_name), None)?;
    Ok(json!({ "elder": elder.id, "name": elder.name }))
}

fn is_mobile(phone: &str) -> bool {
    let phone = phone.trim();
    phone.len() == 11 && phone.starts_with('1') && phone.chars().all(|c| c.is_ascii_digit())
}

/// An archive entry in the staff's list: her contacts are on her own page.
fn without_contacts(elder: &Elder) -> Result<serde_json::Value, Error> {
    let mut shown = serde_json::to_value(elder).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    if let Some(entry) = shown.as_object_mut() {
        entry.remove("contacts");
    }
    Ok(shown)
}

/// An archive entry as staff see it: with her emergency contacts from the host.
fn with_contacts(elder: &Elder) -> Result<serde_json::Value, Error> {
    let mut shown = serde_json::to_value(elder).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    shown["contacts"] = serde_json::to_value(contacts_of(elder)).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    Ok(shown)
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
                // Contacts are read one elder at a time (`/elders/:id`): each read is audited
                // by the host, and a list of hundreds must not write hundreds of entries.
                let shown: Vec<serde_json::Value> = list.iter().map(without_contacts).collect::<Result<_, _>>()?;
                Ok(Response::json(200, &shown))
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
                Ok(Response::json(200, &json!({ "elder": with_contacts(&elder)?, "records": service, "alerts": care })))
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
                let contact: EmergencyContact = req.json()?;
                if contact.name.trim().is_empty() || !is_mobile(&contact.phone) {
                    return Err(Error::invalid("联系人需要姓名和11位手机号 (a contact needs a name and a mobile number)"));
                }
                let id = params.require("id")?;
                let elder = elder(id)?;
                let mut list = base::emergency_contacts(&elder.id)?;
                list.retain(|c| c.phone != contact.phone.trim());
                list.push(contact);
                base::set_emergency_contacts(&elder.id, &list)?;
                Ok(Response::json(200, &with_contacts(&elder)?))
            })
            .get("/alerts", |_, _| {
                require_helper()?;
                let mut list: Vec<Alert> = alerts().list_all("")?.into_iter().map(|v| v.value).collect();
                list.sort_by_key(|alarm| std::cmp::Reverse(alarm.raised_at));
                Ok(Response::json(200, &list))
            })
            .post("/alerts/:id/acknowledge", |_, params| {
                let user = identity::require_user()?;
                let id = params.require("id")?;
                let current = alerts().get(id)?.ok_or_else(|| Error::not_found(format!("没有这条提醒 (no alert `{id}`)")))?.value;
                // Staff and volunteers, or the elder's family following her.
                let family = current.elder.as_deref().map(|e| follows(&user.id, e)).transpose()?.unwrap_or(false);
                if !family {
                    require_helper()?;
                }
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
                if body.next_visit.as_deref().is_some_and(|d| !is_date(d)) {
                    return Err(Error::invalid("下次探访日期格式为 YYYY-MM-DD (next_visit is YYYY-MM-DD)"));
                }
                elder(&body.elder)?;
                if let Some(next) = &body.next_visit {
                    elders().modify(&body.elder, |e: &mut Elder| e.next_visit = Some(next.clone()))?;
                }
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
            .get("/viewer", |_, _| {
                let user = identity::require_user()?;
                let staff = STAFF_ROLES.iter().any(|r| identity::has_role(&user, r));
                Ok(Response::json(200, &json!({ "staff": staff, "helper": staff || identity::has_role(&user, "volunteer") })))
            })
            .get("/mine", |_, _| Ok(Response::json(200, &my_page()?)))
            .put("/mine/contacts", |req, _| {
                let (_, elder) = require_own_elder()?;
                let body: ContactsRequest = req.json()?;
                base::set_emergency_contacts(&elder.id, &body.contacts)?;
                Ok(Response::json(200, &base::emergency_contacts(&elder.id)?))
            })
            .post("/mine/invite", |_, _| {
                let (user, elder) = require_own_elder()?;
                // One open invitation at a time: a new one replaces the last.
                for old in invites().query_all("elder", &elder.id)? {
                    invites().delete(&old.key)?;
                }
                let expires_at = now_ms() + INVITE_MS;
                for _ in 0..5 {
                    let invite = Invite { code: new_code()?, elder: elder.id.clone(), by: user.id.clone(), expires_at };
                    match invites().insert(&invite.code, &invite) {
                        Ok(_) => return Ok(Response::json(201, &json!({ "code": invite.code, "expires_at": expires_at }))),
                        Err(e) if e.code == ErrorCode::Conflict => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(Error::new(ErrorCode::Unavailable, "请稍后再试 (try again)"))
            })
            .delete("/mine/family/:user", |_, params| {
                let (_, elder) = require_own_elder()?;
                let removed = followers().delete(&format!("{}:{}", elder.id, params.require("user")?))?;
                Ok(Response::json(200, &json!({ "removed": removed })))
            })
            .get("/family", |_, _| Ok(Response::json(200, &family_page()?)))
            .post("/family", |req, _| {
                let body: JoinRequest = req.json()?;
                Ok(Response::json(201, &join_family(&body.code)?))
            })
            .delete("/family/:elder", |_, params| {
                let user = identity::require_user()?;
                let removed = followers().delete(&format!("{}:{}", params.require("elder")?, user.id))?;
                Ok(Response::json(200, &json!({ "removed": removed })))
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
    fn visits_are_planned_by_date() {
        assert!(is_date("2026-12-24"));
        for bad in ["2026-13-01", "2026-1-5", "24.12.2026", "", "2026-12-24T10:00"] {
            assert!(!is_date(bad), "{bad}");
        }
        assert!(is_mobile("13900000099") && !is_mobile("0571-88886666") && !is_mobile("1390000009"));
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
        // The family's inbox says what to do in the app.
        assert!(family_text(&alert).contains("她很平安"));
    }
}
